"""A simulated run given up once its SLO verdict is settled (planner.serving.sim.simulate's give_up, as sizing uses
it: planner.sizing.simulated.give_up): an overloaded plan's queue grows without end, and simulating all of it took
minutes (`planner size` on the long-document preset). Giving up must never change a verdict."""

import numpy as np
import pytest

from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.serving.client import Client, Lengths
from planner.serving.sim import simulate
from planner.sizing.simulated import give_up, judge
from planner.sizing.workload import workload_from_mapping


def _sc():
    return make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine="sglang",
                         parallelism={"tp": 8}, workload={"phase": "serve", "request_rate": 1.0, "input_len": 8192,
                                                          "output_len": 64})


def _wl(slo):
    doc = {"name": "t", "model": "deepseek-r1", "context_len": 16384,
           "traffic": {"requests_per_s": 1.0, "input_len": 8192, "output_len": 64}, "slo": slo, "purchase": "rent"}
    return workload_from_mapping(doc, "t.yaml")


@pytest.mark.parametrize("slo", [{"ttft_ms": 2000, "percentile": 99}, {"ttft_ms": 2000, "percentile": 50},
                                 {"ttft_ms": 2000}])
def test_an_overloaded_run_stops_early_and_its_verdict_is_the_full_runs(slo):
    sc, wl = _sc(), _wl(slo)
    n = 300
    overload = Client(n, Lengths(8192), Lengths(64), rate=60.0)  # far more prompt tokens than the engine prefills
    full = simulate(sc, memory_report(sc), overload)
    cut = simulate(sc, memory_report(sc), overload, give_up(wl, n))
    assert full.stopped_s is None and cut.stopped_s is not None
    assert cut.stopped_s < 0.5 * full.duration_s  # it stopped well before the end
    assert "stopped at" in cut.summary_line()
    for res in (full, cut):
        assert not judge(wl, res)["ttft_ms"]["met"]
    assert judge(wl, cut)["ttft_ms"]["value"] >= slo["ttft_ms"]
    # the floors are floors: no request's TTFT so far exceeds the one it got in the full run
    assert len(cut.ttft_s) <= n and float(np.max(cut.ttft_s)) <= float(np.max(full.ttft_s)) + 1e-9


def test_a_run_that_meets_its_slo_is_never_given_up():
    sc, wl = _sc(), _wl({"ttft_ms": 60000, "percentile": 99})
    light = Client(100, Lengths(8192), Lengths(64), rate=0.5)
    full = simulate(sc, memory_report(sc), light)
    cut = simulate(sc, memory_report(sc), light, give_up(wl, 100))
    assert cut.stopped_s is None and judge(wl, cut)["ttft_ms"]["met"]
    assert np.array_equal(cut.ttft_s, full.ttft_s)


def test_the_percentile_rule_is_exact():
    """give_up fires exactly when the n - floor((n - 1) p / 100) largest TTFTs exceed the limit, which is when
    numpy's percentile (linear) exceeds it, whatever the rest are."""
    wl = _wl({"ttft_ms": 1000, "percentile": 90})
    n = 21  # (n - 1) x 0.9 = 18: the 19th smallest and above decide
    stop = give_up(wl, n)
    late = np.full(n, np.nan)
    late[:2] = 5.0
    assert not stop(late)
    ttft = np.concatenate([np.zeros(n - 2), [5.0, 5.0]])
    assert np.percentile(ttft, 90) <= 1.0
    late[2] = 5.0
    assert stop(late)
    assert np.percentile(np.concatenate([np.zeros(n - 3), [5.0] * 3]), 90) > 1.0
    assert give_up(_wl({"tpot_ms": 50}), n) is None
