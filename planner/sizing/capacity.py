"""How much traffic one replica of a plan carries within the SLO: the largest running batch per engine group
whose TPOT and TTFT keep the SLO, and the output tokens per second it then serves.

Two paths over the same models:
- `screen`: vectorized. The decode step of every batch on a grid (planner.perf.sweep.DecodeSweep, numpy) plus the
  time the prompt tokens mixed into each step add, interpolated between three exact mixed steps. An estimate,
  used to rank every candidate that fits.
- `exact_capacity`: the scalar serving model (planner.serving.serve.serve_point: one mixed step from op records),
  bisected on the running batch. Used for the plans that are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, sqrt

import numpy as np

from planner.deploy.memory import MemoryReport
from planner.deploy.scenario import Scenario
from planner.perf.steps import mixed_step, prefill_step, tokens_per_step
from planner.perf.sweep import DecodeSweep
from planner.serving.serve import max_running, serve_point

GRID = 32  # batch sizes per candidate in the vectorized screen
REL_TOL = 0.01  # bisection stops when the bracket is within 1%


@dataclass(frozen=True)
class Limits:
    tpot_s: float | None  # slo.tpot_ms and 1 / slo.output_tokens_per_s_per_user, whichever is tighter
    ttft_s: float | None

    @classmethod
    def of(cls, slo: dict) -> Limits:
        tpot = [slo[k] / 1e3 for k in ("tpot_ms",) if slo.get(k)]
        if slo.get("output_tokens_per_s_per_user"):
            tpot.append(1 / slo["output_tokens_per_s_per_user"])
        return cls(min(tpot) if tpot else None, slo["ttft_ms"] / 1e3 if slo.get("ttft_ms") else None)

    def excess(self, tpot_s, ttft_s) -> np.ndarray:
        """Largest relative overshoot of a limit (value / limit - 1); <= 0 where the SLO holds."""
        out = np.full(np.shape(tpot_s), -1.0)
        if self.tpot_s is not None:
            out = np.maximum(out, np.asarray(tpot_s) / self.tpot_s - 1)
        if self.ttft_s is not None:
            out = np.maximum(out, np.asarray(ttft_s) / self.ttft_s - 1)
        return out

    def ok(self, tpot_s, ttft_s):
        good = np.ones_like(np.asarray(tpot_s, dtype=float), dtype=bool)
        if self.tpot_s is not None:
            good &= np.asarray(tpot_s) <= self.tpot_s
        if self.ttft_s is not None:
            good &= np.asarray(ttft_s) <= self.ttft_s
        return good


@dataclass(frozen=True)
class Capacity:
    running: float  # sequences decoding together per engine group at the SLO limit
    out_per_s: float  # output tokens per second of one replica there
    tpot_s: float
    ttft_s: float
    exact: bool  # from the scalar serving model (False: vectorized estimate)


def groups(sc: Scenario) -> int:
    """Engine groups (independent running batches) of one replica."""
    return sc.parallelism.dp_attention


def gpus_used(sc: Scenario) -> int:
    return max(1, sc.parallelism.gpus_per_replica) if sc.gpu else 1


def out_per_s(sc: Scenario, running: float, step_s):
    """Output tokens/s of one replica with `running` sequences per group (planner.serving.serve's accounting)."""
    return running / sc.parallelism.tp * tokens_per_step(sc) / step_s * gpus_used(sc)


def prompt_chunk(sc: Scenario):
    """One engine-sized chunk of a prompt on one TP group: (chunk tokens, its prefill step)."""
    wl, t = sc.workload, sc.parallelism.tp
    new = wl.new_prompt_len
    chunk = min(new, sc.engine.max_batched_tokens)
    return chunk, prefill_step(sc, chunk / t, wl.input_len, wl.input_len - new)


def screen(sc: Scenario, mem: MemoryReport, limits: Limits, chunk=None) -> tuple[Capacity | None, np.ndarray,
                                                                                   np.ndarray]:
    """Vectorized estimate: (capacity at the SLO or None, running grid, TPOT per grid point). `chunk`: a
    `prompt_chunk` result to reuse (plans that differ only in KV dtype share it in the estimate).

    The decode step comes from the vectorized sweep on the whole grid; the prompt tokens chunked prefill mixes into
    each step add a time taken from exact mixed steps (planner.perf.steps.mixed_step with the prompt tokens per step of
    planner.serving.serve's steady state) at running 2, the memory limit, their geometric mean and, once estimated, next
    to the SLO boundary; interpolated over log prompt tokens per step (the added time has a fixed part per step,
    e.g. the MLA prefill's latent decompression, and grows slower than linearly)."""
    wl, t = sc.workload, sc.parallelism.tp
    cap = max_running(sc, mem)
    running = np.unique(np.append(np.geomspace(1.0, cap, GRID), cap))  # [R] per engine group
    batch = running / t  # [R] per GPU
    kv_mean = wl.mean_kv_len
    decode, _ = DecodeSweep(sc).evaluate(batch, kv_mean)  # [R] seconds per step
    new = wl.new_prompt_len
    chunk, pre = chunk or prompt_chunk(sc)
    ttft_alone = pre.seconds * new / chunk
    # prompt tokens per step per GPU that replace finishing sequences (planner.serving.serve.serve_point's steady state)
    mixed = batch * tokens_per_step(sc) * new / max(wl.output_len, 1) * np.maximum(0.0, (running - 1) / running)
    exact: dict[int, float] = {}  # grid index -> exact mixed step minus decode step

    def estimate():
        idx = sorted(exact)
        log_p = np.log(np.maximum(mixed, 1e-12))
        extra = np.where(mixed > 0, np.interp(log_p, log_p[idx], [max(exact[i], 0.0) for i in idx]), 0.0) \
            if idx else np.zeros_like(decode)
        step = decode + extra
        budget = np.maximum(1.0, sc.engine.max_batched_tokens - running)
        ttft = np.maximum(ttft_alone, np.where(mixed > 0, np.ceil(new / budget) * step, 0.0))
        return step, step / tokens_per_step(sc), ttft

    def sample(k: int) -> None:
        if k not in exact and mixed[k] > 0:
            exact[k] = mixed_step(sc, batch[k], kv_mean, mixed[k], wl.input_len, wl.input_len - new).seconds - decode[k]

    if cap > 1:
        for r in (min(2.0, cap), sqrt(min(2.0, cap) * cap), cap):
            sample(int(np.abs(running - r).argmin()))
    step, tpot, ttft = estimate()
    good = limits.ok(tpot, ttft)
    if good.any() and not good.all():  # one more exact point where the SLO boundary is estimated to lie
        nxt = int(np.flatnonzero(good).max()) + 1
        if nxt < len(running):  # the SLO need not hold monotonically (e.g. a launch floor at small batches)
            sample(nxt)
        step, tpot, ttft = estimate()
        good = limits.ok(tpot, ttft)
    if not good.any():
        return None, running, tpot
    k = int(np.flatnonzero(good).max())
    r, s, tp, tf = running[k], step[k], tpot[k], ttft[k]
    if k + 1 < len(running):  # the SLO boundary lies between grid points k and k + 1: interpolate linearly
        over = limits.excess(tpot[k:k + 2], ttft[k:k + 2])  # <= 0 within the SLO
        f = float(np.clip(-over[0] / (over[1] - over[0]), 0.0, 1.0)) if over[1] > over[0] else 0.0
        r, s = r + f * (running[k + 1] - r), s + f * (step[k + 1] - s)
        tp, tf = tp + f * (tpot[k + 1] - tp), tf + f * (ttft[k + 1] - tf)
    return Capacity(float(r), float(out_per_s(sc, r, s)), float(tp), float(tf), False), running, tpot


def exact_capacity(sc: Scenario, mem: MemoryReport, limits: Limits, hint: float | None = None) -> Capacity | None:
    """Largest running batch per group (<= memory and engine limit) within the SLO, by the scalar model."""
    cap = max_running(sc, mem)

    def ok(r: float) -> bool:
        pt = serve_point(sc, r)
        return bool(limits.ok(pt.slo_tpot_s, pt.slo_ttft_s))

    if ok(cap):
        best = cap
    elif not ok(1.0):
        return None
    else:
        lo, hi = 1.0, cap
        if hint and 1.0 < hint < cap:  # the estimate splits the bracket first
            lo, hi = (hint, cap) if ok(hint) else (1.0, hint)
        while hi / lo > 1 + REL_TOL:
            mid = sqrt(lo * hi)
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        best = lo
    pt = serve_point(sc, best)
    return Capacity(best, out_per_s(sc, best, pt.step.seconds), pt.slo_tpot_s, pt.slo_ttft_s, True)


def running_for(sc: Scenario, capacity: Capacity, out_needed: float) -> float:
    """Running batch per group that serves `out_needed` output tokens/s on one replica (<= capacity.running)."""
    if out_needed >= capacity.out_per_s:
        return capacity.running
    wl = sc.workload
    new = wl.new_prompt_len
    kv_mean = wl.mean_kv_len
    tps = tokens_per_step(sc)

    def out(r: float) -> float:  # serve_point's mixed step, without its TTFT
        b = r / sc.parallelism.tp
        p = b * tps * new / max(wl.output_len, 1) * max(0.0, (r - 1) / r)
        return out_per_s(sc, r, mixed_step(sc, b, kv_mean, p, wl.input_len, wl.input_len - new).seconds)

    lo, hi = 0.0, capacity.running
    guess = capacity.running * out_needed / capacity.out_per_s  # throughput grows slower than the batch: a floor
    if out(guess) >= out_needed:
        hi = guess
    else:
        lo = guess
    while hi - lo > max(1e-3, REL_TOL * hi):  # throughput grows with the running batch
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if out(mid) >= out_needed else (mid, hi)
    return hi


def replicas_needed(out_needed: float | None, users: float | None, capacity: Capacity, sc: Scenario) -> int:
    """Replicas for an output-token rate, or for a number of requests in flight (closed loop)."""
    if users is not None:
        return max(1, ceil(users / (capacity.running * groups(sc)) - 1e-9))
    return max(1, ceil(out_needed / capacity.out_per_s - 1e-9))
