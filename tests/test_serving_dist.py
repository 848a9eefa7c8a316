"""Output lengths that vary around their mean in a `concurrency` run (workload.output_len_dist)."""

from __future__ import annotations

import pytest

from planner.base.errors import PlannerError
from planner.serving.estimate import estimate
from tests.scenario_util import scenario


def _serve(concurrency, dist, output_len=256):
    wl = {"phase": "serve", "concurrency": concurrency, "input_len": 1024, "output_len": output_len,
          "output_len_dist": dist}
    return estimate(scenario(model="deepseek-v3", weights="fp8-block128", workload=wl))


def test_fixed_is_the_default():
    wl = {"phase": "serve", "concurrency": 64, "input_len": 1024, "output_len": 256}
    plain = estimate(scenario(model="deepseek-v3", weights="fp8-block128", workload=wl))
    assert plain["metrics"] == _serve(64, "fixed")["metrics"]
    assert plain["serving"]["output_len_dist"] == "fixed"


def test_a_wave_of_one_request_decodes_its_mean_length():
    fixed, varied = _serve(1, "fixed")["metrics"], _serve(1, "exponential")["metrics"]
    for key in ("tpot_ms", "e2e_latency_ms", "system_output_tokens_per_s"):
        assert varied[key] == pytest.approx(fixed[key], rel=1e-3)


def test_varied_lengths_stretch_the_wave_and_lower_throughput():
    fixed, varied = _serve(256, "fixed")["metrics"], _serve(256, "exponential")["metrics"]
    # the wave lasts until its longest answer ends: fewer tokens per second for the same mean length
    assert varied["system_output_tokens_per_s"] < 0.8 * fixed["system_output_tokens_per_s"]
    # prompts are the same; simulated (planner.serving.sim), answers that end during the prefill leave their decode
    # tokens' share of the chunked-prefill steps to the prompts, so the TTFT moves a little (0.03% here)
    assert varied["ttft_ms"] == pytest.approx(fixed["ttft_ms"], rel=1e-3)
    # the mean request finishes before the wave does (256 requests of 256 tokens on average per wave)
    wave_ms = 1e3 * 256 * 256 / varied["system_output_tokens_per_s"]
    assert varied["e2e_latency_ms"] < wave_ms


def test_short_answers_that_wait_for_the_prefill_raise_mean_tpot():
    # with many prompts the wave's prefill is long; a 2-token answer's TPOT carries all of it
    small, big = _serve(8, "exponential")["metrics"], _serve(512, "exponential")["metrics"]
    assert big["tpot_ms"] > small["tpot_ms"]


def test_unknown_distribution_names_the_field():
    with pytest.raises(PlannerError) as err:
        _serve(8, "lognormal")
    assert "workload.output_len_dist" in str(err.value) and "exponential" in str(err.value)


def test_running_sequences_hold_length_biased_context():
    """Over the sequences decoding at a time, a long answer is present for more steps: mean context input + E[L^2] /
    (2 E[L]), so unequal answers need more KV per running sequence than equal ones of the same mean."""
    wl = {"phase": "serve", "input_len": 1000, "output_len": 3000}
    fixed = scenario(model="deepseek-v3", weights="fp8-block128", workload=wl)
    varied = scenario(model="deepseek-v3", weights="fp8-block128", workload={**wl, "output_len_dist": "exponential"})
    stated = scenario(model="deepseek-v3", weights="fp8-block128",
                      workload={**wl, "output_len_dist": "exponential", "kv_len": 1500})
    assert fixed.workload.mean_kv_len == 2500
    assert varied.workload.mean_kv_len == pytest.approx(1000 + (3000**2 + 2999**2) / 6000)
    assert stated.workload.mean_kv_len == 1500
    from planner.deploy.memory import memory_report

    assert memory_report(varied).max_batch_per_gpu < 0.7 * memory_report(fixed).max_batch_per_gpu


def _burst(n, engine="vllm"):
    wl = {"phase": "serve", "concurrency": n, "input_len": 128, "output_len": 64}
    return estimate(scenario(model="deepseek-v3", weights="fp8-block128", engine=engine, workload=wl))["metrics"]


def test_a_burst_waits_for_the_api_server_to_take_every_request_in():
    """vLLM's API server takes requests in one at a time and streams nothing meanwhile (engine request_ingest_s):
    1,000 short prompts sent at once all see their first token after about 1,000 x 19 ms."""
    from planner.deploy.engines import load_engine
    per_request = load_engine("vllm").request_ingest_s
    big, small = _burst(1000), _burst(4)
    assert big["ttft_ms"] >= 1000 * per_request * 1e3
    assert small["ttft_ms"] < 100 * per_request * 1e3  # a handful of requests is taken in at once
    assert big["ttft_ms"] == pytest.approx(2 * _burst(500)["ttft_ms"], rel=0.05)  # ingestion-bound: linear
    # an engine without the cost (ideal) starts on the prompts at once: earlier first tokens, more throughput
    ideal = _burst(1000, engine="ideal")
    assert ideal["ttft_ms"] < big["ttft_ms"] and ideal["system_output_tokens_per_s"] > big["system_output_tokens_per_s"]


def test_the_first_token_path_outside_the_forward_adds_to_every_served_ttft():
    """engine first_token_path_s (SGLang: HTTP, tokenizer manager, IPC, detokenizer) delays the first token by exactly
    its value, simulated and in steady state, and leaves TPOT alone (and the steady state's throughput)."""
    from dataclasses import replace

    from planner.deploy.engines import load_engine

    path = load_engine("sglang").first_token_path_s
    assert path > 0
    for wl in ({"phase": "serve", "concurrency": 4, "input_len": 512, "output_len": 64},
               {"phase": "serve", "batch_per_gpu": 2, "input_len": 512, "output_len": 64}):
        sc = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang", workload=wl)
        without = replace(sc, engine=replace(sc.engine, first_token_path_s=0.0))
        got, base = estimate(sc)["metrics"], estimate(without)["metrics"]
        assert got["ttft_ms"] - base["ttft_ms"] == pytest.approx(1e3 * path, rel=1e-6)
        assert got["tpot_ms"] == pytest.approx(base["tpot_ms"])
        if "concurrency" in wl:  # simulated: the last token is that much later too, so the run (vLLM's benchmark
            tokens = wl["concurrency"] * wl["output_len"]  # duration, first send to last token) lasts `path` longer
            assert tokens / got["system_output_tokens_per_s"] == pytest.approx(
                tokens / base["system_output_tokens_per_s"] + path, rel=1e-6)
        else:
            assert got["system_output_tokens_per_s"] == pytest.approx(base["system_output_tokens_per_s"])
