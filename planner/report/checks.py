"""Planner checks for published claims: each kind takes options from the report file (the claimed numbers,
transcribed from the claim's text) and returns a Finding computed by planner calls, which it names.

Kinds and options (model defaults to the report's first model; scenario = a path or an inline mapping,
whose `workload` may name a report workload):
  params             quantity (total | total_with_vision | active_per_token | active_fraction | vision), claimed
  architecture       claimed: {fact: value}  (facts of `inspect`, plus dense_layers and max_context)
  architecture_ratio versus (model), fact, claimed (this model's fact / the other's)
  weights_size       weights, claimed_bytes
  kv_ratio           dtype, claimed (MHA-equivalent / the model's own KV bytes per token)
  mla_kv_formula     dtype, latent_copies (the claim's factor in front of L x C x B)
  fits               scenario, claimed (true | false)
  min_gpus           weights, gpu, claimed (GPUs), gpus_per_node, engine, workload, max_nodes
  offload_fit        weights, gpu, gpus, host, engine, workload, claimed (true | false)
  speed              scenario, metric, claimed (number or [low, high])
  experts_touched    tokens (list), claimed_all (true: every expert must be resident)
  api_break_even     scenario, api {input_per_m_usd, output_per_m_usd}
  not_checkable      reason
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from planner.errors import PlannerError, resolve_named
from planner.estimate import estimate
from planner.inspect import inspect_model
from planner.kv import kv_layout, mha_equivalent_bytes_per_token
from planner.memory import memory_report
from planner.models import load_model
from planner.ops import distinct_experts
from planner.quant import load_format
from planner.report.spec import model_ref, resolve_path
from planner.report.verdict import Finding, compare, compare_range
from planner.scenario import scenario_from_mapping
from planner.units import gb
from planner.yamlio import check_keys, get_number, get_str, is_file, load_document, require_mapping

KEYS: dict[str, tuple[str, ...]] = {
    "params": ("quantity", "claimed"),
    "architecture": ("claimed",),
    "architecture_ratio": ("versus", "fact", "claimed"),
    "weights_size": ("weights", "claimed_bytes"),
    "kv_ratio": ("dtype", "claimed"),
    "mla_kv_formula": ("dtype", "latent_copies"),
    "fits": ("scenario", "claimed"),
    "min_gpus": ("weights", "gpu", "claimed", "gpus_per_node", "engine", "workload", "max_nodes", "kv_cache"),
    "offload_fit": ("weights", "gpu", "gpus", "host", "engine", "workload", "claimed", "kv_cache"),
    "speed": ("scenario", "metric", "claimed"),
    "experts_touched": ("tokens", "claimed_all"),
    "api_break_even": ("scenario", "api"),
    "not_checkable": ("reason",),
}


@dataclass
class Ctx:
    """What every check sees: the report's defaults and a log of the planner calls made."""

    model: str  # default model reference
    workloads: Mapping[str, Mapping]
    file: str  # report file (error messages)
    field: str = ""  # "sections[9].claims_audit.checks.size-int4[1]"
    calls: list[str] = dataclasses.field(default_factory=list)

    def call(self, what: str) -> None:
        self.calls.append(what)


def run_check(opts: Mapping, ctx: Ctx) -> Finding:
    opts = require_mapping(opts, ctx.file, ctx.field)
    kind = opts.get("check")
    if not isinstance(kind, str) or kind not in KEYS:
        raise PlannerError(f"unknown check {kind!r} (known: {', '.join(KEYS)})"[:300], file=ctx.file,
                           field=f"{ctx.field}.check")
    check_keys(opts, ("check", "model", "note") + KEYS[kind], ctx.file, f"{ctx.field}.")
    ctx.calls = []
    try:
        finding = CHECKS[kind](opts, ctx)
    except PlannerError as err:  # a planner call refused an option (unknown name): say where it came from
        if err.file:
            raise
        raise PlannerError(err.message, file=ctx.file, field=ctx.field) from None
    return replace(finding, calls=tuple(ctx.calls))


# typed option readers: a wrong type or value is a one-line error naming the report file and the option

def _need(opts: Mapping, key: str, ctx: Ctx) -> Any:
    if opts.get(key) is None:
        raise PlannerError("missing", file=ctx.file, field=f"{ctx.field}.{key}")
    return opts[key]


def _num(opts: Mapping, key: str, ctx: Ctx, default: Any = ..., **limits) -> Any:
    """A finite number >= 0 (claimed values, counts); `integer=True`, `minimum`, `maximum` as yamlio.get_number.
    Text that reads as a number counts: YAML 1.1 loads `1.04e12` (no exponent sign) as a string."""
    value = opts.get(key)
    if isinstance(value, str):
        try:
            opts = {key: float(value)}
        except ValueError:
            pass
    return get_number(opts, key, ctx.file, prefix=f"{ctx.field}.", default=default,
                      **{"minimum": 0, "maximum": 1e18, **limits})


def _text(opts: Mapping, key: str, ctx: Ctx, default: Any = ...) -> Any:
    value = get_str(opts, key, ctx.file, prefix=f"{ctx.field}.", default=default)
    if value == "":
        raise PlannerError("expected a name, got ''", file=ctx.file, field=f"{ctx.field}.{key}")
    return value


def _flag(opts: Mapping, key: str, ctx: Ctx, default: Any = ...) -> bool:
    value = opts.get(key)
    if value is None:
        if default is ...:
            raise PlannerError("missing", file=ctx.file, field=f"{ctx.field}.{key}")
        return default
    if not isinstance(value, bool):
        raise PlannerError(f"expected true or false, got {value!r}"[:120], file=ctx.file, field=f"{ctx.field}.{key}")
    return value




def _model(opts: Mapping, ctx: Ctx, key: str = "model"):
    name = _text(opts, key, ctx, None) if key == "model" else _text(opts, key, ctx)
    return resolve_named(load_model, model_ref(name or ctx.model), ctx.file, f"{ctx.field}.{key}")


def _inspect(opts: Mapping, ctx: Ctx, weights: str | None = None, kv: str = "bf16", key: str = "model") -> tuple[
        Any, dict]:
    """(model, inspect_model's document) for the check's model (or the one its option `key` names)."""
    model = _model(opts, ctx, key)
    fmt = resolve_named(load_format, weights or model.native_weights, ctx.file, f"{ctx.field}.weights")
    ctx.call(f"inspect_model({model.name}, {fmt.name}, {kv})")
    return model, inspect_model(model, fmt, kv)


def _facts(model: Any, doc: dict) -> dict:
    f = dict(doc["architecture_facts"])
    f["dense_layers"] = f["layers"] - f["moe_layers"]
    f["max_context"] = model.spec.max_context
    return f


def short(reason: str) -> str:
    """The first clause of a planner reason (the quantity that does not fit)."""
    return reason.split(";")[0]


def _count(x: float) -> str:
    return f"{x / 1e12:.4g} T" if x >= 1e12 else f"{x / 1e9:.4g} B" if x >= 1e9 else f"{x / 1e6:.4g} M"


def check_params(opts: Mapping, ctx: Ctx) -> Finding:
    _, doc = _inspect(opts, ctx)
    p = doc["params"]
    q = _text(opts, "quantity", ctx)
    values = {"total": p["total"], "total_with_vision": p["total"] + p["vision"] + p["mtp"],
              "active_per_token": p["active_per_token"], "active_fraction": p["active_per_token"] / p["total"],
              "vision": p["vision"]}
    if q not in values:
        raise PlannerError(f"unknown quantity {q!r} (known: {', '.join(values)})", file=ctx.file,
                           field=f"{ctx.field}.quantity")
    mine, claimed = values[q], _num(opts, "claimed", ctx)
    kind, off = compare(claimed, mine)
    what = q.replace("_", " ")
    if q == "active_fraction":
        shown, said = f"{mine:.2%}", f"{claimed:.1%}"
    else:
        shown, said = f"{_count(mine)} ({mine:,})", _count(claimed)
    return Finding(kind, off, f"{what} {shown}", f"{what}: planner {shown} vs claimed {said}")


def check_architecture(opts: Mapping, ctx: Ctx) -> Finding:
    facts = _facts(*_inspect(opts, ctx))
    claimed = require_mapping(_need(opts, "claimed", ctx), ctx.file, f"{ctx.field}.claimed")
    wrong, shown = [], []
    for key, value in claimed.items():
        if key not in facts:
            raise PlannerError(f"unknown fact (known: {', '.join(facts)})", file=ctx.file,
                               field=f"{ctx.field}.claimed.{key}")
        _num(claimed, key, replace(ctx, field=f"{ctx.field}.claimed"))
        shown.append(f"{key} {facts[key]}")
        if facts[key] != value:
            wrong.append(f"{key} is {facts[key]}, not {value}")
    kind = "wrong" if wrong else "confirmed"
    return Finding(kind, None, ", ".join(shown), "; ".join(wrong) or f"config.json gives {', '.join(shown)}")


def check_architecture_ratio(opts: Mapping, ctx: Ctx) -> Finding:
    mine = _facts(*_inspect(opts, ctx))
    other = _facts(*_inspect(opts, ctx, key="versus"))
    fact = _text(opts, "fact", ctx)
    if fact not in mine or not other.get(fact):
        raise PlannerError(f"unknown fact {fact!r}", file=ctx.file, field=f"{ctx.field}.fact")
    ratio = mine[fact] / other[fact]
    kind, off = compare(_num(opts, "claimed", ctx), ratio)
    return Finding(kind, off, f"{fact} {mine[fact]} vs {other[fact]} = {ratio:.3g}x",
                   f"{fact}: {mine[fact]} vs {opts['versus']}'s {other[fact]} is {ratio:.3g}x")


def check_weights_size(opts: Mapping, ctx: Ctx) -> Finding:
    weights = _text(opts, "weights", ctx)
    _, doc = _inspect(opts, ctx, weights)
    mine, claimed = doc["weights_bytes"], _num(opts, "claimed_bytes", ctx)
    kind, off = compare(claimed, mine)
    return Finding(kind, off, f"{weights} {gb(mine)}", f"{weights} stores {gb(mine)} "
                   f"({mine:,} B), claimed {gb(claimed, 0)}")


def check_kv_ratio(opts: Mapping, ctx: Ctx) -> Finding:
    dtype = _text(opts, "dtype", ctx, "bf16")
    model = _model(opts, ctx)
    ctx.call(f"kv_layout({model.name}, {dtype})")
    ctx.call(f"mha_equivalent_bytes_per_token({model.name}, {dtype})")
    own = resolve_named(lambda d: kv_layout(model.spec, d), dtype, ctx.file, f"{ctx.field}.dtype")
    own = own.bytes_per_token_full
    mha = mha_equivalent_bytes_per_token(model.spec, dtype)
    ratio = mha / own
    kind, off = compare(_num(opts, "claimed", ctx), ratio)
    ctx_len = model.spec.max_context or 131072
    return Finding(kind, off, f"{ratio:.1f}x ({own:,} vs {mha:,} B/token, {dtype})",
                   f"{model.spec.attention.upper()} {dtype} keeps {own:,} B/token vs {mha:,} MHA-equivalent: "
                   f"{ratio:.1f}x; one {ctx_len:,}-token sequence needs {gb(own * ctx_len)} instead of "
                   f"{gb(mha * ctx_len)}")


def check_mla_kv_formula(opts: Mapping, ctx: Ctx) -> Finding:
    dtype = _text(opts, "dtype", ctx, "bf16")
    copies = _num(opts, "latent_copies", ctx, 2, integer=True, minimum=1, maximum=16)
    model = _model(opts, ctx)
    s = model.spec
    if s.attention != "mla":
        return Finding("wrong", None, f"{model.name} uses {s.attention.upper()}", "the model has no MLA latent")
    ctx.call(f"kv_layout({model.name}, {dtype})")
    own = resolve_named(lambda d: kv_layout(s, d), dtype, ctx.file, f"{ctx.field}.dtype").bytes_per_token_full
    nbytes = own // (s.num_layers * (s.kv_lora_rank + s.qk_rope_head_dim))
    formula = copies * s.num_layers * s.kv_lora_rank * nbytes
    kind, off = compare(formula, own)
    return Finding(kind, off, f"{own:,} B/token = {s.num_layers} x ({s.kv_lora_rank} + {s.qk_rope_head_dim}) x "
                   f"{nbytes} B", f"the formula gives {formula:,} B/token; K and V share one latent stored once, "
                   f"plus {s.qk_rope_head_dim} decoupled RoPE dims: L x (C + {s.qk_rope_head_dim}) x B = {own:,}")


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
    sc = _scenario(_need(opts, "scenario", ctx), ctx)
    ctx.call(f"memory_report({sc.name})")
    mem = memory_report(sc)
    claimed = _flag(opts, "claimed", ctx)
    where = f"{sc.total_gpus}x {sc.gpu}" if sc.gpu else "CPU only"
    shown = f"{where}: weights {gb(mem.weights_bytes_per_gpu)} of {gb(mem.capacity_bytes)} per GPU"
    said = f"{where} {'holds' if mem.fits else 'cannot hold'} {sc.weights.name}" + (
        "" if mem.fits else f": {short(mem.reason)}")
    return Finding("confirmed" if mem.fits == claimed else "wrong", None, shown, said)


def check_min_gpus(opts: Mapping, ctx: Ctx) -> Finding:
    weights, gpu = _text(opts, "weights", ctx), _text(opts, "gpu", ctx)
    per_node = _num(opts, "gpus_per_node", ctx, 8, integer=True, minimum=1, maximum=64)
    claimed = _num(opts, "claimed", ctx, integer=True, minimum=1, maximum=10**6)
    base = {"model": model_ref(_text(opts, "model", ctx, None) or ctx.model), "weights": weights,
            "kv_cache": _text(opts, "kv_cache", ctx, "bf16"), "engine": _text(opts, "engine", ctx, "vllm"),
            "workload": _workload(opts, ctx)}
    max_nodes = _num(opts, "max_nodes", ctx, 16, integer=True, minimum=1, maximum=64)
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
    weights, gpu = _text(opts, "weights", ctx), _text(opts, "gpu", ctx)
    gpus = _num(opts, "gpus", ctx, 1, integer=True, minimum=1, maximum=64)
    model = _model(opts, ctx)
    base = {"model": model_ref(_text(opts, "model", ctx, None) or ctx.model), "weights": weights,
            "engine": _text(opts, "engine", ctx, "llamacpp"), "kv_cache": _text(opts, "kv_cache", ctx, "bf16"),
            "workload": _workload(opts, ctx),
            "hardware": {"gpu": gpu, "gpus_per_node": gpus, "host": _need(opts, "host", ctx)}}
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
    claimed = _flag(opts, "claimed", ctx, True)
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
    sc = _scenario(_need(opts, "scenario", ctx), ctx)
    metric = _text(opts, "metric", ctx, "output_tokens_per_s_per_user")
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
    claimed = _need(opts, "claimed", ctx)
    if not isinstance(claimed, list):
        return _num(opts, "claimed", ctx), None
    if len(claimed) != 2:
        raise PlannerError(f"expected [low, high], got {claimed!r}"[:120], file=ctx.file, field=f"{ctx.field}.claimed")
    pair = dict(enumerate(claimed))
    inner = replace(ctx, field=f"{ctx.field}.claimed")
    low, high = _num(pair, 0, inner), _num(pair, 1, inner)
    if low > high:
        raise PlannerError(f"low {low:g} is above high {high:g}", file=ctx.file, field=f"{ctx.field}.claimed")
    return low, high


def check_experts_touched(opts: Mapping, ctx: Ctx) -> Finding:
    model = _model(opts, ctx)
    s = model.spec
    tokens = opts.get("tokens", [1, 64, 4096])
    if not isinstance(tokens, list) or not tokens:
        raise PlannerError("expected a non-empty list of token counts", file=ctx.file, field=f"{ctx.field}.tokens")
    tokens = [_num(dict(enumerate(tokens)), k, replace(ctx, field=f"{ctx.field}.tokens"), integer=True, minimum=1,
                   maximum=10**8) for k in range(len(tokens))]
    ctx.call(f"distinct_experts({s.n_routed_experts}, top-{s.experts_per_token}, tokens {tokens})")
    frac = {t: distinct_experts(s.n_routed_experts, s.n_routed_experts, s.experts_per_token, t) / s.n_routed_experts
            for t in tokens}
    shown = ", ".join(f"{t:,} tokens touch {f:.1%}" for t, f in frac.items())
    every = frac[max(tokens)] > 0.99
    claimed = _flag(opts, "claimed_all", ctx, True)
    return Finding("confirmed" if every == claimed else "wrong", None, f"experts per layer per step: {shown}",
                   f"one step of {max(tokens):,} tokens touches {frac[max(tokens)]:.1%} of each layer's "
                   f"{s.n_routed_experts} experts, so all must be resident (or streamed from host RAM every step)")


def check_api(opts: Mapping, ctx: Ctx) -> Finding:
    from planner.report.api import break_even_table
    from planner.report.plans import Plan

    sc = _scenario(_need(opts, "scenario", ctx), ctx)
    api = require_mapping(_need(opts, "api", ctx), ctx.file, f"{ctx.field}.api")
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


def check_not_checkable(opts: Mapping, ctx: Ctx) -> Finding:
    return Finding("not_checkable", None, "", _text(opts, "reason", ctx))


CHECKS = {"params": check_params, "architecture": check_architecture, "architecture_ratio": check_architecture_ratio,
          "weights_size": check_weights_size, "kv_ratio": check_kv_ratio, "mla_kv_formula": check_mla_kv_formula,
          "fits": check_fits, "min_gpus": check_min_gpus, "offload_fit": check_offload_fit, "speed": check_speed,
          "experts_touched": check_experts_touched, "api_break_even": check_api,
          "not_checkable": check_not_checkable}
