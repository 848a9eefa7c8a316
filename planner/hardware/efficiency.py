"""Efficiency as data: achievable fraction of peak per op class, from profiles/calibration/.

`efficiency_for(gpu, engine, silicon)` returns the default table (published kernel measurements) overlaid with
`profiles/calibration/<gpu>.yaml` when there is one (kernels_bench calibrate, or a committed overlay), then, when a
scenario runs on them (engine_options.kernel_tables auto, the default, where imported; planner.perf.steps
.uses_silicon_tables), with `profiles/calibration/silicon/<gpu>-<engine>.yaml`
(that engine's kernels measured on silicon, `kernels_bench import-silicon`) (`calibration_files`). "Theoretical"
and "calibrated" estimates are the same code with a different table (STYLE.md habit 6).

A silicon calibration may also carry, per op kind and compute dtype, a shape surface (`shape_by_dtype`): a factor on
the speed the curves give, as a function of shape variables read off the op record (SHAPE_AXES), interpolated on a
grid (`Surface`). The default table has none, so `OpEfficiency.shape_for` is 1 for every op there.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, check_keys, get_number, load_document, require_mapping
from planner.hardware.allreduce import AllReduceTable, read_allreduce
from planner.hardware.surface import SHAPE_AXES, Surface

CAL_DIR = PROFILES / "calibration"
OP_KINDS = ("gemm", "grouped_gemm", "attention_decode", "attention_prefill", "elementwise", "cpu_experts")
# GEMM compute dtypes (planner.perf.roofline FALLBACK_DTYPE); int4 names the W4A16 kernels (INT4 weights dequantized
# in the GEMM, BF16 activations: Marlin / Machete / CUTLASS mixed-input) whose curve a grouped_gemm table may carry
DTYPES = ("fp4", "fp8", "int8", "int4", "bf16", "fp16")
# shape surfaces of a kernel variant within a compute dtype, keyed apart from the dtype's own and put in its place for
# a scenario that runs that variant (planner.perf.steps._efficiency, Efficiency.with_surfaces): FP8 GEMMs and MoE
# with one weight scale per tensor (CUTLASS scaled-mm / ModelOpt FP8 MoE kernels; the `fp8` surface is fitted on
# block-scaled DeepGEMM / Triton rows), attention over an FP8 KV cache (the attention records keep bf16 compute), and
# MXFP4 routed experts (gpt-oss): weight-only on the int4 (W4A16) curve where the GPU has no FP4 MMA (Hopper: vLLM's
# OAI Triton matmul_ogs / Marlin MXFP4, SGLang's Triton kernels; the records compute in bf16, which takes the int4
# curve as INT4 W4A16 does), MXFP8 x MXFP4 (W4A8) on the fp4 curve on Blackwell (FlashInfer / TRT-LLM kernels)
SURFACE_VARIANTS = {"fp8_tensor": "fp8", "fp8_kv": "bf16", "mxfp4_w4a16": "int4", "mxfp4": "fp4"}
COMM_KEYS = ("allreduce_latency_s", "allreduce_latency_cross_node_s", "allreduce_busbw_fraction",
             "alltoall_latency_s", "alltoall_nvlink_fraction", "rdma_bytes_per_s_per_gpu", "pcie_fraction")
# a calibration's measured all-reduce inside one node, {GPUs: [[message bytes, seconds], ...]}
# (planner.hardware.allreduce.AllReduceTable)
COMM_TABLES = ("allreduce_by_gpus",)


@dataclass(frozen=True)
class Curve:
    points: tuple[tuple[float, float], ...]  # (m, fraction), m ascending; one point = constant

    def at(self, m: float) -> float:
        pts = self.points
        if len(pts) == 1 or m <= pts[0][0]:
            return pts[0][1]
        if m >= pts[-1][0]:
            return pts[-1][1]
        i = bisect_left(pts, (m,))  # the first point at or past m: (m,) sorts before (m, f)
        (m0, f0), (m1, f1) = pts[i - 1], pts[i]
        return f0 + (math.log(m) - math.log(m0)) / (math.log(m1) - math.log(m0)) * (f1 - f0)


# grid points per doubling of m where padded()'s envelope bends away from the curve (log-linear chords of m x const:
# at 16 per doubling they sit at most 0.03% off it)
PAD_STEPS = 16


@lru_cache(maxsize=1024)
def padded(curve: Curve) -> Curve:
    """A GEMM compute curve as a kernel that may pad runs it: f'(m) = m x max over m' >= m of f(m') / m'.

    Derivation: at fixed width and depth a GEMM's FLOP grow as its rows m, so its compute time is t(m) = c m / f(m).
    An engine never needs longer for m rows than for m' > m, because it can run the m' kernel on padded rows (CUDA
    graphs pad decode batches; GEMM autotuners bucket m), so t(m) <= min over m' >= m of t(m'), which is the formula.
    A fitted curve breaks this where its fraction rises faster than m between two knots (linear in log m from a low
    knot: a silicon fit's fp8 GEMM curve goes 0.039 -> 0.42 of the peak from m = 32 to 1,024 on H200 TRT-LLM, which
    timed a 65,536 x 8,192 GEMM at 32 rows 1.7x slower than at 64, where the table measured it flat). Curves that
    never break it come back unchanged; the others get the envelope sampled PAD_STEPS points per doubling of m from 1
    to the last knot, points on a straight stretch of the original dropped (a constant beyond both ends, as before)."""
    pts = curve.points
    if len(pts) < 2 or all(f1 - f0 <= f0 * math.log(m1 / m0) * (1 + 1e-9)
                           for (m0, f0), (m1, f1) in zip(pts, pts[1:], strict=False)):
        return curve
    top = pts[-1][0]
    n = max(1, math.ceil(math.log2(top) * PAD_STEPS)) if top > 1 else 0
    grid = sorted({1.0, *(2 ** (i / PAD_STEPS) for i in range(n)), *(m for m, _ in pts if m >= 1), float(top)})
    best, env = 0.0, []
    for m in reversed(grid):  # max of f(m') / m' over m' >= m (beyond the last knot f is flat: f / m falls)
        best = max(best, curve.at(m) / m)
        env.append((m, m * best))
    env.reverse()
    keep = [env[0]]
    for a, b in zip(env[1:], env[2:], strict=False):  # drop a point on the chord of its neighbours (log-linear)
        (m0, f0), (m1, f1), (m2, f2) = keep[-1], a, b
        if abs(f0 + (f2 - f0) * math.log(m1 / m0) / math.log(m2 / m0) - f1) > 1e-9 * max(f1, 1e-12):
            keep.append(a)
    keep.append(env[-1])
    return Curve(tuple((float(f"{m:.6g}"), f) for m, f in keep))


@dataclass(frozen=True)
class OpEfficiency:
    compute: Curve  # fraction of peak FLOP/s vs GEMM rows
    memory: Curve  # fraction of peak memory bandwidth vs GEMM rows
    floor_s: float  # launch/latency floor per op occurrence
    # compute curves of dtypes whose kernels reach a different fraction of their own peak (FP4 GEMMs run at a
    # lower fraction of the FP4 peak than FP8/BF16 GEMMs of the same shape reach of theirs)
    compute_by_dtype: tuple[tuple[str, Curve], ...] = ()
    # silicon calibrations: per compute dtype, the factor its kernels run faster (> 1) or slower than the curves
    # give at a shape; a roofline time is divided by it (kernels_bench/silicon_fit.py fits it)
    shape_by_dtype: tuple[tuple[str, Surface], ...] = ()
    # ... and per (compute dtype, kernel configuration: Op.config) the table measured, a further speed factor over
    # GEMM rows m on top of the surface: the engine picks its kernel and tuned launch config per expert shape (SGLang's
    # Triton fused-MoE configs per (E, N, dtype), vLLM's FlashInfer CUTLASS or TRT-LLM-gen NVFP4 MoE per shape), which
    # a smooth surface cannot follow (kernels_bench/silicon_fit.py fit_configs)
    config_by_dtype: tuple[tuple[str, tuple, Curve], ...] = ()

    def compute_for(self, dtype: str) -> Curve:
        return next((c for d, c in self.compute_by_dtype if d == dtype), self.compute)

    def config_curve(self, op) -> Curve | None:
        """The measured factor curve of this op's kernel configuration, or None."""
        if not op.config:
            return None
        return next((c for d, k, c in self.config_by_dtype if d == op.dtype and k == op.config), None)

    def surface_for(self, op) -> Surface | None:
        """The shape surface of this op's dtype, or None."""
        return next((s for d, s in self.shape_by_dtype if d == op.dtype), None) if self.shape_by_dtype else None

    def shape_for(self, op) -> float:
        """Speed factor of this op's shape (1 without a surface for its dtype), times its configuration's factor."""
        factor = self.shaped(op)
        return 1.0 if factor is None else factor

    def shaped(self, op) -> float | None:
        """shape_for's factor, or None where the op has neither a surface nor a configuration curve (the roofline
        then times it without the surfaces' rule)."""
        surface = self.surface_for(op)
        config = self.config_curve(op) if self.config_by_dtype else None
        if surface is None and config is None:
            return None
        return (surface.at_op(op) if surface else 1.0) * (config.at(op.m or 1) if config else 1.0)


@dataclass(frozen=True)
class Efficiency:
    device: str  # "default" or the calibrated device name
    ops: dict  # kind -> OpEfficiency
    comm: dict  # COMM_KEYS -> value
    files: tuple[str, ...]  # tables this came from
    allreduce: tuple[AllReduceTable, ...] = ()  # measured intra-node all-reduce per GPU count (comm_time takes it)

    def allreduce_table(self, gpus: int) -> AllReduceTable | None:
        return next((t for t in self.allreduce if t.gpus == gpus), None)

    def with_surfaces(self, pairs: tuple[tuple[str, str], ...]) -> Efficiency:
        """This table with, per (source, target) pair, every op kind's `source` surface standing in for its `target`
        one (kinds without a `source` surface unchanged)."""
        ops = {}
        for kind, e in self.ops.items():
            shapes = dict(e.shape_by_dtype)
            configs = {(d, k): c for d, k, c in e.config_by_dtype}
            for src, dst in pairs:
                if src in shapes:
                    shapes[dst] = shapes[src]
                configs = {key: c for key, c in configs.items() if key[0] != dst} | {
                    (dst, k): c for (d, k), c in configs.items() if d == src}
            ops[kind] = replace(e, shape_by_dtype=tuple(sorted(shapes.items())),
                                config_by_dtype=tuple(sorted((d, k, c) for (d, k), c in configs.items())))
        return replace(self, ops=ops)


def read_curve(value: Any, file: str, field: str) -> Curve:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        points = ((1.0, float(value)),)
    elif isinstance(value, list) and value and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                        for x in p) for p in value):
        points = tuple((float(a), float(b)) for a, b in value)
    else:
        raise PlannerError("expected a fraction or a list of [m, fraction]", file=file, field=field)
    if any(not (0 < f <= 1.5) or m <= 0 for m, f in points) or list(points) != sorted(points):
        raise PlannerError("fractions must be in (0, 1.5] with m ascending and positive", file=file, field=field)
    return Curve(points)


def read_curves(value: Any, dtypes: tuple[str, ...], file: str, field: str) -> tuple[tuple[str, Curve], ...]:
    """A mapping {dtype: fraction or [[m, fraction], ...]} at `field`, its dtypes among `dtypes`, sorted by dtype."""
    mapping = require_mapping(value, file, field)
    check_keys(mapping, dtypes, file, f"{field}.")
    return tuple(sorted((d, read_curve(v, file, f"{field}.{d}")) for d, v in mapping.items()))


def read_configs(value: Any, file: str, field: str) -> dict[tuple[str, tuple], Curve]:
    """{dtype: [{config: [hidden, inter, top-k, experts, expert TP, EP], factor: [[m, factor], ...]}, ...]}."""
    mapping = require_mapping(value, file, field)
    check_keys(mapping, DTYPES + tuple(SURFACE_VARIANTS), file, f"{field}.")
    out = {}
    for d, entries in mapping.items():
        if not isinstance(entries, list):
            raise PlannerError("expected a list of {config, factor}", file=file, field=f"{field}.{d}")
        for i, entry in enumerate(entries):
            where = f"{field}.{d}[{i}]"
            entry = require_mapping(entry, file, where)
            check_keys(entry, ("config", "factor"), file, f"{where}.")
            config = entry.get("config")
            if not (isinstance(config, list) and len(config) == 6 and all(
                    isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in config)):
                raise PlannerError("expected six positive integers", file=file, field=f"{where}.config")
            points = entry.get("factor")
            if not (isinstance(points, list) and points and all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) and x > 0 for x in p)
                    for p in points)) or [p[0] for p in points] != sorted(p[0] for p in points):
                raise PlannerError("expected [[m, factor], ...] with m ascending, all positive", file=file,
                                   field=f"{where}.factor")
            out[(d, tuple(config))] = Curve(tuple((float(a), float(b)) for a, b in points))
    return out


def read_surface(value: Any, file: str, field: str) -> Surface:
    """{axes: [name, ...], knots: [[v, ...], ...], factors: [f, ...]} (row-major, last axis fastest)."""
    doc = require_mapping(value, file, field)
    check_keys(doc, ("axes", "knots", "factors"), file, f"{field}.")
    axes, knots, factors = doc.get("axes"), doc.get("knots"), doc.get("factors")
    if not (isinstance(axes, list) and axes and all(a in SHAPE_AXES for a in axes) and len(set(axes)) == len(axes)):
        raise PlannerError(f"axes must be distinct names among {', '.join(SHAPE_AXES)}", file=file,
                           field=f"{field}.axes")
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0  # noqa: E731
    if not (isinstance(knots, list) and len(knots) == len(axes) and all(
            isinstance(k, list) and k and all(num(x) for x in k) and k == sorted(set(k)) for k in knots)):
        raise PlannerError("one ascending list of positive knots per axis", file=file, field=f"{field}.knots")
    if not (isinstance(factors, list) and len(factors) == math.prod(len(k) for k in knots)
            and all(num(f) and f <= 100 for f in factors)):
        raise PlannerError("one factor in (0, 100] per grid point", file=file, field=f"{field}.factors")
    return Surface(tuple(axes), tuple(tuple(float(x) for x in k) for k in knots), tuple(float(f) for f in factors))


def _read(path, base: Efficiency | None) -> Efficiency:
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, ("device", "source", "ops", "comm", "fit", "notes", "runs"), file)
    ops = dict(base.ops) if base else {}
    for kind, entry in require_mapping(doc.get("ops") or {}, file, "ops").items():
        if kind not in OP_KINDS:
            raise PlannerError(f"unknown op kind (known: {', '.join(OP_KINDS)})", file=file, field=f"ops.{kind}")
        entry = require_mapping(entry, file, f"ops.{kind}")
        check_keys(entry, ("compute", "memory", "floor_s", "compute_by_dtype", "shape_by_dtype", "config_by_dtype",
                           "source", "n", "holdout_error"), file, f"ops.{kind}.")
        old = ops.get(kind)
        if old is None and not ("compute" in entry and "memory" in entry):
            raise PlannerError("a new op kind needs both compute and memory", file=file, field=f"ops.{kind}")
        by_dtype = dict(old.compute_by_dtype) if old else {}
        if entry.get("compute_by_dtype") is not None:
            by_dtype |= dict(read_curves(entry["compute_by_dtype"], DTYPES, file, f"ops.{kind}.compute_by_dtype"))
        shapes = dict(old.shape_by_dtype) if old else {}
        if entry.get("shape_by_dtype") is not None:
            field = f"ops.{kind}.shape_by_dtype"
            mapping = require_mapping(entry["shape_by_dtype"], file, field)
            check_keys(mapping, DTYPES + tuple(SURFACE_VARIANTS), file, f"{field}.")
            shapes |= {d: read_surface(v, file, f"{field}.{d}") for d, v in mapping.items()}
        configs = {(d, k): c for d, k, c in old.config_by_dtype} if old else {}
        if entry.get("config_by_dtype") is not None:
            configs |= read_configs(entry["config_by_dtype"], file, f"ops.{kind}.config_by_dtype")
        ops[kind] = OpEfficiency(
            read_curve(entry["compute"], file, f"ops.{kind}.compute") if "compute" in entry else old.compute,
            read_curve(entry["memory"], file, f"ops.{kind}.memory") if "memory" in entry else old.memory,
            get_number(entry, "floor_s", file, prefix=f"ops.{kind}.", default=old.floor_s if old else 0.0,
                       minimum=0, maximum=1),
            tuple(sorted(by_dtype.items())), tuple(sorted(shapes.items())),
            tuple(sorted((d, k, c) for (d, k), c in configs.items())))
    comm = dict(base.comm) if base else {}
    c = require_mapping(doc.get("comm") or {}, file, "comm")
    check_keys(c, COMM_KEYS + COMM_TABLES, file, "comm.")
    for key in c:
        if key not in COMM_TABLES:
            comm[key] = get_number(c, key, file, prefix="comm.", minimum=0)
    allreduce = {t.gpus: t for t in base.allreduce} if base else {}
    if c.get("allreduce_by_gpus") is not None:
        allreduce |= read_allreduce(c["allreduce_by_gpus"], file, "comm.allreduce_by_gpus")
    missing = [k for k in OP_KINDS if k not in ops] + [k for k in COMM_KEYS if k not in comm]
    if missing:
        raise PlannerError(f"missing {', '.join(missing)}", file=file)
    return Efficiency(str(doc.get("device") or path.stem), ops, comm, (base.files if base else ()) + (file,),
                      tuple(t for _, t in sorted(allreduce.items())))


SILICON_DIR = CAL_DIR / "silicon"  # kernels_bench import-silicon: <gpu>-<engine>.yaml per engine's measured kernels


def silicon_file(gpu: str | None, engine: str | None, version: str | None = None):
    """profiles/calibration/silicon/<gpu>-<engine>.yaml when this engine's kernels were imported for this GPU
    (kernels_bench import-silicon: each table dtype from the newest engine version holding it), or with `version`
    <gpu>-<engine>@<version>.yaml (import-silicon --version: that version's tables alone); else None."""
    path = SILICON_DIR / (f"{gpu}-{engine}.yaml" if version is None else f"{gpu}-{engine}@{version}.yaml")
    return path if gpu and engine and _is_file(path) else None


@lru_cache(maxsize=1024)
def _is_file(path: Path) -> bool:
    """Path.is_file, remembered: a sizing search asks once or twice per plan (forget_tables when a file is written)."""
    return path.is_file()


def forget_tables() -> None:
    """Drop what this process read of the calibration files (after a command writes one)."""
    efficiency_for.cache_clear()
    _is_file.cache_clear()


def silicon_versions(gpu: str | None, engine: str | None) -> list[str]:
    """Engine versions imported one by one for this GPU and engine (<gpu>-<engine>@<version>.yaml), sorted."""
    if not gpu or not engine:
        return []
    return sorted(p.stem.split("@", 1)[1] for p in SILICON_DIR.glob(f"{gpu}-{engine}@*.yaml"))


def silicon_fit_tables() -> list[tuple[str, str, dict]]:
    """(file stem <gpu>-<engine>, table.dtype, entry) of every committed silicon calibration's fit.tables, the held-out
    errors `kernels_bench import-silicon` recorded, in file then table order (docs/validation.md, docs/silicon.md)."""
    return [(path.stem, name, entry) for path in sorted(SILICON_DIR.glob("*.yaml"))
            for name, entry in sorted((((load_document(path) or {}).get("fit") or {}).get("tables") or {}).items())]


def calibration_files(gpu: str | None, engine: str | None = None, silicon: bool = False,
                      version: str | None = None) -> tuple:
    """The calibrations that overlay the default table, in the order they apply: profiles/calibration/<gpu>.yaml
    (kernels_bench calibrate on this machine, or a committed overlay such as b200.yaml's W4A16 curve) when present,
    then, with `silicon`, the engine's imported silicon tables (silicon_file: curves and shape surfaces), and over
    them one engine `version`'s import when given: its tables replace those op kinds and dtypes, the ones that version
    did not measure keep the newest (aiconfigurator-core's older collections are often MoE tables alone)."""
    if not gpu:
        return ()
    local = CAL_DIR / f"{gpu}.yaml"
    imported = (silicon_file(gpu, engine), silicon_file(gpu, engine, version) if version else None) if silicon else ()
    return tuple(p for p in (local if local.is_file() else None, *imported) if p is not None)


@lru_cache(maxsize=64)
def efficiency_for(gpu: str | None, engine: str | None = None, silicon: bool = False,
                   version: str | None = None) -> Efficiency:
    """Default table, overlaid by calibration_files(gpu, engine, silicon) in turn; with an engine `version`, each op
    kind that version's import measured is that import's whole (curves, surfaces and configuration factors over the
    default and GPU tables), the other kinds the newest import's: a surface is a factor over the curves it was fitted
    on, so one version's surfaces never sit on another's curves."""
    eff = _read(CAL_DIR / "default.yaml", None)
    for path in calibration_files(gpu, engine, silicon):
        eff = _read(path, eff)
    chosen = silicon_file(gpu, engine, version) if silicon and version else None
    if chosen is None:
        return eff
    own = _read(chosen, efficiency_for(gpu))  # over the default and GPU tables, as the newest import is
    kinds = set(require_mapping(load_document(chosen), str(chosen)).get("ops") or {})
    return replace(eff, ops={k: own.ops[k] if k in kinds else e for k, e in eff.ops.items()},
                   files=(*eff.files, str(chosen)))
