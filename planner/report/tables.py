"""Table builders: planner results as pandas DataFrames (SI units inside: bytes, seconds, FLOP).

Each function calls the planner and returns one tidy table; figures (planner.report.figures) and the
writers (HTML, Markdown, CSV) only read these tables.
"""

from __future__ import annotations

import pandas as pd

from planner.base.errors import PlannerError
from planner.hardware.accelerators import load_accelerator
from planner.model.inspect import weights_bytes_by_component, weights_bytes_by_part
from planner.model.inventory import active_params_per_token, params_by_component, params_by_part
from planner.model.kv import kv_layout, mha_equivalent_bytes_per_token
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import Model
from planner.model.quant import load_format
from planner.perf.steps import decode_step
from planner.report.plans import Plan


def params_table(models: list[Model]) -> pd.DataFrame:
    """Parameters per model, part (language / mtp / vision) and component."""
    rows = []
    for m in models:
        for comp, n in params_by_component(m.spec).items():
            rows.append({"model": m.name, "part": "language", "component": comp, "params": n})
        for part, n in params_by_part(m.spec).items():
            if part != "language" and n:
                rows.append({"model": m.name, "part": part, "component": part, "params": n})
    return pd.DataFrame(rows)


def active_table(models: list[Model]) -> pd.DataFrame:
    rows = []
    for m in models:
        parts = params_by_part(m.spec)
        active = active_params_per_token(m.spec)
        rows.append({"model": m.name, "total_params": parts["language"], "active_params_per_token": active,
                     "active_fraction": active / parts["language"], "mtp_params": parts["mtp"],
                     "vision_params": parts["vision"], "native_weights": m.native_weights})
    return pd.DataFrame(rows)


def weights_table(models: list[Model], formats: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Stored bytes per model, format and component (vision and MTP parts as their own components).
    Returns the table and one line per (model, format) the planner could not size."""
    rows, skipped = [], []
    for m in models:
        for name in formats:
            try:
                fmt = load_format(name)
                comps = weights_bytes_by_component(m, fmt)
                parts = weights_bytes_by_part(m, fmt)
            except PlannerError as err:
                skipped.append(f"{m.name} / {name}: {err}")
                continue
            for comp, b in comps.items():
                rows.append({"model": m.name, "format": name, "component": comp, "bytes": b})
            for part in ("mtp", "vision"):
                if parts.get(part):
                    rows.append({"model": m.name, "format": name, "component": part, "bytes": parts[part]})
    return pd.DataFrame(rows, columns=["model", "format", "component", "bytes"]), skipped


def weights_totals(weights: pd.DataFrame) -> pd.DataFrame:
    tot = weights.groupby(["model", "format"], sort=False, as_index=False)["bytes"].sum()
    return tot.rename(columns={"bytes": "weights_bytes"}).sort_values(["model", "weights_bytes"], kind="stable")


def memory_table(plans: list[Plan]) -> pd.DataFrame:
    rows = []
    for p in plans:
        mem, sc = p.result["memory"], p.scenario
        rows.append({"plan": p.name, "gpu": sc.gpu or "cpu only", "gpus": sc.total_gpus, "fits": p.fits,
                     "capacity_bytes_per_gpu": mem["capacity_bytes_per_gpu"],
                     "weights_bytes_per_gpu": mem["weights_bytes_per_gpu"],
                     "kv_cache_bytes_per_gpu": mem["kv_cache_bytes_per_gpu"],
                     "activation_bytes_per_gpu": mem["activation_bytes_per_gpu"],
                     "runtime_bytes_per_gpu": mem["runtime_bytes_per_gpu"],
                     "free_bytes_per_gpu": mem["free_bytes_per_gpu"], "host_bytes": mem["host_bytes"],
                     "kv_tokens_per_gpu": p.result["capacity"]["kv_tokens_per_gpu"],
                     "reason": p.result["reason"]})
    return pd.DataFrame(rows)


def kv_table(models: list[Model], dtypes: list[str], max_context: int | None) -> pd.DataFrame:
    """KV bytes of one sequence (all layers, one copy) vs context: the model's own cache per dtype and the
    MHA-equivalent (every head's K and V stored) for comparison. A sequence holds its tokens' KV (windows capped)
    plus what every request holds whatever its length (linear-attention and compressor state, DeepSeek-V4's
    windows: `bytes_per_request_fixed`); `bytes_per_token` is what one more token adds past every window
    (planner.model.kv_kinds), not the uncapped sum over layers."""
    rows = []
    for m in models:
        top = max_context or m.spec.max_context or 131072
        contexts = [1024 * 2**i for i in range(20) if 1024 * 2**i < top] + [top]
        own = "MLA latent" if m.spec.attention == "mla" else m.spec.attention.upper()
        for dtype in dtypes:
            try:
                layout = kv_layout(m.spec, dtype)
            except PlannerError:
                continue
            kinds = kv_by_kind(m.spec, dtype)
            state = layout.state_bytes_per_request
            mha = mha_equivalent_bytes_per_token(m.spec, "bf16" if dtype == "fp8_ds_mla" else dtype)
            for ctx in contexts:
                rows.append({"model": m.name, "layout": f"{own} {dtype}", "dtype": dtype, "context_tokens": ctx,
                             "bytes_per_sequence": layout.bytes_for_context(ctx) + state,
                             "bytes_per_token": kinds.bytes_per_token,
                             "bytes_per_request_fixed": kinds.bytes_per_request})
                if dtype != "fp8_ds_mla":
                    rows.append({"model": m.name, "layout": f"MHA-equivalent {dtype}", "dtype": dtype,
                                 "context_tokens": ctx, "bytes_per_sequence": mha * ctx, "bytes_per_token": mha,
                                 "bytes_per_request_fixed": 0})
    return pd.DataFrame(rows)


def kv_kinds_table(models: list[Model], dtype: str) -> pd.DataFrame:
    """Per model and attention kind: layers, what a layer keeps, what one more token adds past any window and what a
    request holds whatever its length (planner.model.kv_kinds), all layers of the kind, unsplit."""
    rows = []
    for m in models:
        try:
            kinds = kv_by_kind(m.spec, dtype)
        except PlannerError:
            continue
        rows += [{"model": m.name, "attention_kind": k.attention_kind, "layers": k.layers, "dtype": dtype,
                  "cached": k.cached, "kv_bytes_per_token": k.bytes_per_token,
                  "bytes_per_request_fixed": k.bytes_per_request} for k in kinds.kinds]
    return pd.DataFrame(rows, columns=["model", "attention_kind", "layers", "dtype", "cached", "kv_bytes_per_token",
                                       "bytes_per_request_fixed"])


def layer_kinds_table(models: list[Model]) -> pd.DataFrame:
    """Decoder layers per attention kind and per FFN kind of each model (planner.model.spec.layer_kind_counts)."""
    return pd.DataFrame([{"model": m.name, "part": part, "layer_kind": kind, "layers": n}
                         for m in models for part, counts in m.spec.layer_kind_counts.items()
                         for kind, n in counts.items()], columns=["model", "part", "layer_kind", "layers"])


def curve_table(plans: list[Plan]) -> pd.DataFrame:
    rows = []
    for p in plans:
        for pt in p.result.get("throughput_curve") or []:
            rows.append({"plan": p.name, **pt})
    return pd.DataFrame(rows, columns=["plan", "running_per_group", "tpot_ms", "decode_tokens_per_s_per_gpu",
                                       "output_tokens_per_s_per_user", "bottleneck"])


def plan_metrics_table(plans: list[Plan]) -> pd.DataFrame:
    rows = []
    for p in plans:
        r = p.result
        rows.append({"plan": p.name, "fits": p.fits, **{k: v for k, v in r["metrics"].items()},
                     "decode_bottleneck": r["bottleneck"].get("decode"), "reason": r["reason"]})
    return pd.DataFrame(rows)


def roofline_points(plan: Plan, batches: list[float]) -> pd.DataFrame:
    """Every timed GPU op of one decode step of `plan` at each batch (per GPU), as roofline coordinates."""
    sc = plan.scenario
    wl = sc.workload
    kv_len = wl.mean_kv_len
    rows = []
    for b in batches:
        for t in decode_step(sc, b, kv_len).timed:
            op = t.op
            if op.kind == "comm" or op.where != "gpu" or not op.flops or not op.bytes or not t.seconds:
                continue
            rows.append({"plan": plan.name, "batch_per_gpu": b, "op": op.name, "kind": op.kind, "dtype": op.dtype,
                         "bound": t.bound, "flop": op.flops, "bytes": op.bytes, "seconds": t.seconds,
                         "intensity_flop_per_byte": op.flops / op.bytes, "flop_per_s": op.flops / t.seconds})
    return pd.DataFrame(rows)


def roofline_ceilings(gpu: str) -> pd.DataFrame:
    acc = load_accelerator(gpu)
    rows = [{"gpu": acc.display_name, "ceiling": "memory", "dtype": "", "value": acc.memory_bandwidth_bytes_per_s,
             "unit": "B/s"}]
    for dtype, peak in acc.peak_flops_by_dtype.items():
        if peak and dtype in ("bf16", "fp8", "fp4", "int8"):
            rows.append({"gpu": acc.display_name, "ceiling": "compute", "dtype": dtype, "value": peak,
                         "unit": "FLOP/s"})
    return pd.DataFrame(rows)


def validation_table(report: dict) -> pd.DataFrame:
    rows = [{"case": r["name"], "metric": r["metric"], "measured": r["measured"], "predicted": r["predicted"],
             "error": r["error"], "gpu": r["gpu"], "engine": r["engine"], "lengths from": r.get("dataset") or "",
             "source": r["source"]}
            for r in report["cases"]]
    rows += [{"case": r["name"], "metric": "", "measured": None, "predicted": None, "error": None, "gpu": "",
              "engine": "", "lengths from": "", "source": f"skipped: {r['reason']}"} for r in report["skipped"]]
    return pd.DataFrame(rows)
