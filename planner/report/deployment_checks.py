"""Claim checks on deploying the model: whether a scenario fits, the fewest GPUs that hold a checkpoint,
expert offload to host RAM, decode speed, experts touched per step and API break-even. Each reads its options
(see checks.py) and returns a Finding from memory_report, estimate, distinct_experts or break_even_table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from planner.base.errors import PlannerError
from planner.base.units import gb
from planner.base.yamlio import is_file, load_document, require_mapping
from planner.deploy.memory import memory_report
from planner.deploy.scenario_file import scenario_from_mapping
from planner.perf.ops import distinct_experts
from planner.report.api import break_even_table
from planner.report.check_inputs import Ctx, flag, name, named_model, need, number
from planner.report.plans import Plan
from planner.report.spec import model_ref, resolve_path
from planner.report.verdict import Finding, compare, compare_range
from planner.serving.estimate import estimate


def short(reason: str) -> str:
    """The first clause of a planner reason (the quantity that does not fit)."""
    return reason.split(";")[0]


def _scenario(ref: Any, ctx: Ctx, key: str = "scenario"):
    if isinstance(ref, str) and ref:
        path = resolve_path(ref)
        if not is_file(path):
            raise PlannerError(f"no scenario file at {path}", file=ctx.file, field=f"{ctx.field}.{key}")
        doc, label = require_mapping(load_document(path), str(path)), str(path)
    else:
        doc, label = copy.deepcopy(require_mapping(ref, ctx.file, f"{ctx.field}.{key}")), f"{ctx.file}: {ctx.field}"
        model = doc.get("model")
        doc["model"] = model_ref(model if isinstance(model, str) and model else ctx.model) \
            if model is None or isinstance(model, str) else model
    if isinstance(doc.get("workload"), str):
        if doc["workload"] not in ctx.workloads:
            raise PlannerError(f"unknown workload {doc['workload']!r} (report workloads: {', '.join(ctx.workloads)})",
                               file=label, field="workload")
        doc["workload"] = dict(ctx.workloads[doc["workload"]])
    return scenario_from_mapping(doc, label)


def _workload(opts: Mapping, ctx: Ctx) -> dict:
    wl = opts.get("workload")
    if wl is None:
        wl = next(iter(ctx.workloads.values()), {"phase": "decode"})
    if isinstance(wl, str):
        if wl not in ctx.workloads:
            raise PlannerError(f"unknown workload {wl!r} (report workloads: {', '.join(ctx.workloads)})",
                               file=ctx.file, field=f"{ctx.field}.workload")
        return dict(ctx.workloads[wl])
    return dict(require_mapping(wl, ctx.file, f"{ctx.field}.workload"))


def check_fits(opts: Mapping, ctx: Ctx) -> Finding:
    sc = _scenario(need(opts, "scenario", ctx), ctx)
    ctx.call(f"memory_report({sc.name})")
    mem = memory_report(sc)
    claimed = flag(opts, "claimed", ctx)
    where = f"{sc.total_gpus}x {sc.gpu}" if sc.gpu else "CPU only"
    shown = f"{where}: weights {gb(mem.weights_bytes_per_gpu)} of {gb(mem.capacity_bytes)} per GPU"
    said = f"{where} {'holds' if mem.fits else 'cannot hold'} {sc.weights.name}" + (
        "" if mem.fits else f": {short(mem.reason)}")
    return Finding("confirmed" if mem.fits == claimed else "wrong", None, shown, said)


def check_min_gpus(opts: Mapping, ctx: Ctx) -> Finding:
    weights, gpu = name(opts, "weights", ctx), name(opts, "gpu", ctx)
    per_node = number(opts, "gpus_per_node", ctx, 8, integer=True, minimum=1, maximum=64)
    claimed = number(opts, "claimed", ctx, integer=True, minimum=1, maximum=10**6)
    base = {"model": model_ref(name(opts, "model", ctx, None) or ctx.model), "weights": weights,
            "kv_cache": name(opts, "kv_cache", ctx, "bf16"), "engine": name(opts, "engine", ctx, "vllm"),
            "workload": _workload(opts, ctx)}
    max_nodes = number(opts, "max_nodes", ctx, 16, integer=True, minimum=1, maximum=64)
    plans = [(n, 1) for n in (1, 2, 4, 8) if n < per_node] + [(per_node, k) for k in range(1, max_nodes + 1)]
    found, first = None, None
    for tp, nodes in plans:
        doc = {**base, "name": f"{tp * nodes}x {gpu}", "hardware": {"gpu": gpu, "gpus_per_node": tp, "nodes": nodes},
               "parallelism": {"tp": tp, "pp": nodes}}
        try:
            sc = scenario_from_mapping(doc, f"{ctx.file}: {ctx.field}")
        except PlannerError:
            continue  # e.g. tp does not divide the heads
        mem = memory_report(sc)
        if tp * nodes == claimed:
            first = mem
        if mem.fits:
            found = (tp * nodes, sc, mem)
            break
    ctx.call(f"memory_report(tp {per_node} x pp 1..n on {gpu}, {weights})")
    if found is None:
        return Finding("wrong", None, f"no plan up to {plans[-1][0] * plans[-1][1]}x {gpu} fits",
                       f"{weights} does not fit on up to {plans[-1][0] * plans[-1][1]} {gpu}")
    n, sc, mem = found
    shown = f"smallest fit {n}x {gpu} (tp {sc.parallelism.tp}, pp {sc.parallelism.pp})"
    if claimed < n:
        why = short(first.reason) if first is not None else "too little memory"
        return Finding("wrong", claimed / n - 1, shown, f"{claimed}x {gpu} cannot hold {weights}: {why}")
    kind, off = compare(claimed, n)
    return Finding(kind if claimed > n else "confirmed", off, shown,
                   f"{weights} needs {n}x {gpu} ({gb(mem.weights_bytes_per_gpu)} weights per GPU)")


def check_offload_fit(opts: Mapping, ctx: Ctx) -> Finding:
    weights, gpu = name(opts, "weights", ctx), name(opts, "gpu", ctx)
    gpus = number(opts, "gpus", ctx, 1, integer=True, minimum=1, maximum=64)
    model = named_model(opts, ctx)
    base = {"model": model_ref(name(opts, "model", ctx, None) or ctx.model), "weights": weights,
            "engine": name(opts, "engine", ctx, "llamacpp"), "kv_cache": name(opts, "kv_cache", ctx, "bf16"),
            "workload": _workload(opts, ctx),
            "hardware": {"gpu": gpu, "gpus_per_node": gpus, "host": need(opts, "host", ctx)}}
    layouts = [{"tp": gpus}] + ([{"pp": gpus}] if gpus > 1 else [])
    ctx.call(f"memory_report({gpus}x {gpu} + host, {weights}, expert layers on CPU 0..{model.spec.num_moe_layers})")
    hit = None
    for n in range(model.spec.num_moe_layers + 1):
        for par in layouts:
            sc = scenario_from_mapping({**base, "name": f"{gpus}x {gpu} cpu-moe {n}", "parallelism": par,
                                        "offload": {"expert_layers_on_cpu": n}}, f"{ctx.file}: {ctx.field}")
            mem = memory_report(sc)
            if mem.fits:
                hit = (sc, mem)
                break
        if hit:
            break
    claimed = flag(opts, "claimed", ctx, True)
    if hit is None:
        sc = scenario_from_mapping({**base, "parallelism": layouts[0], "offload": {"expert_layers_on_cpu": "all"}},
                                   f"{ctx.file}: {ctx.field}")
        mem = memory_report(sc)
        return Finding("confirmed" if not claimed else "wrong", None, f"no expert split fits: {mem.reason}",
                       f"{gpus}x {gpu} + host cannot hold {weights}: {mem.reason}")
    sc, mem = hit
    ctx.call(f"estimate({sc.name})")
    speed = estimate(sc)["metrics"]["output_tokens_per_s_per_user"]
    shown = (f"fits with {sc.expert_layers_on_cpu} expert layers in host RAM ({gb(mem.host_bytes)}), "
             f"{gb(mem.weights_bytes_per_gpu)} per GPU" + (f", {speed:.1f} tok/s per user" if speed else ""))
    return Finding("confirmed" if claimed else "wrong", None, shown, f"{gpus}x {gpu} + host holds {weights}: {shown}")


def check_speed(opts: Mapping, ctx: Ctx) -> Finding:
    sc = _scenario(need(opts, "scenario", ctx), ctx)
    metric = name(opts, "metric", ctx, "output_tokens_per_s_per_user")
    low, high = _claimed_range(opts, ctx)
    ctx.call(f"estimate({sc.name})")
    res = estimate(sc)
    if not res["fits"]:
        return Finding("not_checkable", None, "", f"{sc.name} does not fit, so its speed is moot")
    mine = res["metrics"].get(metric)
    if mine is None:
        raise PlannerError(f"estimate has no metric {metric!r}", file=ctx.file, field=f"{ctx.field}.metric")
    if high is not None:
        kind, off = compare_range(low, high, mine)
        text = f"{low:g}-{high:g}"
    else:
        kind, off = compare(low, mine, "modelled")
        text = f"{low:g}"
    bottleneck = res["bottleneck"].get("decode") or res["bottleneck"].get("prefill")
    return Finding(kind, off, f"{mine:.3g} {metric.replace('_', ' ')}",
                   f"{sc.name}: planner {mine:.3g} vs claimed {text} ({bottleneck}-bound decode)")


def _claimed_range(opts: Mapping, ctx: Ctx) -> tuple[float, float | None]:
    """`claimed`: a number (low, None) or [low, high] with low <= high."""
    claimed = need(opts, "claimed", ctx)
    if not isinstance(claimed, list):
        return number(opts, "claimed", ctx), None
    if len(claimed) != 2:
        raise PlannerError(f"expected [low, high], got {claimed!r}"[:120], file=ctx.file, field=f"{ctx.field}.claimed")
    pair = dict(enumerate(claimed))
    inner = replace(ctx, field=f"{ctx.field}.claimed")
    low, high = number(pair, 0, inner), number(pair, 1, inner)
    if low > high:
        raise PlannerError(f"low {low:g} is above high {high:g}", file=ctx.file, field=f"{ctx.field}.claimed")
    return low, high


def check_experts_touched(opts: Mapping, ctx: Ctx) -> Finding:
    model = named_model(opts, ctx)
    s = model.spec
    tokens = opts.get("tokens", [1, 64, 4096])
    if not isinstance(tokens, list) or not tokens:
        raise PlannerError("expected a non-empty list of token counts", file=ctx.file, field=f"{ctx.field}.tokens")
    tokens = [number(dict(enumerate(tokens)), k, replace(ctx, field=f"{ctx.field}.tokens"), integer=True, minimum=1,
                     maximum=10**8) for k in range(len(tokens))]
    ctx.call(f"distinct_experts({s.n_routed_experts}, top-{s.experts_per_token}, tokens {tokens})")
    frac = {t: distinct_experts(s.n_routed_experts, s.n_routed_experts, s.experts_per_token, t) / s.n_routed_experts
            for t in tokens}
    shown = ", ".join(f"{t:,} tokens touch {f:.1%}" for t, f in frac.items())
    every = frac[max(tokens)] > 0.99
    claimed = flag(opts, "claimed_all", ctx, True)
    return Finding("confirmed" if every == claimed else "wrong", None, f"experts per layer per step: {shown}",
                   f"one step of {max(tokens):,} tokens touches {frac[max(tokens)]:.1%} of each layer's "
                   f"{s.n_routed_experts} experts, so all must be resident (or streamed from host RAM every step)")


def check_api(opts: Mapping, ctx: Ctx) -> Finding:
    sc = _scenario(need(opts, "scenario", ctx), ctx)
    api = require_mapping(need(opts, "api", ctx), ctx.file, f"{ctx.field}.api")
    ctx.call(f"estimate({sc.name})")
    table, left = break_even_table([Plan(sc.name, sc, estimate(sc))], api)
    if table.empty:
        return Finding("not_checkable", None, "", "prices are published data, not planner quantities; "
                       + "; ".join(left))
    r = table.iloc[0]
    shown = (f"renting {sc.name}: ${r.self_usd_per_m_output:.2f} per M output tokens at full load vs API "
             f"${r.api_usd_per_m_output:.2f}; break-even {r.break_even_output_tokens_per_day / 1e6:,.0f} M output "
             f"tokens/day ({r.break_even_utilization:.0%} utilization)")
    return Finding("not_checkable", None, shown, "the API prices are published data, not planner quantities; "
                   + shown)
