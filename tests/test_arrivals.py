"""Latency percentiles under random arrivals (planner.serving.arrivals), against MLPerf Server runs'
LoadGen statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from planner.deploy.scenario_file import scenario_from_mapping
from planner.serving.arrivals import length_nodes
from planner.serving.estimate import estimate
from planner.serving.serve import serve_point
from planner.serving.unstated import resolve_unstated_plan
from tests.scenario_util import scenario

RUNS = yaml.safe_load((Path(__file__).parent / "data" / "mlperf_server_latency.yaml").read_text())["runs"]
DATASETS = {"llama-3.1-405b": "mlperf-llama3.1-405b", "mixtral-8x7b": "mlperf-mixtral-8x7b",
            "llama-2-70b": "mlperf-llama2-70b"}


def _mlperf(run: dict, slo: dict | None):
    return scenario_from_mapping({
        "model": run["model"], "weights": run["weights"],
        "hardware": {"gpu": run["gpu"], "gpus_per_node": 8, "nodes": 1},
        "parallelism": {"tp": None, "ep": None, "pp": None, "dp_attention": None, "replicas": None},
        "engine": "trtllm",
        "workload": {"phase": "serve", "dataset": DATASETS[run["model"]]},
        "slo": slo}, run["system"])


def test_length_nodes_keep_the_mean_and_the_shape():
    q = ((0, 10), (50, 100), (90, 300), (100, 1000))
    x = length_nodes(250.0, q)
    assert x.mean() == pytest.approx(250.0)
    assert np.all(np.diff(x) >= 0) and x[-1] > 2 * np.median(x)  # the long tail survives the scaling
    e = length_nodes(200.0, dist="exponential")
    assert e.mean() == pytest.approx(200.0) and np.median(e) < 200.0
    assert np.all(length_nodes(300.0) == 300.0)  # nothing known: every request has the mean


def _chat(running_slo=None, **wl):
    workload = {"phase": "serve", "input_len": 2000, "output_len": 400, "output_len_dist": "exponential", **wl}
    return scenario(model="deepseek-v3", weights="fp8-block128", workload=workload,
                    slo=running_slo or {"ttft_ms": 5000, "tpot_ms": 100, "percentile": 99})


def test_percentiles_lie_above_the_means_and_grow_with_load():
    sc = _chat()
    light, heavy = serve_point(sc, 16), serve_point(sc, 128)
    for pt in (light, heavy):
        assert pt.tails.tpot_s >= pt.tpot_s and pt.tails.ttft_s >= pt.tails.ttft_mean_s
        assert pt.ttft_s == pytest.approx(pt.tails.ttft_mean_s)  # the mean TTFT includes the wait for prefill
    assert heavy.tails.prefill_load > light.tails.prefill_load
    assert heavy.tails.wait_s > light.tails.wait_s and heavy.tails.ttft_s > light.tails.ttft_s


def test_a_higher_percentile_is_a_stricter_slo():
    p90 = serve_point(_chat({"ttft_ms": 5000, "tpot_ms": 100, "percentile": 90}), 64).tails
    p99 = serve_point(_chat(), 64).tails
    assert p99.ttft_s > p90.ttft_s and p99.tpot_s > p90.tpot_s


def test_estimate_reports_percentiles_only_when_the_slo_names_one():
    with_pct = estimate(_chat())
    assert {"ttft_p99_ms", "tpot_p99_ms"} <= set(with_pct["metrics"])
    assert with_pct["serving"]["arrivals"] == "poisson"
    plain = estimate(_chat({"ttft_ms": 5000, "tpot_ms": 100}))
    assert "ttft_p99_ms" not in plain["metrics"] and "arrivals" not in plain["serving"]


@pytest.mark.parametrize("run", RUNS, ids=lambda r: f"{r['system']}-{r['benchmark']}")
def test_tpot_spread_matches_loadgen(run):
    """p99 / mean TPOT at the planner's Server operating point against LoadGen's (a ratio: the operating points
    differ where the planner's step time does)."""
    if run.get("known_gap"):
        pytest.xfail(run["known_gap"])
    sc, _ = resolve_unstated_plan(_mlperf(run, run["slo"]))
    doc = estimate(sc)
    m = doc["metrics"]
    published = run["tpot_ms"]["p99"] / run["tpot_ms"]["mean"]
    assert m["tpot_p99_ms"] / m["tpot_ms"] == pytest.approx(published, abs=0.1)


def test_long_prompts_spread_tpot_most():
    """Llama 3.1 405B (9.4k-token prompts) varies most; short-prompt sets vary little (LoadGen: 1.30 vs 1.06-1.10)."""
    ratio = {}
    for run in RUNS:
        m = estimate(_mlperf(run, run["slo"]))["metrics"]
        ratio[(run["gpu"], run["model"])] = m["tpot_p99_ms"] / m["tpot_ms"]
    long = ratio[("b200", "llama-3.1-405b")]
    assert long > ratio[("b200", "mixtral-8x7b")] and long > ratio[("h200-sxm", "llama-2-70b")]


def test_p99_slo_explains_the_server_offline_gap():
    """MLPerf v5.0 H200 Llama 3.1 405B: Server 291 tok/s against Offline 561. Under the SLO at the 99th percentile
    the planner lands within 20% of the Server result; checked on the mean it would be within 20% of Offline."""
    run = next(r for r in RUNS if r["gpu"] == "h200-sxm" and r["model"] == "llama-3.1-405b")
    at_p99 = estimate(_mlperf(run, run["slo"]))["metrics"]["system_output_tokens_per_s"]
    on_mean = estimate(_mlperf(run, {k: v for k, v in run["slo"].items() if k != "percentile"}))["metrics"]
    assert at_p99 == pytest.approx(run["server_tokens_per_s"], rel=0.2)
    assert on_mean["system_output_tokens_per_s"] > 1.4 * run["server_tokens_per_s"]


def test_tpot_tail_slope_is_a_secant_over_the_batch_spread():
    """A kink of the efficiency tables at one or two sequences (H200 TRT-LLM silicon tables: 23.0 ms decode steps
    at 1, 26.5 ms at 2, 24.7 ms at 4) must not read as the slope of the whole fluctuation: with a 10% local
    difference the p99 TPOT at one sequence was 127 ms over a 23 ms mean, and MLPerf Llama-2-70B Interactive found no
    load within its 40 ms p99 TPOT."""
    sc = scenario_from_mapping({
        "model": "llama-2-70b", "weights": "fp8", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1, "nodes": 1},
        "parallelism": {"tp": 1}, "engine": "trtllm", "engine_options": {"kernel_tables": "silicon"},
        "workload": {"phase": "serve", "dataset": "mlperf-llama2-70b"},
        "slo": {"ttft_ms": 450, "tpot_ms": 40, "percentile": 99}}, "<test>")
    for r in (1, 2, 4, 8):
        pt = serve_point(sc, r)
        assert pt.tpot_s <= pt.slo_tpot_s < 1.5 * pt.tpot_s, r
    m = estimate(sc)["metrics"]
    assert m["system_output_tokens_per_s"] > 10 * m["output_tokens_per_s_per_user"]  # > 10 sequences keep the SLO
