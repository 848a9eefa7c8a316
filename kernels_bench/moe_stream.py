"""`python -m kernels_bench fit-moe-stream --engine vllm`: the fit behind an engine profile's `fused_moe_stream`
(profiles/engines/vllm.yaml), reproducible from aiconfigurator-core's MoE tables (the `silicon` extra).

An engine's fused-MoE kernel streams its experts' weight bytes after a fixed latency per call, so a memory-bound
call takes t = a + bytes / (HBM x f) instead of the default table's max(bytes / (HBM x 0.60), per-kernel floor).
Per row of `<system>/moe/<engine>/<version>/moe_perf.parquet` (balanced routing, hidden >= 4,096, <= 512 tokens, at
most 8 GPUs, the dtypes of DTYPES), the planner's own op records for the same shapes (kernels_bench.silicon.moe_ops)
give the expert bytes x (divided by the GPU's HBM bandwidth), their compute time t_c at the default curves, and the
permute/activation pass, which is subtracted from the measured latency: y = measured - permute. Rows the planner
itself calls memory-bound (t_c < 0.7 x / 0.9) fit a and 1/f by least squares on relative error (each row weighted by
1/y, so small calls count as much as large ones). The model is then checked on every row as
max(t_c, a + x / f) + permute: in sample, leave-one-GPU-out (the fit without that GPU's rows), and beside the
current model (the default table's time of the same op records).

W4A16 (int4_wo, Marlin) rows are left out (dequantization-bound: profiles/calibration/<gpu>.yaml carries their own
curve), and so are per-tensor fp8 rows on Hopper (a different kernel path from block fp8). Up to SAMPLE rows per
GPU (a fixed seed) keep the run to about a minute on two cores.
"""

from __future__ import annotations

from pathlib import Path

from kernels_bench.silicon import (
    MOE_DTYPES,
    SYSTEMS,
    _moe_scenario,
    _versions,
    data_root,
    moe_ops,
    package_version,
)
from planner.base.errors import PlannerError
from planner.perf.roofline import gpu_compute_seconds, time_op
from planner.perf.steps import machine

# the aiconfigurator systems whose MoE tables the vLLM fit used (accelerator profiles: kernels_bench.silicon.SYSTEMS)
FIT_SYSTEMS = ("h100_sxm", "h200_sxm", "b200_sxm", "b300_sxm", "gb200", "gb300")
DTYPES = ("bfloat16", "fp8_block", "fp8", "nvfp4")
HOPPER = ("h100-sxm", "h200-sxm")
SAMPLE = 1500
MEMORY_BOUND = 0.7  # t_c below this share of x / 0.9: the row is memory-bound by the planner's own compute model


def _rows(root: Path, engine: str, version: str | None) -> list[dict]:
    import pandas as pd

    out = []
    for system in FIT_SYSTEMS:
        gpu = SYSTEMS[system]
        folder = root / system / "moe" / engine
        versions = [version] if version else _versions(folder)[-1:]
        paths = [folder / v / "moe_perf.parquet" for v in versions if (folder / v / "moe_perf.parquet").is_file()]
        if not paths:
            continue
        d = pd.read_parquet(paths[0])
        d = d[(d.distribution == "balanced") & (d.hidden_size >= 4096) & d.moe_dtype.isin(DTYPES)
              & (d.num_tokens <= 512) & (d.moe_tp_size * d.moe_ep_size <= 8)]
        if gpu in HOPPER:
            d = d[d.moe_dtype != "fp8"]
        if len(d) > SAMPLE:
            d = d.sample(SAMPLE, random_state=0)
        for r in d.itertuples(index=False):
            ops = moe_ops(r, gpu)
            sc = _moe_scenario(gpu, MOE_DTYPES[r.moe_dtype][0], r.hidden_size, r.inter_size, r.topk, r.num_experts,
                               r.moe_tp_size, r.moe_ep_size)
            m = machine(sc)
            ex = next(o for o in ops if o.name == "moe.experts")
            perm = sum(time_op(o, m).seconds for o in ops if o.name != "moe.experts")
            out.append({"gpu": gpu, "version": paths[0].parent.name, "dtype": r.moe_dtype, "meas": r.latency * 1e-3,
                        "perm": perm, "t_c": gpu_compute_seconds(ex, m),
                        "x": ex.bytes / m.acc.memory_bandwidth_bytes_per_s, "old": time_op(ex, m).seconds + perm})
    if not out:
        raise PlannerError(f"no {engine} MoE tables" + (f" of version {version}" if version else "")
                           + f" for {', '.join(FIT_SYSTEMS)}", file=str(root), field="--engine")
    return out


def fit_stream(rows: list[dict]) -> tuple[float, float]:
    """(a seconds, f) minimising sum((a + x / f) / y - 1)^2 over the memory-bound rows."""
    import numpy as np

    mb = [r for r in rows if r["t_c"] < MEMORY_BOUND * r["x"] / 0.9 and r["meas"] > r["perm"]]
    if len(mb) < 2:
        raise PlannerError(f"{len(mb)} memory-bound rows: too few to fit", field="--engine")
    y = np.array([r["meas"] - r["perm"] for r in mb])
    a_cols = np.c_[np.ones(len(mb)), [r["x"] for r in mb]] / y[:, None]
    (a, inv_f), *_ = np.linalg.lstsq(a_cols, np.ones(len(mb)), rcond=None)
    return float(a), float(1 / inv_f)


def _errors(rows: list[dict], a: float, f: float) -> list[float]:
    return [(max(r["t_c"], a + r["x"] / f) + r["perm"]) / r["meas"] - 1 for r in rows]


def _stats(errs: list[float]) -> dict:
    import numpy as np

    e = np.abs(np.array(errs))
    return {"n": int(e.size), "median_abs_error": float(np.median(e)), "p90_abs_error": float(np.quantile(e, 0.9))}


def fit_moe_stream(args) -> dict:
    root = Path(args.data) if args.data else data_root()
    rows = _rows(root, args.engine, args.version)
    a, f = fit_stream(rows)
    by_gpu = {}
    held_out = []
    for gpu in sorted({r["gpu"] for r in rows}):
        a2, f2 = fit_stream([r for r in rows if r["gpu"] != gpu]) if len({r["gpu"] for r in rows}) > 1 else (a, f)
        mine = [r for r in rows if r["gpu"] == gpu]
        errs = _errors(mine, a2, f2)
        held_out += errs
        by_gpu[gpu] = {"version": mine[0]["version"], "leave_out_latency_us": a2 * 1e6, "leave_out_fraction": f2,
                       "held_out": _stats(errs), "in_sample": _stats(_errors(mine, a, f)),
                       "current": _stats([r["old"] / r["meas"] - 1 for r in mine])}
    return {"engine": args.engine, "package": f"aiconfigurator-core {package_version()}",
            "latency_s": a, "memory_fraction": f, "in_sample": _stats(_errors(rows, a, f)),
            "leave_one_gpu_out": _stats(held_out), "current": _stats([r["old"] / r["meas"] - 1 for r in rows]),
            "by_gpu": by_gpu,
            "profile": f"fused_moe_stream: {{latency_s: {a:.3g}, memory_fraction: {f:.3f}}} "
                       f"(profiles/engines/{args.engine}.yaml; written by hand, with this command as its source)"}


def text(doc: dict) -> str:
    def pct(s: dict) -> str:
        return f"{s['median_abs_error']:.1%} / {s['p90_abs_error']:.1%} (n {s['n']:,})"

    lines = [f"{doc['engine']} fused-MoE streaming ({doc['package']}): {doc['latency_s'] * 1e6:.1f} us + bytes / "
             f"(HBM x {doc['memory_fraction']:.3f})",
             f"  median / p90 |error|: in sample {pct(doc['in_sample'])}; leave one GPU out "
             f"{pct(doc['leave_one_gpu_out'])}; current model {pct(doc['current'])}"]
    for gpu, g in doc["by_gpu"].items():
        lines.append(f"  {gpu:9} {g['version']:>8}: held out {pct(g['held_out'])} (fit without it "
                     f"{g['leave_out_latency_us']:.1f} us, {g['leave_out_fraction']:.3f}); current {pct(g['current'])}")
    lines.append(f"  {doc['profile']}")
    return "\n".join(lines)
