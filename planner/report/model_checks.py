"""Claim checks on facts of the model and its checkpoint: parameter counts, architecture, stored weight
bytes and KV cache bytes per token. Each reads its options (see checks.py) and returns a Finding from
inspect_model, kv_layout or mha_equivalent_bytes_per_token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from planner.base.errors import PlannerError, resolve_named
from planner.base.units import gb
from planner.base.yamlio import require_mapping
from planner.hardware.accelerators import load_accelerator
from planner.model.inspect import inspect_model
from planner.model.kv import kv_layout, mha_equivalent_bytes_per_token
from planner.model.quant import load_format
from planner.report.check_inputs import Ctx, name, named_model, need, number
from planner.report.verdict import Finding, compare


def _inspect(opts: Mapping, ctx: Ctx, weights: str | None = None, kv: str = "bf16", key: str = "model") -> tuple[
        Any, dict]:
    """(model, inspect_model's document) for the check's model (or the one its option `key` names)."""
    model = named_model(opts, ctx, key)
    fmt = resolve_named(load_format, weights or model.native_weights, ctx.file, f"{ctx.field}.weights")
    ctx.call(f"inspect_model({model.name}, {fmt.name}, {kv})")
    return model, inspect_model(model, fmt, kv)


def _facts(model: Any, doc: dict) -> dict:
    f = dict(doc["architecture_facts"])
    f["dense_layers"] = f["layers"] - f["moe_layers"]
    f["max_context"] = model.spec.max_context
    return f


def _count(x: float) -> str:
    return f"{x / 1e12:.4g} T" if x >= 1e12 else f"{x / 1e9:.4g} B" if x >= 1e9 else f"{x / 1e6:.4g} M"


def check_params(opts: Mapping, ctx: Ctx) -> Finding:
    _, doc = _inspect(opts, ctx)
    p = doc["params"]
    q = name(opts, "quantity", ctx)
    values = {"total": p["total"], "total_with_vision": p["total"] + p["vision"] + p["mtp"],
              "active_per_token": p["active_per_token"], "active_fraction": p["active_per_token"] / p["total"],
              "vision": p["vision"]}
    if q not in values:
        raise PlannerError(f"unknown quantity {q!r} (known: {', '.join(values)})", file=ctx.file,
                           field=f"{ctx.field}.quantity")
    mine, claimed = values[q], number(opts, "claimed", ctx)
    kind, off = compare(claimed, mine)
    what = q.replace("_", " ")
    if q == "active_fraction":
        shown, said = f"{mine:.2%}", f"{claimed:.1%}"
    else:
        shown, said = f"{_count(mine)} ({mine:,})", _count(claimed)
    return Finding(kind, off, f"{what} {shown}", f"{what}: planner {shown} vs claimed {said}")


def check_architecture(opts: Mapping, ctx: Ctx) -> Finding:
    facts = _facts(*_inspect(opts, ctx))
    claimed = require_mapping(need(opts, "claimed", ctx), ctx.file, f"{ctx.field}.claimed")
    wrong, shown = [], []
    for key, value in claimed.items():
        if key not in facts:
            raise PlannerError(f"unknown fact (known: {', '.join(facts)})", file=ctx.file,
                               field=f"{ctx.field}.claimed.{key}")
        number(claimed, key, replace(ctx, field=f"{ctx.field}.claimed"))
        shown.append(f"{key} {facts[key]}")
        if facts[key] != value:
            wrong.append(f"{key} is {facts[key]}, not {value}")
    kind = "wrong" if wrong else "confirmed"
    return Finding(kind, None, ", ".join(shown), "; ".join(wrong) or f"config.json gives {', '.join(shown)}")


def check_architecture_ratio(opts: Mapping, ctx: Ctx) -> Finding:
    mine = _facts(*_inspect(opts, ctx))
    other = _facts(*_inspect(opts, ctx, key="versus"))
    fact = name(opts, "fact", ctx)
    if fact not in mine or not other.get(fact):
        raise PlannerError(f"unknown fact {fact!r}", file=ctx.file, field=f"{ctx.field}.fact")
    ratio = mine[fact] / other[fact]
    kind, off = compare(number(opts, "claimed", ctx), ratio)
    return Finding(kind, off, f"{fact} {mine[fact]} vs {other[fact]} = {ratio:.3g}x",
                   f"{fact}: {mine[fact]} vs {opts['versus']}'s {other[fact]} is {ratio:.3g}x")


def check_weights_size(opts: Mapping, ctx: Ctx) -> Finding:
    weights = name(opts, "weights", ctx)
    _, doc = _inspect(opts, ctx, weights)
    mine, claimed = doc["weights_bytes"], number(opts, "claimed_bytes", ctx)
    kind, off = compare(claimed, mine)
    return Finding(kind, off, f"{weights} {gb(mine)}", f"{weights} stores {gb(mine)} "
                   f"({mine:,} B), claimed {gb(claimed, 0)}")


def check_kv_ratio(opts: Mapping, ctx: Ctx) -> Finding:
    dtype = name(opts, "dtype", ctx, "bf16")
    model = named_model(opts, ctx)
    ctx.call(f"kv_layout({model.name}, {dtype})")
    ctx.call(f"mha_equivalent_bytes_per_token({model.name}, {dtype})")
    own = resolve_named(lambda d: kv_layout(model.spec, d), dtype, ctx.file, f"{ctx.field}.dtype")
    own = own.bytes_per_token_full
    mha = mha_equivalent_bytes_per_token(model.spec, dtype)
    ratio = mha / own
    kind, off = compare(number(opts, "claimed", ctx), ratio)
    ctx_len = model.spec.max_context or 131072
    return Finding(kind, off, f"{ratio:.1f}x ({own:,} vs {mha:,} B/token, {dtype})",
                   f"{model.spec.attention.upper()} {dtype} keeps {own:,} B/token vs {mha:,} MHA-equivalent: "
                   f"{ratio:.1f}x; one {ctx_len:,}-token sequence needs {gb(own * ctx_len)} instead of "
                   f"{gb(mha * ctx_len)}")


def check_mla_kv_formula(opts: Mapping, ctx: Ctx) -> Finding:
    dtype = name(opts, "dtype", ctx, "bf16")
    copies = number(opts, "latent_copies", ctx, 2, integer=True, minimum=1, maximum=16)
    model = named_model(opts, ctx)
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


def check_training_compute(opts: Mapping, ctx: Ctx) -> Finding:
    """What a claimed pre-training token count implies: 6 x active parameters x tokens FLOP (the forward and backward
    GEMMs per token, Kaplan et al. 2020; attention over the context and MTP heads not counted, so a floor), and
    GPU-hours on each GPU at the model FLOP utilization (MFU) a published run reached: `reference` {active, tokens,
    gpu_hours, gpu, source} gives MFU = 6 x active x tokens / (GPU-hours x 3600 x the GPU's dense BF16 peak). The
    token count and the optimizer themselves cannot be checked: the verdict stays "not checkable", with the compute."""
    model, doc = _inspect(opts, ctx)
    active, tokens = doc["params"]["active_per_token"], number(opts, "tokens", ctx, minimum=1)
    ref = require_mapping(need(opts, "reference", ctx), ctx.file, f"{ctx.field}.reference")
    at = f"{ctx.field}.reference"
    sub = Ctx(ctx.model, ctx.workloads, ctx.file, at)
    ref_gpu = resolve_named(load_accelerator, name(ref, "gpu", sub), ctx.file, f"{at}.gpu")
    ref_flop = 6 * number(ref, "active", sub, minimum=1) * number(ref, "tokens", sub, minimum=1)
    mfu = ref_flop / (number(ref, "gpu_hours", sub, minimum=1) * 3600 * ref_gpu.peak_flops("bf16"))
    flop = 6 * active * tokens
    by_hours: dict[float, list[str]] = {}  # GPUs with the same BF16 peak need the same GPU-hours
    for k, g in enumerate(need(opts, "gpus", ctx)):
        acc = resolve_named(load_accelerator, g, ctx.file, f"{ctx.field}.gpus[{k}]")
        by_hours.setdefault(flop / (mfu * acc.peak_flops("bf16")) / 3600, []).append(acc.display_name)
    ctx.call(f"6 x active {_count(active)} x {_count(tokens)} tokens; MFU {mfu:.1%} from {name(ref, 'source', sub)}")
    planner = f"{flop:.3g} FLOP: " + "; ".join(
        f"{h / 1e6:,.2f}M GPU-hours ({h / 24:,.0f} GPU-days, {h / 24 / 2048:,.0f} days on 2,048) on {' / '.join(g)}"
        for h, g in by_hours.items()) + f" at {mfu:.1%} MFU"
    reason = (f"the token count and optimizer cannot be checked; {_count(tokens)} tokens x {_count(active)} active "
              f"parameters imply {planner} (the MFU {ref_gpu.display_name} reached in {name(ref, 'source', sub)}; "
              f"6ND counts no attention FLOP, so a floor)")
    return Finding("not_checkable", None, planner, reason)
