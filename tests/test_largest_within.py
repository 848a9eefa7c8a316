"""planner.serving.point.largest_within: the largest running batch within the SLO, by regula falsi on the excess."""

from math import inf, log

import pytest

from planner.serving.point import REL_TOL, largest_within


def counted(f):
    calls = []

    def g(r):
        calls.append(r)
        return f(r)
    return g, calls


@pytest.mark.parametrize("root", [1.3, 7.0, 42.5, 300.0, 999.0])
@pytest.mark.parametrize("shape", ["linear", "log", "convex", "step_inf"])
def test_finds_the_boundary_within_tolerance_and_keeps_lo_inside(root, shape):
    f = {"linear": lambda r: r / root - 1,
         "log": lambda r: log(r / root),
         "convex": lambda r: (r / root) ** 3 - 1,
         "step_inf": lambda r: inf if r > 1.5 * root else r / root - 1}[shape]
    for hint in (None, root * 0.8, root * 1.25, 2.0):
        got = largest_within(f, 1000.0, hint)
        assert f(got) <= 0
        assert root / (1 + REL_TOL) <= got <= root * (1 + 1e-12)


def test_none_when_one_sequence_misses_and_cap_when_cap_holds():
    assert largest_within(lambda r: 0.1, 100.0) is None
    assert largest_within(lambda r: -0.5, 100.0) == 100.0
    assert largest_within(lambda r: r - 150.0, 100.0, hint=50.0) == 100.0


def test_fewer_evaluations_than_bisection_on_a_smooth_excess():
    """A TPOT that grows with the batch: regula falsi takes fewer evaluations than the ~log2(ln(cap) / ln(1.01))
    bisection would (10 from [1, 1000])."""
    f, calls = counted(lambda r: (8 + 0.05 * r) / 20 - 1)  # TPOT limit 20 ms: root at r = 240
    got = largest_within(f, 1000.0)
    assert got == pytest.approx(240, rel=REL_TOL)
    assert len(calls) < 8


def test_a_tight_tolerance_converges():
    f, calls = counted(lambda r: r ** 0.5 / 5 - 1)  # root at 25
    got = largest_within(f, 1e4, rel_tol=1e-9)
    assert got == pytest.approx(25, rel=1e-8) and f(got) <= 0
    assert len(calls) < 60
