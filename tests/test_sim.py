"""The serving simulator (planner.serving.sim): relations from issue 18's "Done when", and the step table against
the step-time model it stands for."""

import numpy as np
import pytest

from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.perf.steps import mixed_step
from planner.serving.client import Client, Lengths
from planner.serving.estimate import estimate
from planner.serving.sim import Sched, simulate
from planner.serving.simstats import in_flight_mean
from planner.serving.steptable import StepTable


def _sc(engine="sglang", par=None, concurrency=8, inp=1024, out=64):
    return make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine=engine,
                         parallelism=par or {"tp": 8}, workload={"phase": "serve", "concurrency": concurrency,
                                                                 "input_len": inp, "output_len": out})


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_more_concurrency_never_lowers_mean_ttft(engine):
    sc = _sc(engine)
    mem = memory_report(sc)
    ttfts = []
    for c in (1, 2, 4, 8, 16, 32, 64):
        res = simulate(sc, mem, Client(4 * c, Lengths(1024), Lengths(64), concurrency=c))
        ttfts.append(float(np.mean(res.ttft_s)))
    assert all(b >= a * (1 - 1e-9) for a, b in zip(ttfts, ttfts[1:], strict=False)), ttfts


def test_burst_never_finishes_before_its_intake():
    sc = _sc("vllm")
    n = 200
    res = simulate(sc, memory_report(sc), Client(n, Lengths(256), Lengths(16)))  # all at t = 0, no limit
    assert sc.engine.request_ingest_s > 0
    assert res.duration_s >= n * sc.engine.request_ingest_s
    assert float(np.min(res.ttft_s)) >= n * sc.engine.request_ingest_s  # nothing streams during the intake


@pytest.mark.parametrize("client", [Client(300, Lengths(1024), Lengths(128, "exponential"), concurrency=24),
                                    Client(200, Lengths(512, "uniform", 0.5), Lengths(64), rate=20.0)])
def test_littles_law_on_the_timeline(client):
    sc = _sc("vllm")
    res = simulate(sc, memory_report(sc), client)
    sent = res.e2e_s  # requests' lives: mean in flight from the sampled timeline vs throughput x mean latency
    from_timeline = float(np.trapezoid(res.in_flight, res.grid_s) / res.duration_s)
    little = res.requests / res.duration_s * float(np.mean(sent))
    assert from_timeline == pytest.approx(little, rel=0.02)
    assert res.in_flight_mean == pytest.approx(little, rel=1e-9)


def test_in_flight_mean_counts_each_request_life():
    assert in_flight_mean(np.array([0.0, 1.0]), np.array([2.0, 3.0]), 4.0) == pytest.approx(1.0)


@pytest.mark.parametrize("concurrency, busy_ranks", [(1, 1), (2, 2), (4, 4)])
def test_attention_dp_system_bounded_by_its_users(concurrency, busy_ranks):
    """Kimi-style DP attention (tp 2 x dp_attention 4): a system of C users never outruns C of them; with C < 4
    some ranks have no request."""
    sc = _sc("sglang", {"tp": 2, "dp_attention": 4, "ep": 8}, concurrency=concurrency, out=128)
    m = estimate(sc)["metrics"]
    assert m["system_output_tokens_per_s"] <= busy_ranks * m["output_tokens_per_s_per_user"] * (1 + 1e-9)
    assert m["system_output_tokens_per_s"] >= 0.5 * busy_ranks * m["output_tokens_per_s_per_user"]


def test_estimate_reports_the_simulation():
    doc = estimate(_sc("vllm", concurrency=16))
    m, sim = doc["metrics"], doc["simulation"]
    assert m["ttft_p50_ms"] <= m["ttft_p90_ms"] <= m["ttft_p99_ms"]
    assert m["tpot_p50_ms"] <= m["tpot_p99_ms"] and m["itl_p50_ms"] > 0
    assert sim["summary"]["requests"] == 16 and sim["summary"]["peak_running"] <= 16
    assert len(sim["timeline"]["t_s"]) == len(sim["timeline"]["running"])
    assert "simulated 16 requests" in sim["summary_line"]
    assert estimate(_sc("vllm", concurrency=None))["simulation"] is None


@pytest.mark.parametrize("b, kv, tokens", [(8, 1500, 1024), (32, 1500, 512), (64, 1100, 4096)])
def test_step_table_mixed_matches_the_step_model(b, kv, tokens):
    sc = _sc("vllm")
    table = StepTable(sc, 512, 2600)
    t = sc.parallelism.tp
    exact = mixed_step(sc, b / t, kv, tokens / t, tokens, 0.0).seconds
    assert table.mixed(b, kv, tokens, tokens / 2) == pytest.approx(exact, rel=0.10)


def test_kv_pool_full_preempts_and_still_finishes():
    sc = _sc("vllm")
    mem = memory_report(sc)
    sched = Sched.of(sc, mem)
    assert sched.kv_tokens > 0
    res = simulate(sc, mem, Client(64, Lengths(20000), Lengths(2000), concurrency=64))
    assert res.requests == 64 and np.all(np.isfinite(res.e2e_s))
    assert float(np.max(res.kv_used)) <= 1 + 1e-9


def test_a_scenario_states_how_many_prompts_its_benchmark_sent():
    """workload.num_prompts (vllm bench serve --num-prompts) sets the simulated client's prompt count; without it a
    concurrency C sends C prompts."""
    from planner.deploy.scenario_file import scenario_from_mapping
    from planner.serving.client import client_for

    doc = {"model": "kimi-k2.5", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8}, "parallelism": {"tp": 8},
           "engine": "vllm", "workload": {"phase": "serve", "concurrency": 4, "input_len": 512, "output_len": 64}}
    assert client_for(scenario_from_mapping(doc, "t")).num_prompts == 4
    doc["workload"]["num_prompts"] = 40
    assert client_for(scenario_from_mapping(doc, "t")).num_prompts == 40
