"""The dashboard's figures of a simulated serving run (dashboard/figures.py): pure functions of estimate's
`simulation` block and percentile metrics (planner/serving/estimate.py, simstats.py)."""

from __future__ import annotations

import pytest

from dashboard import figures as D
from planner.deploy.scenario import make_scenario
from planner.serving.estimate import estimate
from planner.serving.simstats import DISTRIBUTION_QUANTILES

SIM = {
    "client": {"concurrency": 4, "num_prompts": 4, "input_len": "fixed", "output_len": "fixed"},
    "summary_line": "simulated 4 requests",
    "timeline": {"t_s": [0.0, 1.0, 2.0], "running": [0.0, 4.0, 2.0], "queued": [4.0, 0.0, 0.0],
                 "kv_used": [0.0, 0.5, 0.25], "in_flight": [4.0, 4.0, 2.0]},
    "distributions": {"q": [0, 50, 100], "ttft_ms": [100.0, 200.0, 400.0], "tpot_ms": [10.0, 12.0, 20.0],
                      "e2e_latency_ms": [1e3, 2e3, 3e3], "itl_ms": [9.0, 12.0, 30.0]},
}
METRICS = {"ttft_ms": 210.0, "ttft_p50_ms": 200.0, "ttft_p90_ms": 350.0, "ttft_p99_ms": 395.0,
           "tpot_ms": 40.0,  # the closed forms' mean: no percentiles, no row
           "itl_ms": 12.0, "itl_p50_ms": 12.0, "itl_p90_ms": 25.0, "itl_p99_ms": 30.0,
           "e2e_latency_ms": 2e3, "e2e_latency_p50_ms": 2e3, "e2e_latency_p90_ms": 2.8e3, "e2e_latency_p99_ms": 3e3}


def test_timeline_figure_has_requests_and_kv_on_its_own_axis():
    tl = D.timeline_table(SIM)
    assert list(tl.columns) == ["t_s", "running", "queued", "in_flight", "kv_used"] and len(tl) == 3
    fig = D.sim_timeline(tl)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"running in the engine", "queued (engine and API server)", "in flight at the client",
                           "KV pool used"}
    assert list(traces["running in the engine"].y) == [0.0, 4.0, 2.0]
    assert traces["KV pool used"].yaxis == "y2" and traces["queued (engine and API server)"].yaxis == "y"
    assert fig.layout.yaxis2.tickformat == ".0%"
    assert fig.layout.title.text.startswith("Simulated run")


def test_percentile_table_and_distributions():
    table = D.percentile_table(METRICS)
    assert list(table["latency"]) == ["TTFT", "ITL", "E2E latency"]
    assert table.set_index("latency").loc["TTFT"].tolist() == [210.0, 200.0, 350.0, 395.0]
    dist = D.distribution_table(SIM)
    assert len(dist) == 12 and set(dist["latency"]) == {"TTFT", "TPOT", "ITL", "E2E latency"}
    fig = D.latency_cdf(dist)
    assert {t.name for t in fig.data} == {"TTFT", "TPOT", "ITL", "E2E latency"}
    ttft = next(t for t in fig.data if t.name == "TTFT")
    assert list(ttft.x) == [100.0, 200.0, 400.0] and list(ttft.y) == [0, 50, 100]
    assert D.distribution_table({"timeline": SIM["timeline"]}).empty  # an older block without distributions


@pytest.fixture(scope="module")
def doc():
    sc = make_scenario("kimi-k2.5", weights="int4-g32", gpu="h200-sxm", gpus_per_node=8, nodes=1,
                       parallelism={"tp": 8}, engine="vllm", file="test",
                       workload={"phase": "serve", "input_len": 2000, "output_len": 200, "concurrency": 16,
                                 "output_len_dist": "exponential"})
    return estimate(sc)


def test_estimate_distributions_agree_with_its_percentiles(doc):
    m, dist = doc["metrics"], doc["simulation"]["distributions"]
    assert dist["q"] == list(DISTRIBUTION_QUANTILES)
    for key in ("ttft", "tpot", "itl", "e2e_latency"):
        values = dist[f"{key}_ms"]
        assert values == sorted(values) and len(values) == len(dist["q"])
        for q in (50, 90, 99):
            assert values[dist["q"].index(q)] == pytest.approx(m[f"{key}_p{q}_ms"])
    # the figures take the real block as it comes
    assert len(D.sim_timeline(D.timeline_table(doc["simulation"])).data) == 4
    assert len(D.percentile_table(m)) == 4
    assert len(D.latency_cdf(D.distribution_table(doc["simulation"])).data) == 4
