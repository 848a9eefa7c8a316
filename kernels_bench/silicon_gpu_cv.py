"""Leave one GPU out for the silicon calibrations (the `silicon` extra):

    python -m kernels_bench silicon-gpu-cv [--engine vllm] [--json]

Each calibration `kernels_bench import-silicon` writes is fitted on one GPU's tables: curves as fractions of that
GPU's profile peaks, shape surfaces and kernel-configuration factors over the planner's op-record variables. Here the
held-out rows of GPU g's tables (the rows its own import held out: load_rows, HOLDOUT_EVERY, moe_ep_size <= 8) are
timed with GPU h's calibration on g's accelerator profile (g's default table and committed overlay, h's silicon
calibration over them, as a scenario on g would read it), for every other GPU h with a calibration of the same engine,
and reported per table.dtype as median / p90 |predicted / measured - 1|, beside g's own calibration on the same rows.
The question it answers: how far off is a GPU whose tables were never imported, timed with its nearest imported
sibling's fit (Hopper <-> Hopper, Blackwell <-> Blackwell carry best; across generations the kernels differ).
"""

from __future__ import annotations

from pathlib import Path

from kernels_bench.silicon_fit import error_stats, errors
from kernels_bench.silicon_tables import (
    ARCH,
    AUTO_MOE_KERNEL,
    ENGINES,
    SYSTEMS,
    data_root,
    find_compute_scale,
    find_tables,
    load_rows,
    package_version,
)
from planner.base.errors import PlannerError
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import SILICON_DIR, _read, efficiency_for

# the GPUs whose calibrations are committed for every engine (docs/silicon.md)
CV_SYSTEMS = ("h100_sxm", "h200_sxm", "b200_sxm", "gb200")


def _held_out(root: Path, system: str, engine: str) -> list[dict]:
    gpu = SYSTEMS[system]
    tables = find_tables(root, system, engine, None)
    runs = load_rows(tables, gpu, AUTO_MOE_KERNEL.get((engine, ARCH.get(system, ""))), engine, None,
                     find_compute_scale(root, system, engine))
    return [r for r in runs if r["holdout"] and r["fit_shape"]]


def _stats(errs: list[float]) -> dict:
    return {"n": len(errs)} | error_stats(errs)


def gpu_cv(args) -> dict:
    engines = [args.engine] if args.engine else list(ENGINES)
    if any(e not in ENGINES for e in engines):
        raise PlannerError(f"unknown engine {args.engine!r} (known: {', '.join(ENGINES)})", field="--engine")
    root = Path(args.data) if getattr(args, "data", None) else data_root()
    cal_dir = Path(args.calibrations) if getattr(args, "calibrations", None) else SILICON_DIR
    out = {"package": f"aiconfigurator-core {package_version()}", "calibrations": str(cal_dir), "engines": {}}
    for engine in engines:
        cals = {s: cal_dir / f"{SYSTEMS[s]}-{engine}.yaml" for s in CV_SYSTEMS}
        cals = {s: p for s, p in cals.items() if p.is_file() and (root / s).is_dir()}
        if len(cals) < 2:
            continue
        per_gpu = {}
        for system in cals:
            gpu = SYSTEMS[system]
            held = _held_out(root, system, engine)
            acc = load_accelerator(gpu)
            base = efficiency_for(gpu)  # g's default table and committed overlay, under whichever fit is read
            by_fit = {}
            for other, path in cals.items():
                eff = _read(path, base)
                rows: dict[str, list[float]] = {}
                for r, e in zip(held, errors(held, eff, acc), strict=True):
                    rows.setdefault(f"{r['table'].replace('_perf', '')}.{r['dtype']}", []).append(e)
                by_fit[SYSTEMS[other]] = {"all": _stats([x for v in rows.values() for x in v])} | {
                    k: _stats(v) for k, v in sorted(rows.items())}
            per_gpu[gpu] = by_fit
        out["engines"][engine] = per_gpu
    if not out["engines"]:
        raise PlannerError(f"no two GPUs with silicon calibrations and tables among {', '.join(CV_SYSTEMS)}",
                           file=str(cal_dir), field="--engine")
    return out


def markdown(doc: dict) -> str:
    """Rows (engine, GPU, table.dtype); columns: the GPU's own fit, then each other GPU's, median / p90 %."""
    gpus = [SYSTEMS[s] for s in CV_SYSTEMS]
    lines = ["| engine | GPU timed | table.dtype | " + " | ".join(f"fit on {g.removesuffix('-sxm').upper()}"
                                                            for g in gpus) + " |",
             "|---|---|---|" + "---|" * len(gpus)]
    for engine, per_gpu in doc["engines"].items():
        for gpu, by_fit in per_gpu.items():
            keys = sorted({k for f in by_fit.values() for k in f}, key=lambda k: (k != "all", k))
            for key in keys:
                cells = []
                for g in gpus:
                    s = by_fit.get(g, {}).get(key)
                    cell = f"{s['median_abs_error'] * 100:.0f} / {s['p90_abs_error'] * 100:.0f}" if s else ""
                    cells.append(f"**{cell}**" if g == gpu and cell else cell)
                lines.append(f"| {engine} | {gpu.removesuffix('-sxm').upper()} | {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
