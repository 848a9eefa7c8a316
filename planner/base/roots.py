"""Roots of monotone functions by a bracketing method (the sizing search's capacities, percentile tails)."""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite, sqrt


def narrow(f: Callable[[float], float], lo: float, f_lo: float, hi: float, f_hi: float,
           rel_tol: float) -> tuple[float, float]:
    """The bracket [lo, hi] of a root of increasing `f` (f(lo) = f_lo <= 0 < f(hi) = f_hi, lo >= 0) narrowed until
    hi <= lo (1 + rel_tol), by the Illinois form of regula falsi: the secant through the bracket's ends, the retained
    end's value halved when the same end moves twice running (so one end cannot stall the bracket), a secant point
    closer to an end than a factor sqrt(1 + rel_tol) moved to that distance (a root near an end closes the bracket in
    one more step), the geometric midpoint where an end's value is not finite (the arithmetic one from lo = 0)."""
    side, nudge = 0, sqrt(1 + rel_tol)
    while hi > lo * (1 + rel_tol):
        if isfinite(f_lo) and isfinite(f_hi) and f_hi > f_lo:
            r = min(max(hi - f_hi * (hi - lo) / (f_hi - f_lo), lo * nudge), hi / nudge)
        else:
            r = sqrt(lo * hi) if lo > 0 else hi / 2
        f_r = f(r)
        if f_r <= 0:
            lo, f_lo = r, f_r
            if side == 1:
                f_hi /= 2
            side = 1
        else:
            hi, f_hi = r, f_r
            if side == -1:
                f_lo /= 2
            side = -1
    return lo, hi
