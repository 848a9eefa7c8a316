"""Silicon op tables as a calibration: NVIDIA aiconfigurator-core's measured per-op latencies -> efficiency curves.

    python -m kernels_bench import-silicon --system h200_sxm --engine sglang [--version V] [--json]

aiconfigurator-core (PyPI, Apache-2.0; the `silicon` extra) ships per-op latencies measured on each GPU under
`aiconfigurator_core/systems/data/<system>/<op>/<engine>/<version>/*.parquet` (latency in ms) with a
`collection_meta.yaml` each. This module reads four of them and expresses every row as the planner's own op record
for the same shapes (STYLE.md habit 8: FLOP and bytes come from planner.perf.ops, never from here):
- gemm_perf (m, n, k, gemm_dtype): planner.perf.ops._gemm with the weight bytes of planner.model.quant's storage type;
- moe_perf (num_tokens, hidden_size, inter_size, topk, num_experts, moe_tp_size, moe_ep_size, moe_dtype), rows with
  `balanced` routing: planner.perf.ops.step_ops of a scenario whose routed experts have that shape (Kimi K2.5's spec
  with the row's widths swapped in), num_tokens the MoE group's tokens (aiconfigurator queries num_tokens x
  attention-DP size), moe_tp x moe_ep GPUs, ops moe.experts + moe.permute_act, routed as the table routed them
  (step_ops(balanced=True): round-robin, min(E, k T) experts touched and every EP rank as busy, where the planner's
  served steps route uniformly at random and time the busiest rank);
- generation_mla / context_mla (num_heads per GPU, batch_size, isl, step = tokens already cached, tp_size): the
  attn.mla_decode / attn.mla_prefill record of planner.perf.steps.decode_ops / prefill_ops for DeepSeek-V3 (128
  heads) or Kimi K2.5 (64 heads) at that TP.
Fit (kernels_bench.calibrate.fit, the planner's roofline as the model): per op kind the reference dtype's rows fit
compute, memory and floor; each other dtype's rows then fit its own compute curve (`compute_by_dtype`; int4_wo,
the W4A16 kernels Kimi K2.5's INT4 experts run, as `int4`). Then kernels_bench/silicon_fit.py fits per op kind and
compute dtype a shape surface (`shape_by_dtype`: the speed factor over the curves on a grid of op-record variables,
GEMM m x width x depth, MoE rows per expert x touched experts' width x depth, MLA decode heads x bytes x context,
MLA prefill tokens x heads-context), and per MoE kernel configuration the table ran (expert shape, expert TP, EP:
Op.config) a factor curve over m on top of it (`config_by_dtype`, silicon_fit.fit_configs), both read by
planner.hardware.efficiency (OpEfficiency.shape_for) and applied by the roofline to every scenario on that GPU and
engine (engine_options.kernel_tables auto, the default). Every HOLDOUT_EVERY-th distinct shape is held out;
the file written is the fit without them, so the held-out median and p90 |predicted/measured - 1| it reports are its
own, beside the curves' alone, the default table's (profiles/calibration/default.yaml) on the same rows, and
leave-model-shape-out cross-validation. Refusals as calibrate's (kernels_bench/calibration_guard.py). Writes
profiles/calibration/silicon/<gpu>-<engine>.yaml, or with --version <gpu>-<engine>@<version>.yaml
(planner.base.outputs).
The engine's all-reduce table (comm/<engine>/<version>/custom_allreduce_perf.parquet), when there is one, is
written as measured under `comm.allreduce_by_gpus` (kernels_bench/silicon_comm.py), with its leave-one-size-out error.
The tables' side (which systems, versions, rows and kernels are read, and each row as the planner's op records) is
kernels_bench/silicon_tables.py.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import yaml

from kernels_bench import silicon_comm, silicon_fit
from kernels_bench.calibrate import _pct, _rel, _yaml_curve, fit
from kernels_bench.calibration_guard import HEADER, check_fit, write_calibration
from kernels_bench.silicon_fit import error_stats, measured_op
from kernels_bench.silicon_tables import (  # noqa: F401  (the table side, re-exported for kernels_bench's callers)
    ARCH,
    AUTO_MOE_KERNEL,
    ENGINES,
    HOLDOUT_EVERY,
    MOE_DTYPES,
    SYSTEMS,
    _moe_scenario,
    _versions,
    data_root,
    find_compute_scale,
    find_tables,
    gemm_ops,
    load_rows,
    mla_ops,
    moe_ops,
    package_version,
    read_table,
)
from planner.base.errors import PlannerError
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import SILICON_DIR, Efficiency, efficiency_for, forget_tables

# MXFP4 rows fit their surface only, never a curve: over the curves the table's plain dtypes fit, or the default
# table's where it has none (curves fitted from w4a8_mxfp4_mxfp8 rows alone would time DeepSeek's FP8 / NVFP4 experts
# as gpt-oss's kernel runs)
CURVELESS = ("w4a16_mxfp4", "w4a8_mxfp4_mxfp8")
# the dtype whose rows fit a kind's compute, memory and floor; attention kinds fit on their BF16-KV rows only (the
# planner has one attention curve per GPU; FP8-KV rows are held out and reported against it)
REFERENCE = {"gemm": ("bfloat16",), "grouped_gemm": ("fp8_block", "fp8", "bfloat16"),
             "attention_decode": ("bfloat16",), "attention_prefill": ("bfloat16",)}
PER_DTYPE = ("gemm", "grouped_gemm")  # kinds whose other dtypes get their own compute curve
CURVE_ROWS = 240  # of which the curves' pattern search fits at most this many (it re-times every row per trial)


# ---------------------------------------------------------------- fit, report, write

_errors = silicon_fit.errors


def fit_silicon(runs: list[dict], acc) -> tuple[Efficiency, dict[str, list[str]], dict]:
    """Per kind: the reference dtype's training rows (at most CURVE_ROWS) fit compute, memory and floor; each other
    dtype's rows then fit its own compute curve; then every (kind, compute dtype) gets its shape surface from all
    training rows of the table dtype that fitted its curve (kernels_bench/silicon_fit.py). Returns the table, per
    kind the dtype curves fitted, and {(kind, compute dtype): table dtype} of the surfaces."""
    eff = efficiency_for(None)
    by_kind: dict[str, dict[str, list]] = {}
    for r in runs:
        if not r["holdout"]:
            by_kind.setdefault(measured_op(r).kind, {}).setdefault(r["dtype"], []).append(r)
    train = {k: {d: _every_run([r for r in rs if silicon_fit.device_bound(r)], CURVE_ROWS) for d, rs in g.items()}
             for k, g in by_kind.items()}
    sources: dict[tuple[str, str], str] = {}
    fitted: dict[str, list[str]] = {}
    for kind, groups in sorted(by_kind.items()):
        # fp8_block first for the `fp8` curve, unless its rows are mostly at an eager host floor and another FP8
        # table has more rows that time the kernel (vLLM's block-FP8 GEMM beside its graph-timed per-tensor one)
        order = [d for d in REFERENCE.get(kind, ()) if d in groups] + sorted(
            (d for d in groups if d not in REFERENCE.get(kind, ()) and d not in CURVELESS),
            key=lambda d: (-len(train[kind][d]), d != "fp8_block", d))
        if not order:  # variant rows only (CURVELESS): their surfaces over the default curves, below
            fitted[kind] = []
            continue
        ref = order[0]
        eff = fit(train[kind][ref], eff, acc, only=(kind,))
        sources[(kind, _key(groups[ref][0]))] = ref
        if kind not in PER_DTYPE:
            fitted[kind] = []
            continue
        key = _key(groups[ref][0])
        e = eff.ops[kind]
        eff = replace(eff, ops={**eff.ops, kind: replace(e, compute_by_dtype=tuple(sorted(
            (dict(e.compute_by_dtype) | {key: e.compute}).items())))})
        done = [key]
        for d in order[1:]:
            key = _key(groups[d][0])
            if key not in done and train[kind][d]:
                eff = fit(train[kind][d], eff, acc, only=(kind,), dtype=key)
                # the key's own surface comes from the dtype's reference rows (not a variant's, SURFACE)
                sources[(kind, key)] = next((x for x in order if _key(groups[x][0]) == key
                                             and not groups[x][0]["surface"]), d)
                done.append(key)
        fitted[kind] = sorted(done)
    for kind, groups in by_kind.items():  # variant surfaces (SURFACE): from their own table dtype's rows
        for d, rs in groups.items():
            if rs[0]["surface"]:
                sources.setdefault((kind, rs[0]["surface"]), d)
    eff = silicon_fit.fit_surfaces(runs_train(runs), eff, acc, sources)
    return silicon_fit.fit_configs(runs_train(runs), eff, acc), fitted, sources


def runs_train(runs: list[dict]) -> list[dict]:
    return [r for r in runs if not r["holdout"]]


def _every_run(rows: list, n: int) -> list:
    return rows if len(rows) <= n else [rows[round(i * (len(rows) - 1) / (n - 1))] for i in range(n)]


def _key(run: dict) -> str:
    return measured_op(run).dtype


def _summary(runs: list[dict], eff: Efficiency, acc, sources: dict) -> dict:
    """Per table.dtype: held-out |error| with the surfaces, with the curves alone, with the default table, and of
    leave-model-shape-out cross-validation; MoE rows beyond MAX_SHAPE_EP (outside the surfaces' fit) apart."""
    out = {}
    default = efficiency_for(None)
    curves = replace(eff, ops={k: replace(e, shape_by_dtype=(), config_by_dtype=()) for k, e in eff.ops.items()})
    cv = silicon_fit.cv_model_shapes(runs, eff, acc, sources)
    for (table, dtype) in sorted({(r["table"], r["dtype"]) for r in runs}):
        rows = [r for r in runs if r["table"] == table and r["dtype"] == dtype]
        held = [r for r in rows if r["holdout"] and r["fit_shape"]]
        wide = [r for r in rows if r["holdout"] and not r["fit_shape"]]
        entry = {"n_fit": sum(not r["holdout"] for r in rows), "n_holdout": len(held)}
        entry |= error_stats(_errors(held, eff, acc), "holdout_") | error_stats(_errors(held, curves, acc), "curves_")
        entry |= error_stats(_errors(held, default, acc), "default_")
        if cv.get(f"{table}.{dtype}"):
            entry |= {"n_cv_model_shapes": len({r["model"] for r in rows})} | error_stats(cv[f"{table}.{dtype}"], "cv_")
        if wide:
            entry |= {"n_holdout_wide_ep": len(wide)} | error_stats(_errors(wide, eff, acc), "wide_ep_")
        if any(r.get("host_floor_s") for r in rows):  # eager-timed: the floors, and the rows above them apart
            bound = [r for r in held if silicon_fit.device_bound(r)]
            entry |= {"host_floor_s": {k: float(f"{f:.3g}") for k, f in sorted(
                {r["kernel"]: r["host_floor_s"] for r in rows}.items())}, "n_holdout_device_bound": len(bound)}
            entry |= error_stats(_errors(bound, eff, acc), "device_bound_")
        out[f"{table}.{dtype}"] = entry
    return out


def import_silicon(args) -> dict:
    if args.system not in SYSTEMS:
        raise PlannerError(f"unknown system {args.system!r} (known: {', '.join(SYSTEMS)})", field="--system")
    if args.engine not in ENGINES:
        raise PlannerError(f"unknown engine {args.engine!r} (known: {', '.join(ENGINES)})", field="--engine")
    root = Path(args.data) if getattr(args, "data", None) else data_root()
    gpu = SYSTEMS[args.system]
    acc = load_accelerator(gpu)
    tables = find_tables(root, args.system, args.engine, args.version)
    t0 = time.time()
    left_out: dict[str, str] = {}
    scale_table = find_compute_scale(root, args.system, args.engine)
    runs = load_rows(tables, gpu, AUTO_MOE_KERNEL.get((args.engine, ARCH.get(args.system, ""))), args.engine,
                     left_out, scale_table)
    if len([r for r in runs if r["holdout"]]) < 2:
        raise PlannerError(f"{len(runs)} usable rows in {sorted(tables)}: too few to hold any out", field="--system")
    eff, fitted, sources = fit_silicon(runs, acc)
    held = [r for r in runs if r["holdout"] and r["fit_shape"]]
    errs = _errors(held, eff, acc)
    kinds = sorted(fitted)
    check_fit(eff, kinds, _pct(errs, 0.5), f"{args.system} {args.engine}", _Where(root))
    per_table = _summary(runs, eff, acc, sources)
    # --version: that collection alone, beside the default import (engine_options.kernel_tables_version picks it)
    name = f"{gpu}-{args.engine}" + (f"@{args.version}" if args.version else "")
    out_dir = Path(args.out) if getattr(args, "out", None) else SILICON_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    ops_doc = {}
    for kind in kinds:
        e = eff.ops[kind]
        entry = {"compute": _yaml_curve(e.compute), "memory": _yaml_curve(e.memory),
                 "floor_s": float(f"{e.floor_s:.3g}")}
        by = {d: _yaml_curve(c) for d, c in e.compute_by_dtype if d in fitted[kind]}
        if by:
            entry["compute_by_dtype"] = by
        shapes = {d: {"axes": list(sf.axes), "knots": [list(k) for k in sf.knots], "factors": list(sf.factors)}
                  for d, sf in e.shape_by_dtype}
        if shapes:
            entry["shape_by_dtype"] = shapes
        configs: dict[str, list] = {}
        for d, config, curve in e.config_by_dtype:
            configs.setdefault(d, []).append({"config": list(config), "factor": [
                [int(m) if float(m).is_integer() else m, f] for m, f in curve.points]})
        if configs:
            entry["config_by_dtype"] = configs
        entry["n"] = sum(measured_op(r).kind == kind for r in runs)
        ops_doc[kind] = entry
    allreduce_path, allreduce = silicon_comm.find_allreduce(root, args.system, args.engine, args.version) or (None, {})
    if allreduce:
        per_table[f"{silicon_comm.TABLE}.bfloat16"] = silicon_comm.summary(allreduce, gpu)
    static = [r for r in runs if r["static_s"] > 0]  # per-tensor FP8 rows served with a static scale (STATIC_SCALED)
    # per table the newest version whose rows were taken, and a table.dtype whose rows came from an older one
    used = {(r["table"], r["version"]) for r in runs}
    versions = {t: next((p.parent.name for p in ps if (t, p.parent.name) in used), ps[0].parent.name)
                for t, ps in tables.items()}
    versions |= {f"{r['table']}.{r['dtype']}": r["version"] for r in runs if r["version"] != versions[r["table"]]}
    if allreduce:
        versions[silicon_comm.TABLE] = allreduce_path.parent.name
    doc = {
        "device": name,
        "source": f"aiconfigurator-core {package_version()} silicon tables ({args.system}, {args.engine} "
                  f"{', '.join(sorted(set(versions.values())))}): "
                  + "; ".join(f"systems/data/{_under(p, root)}" for t, ps in sorted(tables.items()) for p in ps
                              if (t, p.parent.name) in used)
                + (f"; systems/data/{_under(scale_table, root)}" if static else "")
                + (f"; systems/data/{_under(allreduce_path, root)}" if allreduce else ""),
        "ops": ops_doc,
        **({"comm": silicon_comm.comm_doc(allreduce)} if allreduce else {}),
        "fit": {"method": "curves: pattern search on mean |log(predicted/measured)|, planner.perf.roofline.time_op as "
                          "the model (kernels_bench/silicon.py); shape_by_dtype: reweighted least squares of "
                          "log(t_curves/t_measured) on a grid of op-record variables (kernels_bench/silicon_fit.py); "
                          "comm.allreduce_by_gpus: the engine's graph-replayed all-reduce table as measured "
                          "(kernels_bench/silicon_comm.py)",
                "package": f"aiconfigurator-core {package_version()}", "system": args.system, "engine": args.engine,
                "engine_versions": versions, "holdout": f"every {HOLDOUT_EVERY}th distinct shape per table and dtype",
                "n_fit": len(runs_train(runs)), "n_holdout": len(held),
                "holdout_median_abs_error": round(_pct(errs, 0.5), 4),
                "holdout_p90_abs_error": round(_pct(errs, 0.9), 4),
                "default_holdout_median_abs_error": round(_pct(_errors(held, efficiency_for(None), acc), 0.5), 4),
                "tables": per_table, "left_out": dict(sorted(left_out.items())),
                **({"static_fp8": _static_note(static, scale_table, root)} if static else {}),
                "seconds": round(time.time() - t0, 1)},
    }
    header = (f"{HEADER} import-silicon` (kernels_bench/silicon.py): NVIDIA aiconfigurator-core's measured op\n"
              f"# latencies on {args.system} with {args.engine}, fitted as fractions of profiles/hardware/{gpu}.yaml "
              "peaks; curves\n# [[m, fraction], ...] over GEMM rows m as in default.yaml. int4 = W4A16 (int4_wo). "
              "shape_by_dtype:"
              "\n# speed factors on a grid of op-record variables (planner.hardware.efficiency.Surface), the roofline"
              "\n# time divided by them.\n")
    write_calibration(path, header + yaml.safe_dump(doc, sort_keys=False, width=120, default_flow_style=None))
    forget_tables()
    return {"device": name, "file": _rel(path), "n_fit": doc["fit"]["n_fit"], "n_holdout": len(held),
            "holdout_median_abs_error": doc["fit"]["holdout_median_abs_error"],
            "holdout_p90_abs_error": doc["fit"]["holdout_p90_abs_error"],
            "default_holdout_median_abs_error": doc["fit"]["default_holdout_median_abs_error"],
            "tables": per_table, "left_out": doc["fit"]["left_out"], "package": doc["fit"]["package"],
            "engine_versions": versions}


def _static_note(static: list[dict], table: Path, root: Path) -> dict:
    """What the calibration file says of the per-tensor FP8 rows it took the dynamic-scaling cost off."""
    off = [r["static_s"] for r in static]
    return {"rows": len(static), "table": f"systems/data/{_under(table, root)}",
            "median_taken_off_us": round(_pct(off, 0.5) * 1e6, 2), "max_taken_off_us": round(max(off) * 1e6, 2),
            "why": "rows timed with dynamic activation scaling, served with ModelOpt's static input_scale "
                   "(kernels_bench/silicon_tables.py STATIC_SCALED)"}


def _under(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class _Where:
    """What check_fit names in its refusals (calibrate passes its Store)."""

    def __init__(self, path: Path):
        self.path = path
