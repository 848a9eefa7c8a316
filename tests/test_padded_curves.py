"""A GEMM's compute curve as a padding kernel runs it (planner.hardware.efficiency.padded): an op of m rows never
takes longer than the same op with more rows, on every curve the planner ships, and the roofline, the decode sweep
and the sizing screen read the same padded curve."""

from __future__ import annotations

from glob import glob
from pathlib import Path

import numpy as np
import pytest

from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import CAL_DIR, Curve, _read, efficiency_for, padded
from planner.perf.op_record import _gemm
from planner.perf.roofline import Machine, gpu_compute_seconds

GRID = np.geomspace(1, 65536, 2000)
# padded() samples its envelope 16 points per doubling of m and interpolates log-linearly: where the envelope is
# m x const its chords sit up to 0.03% above it, so time may dip that much between two samples
DIP = 5e-4


def _times(curve: Curve) -> np.ndarray:
    return np.array([m / curve.at(m) for m in GRID])  # compute time at fixed width and depth, up to a constant


def test_a_curve_that_keeps_time_rising_comes_back_unchanged():
    c = Curve(((1, 0.25), (32, 0.2847), (1024, 0.7711), (32768, 0.8052)))
    assert padded(c) == c
    assert padded(Curve(((8, 0.5),))) == Curve(((8, 0.5),))


def test_a_steep_rise_from_a_low_knot_is_padded():
    # H200 TRT-LLM fp8 GEMM curve of aiconfigurator-core's tables (import-silicon): 0.039 -> 0.42 from 32 to 1,024
    c = Curve(((1, 0.0241), (32, 0.0388), (1024, 0.4204), (32768, 0.5694)))
    t, p = _times(c), padded(c)
    assert np.any(np.diff(t) < 0)  # the fitted curve times 32 rows slower than 64
    tp = _times(p)
    assert np.all(np.diff(tp) >= -DIP * tp[1:])  # padded: never faster with more rows
    assert all(p.at(m) >= c.at(m) * (1 - 1e-12) for m in GRID)  # padding only ever helps
    # the envelope min over m' >= m of t(m'), to the sampling's precision
    envelope = np.minimum.accumulate(t[::-1])[::-1]
    assert tp == pytest.approx(envelope, rel=1e-2)  # within 1% (a chord across the kink where padding starts)
    # beyond the dip (from 61 rows, where f(m) / m peaks, and the next sample) the curve is its own
    assert all(p.at(m) == pytest.approx(c.at(m), rel=1e-6) for m in (100, 1024, 5000, 40000))


@pytest.mark.parametrize("path", sorted(glob(str(CAL_DIR / "**" / "*.yaml"), recursive=True)))
def test_every_shipped_gemm_curve_is_monotone_in_time_once_padded(path):
    eff = _read(Path(path), efficiency_for(None))
    for kind in ("gemm", "grouped_gemm"):
        e = eff.ops[kind]
        for curve in (e.compute, *(c for _, c in e.compute_by_dtype)):
            tp = _times(padded(curve))
            assert np.all(np.diff(tp) >= -DIP * tp[1:]), (path, kind, curve)


def test_the_roofline_times_a_gemm_with_the_padded_curve():
    acc = load_accelerator("h200-sxm")
    eff = efficiency_for("h200-sxm", "trtllm", silicon=True)
    m = Machine(acc, None, eff, 1, False, "bf16")
    times = [gpu_compute_seconds(_gemm("gemm", 1, rows, 8192, 65536, 65536 * 8192, "fp8"), m) for rows in
             (8, 16, 24, 32, 40, 48, 64, 96, 128)]
    assert all(b >= a * (1 - DIP) for a, b in zip(times, times[1:], strict=False))
