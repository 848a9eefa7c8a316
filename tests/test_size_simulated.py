"""Sizing re-runs its reported plans in the serving simulator (planner.sizing.simulated, issue 18 item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.sizing import simulated
from planner.sizing.search import size
from planner.sizing.workload import workload_from_mapping

BASE = {
    "model": "kimi-k2.5", "weights": ["int4-g32"], "kv_cache": ["fp8"], "context_len": 32768,
    "traffic": {"requests_per_s": 1.0, "input_len": 2000, "output_len": 500},
    "slo": {"ttft_ms": 5000, "tpot_ms": 50, "percentile": 99}, "purchase": "rent", "top": 2,
    "search": {"classes": ["gpu_server"], "accelerators": ["h200-sxm"], "max_nodes": 1},
}


def workload(**over):
    return workload_from_mapping({**BASE, **over}, "test-workload.yaml")


@pytest.fixture(scope="module")
def doc():
    return size(workload())


def test_reported_plans_are_simulated_and_meet_the_slo_there(doc):
    assert doc["plans"] and doc["summary"]["simulated"] >= len(doc["plans"])
    for p in doc["plans"]:
        sim = p["simulation"]
        assert sim["meets_slo"] and sim["replicas"] == p["replicas"]
        assert sim["client"]["request_rate"] == pytest.approx(1.0 / p["replicas"])
        for key in ("ttft_ms", "tpot_ms"):  # the SLO at p99 is judged on the simulated p99
            assert p["slo"][key]["source"] == "simulation" and p["slo"][key]["percentile"] == 99
            assert p["slo"][key]["value"] <= p["slo"][key]["limit"]


def test_a_simulated_miss_adds_replicas_then_drops_the_plan(monkeypatch, doc):
    """Replicas are added one at a time while the simulation misses; past MAX_ADDED the plan is out, counted as an
    SLO rejection that says what the simulation found."""
    plan = doc["plans"][0]
    calls = []

    def fake(cand, mem, wl, replicas):
        calls.append(replicas)
        met = replicas >= plan["replicas"] + 2
        return {"replicas": replicas, "slo": {"tpot_ms": {"limit": 50.0, "value": 40.0 if met else 60.0, "met": met}},
                "meets_slo": met}

    monkeypatch.setattr(simulated, "run", fake)
    n, block = simulated.replicas_simulated(None, None, workload(), plan["replicas"])
    assert (n, block["added_replicas"]) == (plan["replicas"] + 2, 2)
    assert calls == [plan["replicas"], plan["replicas"] + 1, plan["replicas"] + 2]
    monkeypatch.setattr(simulated, "run", lambda cand, mem, wl, r: {
        "replicas": r, "slo": {"tpot_ms": {"limit": 50.0, "value": 60.0, "met": False}}, "meets_slo": False})
    strict = size(workload())
    assert not strict["plans"]
    assert any("SLO missed in the serving simulator" in k and "tpot_ms 60.0 vs 50.0" in k for k in strict["rejected"])


def test_more_traffic_per_replica_never_lowers_simulated_latency(doc):
    """Judged on one replica's share: fewer replicas for the same traffic never make the simulated TTFT or TPOT
    percentiles smaller."""
    from planner.sizing.search import evaluate, refine

    wl = workload()
    rows, rej, _ = evaluate(wl, workers=1)
    row = refine(rows, wl, rej)[0]
    lat = []
    for replicas in (4, 2, 1):
        s = simulated.run(row.cand, row.mem, wl, replicas)
        lat.append((s["slo"]["ttft_ms"]["value"], s["slo"]["tpot_ms"]["value"]))
    assert all(np.diff([x[0] for x in lat]) >= -1e-9) and all(np.diff([x[1] for x in lat]) >= -1e-9)


def test_users_are_a_closed_loop_with_spread_lengths():
    wl = workload(traffic={"concurrency": 40, "input_len": 2000, "output_len": 500})
    cl = simulated.client(wl, replicas=3)
    assert (cl.concurrency, cl.rate, cl.num_prompts) == (14, None, 14 * simulated.PROMPTS_PER_USER)
    assert cl.output.dist == "uniform" and cl.output.range_ratio == simulated.LENGTH_SPREAD
