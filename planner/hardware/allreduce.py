"""Measured all-reduce inside one node, per GPU count and message size: a silicon calibration's
`comm.allreduce_by_gpus` (kernels_bench import-silicon reads it from an engine's own all-reduce table), which
planner.perf.roofline.comm_time takes in place of the latency + bytes / bus-bandwidth model where it has the group's
GPU count."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from planner.base.errors import PlannerError
from planner.base.yamlio import require_mapping


@dataclass(frozen=True)
class AllReduceTable:
    """An engine's all-reduce among `gpus` GPUs of one node, measured per message size (kernels_bench
    import-silicon: the engine's own all-reduce under CUDA graphs, which picks its one-shot / two-shot / NCCL
    algorithm by size, so the time is not one latency plus bytes over one bandwidth). Read linearly in
    (log bytes, log seconds) between sizes, the smallest size's time below it, and past the largest at that size's
    bandwidth (time proportional to bytes: a ring all-reduce of large messages moves 2 (g - 1) / g x bytes)."""

    gpus: int
    points: tuple[tuple[float, float], ...]  # (bytes, seconds), bytes ascending

    @cached_property
    def _logs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.log([p[0] for p in self.points]), np.log([p[1] for p in self.points])

    def seconds(self, size):
        """Seconds for message `size` bytes (a float, or a numpy array of them)."""
        b, t = self._logs
        x = np.asarray(size, dtype=float)
        inside = np.exp(np.interp(np.log(np.maximum(x, 1.0)), b, t))
        out = np.where(x > self.points[-1][0], self.points[-1][1] * x / self.points[-1][0], inside)
        return float(out) if out.ndim == 0 else out


def read_allreduce(value: Any, file: str, field: str) -> dict[int, AllReduceTable]:
    """{GPUs (an integer >= 2): [[bytes, seconds], ...] with bytes ascending, all positive}."""
    out = {}
    for g, points in require_mapping(value, file, field).items():
        where = f"{field}.{g}"
        if isinstance(g, bool) or not (isinstance(g, int) or (isinstance(g, str) and g.isdigit())) or int(g) < 2:
            raise PlannerError("expected a GPU count of at least 2", file=file, field=where)
        if not (isinstance(points, list) and points and all(
                isinstance(p, list) and len(p) == 2 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in p) for p in points)
                and [p[0] for p in points] == sorted({p[0] for p in points})):
            raise PlannerError("expected [[bytes, seconds], ...] with bytes ascending, all positive", file=file,
                               field=where)
        out[int(g)] = AllReduceTable(int(g), tuple((float(b), float(t)) for b, t in points))
    return out
