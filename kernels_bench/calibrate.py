"""Calibration: fit the planner's efficiency curves to stored runs; with `--write`, write
profiles/calibration/<device>.yaml (which every estimate for that device then reads), or with `--out DIR|FILE.yaml`
write there. Without either it fits and reports the held-out errors, and writes nothing.

The model fitted is the planner's own (planner.perf.roofline.time_op, called as is): a run's time is the sum over its op
records of max(FLOP / (peak[dtype] x compute(m)), bytes / (bandwidth x memory(m)), kernels x floor_s), with per
op kind a compute curve and a memory curve (fractions at up to 4 and 3 knots in m, interpolated in log m) and a
floor. Peaks are the device's: datasheet for a profiled GPU, the measured ceilings for the CPU (stored under `fit:`).
Fit: pattern search in log space over every parameter of the kinds the runs use, minimizing the weighted mean
|log(predicted / measured)|: a whole-layer run weighs 1, a component run its share of its layer's time (eager
torch pays ~20-60 us per op on a CPU, which a max(compute, memory, floor) roofline of fused kernels cannot give the
6-8 small ops of a router or a norm; their time is small, and so is their weight). Runs whose weights were
dequantized before the matmul are left out unless asked (engines run fused kernels; the planner models those).
Cross-validation: a layer case, its components and its other formats/routings share a shape group; groups are dealt
into k folds and each fold is predicted by a fit to the others. Held-out error = |predicted / measured - 1| of the
held-out whole-layer runs (what the planner sums into step times); components' held-out error is reported beside.
Comm runs (kernels_bench comm), when stored, give all-reduce and all-to-all latency and bandwidth fractions.
Refused (exit 2, the previous file untouched), each error naming the store and the run(s): a timing that is not a
finite positive number of seconds, a fit whose held-out median error exceeds MAX_HOLDOUT_MEDIAN_ABS_ERROR or that
cannot be held out at all, any fitted fraction outside (0, 1], a target that is a link or a file it did not write
(kernels_bench/calibration_guard.py).
"""

from __future__ import annotations

import math
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import yaml

from kernels_bench import plan
from kernels_bench.calibration_guard import HEADER, check_fit, timing, write_calibration
from kernels_bench.devices import Device, accelerator_for
from planner.base.errors import PlannerError
from planner.base.store import ROOT, Store, store_path
from planner.hardware.efficiency import CAL_DIR, Curve, Efficiency, OpEfficiency, efficiency_for, forget_tables
from planner.perf.roofline import time_op

LAYER_OPS = ("mla_decode", "mla_prefill", "moe")
LO, HI = 0.003, 1.0  # fitted fractions of a peak; a run faster than its peak shows up as held-out error instead
FLOOR_LO, FLOOR_HI = 1e-7, 0.05
KNOTS = {"compute": 4, "memory": 3}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a file stem under profiles/calibration/, never a path


def _knots(ms: list[int], n: int) -> list[float]:
    ms = sorted(set(max(1, m) for m in ms))
    if len(ms) <= n:
        return [float(m) for m in ms]
    lo, hi = math.log(ms[0]), math.log(ms[-1])
    return [float(round(math.exp(lo + (hi - lo) * i / (n - 1)))) for i in range(n)]


class Model:
    """Parameter vector (log space) <-> Efficiency table for the op kinds the runs use."""

    def __init__(self, runs: list[dict], base: Efficiency, only: tuple[str, ...] | None = None,
                 dtype: str | None = None):
        """`only`: the op kinds fitted (others keep the base table's values; default every kind the runs use).
        `dtype`: fit only the compute curve of that dtype (`compute_by_dtype`), memory and floor kept from `base`
        (kernels_bench/silicon.py fits a kind on its reference dtype first, then each other dtype this way)."""
        self.base, self.dtype = base, dtype
        kinds: dict[str, list[int]] = {}
        for r in runs:
            for op in r["ops"]:
                if op.kind != "comm" and (only is None or op.kind in only):
                    kinds.setdefault(op.kind, []).append(op.m or 1)
        self.layout: list[tuple[str, str, float | None]] = []  # (kind, compute|memory|floor, knot m)
        x0 = []
        for kind in sorted(kinds):
            b = base.ops[kind]
            for part in ("compute",) if dtype else ("compute", "memory"):
                curve = b.compute_for(dtype) if dtype else getattr(b, part)
                for m in _knots(kinds[kind], KNOTS[part]):
                    self.layout.append((kind, part, m))
                    x0.append(math.log(min(HI, max(LO, curve.at(m)))))
            if dtype:
                continue
            self.layout.append((kind, "floor", None))
            x0.append(math.log(min(FLOOR_HI, max(FLOOR_LO, b.floor_s or 1e-5))))
        # a kind's launch floor cannot exceed its fastest single-op run per kernel (else the fit parks the whole
        # layer's eager overhead in, say, the norm's floor)
        self.floor_hi = {k: FLOOR_HI for k in kinds}
        for r in runs:
            if len(r["ops"]) == 1 and r["ops"][0].kind in kinds:
                op = r["ops"][0]
                self.floor_hi[op.kind] = min(self.floor_hi[op.kind], r["measured_s"] / max(op.kernels, 1))
        self.x0 = [min(v, math.log(max(FLOOR_LO, self.floor_hi[k]))) if part == "floor" else v
                   for (k, part, _), v in zip(self.layout, x0, strict=True)]
        self.kinds = sorted(kinds)

    def bounds(self, i: int) -> tuple[float, float]:
        kind, part, _ = self.layout[i]
        lo, hi = (FLOOR_LO, max(FLOOR_LO, self.floor_hi[kind])) if part == "floor" else (LO, HI)
        return math.log(lo), math.log(hi)

    def table(self, x: list[float]) -> Efficiency:
        parts: dict[str, dict] = {k: {"compute": [], "memory": [], "floor": 0.0} for k in self.kinds}
        for (kind, part, m), v in zip(self.layout, x, strict=True):
            if part == "floor":
                parts[kind]["floor"] = math.exp(v)
            else:
                parts[kind][part].append((m, math.exp(v)))
        ops = dict(self.base.ops)
        for kind, p in parts.items():
            if self.dtype:
                by = dict(ops[kind].compute_by_dtype) | {self.dtype: Curve(tuple(p["compute"]))}
                ops[kind] = replace(ops[kind], compute_by_dtype=tuple(sorted(by.items())))
                continue
            fitted = OpEfficiency(Curve(tuple(p["compute"])), Curve(tuple(p["memory"])), p["floor"])
            # dtypes the runs did not measure keep the base table's own curves (FP4 on a GPU timed in BF16/FP8)
            ops[kind] = replace(fitted, compute_by_dtype=ops[kind].compute_by_dtype) if kind in ops else fitted
        return replace(self.base, ops=ops)


def predict(run: dict, eff: Efficiency, acc) -> float:
    m = plan.machine(acc, eff)
    return sum(time_op(op, m).seconds for op in run["ops"])


class _Cache:
    """Per-op times under the current table; a trial of one parameter re-times only the ops of its kind."""

    def __init__(self, model: Model, runs: list[dict], acc, x: list[float]):
        self.model, self.runs, self.acc = model, runs, acc
        self.total_w = sum(r["weight"] for r in runs)
        self.where = {}  # kind -> [(run index, op index, op)]
        for i, r in enumerate(runs):
            for j, op in enumerate(r["ops"]):
                self.where.setdefault(op.kind, []).append((i, j, op))
        self.times = [[0.0] * len(r["ops"]) for r in runs]
        self.set(x, None)

    def _timed(self, x: list[float], kind: str | None) -> dict:
        m = plan.machine(self.acc, self.model.table(x))
        items = [it for k, v in self.where.items() if kind is None or k == kind for it in v]
        return {(i, j): time_op(op, m).seconds for i, j, op in items}

    def loss(self, new: dict | None = None) -> float:
        total = 0.0
        for i, r in enumerate(self.runs):
            t = self.times[i]
            pred = sum(new.get((i, j), t[j]) for j in range(len(t))) if new else sum(t)
            total += r["weight"] * abs(math.log(pred / r["measured_s"]))
        return total / self.total_w

    def trial(self, x: list[float], kind: str) -> tuple[float, dict]:
        new = self._timed(x, kind)
        return self.loss(new), new

    def set(self, x: list[float], kind: str | None, new: dict | None = None) -> None:
        for (i, j), v in (new if new is not None else self._timed(x, kind)).items():
            self.times[i][j] = v


def fit(runs: list[dict], base: Efficiency, acc, min_step: float = math.log(1.03), only: tuple[str, ...] | None = None,
        dtype: str | None = None) -> Efficiency:
    """Pattern search: each parameter up and down by `step` (log space), keep improvements, halve when none.
    `only` and `dtype` as in Model."""
    model = Model(runs, base, only, dtype)
    x = list(model.x0)
    cache = _Cache(model, runs, acc, x)
    best = cache.loss()
    step = math.log(2.0)
    while step >= min_step:
        improved = False
        for i in range(len(x)):
            lo, hi = model.bounds(i)
            kind = model.layout[i][0]
            for d in (step, -step):
                trial = list(x)
                trial[i] = min(hi, max(lo, x[i] + d))
                if trial[i] == x[i]:
                    continue
                loss, new = cache.trial(trial, kind)
                if loss < best - 1e-9:
                    x, best, improved = trial, loss, True
                    cache.set(x, kind, new)
                    break
        if not improved:
            step /= 2
    return model.table(x)


def _errors(runs: list[dict], eff: Efficiency, acc) -> list[float]:
    return [predict(r, eff, acc) / r["measured_s"] - 1 for r in runs]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(abs(v) for v in xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo = int(pos)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (pos - lo)


def cross_validate(runs: list[dict], base: Efficiency, acc, folds: int) -> tuple[list[float], list[float], dict]:
    """Held-out errors (layer runs, component runs, layer runs by main op kind), each run predicted by a fit that
    never saw its shape group."""
    groups = sorted({r["group"] for r in runs})
    k = max(2, min(folds, len(groups)))
    fold_of = {g: i % k for i, g in enumerate(groups)}
    errs: list[float] = []
    comp: list[float] = []
    by_kind: dict[str, list[float]] = {}
    for f in range(k):
        train = [r for r in runs if fold_of[r["group"]] != f]
        test = [r for r in runs if fold_of[r["group"]] == f]
        if not train or not test:
            continue
        eff = fit(train, base, acc)
        for r, e in zip(test, _errors(test, eff, acc), strict=True):
            if not r["layer"]:
                comp.append(e)
                continue
            errs.append(e)
            main = max(r["ops"], key=lambda o: time_op(o, plan.machine(acc, eff)).seconds)
            by_kind.setdefault(main.kind, []).append(e)
    return errs, comp, by_kind


# ---------------------------------------------------------------- store -> runs

def _device_from(row) -> Device:
    import json

    d = json.loads(row["device_json"])
    known = ("name", "kind", "display_name", "torch_device", "profile", "threads")
    return Device(d["name"], d["kind"], d["display_name"], d["torch_device"], d.get("profile"), d["threads"],
                  {k: v for k, v in d.items() if k not in known})


def load_runs(store: Store, run_ids: list[int]) -> list[dict]:
    import json

    out = []
    for row in store.cases(run_ids, status="ok"):
        if not row["ops_json"]:
            continue
        timing(store, row)  # an ok row without a time (SQLite stores NaN as NULL) is refused too
        layer = row["op"] in LAYER_OPS
        parent = row["case_name"] if layer else row["case_name"][: -len(row["op"]) - 1]
        out.append({"case": row["case_name"], "group": row["cv_group"], "path": row["path"] or "",
                    "measured_s": row["measured_s"], "run_id": row["run_id"], "layer": layer,
                    "parent": (row["run_id"], parent),
                    "ops": [plan.op_from_record(o) for o in json.loads(row["ops_json"])]})
    layer_s = {r["parent"]: r["measured_s"] for r in out if r["layer"]}
    for r in out:  # components weigh their share of their layer's time
        r["weight"] = 1.0 if r["layer"] else min(1.0, r["measured_s"] / layer_s.get(r["parent"], r["measured_s"]))
    return out


def _comm_section(store: Store, device: str) -> dict | None:
    from kernels_bench.comm import fit_comm

    comm_runs = [r["id"] for r in store.runs(device) if r["suite"] == "comm" and r["status"] == "done"]
    return fit_comm(store, comm_runs[-1]) if comm_runs else None


def _yaml_curve(c: Curve) -> list | float:
    pts = [[int(m) if float(m).is_integer() else m, round(f, 4)] for m, f in c.points]
    return pts[0][1] if len(pts) == 1 else pts


def calibrate(args, device: Device, run_suite) -> dict:
    with Store(store_path(args.store)) as store:
        return _calibrate(args, device, run_suite, store)


def _calibrate(args, device: Device, run_suite, store: Store) -> dict:
    runs_rows = [r for r in store.runs(device.name) if r["suite"] not in ("ceilings", "comm") and r["ceilings_json"]]
    if args.run:
        chosen = [r for r in runs_rows if r["id"] in set(args.run)]
        if len(chosen) != len(set(args.run)):
            raise PlannerError(f"run id(s) {sorted(set(args.run) - {r['id'] for r in chosen})} of {device.name} "
                               f"not in {store.path}", field="--run")
    else:
        with_cases = [r for r in runs_rows if store.cases([r["id"]], status="ok")]
        if not with_cases:
            print(f"kernels_bench: no runs of {device.name} in {store.path}; running the {args.suite} suite first",
                  file=sys.stderr)
            store.close()
            run_suite(args, device)
            return calibrate(args, device, run_suite)
        chosen = with_cases[-1:]
    import json

    try:  # rows written by another version, or edited by hand: one line naming the store, not a traceback
        ceilings = json.loads(chosen[-1]["ceilings_json"])
        acc = accelerator_for(_device_from(chosen[-1]), ceilings)
        all_runs = load_runs(store, [r["id"] for r in chosen])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise PlannerError(f"run(s) {[r['id'] for r in chosen]}: unreadable row ({type(err).__name__}: {err})"[:300],
                           file=str(store.path), field="--store") from None
    runs = [r for r in all_runs if args.include_dequant or "dequant" not in r["path"]]
    which = f"run(s) {[r['id'] for r in chosen]}"
    if len(runs) < 4:
        raise PlannerError(f"{len(runs)} usable runs of {device.name} in {which}: need at least 4",
                           file=str(store.path), field="--run")
    base = efficiency_for(None)  # fit from the published defaults, never from an earlier calibration
    t0 = time.time()
    errs, comp_errs, by_kind = cross_validate(runs, base, acc, args.folds)
    eff = fit(runs, base, acc)
    check_fit(eff, sorted({o.kind for r in runs for o in r["ops"] if o.kind != "comm"}), _pct(errs, 0.5),
              f"{which} of {device.name}", store)
    train = [e for r, e in zip(runs, _errors(runs, eff, acc), strict=True) if r["layer"]]
    skipped = [r for r in all_runs if r not in runs]
    skipped_ratio = [r["measured_s"] / predict(r, eff, acc) for r in skipped]
    name = args.name or device.name
    if not NAME.fullmatch(name):
        raise PlannerError(f"{name!r} is not a calibration name (letters, digits, '.', '_', '-'; no folders)",
                           field="--name")
    path = _target(args.out, name)
    counts = {k: sum(any(o.kind == k for o in r["ops"]) for r in runs) for k in eff.ops}
    ops_doc = {}
    for kind in sorted({o.kind for r in runs for o in r["ops"] if o.kind != "comm"}):
        e = eff.ops[kind]
        ops_doc[kind] = {"compute": _yaml_curve(e.compute), "memory": _yaml_curve(e.memory),
                         "floor_s": float(f"{e.floor_s:.3g}"), "n": counts[kind],
                         "holdout_error": round(_pct(by_kind.get(kind, []), 0.5), 4) if by_kind.get(kind) else None}
        if ops_doc[kind]["holdout_error"] is None:
            del ops_doc[kind]["holdout_error"]
    summary = {"device": name, "file": _rel(path), "n_fit": len(runs), "n_holdout": len(errs),
               "holdout_median_abs_error": round(_pct(errs, 0.5), 4),
               "holdout_p90_abs_error": round(_pct(errs, 0.9), 4)}
    doc = {
        "device": name,
        "source": f"kernels_bench calibrate {time.strftime('%Y-%m-%d')}: {len(runs)} runs of run(s) "
                  f"{[r['id'] for r in chosen]} ({chosen[-1]['suite']} suite) on {device.display_name}, "
                  f"{_rel(store.path)}",
        "ops": ops_doc,
        "fit": {"method": ("pattern search on mean |log(predicted/measured)|; "
                   "planner.perf.roofline.time_op as the model"),
                "peaks": ("measured ceilings (CPU: these are the peaks the fractions refer to)" if not device.profile
                          else f"profiles/hardware/{device.profile}.yaml datasheet peaks"),
                "copy_bytes_per_s": ceilings["copy_bytes_per_s"],
                "gemm_flops_per_s": ceilings["gemm_flops_per_s"], "threads": ceilings.get("threads"),
                "folds": args.folds, "n_fit": len(runs), "n_holdout": len(errs),
                "holdout_median_abs_error": summary["holdout_median_abs_error"],
                "holdout_p90_abs_error": summary["holdout_p90_abs_error"],
                "train_median_abs_error": round(_pct(train, 0.5), 4),
                "holdout_components_median_abs_error": round(_pct(comp_errs, 0.5), 4),
                "holdout_components_p90_abs_error": round(_pct(comp_errs, 0.9), 4),
                "excluded_dequant_runs": len(skipped),
                "excluded_median_measured_over_predicted": round(statistics.median(skipped_ratio), 2)
                if skipped_ratio else None, "seconds": round(time.time() - t0, 1)},
        "runs": {"store": _rel(store.path), "run_ids": [r["id"] for r in chosen]},
    }
    comm = _comm_section(store, device.name)
    if comm:
        doc["comm"] = comm
    header = (f"{HEADER} calibrate` (kernels_bench/calibrate.py); fractions of the peaks\n"
              "# named under fit.peaks, curves [[m, fraction], ...] over GEMM rows m as in default.yaml.\n")
    written = bool(getattr(args, "write", False) or args.out)  # never silently: every estimate on `name` reads it
    if written:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PlannerError(f"cannot create the folder: {err.strerror}", file=str(path.parent),
                               field="--out") from None
        write_calibration(path, header + yaml.safe_dump(doc, sort_keys=False, width=120))
        forget_tables()
    return summary | {"written": written,
                      "by_kind_holdout_median_abs_error": {k: round(_pct(v, 0.5), 4) for k, v in by_kind.items()},
                      "train_median_abs_error": doc["fit"]["train_median_abs_error"],
                      "holdout_components_median_abs_error": doc["fit"]["holdout_components_median_abs_error"],
                      "excluded_dequant_runs": len(skipped), "run_ids": doc["runs"]["run_ids"]}


def _target(out: str | None, name: str) -> Path:
    """The calibration file: `--out FILE.yaml` as named, `--out DIR` as DIR/<name>.yaml, else
    profiles/calibration/<name>.yaml (the file every estimate for device `name` reads)."""
    if out and Path(out).suffix.lower() in (".yaml", ".yml"):
        return Path(out)
    return (Path(out) if out else CAL_DIR) / f"{name}.yaml"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
