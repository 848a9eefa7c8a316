"""Shape surfaces of the silicon kernel tables (planner.hardware.efficiency OpEfficiency.shape_by_dtype): a speed
factor over shape variables read off an op record, interpolated on a grid of knots."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# shape variables a surface may use, each read off a planner.perf.op_record.Op (duck-typed: this floor does not
# import planner.perf): m = GEMM rows (rows per expert for grouped GEMMs, query rows for attention), depth = reduction
# depth K (1 when the op has none), width = FLOP / (2 m depth) (a GEMM's output columns on this GPU; the touched
# experts' columns together for a grouped GEMM; heads x context for attention), bytes = bytes moved, context = KV
# bytes read / written (tokens of context per new token: a decode step's context length)
SHAPE_AXES = ("m", "depth", "width", "bytes", "context")


def _rows(op) -> float:
    return max(op.m or 1, 1)


def _depth(op) -> float:
    return max(op.depth or 1.0, 1.0)


# each SHAPE_AXES variable of an op record (width: FLOP per row per unit of depth, over 2 for the multiply-add;
# context: KV read over KV written, the tokens each new token attends to)
_AXIS_VALUE = {"m": _rows, "depth": _depth, "bytes": lambda op: op.bytes,
               "width": lambda op: op.flops / (2 * _rows(op) * _depth(op)) if op.flops else 1.0,
               "context": lambda op: op.kv_read_bytes / op.kv_write_bytes if op.kv_write_bytes else 1.0}


def shape_axis(op, axis: str) -> float:
    """The value of one SHAPE_AXES variable for an op record, at least 1."""
    return max(float(_AXIS_VALUE[axis](op)), 1.0)


@dataclass(frozen=True)
class Surface:
    """A factor over a grid of shape variables: multilinear in log(variable) between knots, geometric in the factor
    (linear in its log), held flat beyond the outer knots."""

    axes: tuple[str, ...]  # SHAPE_AXES names
    knots: tuple[tuple[float, ...], ...]  # per axis, ascending
    factors: tuple[float, ...]  # row-major over the knots (last axis fastest)

    @cached_property
    def _logs(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
        """log of every knot (per axis, last axis first, as `at` walks them) and of every factor, taken once."""
        return (tuple(tuple(math.log(k) for k in knots) for knots in reversed(self.knots)),
                tuple(math.log(x) for x in self.factors))

    @cached_property
    def log_arrays(self) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """The same over arrays (planner.perf.sweep._surface): log factors (flat, row-major), log knots per axis in
        axis order, and each axis' stride in the flat factors."""
        sizes = [len(k) for k in self.knots]
        return (np.log(np.asarray(self.factors, dtype=float)), [np.log(np.asarray(k, dtype=float)) for k in self.knots],
                [int(np.prod(sizes[a + 1:])) for a in range(len(sizes))])

    def at(self, values: tuple[float, ...]) -> float:
        log_knots, log_factors = self._logs
        corners = [(0, 1.0)]
        stride = 1
        for knots, logs, v in zip(reversed(self.knots), log_knots, reversed(values), strict=True):
            if len(knots) == 1 or v <= knots[0]:
                i, f = 0, 0.0
            elif v >= knots[-1]:
                i, f = len(knots) - 2, 1.0
            else:  # knots[i] < v <= knots[i + 1]
                i = bisect_left(knots, v) - 1
                f = (math.log(v) - logs[i]) / (logs[i + 1] - logs[i])
            nxt = [(c + i * stride, w * (1 - f)) for c, w in corners]
            if len(knots) > 1:
                nxt += [(c + (i + 1) * stride, w * f) for c, w in corners if f > 0]
            corners, stride = nxt, stride * len(knots)
        return math.exp(sum(w * log_factors[c] for c, w in corners))

    def at_op(self, op) -> float:
        return self.at(tuple(shape_axis(op, a) for a in self.axes))
