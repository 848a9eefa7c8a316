"""Shape surfaces for silicon calibrations: the factor by which measured kernels beat (> 1) or miss the speed the
fitted one-variable curves give, on a grid of shape variables read off the planner's op records.

kernels_bench/silicon.py fits each op kind's curves over GEMM rows m first (pattern search through
planner.perf.roofline.time_op); this module then fits, per op kind and compute dtype, a
planner.hardware.efficiency.Surface over SHAPE (variables from planner.hardware.efficiency.shape_axis, never
recomputed here): a row's target is log(t_curves / t_measured) for the op it measures (the other ops of the row, such
as a MoE row's permute/SwiGLU kernels, keep the curves' time), and the grid's log-factors solve a least-squares problem
with a second-difference penalty along each axis (cells without rows follow their neighbours) and iteratively
reweighted toward mean |error| (a few wild rows do not bend the surface). Cross-validation: every model shape's rows
are predicted by surfaces fitted without that shape (grouped folds); leave one GPU out (each GPU's held-out rows
timed with every other GPU's calibration of the same engine) is kernels_bench/silicon_gpu_cv.py.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from kernels_bench import plan
from kernels_bench.calibrate import _pct
from planner.hardware.efficiency import Curve, Efficiency
from planner.hardware.surface import Surface, shape_axis
from planner.perf.roofline import time_op

# shape variables per op kind (planner.hardware.efficiency.SHAPE_AXES) and knots per variable
SHAPE = {"gemm": ("m", "width", "depth"), "grouped_gemm": ("m", "width", "depth"),
         "attention_decode": ("m", "bytes", "context"), "attention_prefill": ("m", "width")}
KNOTS = {"m": 8, "width": 5, "depth": 5, "bytes": 6, "context": 6}
SMOOTH = 0.3  # weight of the second-difference penalty (log-factor per knot step)
RIDGE = 1e-3  # pull of each log-factor toward 0 (no correction), for cells far from every row
FACTOR_LO, FACTOR_HI = 0.02, 50.0
CV_FOLDS = 5
# an eager-timed row (kernels_bench/silicon.py EAGER_TIMED) times its kernel only this far above its host floor: the
# floor's spread (B200 vLLM block-FP8: 13% standard deviation) is noise below it
DEVICE_BOUND = 2.0
FLOOR_ONLY_RIDGE = 1.0  # pull toward no correction of the surface cells only floor-bound rows reach
FLOOR_BAND = 2.0  # the floor: median of the training rows of one kernel within this factor of their 10th percentile
# per kernel configuration (fit_configs): rows needed, running-median width along m, knots kept
CONFIG_MIN, CONFIG_SMOOTH, CONFIG_KNOTS = 3, 3, 12


def host_floors(runs: list[dict]) -> list[dict]:
    """Each eager-timed run (`eager`) with `host_floor_s`: per (table, dtype, kernel), the median measured time of
    its training rows within FLOOR_BAND of their 10th percentile (the dispatch time every call pays when launched
    from the host); other runs unchanged."""
    groups: dict[tuple, list[float]] = {}
    for r in runs:
        if r.get("eager") and not r["holdout"]:
            groups.setdefault((r["table"], r["dtype"], r["kernel"]), []).append(r["measured_s"])
    floors = {}
    for key, times in groups.items():
        t = np.sort(np.asarray(times))
        low = t[t <= FLOOR_BAND * t[int(0.1 * (len(t) - 1))]]
        floors[key] = float(np.median(low))
    for r in runs:
        if r.get("eager") and (f := floors.get((r["table"], r["dtype"], r["kernel"]))):
            r["host_floor_s"] = f
    return runs


def device_bound(run: dict) -> bool:
    """Whether a row's time is its kernel's: not eager-timed, or DEVICE_BOUND times its host floor or more."""
    return run["measured_s"] >= DEVICE_BOUND * run.get("host_floor_s", 0.0)


def predict(run: dict, eff: Efficiency, acc) -> float:
    """The planner's time for a row: its ops' roofline times, each over its kind's shape factor (time_op applies
    the surfaces of `eff`), at least the row's host floor where it was timed eagerly (host_floors)."""
    if run.get("surface"):  # a kernel variant's rows: its own surface in place of its dtype's, as the planner does
        eff = eff.with_surfaces(((run["surface"], measured_op(run).dtype),))
    m = plan.machine(acc, eff)
    return max(sum(time_op(op, m).seconds for op in run["ops"]), run.get("host_floor_s", 0.0))


def surface_of(run: dict) -> tuple[str, str]:
    """(op kind, surface key) of the op a row measures: its table's variant surface, else its compute dtype."""
    op = measured_op(run)
    return op.kind, run.get("surface") or op.dtype


def main_index(run: dict) -> int:
    """Index of the op a row measures: its GEMM (a MoE row's grouped GEMM), else its only op."""
    return next((i for i, op in enumerate(run["ops"]) if op.kind in ("gemm", "grouped_gemm")), 0)


def measured_op(run: dict):
    """The op record a row measures (main_index)."""
    return run["ops"][main_index(run)]


def errors(runs: list[dict], eff: Efficiency, acc) -> list[float]:
    return [predict(r, eff, acc) / r["measured_s"] - 1 for r in runs]


def error_stats(errs: list[float], prefix: str = "") -> dict:
    """{prefix}median_abs_error and {prefix}p90_abs_error of `errs` (kernels_bench.calibrate._pct: of |error|)."""
    return {f"{prefix}median_abs_error": round(_pct(errs, 0.5), 4), f"{prefix}p90_abs_error": round(_pct(errs, 0.9), 4)}


def _target(run: dict, i: int, eff: Efficiency, acc) -> tuple[list[float], float, bool] | None:
    """(shape variables, log(t_curves / t_measured), bound) of the op a row measures, or None when the row's other
    ops already take (nearly) all of its time. bound: the row sits at its host floor, so its kernel's time is only
    known to be at most the measured one (the log-factor at least the target)."""
    op = run["ops"][i]
    log_ratio = _measured_log_ratio(run, i, plan.machine(acc, eff))  # the curves' time, which the surface divides
    if log_ratio is None:
        return None
    return [shape_axis(op, a) for a in SHAPE[op.kind]], log_ratio, not device_bound(run)


def _measured_log_ratio(run: dict, i: int, m) -> float | None:
    """log(t / t_measured) of the op a row measures (op i, timed by roofline.time_op on machine m), its measured time
    being the row's minus its other ops' times; None when those others take (nearly) all of the row's time."""
    t_main = time_op(run["ops"][i], m).seconds
    rest = run["measured_s"] - sum(time_op(o, m).seconds for j, o in enumerate(run["ops"]) if j != i)
    if t_main <= 0 or rest <= 0.05 * run["measured_s"]:
        return None
    return math.log(t_main / rest)


def _knots(values: np.ndarray, n: int) -> list[float]:
    distinct = sorted(set(float(f"{v:.3g}") for v in values))
    if len(distinct) <= n:
        return distinct
    lo, hi = math.log(distinct[0]), math.log(distinct[-1])
    return sorted(set(float(f"{math.exp(lo + (hi - lo) * i / (n - 1)):.3g}") for i in range(n)))


def _design(x: np.ndarray, knots: list[list[float]]) -> np.ndarray:
    """Interpolation weights [rows, grid points] of Surface.at (multilinear in log, row-major, last axis fastest)."""
    rows = x.shape[0]
    sizes = [len(k) for k in knots]
    a = np.zeros((rows, math.prod(sizes)))
    idx = [np.zeros(rows, dtype=int)]
    w = [np.ones(rows)]
    for axis, k in enumerate(knots):
        lk = np.log(np.asarray(k))
        v = np.clip(np.log(x[:, axis]), lk[0], lk[-1])
        if len(k) == 1:
            lo, f = np.zeros(rows, dtype=int), np.zeros(rows)
        else:
            lo = np.clip(np.searchsorted(lk, v, side="right") - 1, 0, len(k) - 2)
            f = (v - lk[lo]) / (lk[lo + 1] - lk[lo])
        new_idx, new_w = [], []
        for ci, cw in zip(idx, w, strict=True):
            new_idx.append(ci * len(k) + lo)
            new_w.append(cw * (1 - f))
            if len(k) > 1:
                new_idx.append(ci * len(k) + lo + 1)
                new_w.append(cw * f)
        idx, w = new_idx, new_w
    for ci, cw in zip(idx, w, strict=True):
        np.add.at(a, (np.arange(rows), ci), cw)
    return a


def _penalty(sizes: list[int]) -> np.ndarray:
    grid = np.arange(math.prod(sizes)).reshape(sizes)
    rows = []
    for axis, n in enumerate(sizes):
        g = np.moveaxis(grid, axis, 0)
        for i in range(1, n - 1):
            r = np.zeros((g[0].size, grid.size))
            at = np.arange(g[0].size)
            r[at, g[i - 1].ravel()] += SMOOTH
            r[at, g[i].ravel()] -= 2 * SMOOTH
            r[at, g[i + 1].ravel()] += SMOOTH
            rows.append(r)
    rows.append(np.eye(grid.size) * RIDGE)
    return np.vstack(rows)


def fit_surface(xs: list[list[float]], ys: list[float], axes: tuple[str, ...],
                bounds: list[bool] | None = None) -> Surface:
    """The surface through (xs, ys); rows flagged in `bounds` are one-sided (log-factor >= y): they weigh only
    while the fit breaks them."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    bound = np.asarray(bounds if bounds is not None else [False] * len(y), dtype=bool)
    knots = [_knots(x[:, i], KNOTS[a]) for i, a in enumerate(axes)]
    a, pen = _design(x, knots), _penalty([len(k) for k in knots])
    # cells reached only by rows at a host floor keep the curves' speed (log-factor pulled to 0) unless a bound is
    # broken: the floor says how slow the kernel is not, and the smoothing would carry the rows above it there
    floor_only = (np.abs(a[~bound]).sum(axis=0) == 0) & (np.abs(a[bound]).sum(axis=0) > 0)
    pen = np.vstack([pen, np.eye(a.shape[1])[floor_only] * FLOOR_ONLY_RIDGE])
    w = np.where(bound, 0.0, 1.0)
    for _ in range(6 if bound.any() else 4):  # reweighted least squares toward mean |log error|
        theta = np.linalg.lstsq(np.vstack([a * w[:, None], pen]), np.concatenate([y * w, np.zeros(len(pen))]),
                                rcond=None)[0]
        fit = a @ theta
        w = np.where(bound & (fit >= y), 0.0, 1 / np.sqrt(np.maximum(np.abs(fit - y), 0.02)))
    factors = np.clip(np.exp(theta), FACTOR_LO, FACTOR_HI)
    return Surface(axes, tuple(tuple(k) for k in knots), tuple(float(f"{f:.4g}") for f in factors))


def fit_surfaces(runs: list[dict], eff: Efficiency, acc, sources: dict[tuple[str, str], str]) -> Efficiency:
    """`eff` with a shape surface per (kind, surface key) in `sources` (-> the table dtype whose rows fit it), from
    the runs marked `fit_shape`, each on the op it measures (main_index). Targets are computed once per run under
    the curves of `eff` (kept in the run as `shape_target`)."""
    by: dict[tuple[str, str], tuple[list, list, list]] = {}
    for r in runs:
        i = main_index(r)
        key = surface_of(r)
        if not r.get("fit_shape", True) or sources.get(key) != r["dtype"]:
            continue
        if "shape_target" not in r:
            r["shape_target"] = _target(r, i, eff, acc)
        t = r["shape_target"]
        if t:
            for column, value in zip(by.setdefault(key, ([], [], [])), t, strict=True):
                column.append(value)
    ops = dict(eff.ops)
    for (kind, dtype), (xs, ys, bounds) in sorted(by.items()):
        if len(ys) - sum(bounds) < 8:
            continue
        shapes = dict(ops[kind].shape_by_dtype) | {dtype: fit_surface(xs, ys, SHAPE[kind], bounds)}
        ops[kind] = replace(ops[kind], shape_by_dtype=tuple(sorted(shapes.items())))
    return replace(eff, ops=ops)


def fit_configs(runs: list[dict], eff: Efficiency, acc) -> Efficiency:
    """`eff` with, per (surface key, kernel configuration) of the routed-expert rows (Op.config: the expert shape,
    expert TP and EP a row ran), the speed factor the table measured over the surfaces, as a curve over m: each
    training row's log(t_surfaces / t_measured) of the op it measures (others keep their time, as _target), a running
    median of CONFIG_SMOOTH rows along m, at most CONFIG_KNOTS knots. Only configurations with CONFIG_MIN device-bound
    training rows get one; elsewhere (another model's experts, another plan) the surface alone stands."""
    machines: dict = {}
    by: dict[tuple[str, str, tuple], list[tuple[float, float]]] = {}
    for r in runs:
        i = main_index(r)
        op = r["ops"][i]
        if not op.config or not r.get("fit_shape", True) or not device_bound(r):
            continue
        if (variant := r.get("surface")) not in machines:  # a kernel variant's rows: its surface, as predict() does
            machines[variant] = plan.machine(acc, eff.with_surfaces(((variant, op.dtype),)) if variant else eff)
        if (log_ratio := _measured_log_ratio(r, i, machines[variant])) is not None:
            kind, key = surface_of(r)
            by.setdefault((kind, key, op.config), []).append((float(op.m or 1), log_ratio))
    ops = dict(eff.ops)
    for (kind, key, config), points in sorted(by.items()):
        if len(points) < CONFIG_MIN:
            continue
        points.sort()
        ys = [float(np.median([y for _, y in points[max(0, j - CONFIG_SMOOTH // 2):j + CONFIG_SMOOTH // 2 + 1]]))
              for j in range(len(points))]
        knots: dict[float, list[float]] = {}
        for (x, _), y in zip(points, ys, strict=True):
            knots.setdefault(x, []).append(y)
        xs = sorted(knots)
        keep = sorted({xs[round(j * (len(xs) - 1) / (CONFIG_KNOTS - 1))] for j in range(CONFIG_KNOTS)}) \
            if len(xs) > CONFIG_KNOTS else xs
        curve = Curve(tuple((x, float(f"{np.clip(math.exp(np.median(knots[x])), FACTOR_LO, FACTOR_HI):.4g}"))
                            for x in keep))
        e = ops[kind]
        ops[kind] = replace(e, config_by_dtype=tuple(sorted(e.config_by_dtype + ((key, config, curve),))))
    return replace(eff, ops=ops)


def cv_model_shapes(runs: list[dict], eff: Efficiency, acc, sources: dict) -> dict[str, list[float]]:
    """Per table.dtype, the errors of every row predicted by surfaces fitted without its model shape (model shapes
    dealt into CV_FOLDS folds per table, training rows only; the one-variable curves under them are the full fit's
    `eff`, whose surfaces are dropped: a dtype whose only model shape is left out is predicted by its curves)."""
    eff = replace(eff, ops={k: replace(e, shape_by_dtype=(), config_by_dtype=()) for k, e in eff.ops.items()})
    out: dict[str, list[float]] = {}
    for table in sorted({r["table"] for r in runs}):
        rows = [r for r in runs if r["table"] == table]
        models = sorted({r["model"] for r in rows})
        if len(models) < 2:
            continue
        fold = {mdl: i % CV_FOLDS for i, mdl in enumerate(models)}
        for f in sorted(set(fold.values())):
            train = [r for r in rows if fold[r["model"]] != f and not r["holdout"]]
            test = [r for r in rows if fold[r["model"]] == f and r.get("fit_shape", True)]
            fitted = fit_surfaces(train, eff, acc, sources)
            for r, e in zip(test, errors(test, fitted, acc), strict=True):
                out.setdefault(f"{table}.{r['dtype']}", []).append(e)
    return out
