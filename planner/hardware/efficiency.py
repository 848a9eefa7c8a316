"""Efficiency as data: achievable fraction of peak per op class, from profiles/calibration/.

`efficiency_for(gpu, engine)` returns the default table (published kernel measurements) overlaid with
`profiles/calibration/<gpu>-<engine>.yaml` (silicon tables of that engine, `kernels_bench import-silicon`) when
present, else `profiles/calibration/<gpu>.yaml` when kernels_bench has written one (`calibration_file`). "Theoretical"
and "calibrated" estimates are the same code with a different table (STYLE.md habit 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, check_keys, get_number, load_document, require_mapping

CAL_DIR = PROFILES / "calibration"
OP_KINDS = ("gemm", "grouped_gemm", "attention_decode", "attention_prefill", "elementwise", "cpu_experts")
# GEMM compute dtypes (planner.perf.roofline FALLBACK_DTYPE); int4 names the W4A16 kernels (INT4 weights dequantized
# in the GEMM, BF16 activations: Marlin / Machete / CUTLASS mixed-input) whose curve a grouped_gemm table may carry
DTYPES = ("fp4", "fp8", "int8", "int4", "bf16", "fp16")
COMM_KEYS = ("allreduce_latency_s", "allreduce_latency_cross_node_s", "allreduce_busbw_fraction",
             "alltoall_latency_s", "alltoall_nvlink_fraction", "rdma_bytes_per_s_per_gpu", "pcie_fraction")


@dataclass(frozen=True)
class Curve:
    points: tuple[tuple[float, float], ...]  # (m, fraction), m ascending; one point = constant

    def at(self, m: float) -> float:
        pts = self.points
        if len(pts) == 1 or m <= pts[0][0]:
            return pts[0][1]
        if m >= pts[-1][0]:
            return pts[-1][1]
        for (m0, f0), (m1, f1) in zip(pts, pts[1:], strict=False):
            if m0 <= m <= m1:
                x = (math.log(m) - math.log(m0)) / (math.log(m1) - math.log(m0))
                return f0 + x * (f1 - f0)
        return pts[-1][1]


@dataclass(frozen=True)
class OpEfficiency:
    compute: Curve  # fraction of peak FLOP/s vs GEMM rows
    memory: Curve  # fraction of peak memory bandwidth vs GEMM rows
    floor_s: float  # launch/latency floor per op occurrence
    # compute curves of dtypes whose kernels reach a different fraction of their own peak (FP4 GEMMs run at a
    # lower fraction of the FP4 peak than FP8/BF16 GEMMs of the same shape reach of theirs)
    compute_by_dtype: tuple[tuple[str, Curve], ...] = ()

    def compute_for(self, dtype: str) -> Curve:
        return next((c for d, c in self.compute_by_dtype if d == dtype), self.compute)


@dataclass(frozen=True)
class Efficiency:
    device: str  # "default" or the calibrated device name
    ops: dict  # kind -> OpEfficiency
    comm: dict  # COMM_KEYS -> value
    files: tuple[str, ...]  # tables this came from


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


def _read(path, base: Efficiency | None) -> Efficiency:
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, ("device", "source", "ops", "comm", "fit", "notes", "runs"), file)
    ops = dict(base.ops) if base else {}
    for kind, entry in require_mapping(doc.get("ops") or {}, file, "ops").items():
        if kind not in OP_KINDS:
            raise PlannerError(f"unknown op kind (known: {', '.join(OP_KINDS)})", file=file, field=f"ops.{kind}")
        entry = require_mapping(entry, file, f"ops.{kind}")
        check_keys(entry, ("compute", "memory", "floor_s", "compute_by_dtype", "source", "n", "holdout_error"), file,
                   f"ops.{kind}.")
        old = ops.get(kind)
        if old is None and not ("compute" in entry and "memory" in entry):
            raise PlannerError("a new op kind needs both compute and memory", file=file, field=f"ops.{kind}")
        by_dtype = dict(old.compute_by_dtype) if old else {}
        if entry.get("compute_by_dtype") is not None:
            by_dtype |= dict(read_curves(entry["compute_by_dtype"], DTYPES, file, f"ops.{kind}.compute_by_dtype"))
        ops[kind] = OpEfficiency(
            read_curve(entry["compute"], file, f"ops.{kind}.compute") if "compute" in entry else old.compute,
            read_curve(entry["memory"], file, f"ops.{kind}.memory") if "memory" in entry else old.memory,
            get_number(entry, "floor_s", file, prefix=f"ops.{kind}.", default=old.floor_s if old else 0.0,
                       minimum=0, maximum=1),
            tuple(sorted(by_dtype.items())))
    comm = dict(base.comm) if base else {}
    c = require_mapping(doc.get("comm") or {}, file, "comm")
    check_keys(c, COMM_KEYS, file, "comm.")
    for key in c:
        comm[key] = get_number(c, key, file, prefix="comm.", minimum=0)
    missing = [k for k in OP_KINDS if k not in ops] + [k for k in COMM_KEYS if k not in comm]
    if missing:
        raise PlannerError(f"missing {', '.join(missing)}", file=file)
    return Efficiency(str(doc.get("device") or path.stem), ops, comm, (base.files if base else ()) + (file,))


def calibration_file(gpu: str | None, engine: str | None = None):
    """The calibration that overlays the default table for this GPU and engine: profiles/calibration/<gpu>-<engine>.yaml
    (kernels_bench import-silicon: the engine's kernels measured on that GPU) when present, else <gpu>.yaml
    (kernels_bench calibrate), else None (the default table alone)."""
    if not gpu:
        return None
    for stem in ((f"{gpu}-{engine}",) if engine else ()) + (gpu,):
        if (CAL_DIR / f"{stem}.yaml").is_file():
            return CAL_DIR / f"{stem}.yaml"
    return None


@lru_cache(maxsize=64)
def efficiency_for(gpu: str | None, engine: str | None = None) -> Efficiency:
    """Default table, overlaid by calibration_file(gpu, engine) when there is one."""
    eff = _read(CAL_DIR / "default.yaml", None)
    path = calibration_file(gpu, engine)
    return _read(path, eff) if path else eff
