"""What fits on hardware you own (`purchase: owned`) when no plan meets the workload at its context: the largest
context each plan's memory holds, per weight format, and the formats that fit at the requested and at the largest
context. `planner.sizing.search.size` then sizes the workload again at that context for the best feasible plan.

The largest context of one plan: the scalar memory model (planner.deploy.memory via planner.sizing.fitting.build)
at context_len halved from the requested one until a request fits, then bisected between the last context that
fits and the first that does not, to a multiple of STEP tokens. Memory grows with context (KV cache of one request,
paged), so the answer is monotone and the bisection exact to STEP. Each plan's KV dtypes share a memory group; the
smallest KV dtype reaches the longest context and is the one searched (planner.sizing.fitting.memory_groups).
Workstations and CPU servers are searched with every MoE layer's experts in host RAM (what leaves the GPUs the most
room for KV cache) and must hold those in their RAM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.model.models import load_model
from planner.sizing.candidates import Candidate
from planner.sizing.fitting import build, memory_groups
from planner.sizing.workload import SizingWorkload

STEP = 256  # tokens: bisection resolution (vLLM/SGLang page KV in blocks of 16-64 tokens; a person reads 1K steps)


@dataclass(frozen=True)
class PlanFit:
    """One plan (its smallest KV dtype) and the longest request its memory holds."""

    cand: Candidate
    largest_context: int  # tokens; 0 when not even STEP tokens fit
    reason_at_requested: str  # the memory model's reason at the workload's context ('' when it fits there)
    static_bytes_per_gpu: int  # weights + activations + runtime on the fullest GPU (ties: the closest plan first)


def _memory(cand: Candidate, wl: SizingWorkload, context: int) -> tuple[bool, str, int]:
    """(fits, reason, bytes per GPU besides KV cache) of `cand` with requests of `context` tokens."""
    if cand.hw.host is not None and cand.hw.gpu is not None:
        cand = replace(cand, offload_layers=load_model(cand.model).spec.num_moe_layers)
    try:
        mem = memory_report(build(cand, replace(wl, context_len=context)))
    except PlannerError as err:
        return False, err.message, 0
    static = mem.weights_bytes_per_gpu + mem.activation_bytes_per_gpu + mem.runtime_bytes_per_gpu
    if not mem.fits:
        return False, mem.reason, static
    if cand.hw.host is not None and cand.hw.gpu is not None and mem.host_bytes > cand.hw.host.memory_bytes:
        return False, (f"offloaded weights need {mem.host_bytes / 1e9:,.1f} GB of host RAM, the host has "
                       f"{cand.hw.host.memory_bytes / 1e9:,.1f} GB"), static
    return True, "", static


def largest_context(cand: Candidate, wl: SizingWorkload) -> PlanFit:
    """The longest request (a multiple of STEP, at most the workload's context_len) that `cand`'s memory holds."""
    hi = wl.context_len
    ok, reason, static = _memory(cand, wl, hi)
    if ok:
        return PlanFit(cand, hi, "", static)
    lo = hi
    while True:  # halve until a request fits (or none does)
        lo = (lo // 2) // STEP * STEP
        if lo < STEP:
            return PlanFit(cand, 0, reason, static)
        if _memory(cand, wl, lo)[0]:
            break
        hi = lo
    while hi - lo > STEP:  # lo fits, hi does not
        mid = (lo + hi) // 2 // STEP * STEP
        if mid <= lo:
            break
        if _memory(cand, wl, mid)[0]:
            lo = mid
        else:
            hi = mid
    return PlanFit(cand, lo, reason, static)


def plan_fits(pool: list, wl: SizingWorkload, deadline: float | None = None) -> tuple[list[PlanFit], int]:
    """The largest context of every plan in `pool` ((candidate, cost) pairs past the static checks), longest first,
    and how many plans the `deadline` (time.monotonic) left unsearched."""
    groups = memory_groups(pool)
    out = []
    for k, (kind, items) in enumerate(groups):
        if deadline is not None and time.monotonic() > deadline:
            return _ranked(out), len(groups) - k
        # the smallest KV dtype of a plan, the largest RAM of a host: what holds the longest request
        out.append(largest_context(items[-1 if kind == "host" else 0][0], wl))
    return _ranked(out), 0


def _ranked(fits: list[PlanFit]) -> list[PlanFit]:
    return sorted(fits, key=lambda f: (-f.largest_context, not f.cand.published, f.static_bytes_per_gpu,
                                       f.cand.hw.gpus, f.cand.name))


def answer(fits: list[PlanFit], wl: SizingWorkload, left: int) -> dict:
    """The `fits` block of the size document: per format its largest context and the plan that reaches it, the
    formats at the requested and at the largest context, and why each format misses the requested one."""
    best: dict[str, PlanFit] = {}
    for f in fits:  # longest first: the first plan of each format is its best
        best.setdefault(f.cand.weights, f)
    largest = max((f.largest_context for f in fits), default=0)
    request = wl.traffic.input_len + wl.traffic.output_len
    return {
        "requested_context": wl.context_len,
        "largest_context": largest,
        "request_tokens": request,
        "formats_at_requested": [w for w, f in best.items() if f.largest_context >= wl.context_len],
        "formats_at_largest": [w for w, f in best.items() if largest and f.largest_context == largest],
        "by_format": [{"weights": w, "published": f.cand.published, "largest_context": f.largest_context,
                       "kv_cache": f.cand.kv_cache, "engine": f.cand.engine, "plan": f.cand.plan,
                       "hardware": f.cand.hw.label(), "why_not_requested": f.reason_at_requested}
                      for w, f in best.items()],
        "plans_searched": len(fits), "plans_not_searched": left,
        "plan": None, "plan_note": "",
    }


def lines(fit: dict) -> list[str]:
    """The readable `fits` block (the CLI's table without --json)."""
    req, top = fit["requested_context"], fit["largest_context"]
    out = [f"What fits on this hardware (no plan meets the workload at {req:,} tokens of context):"
           if not fit.get("published_only") else
           f"What fits on this hardware with a published checkpoint (every plan listed needs your own "
           f"quantization; with published checkpoints, {', '.join(fit.get('formats_searched', [])) or 'none'}):"]
    if not top:
        out.append(f"  no context fits: not even {STEP} tokens on any searched plan")
    else:
        at_req = ", ".join(fit["formats_at_requested"]) or "none"
        out.append(f"  largest context: {top:,} tokens ({', '.join(fit['formats_at_largest'])}); formats that fit "
                   f"{req:,} tokens: {at_req}")
    for f in fit["by_format"]:
        star = "" if f["published"] else "*"
        why = f"; at {req:,}: {f['why_not_requested']}" if f["why_not_requested"] else ""
        where = f"{f['hardware']}, {f['engine']} {f['plan']}, KV {f['kv_cache']}"
        if f["largest_context"]:
            out.append(f"    {f['weights']}{star}: up to {f['largest_context']:,} tokens ({where}){why}")
        else:
            out.append(f"    {f['weights']}{star}: fits at no context; closest: {where}: {f['why_not_requested']}")
    p = fit.get("plan")
    if p is not None:
        c = p["cost"]
        out.append(f"  best plan at {top:,} tokens: {p['hardware']['label']} {p['weights']} {p['engine']} "
                   f"{p['parallelism']['plan']}, {p['replicas']} replica(s), TPOT {p['metrics']['tpot_ms']:,.1f} ms, "
                   f"TTFT {p['metrics']['ttft_ms']:,.0f} ms, {c['usd_per_m_output_tokens'] or 0:,.2f} USD/M output "
                   f"(energy)")
        for eng, cmd in p["flags"].items():
            if cmd:
                out.append(f"    {eng}: {cmd}")
    if fit.get("plan_note"):
        out.append(f"  {fit['plan_note']}")
    if fit["plans_not_searched"]:
        out.append(f"  (the time budget left {fit['plans_not_searched']:,} plans unsearched)")
    return out
