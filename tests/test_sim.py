"""The serving simulator (planner.serving.sim): relations from issue 18's "Done when", and the step table against
the step-time model it stands for."""

from dataclasses import replace

import numpy as np
import pytest
import yaml

from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.perf.steps import mixed_step
from planner.serving.client import Client, Lengths
from planner.serving.estimate import estimate
from planner.serving.gates import Sched
from planner.serving.sim import simulate
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


def test_api_servers_one_per_dp_rank_take_a_burst_in_side_by_side():
    """vLLM >= 0.15 starts one API server per attention-DP rank (profiles/engines/vllm.yaml api_server_count): a burst
    is taken in that many at a time; with --api-server-count 1 (vLLM <= 0.14) one at a time."""
    sc = _sc("vllm", {"tp": 4, "dp_attention": 2, "ep": 8})
    one = replace(sc, engine=replace(sc.engine, api_server_count=1))
    assert sc.engine.api_servers(2) == 2 and one.engine.api_servers(2) == 1 and _sc("sglang").engine.api_servers(4) == 1
    n, ingest = 200, sc.engine.request_ingest_s
    burst = Client(n, Lengths(256), Lengths(16))
    two_servers, one_server = (simulate(s, memory_report(s), burst) for s in (sc, one))
    assert float(np.min(two_servers.ttft_s)) >= n * ingest / 2  # nothing streams during the intake
    assert float(np.min(one_server.ttft_s)) >= n * ingest
    assert float(np.mean(two_servers.ttft_s)) < float(np.mean(one_server.ttft_s))


def test_api_server_count_option_is_checked_in_one_line(tmp_path):
    from planner.base.errors import PlannerError
    from planner.deploy.scenario_file import load_scenario

    base = {"model": "qwen3-30b-a3b", "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8}, "engine": "vllm",
            "workload": {"phase": "serve", "concurrency": 8, "input_len": 512, "output_len": 64}}
    for value, servers in ((1, 1), (3, 3), ("data_parallel_size", 4)):
        path = tmp_path / "ok.yaml"
        path.write_text(yaml.safe_dump({**base, "parallelism": {"tp": 2, "dp_attention": 4, "ep": 8},
                                        "engine_options": {"api_server_count": value}}))
        assert load_scenario(str(path)).engine.api_servers(4) == servers
    for bad in (0, "many", True, 2.5):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**base, "engine_options": {"api_server_count": bad}}))
        with pytest.raises(PlannerError) as err:
            load_scenario(str(path))
        assert err.value.field == "engine_options.api_server_count" and "\n" not in str(err.value)


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


@pytest.mark.parametrize("form,lo,hi", [("below", 819, 1024), ("around", 205, 1843)])
def test_random_range_ratio_draws_the_clients_lengths(form, lo, hi):
    """--random-range-ratio 0.8 for L = 1,024: "below" (SGLang bench_serving, InferenceMAX) draws in [L r, L] with
    mean L (1 + r) / 2; "around" (vllm bench serve >= 0.10) in [L (1 - r), L (1 + r)] with mean L."""
    x = Lengths.random(1024, 0.8, form).draw(2000, np.random.default_rng(0))
    assert lo <= x.min() and x.max() <= hi
    assert x.max() - x.min() > 0.9 * (hi - lo)
    assert abs(x.mean() - (lo + hi) / 2) < 2
    assert np.all(Lengths.random(1024, None).draw(10, np.random.default_rng(0)) == 1024)
    assert np.all(Lengths.random(1024, 0.0, "around").draw(10, np.random.default_rng(0)) == 1024)
    assert Lengths.random(1024, 0.0, "below").mean == 512  # SGLang's default r = 0: [1, L]
    assert np.all(Lengths.random(1024, 1.0, "below").draw(10, np.random.default_rng(0)) == 1024)


def test_spread_lengths_break_a_closed_loop_out_of_waves():
    """Equal lengths keep a closed loop's requests in step (each wave prefills together); lengths spread as the
    benchmark clients draw them make requests finish at different steps, so later prompts mostly prefill alone and
    the mean TTFT falls, while the same work is done (similar TPOT)."""
    from planner.deploy.scenario_file import scenario_from_mapping

    doc = {"model": "llama-3.1-70b", "weights": "fp8", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1},
           "engine": "vllm", "workload": {"phase": "serve", "concurrency": 8, "input_len": 1024, "output_len": 1024,
                                          "num_prompts": 80}}
    fixed = estimate(scenario_from_mapping(doc, "t"))
    doc["workload"]["random_range_ratio"] = 0.8
    spread = estimate(scenario_from_mapping(doc, "t"))
    assert spread["scenario"]["workload"]["random_range_ratio"] == 0.8
    assert spread["simulation"]["client"]["output_len_mean"] == pytest.approx(1024 * 0.9)
    assert spread["metrics"]["ttft_ms"] < 0.7 * fixed["metrics"]["ttft_ms"]
    assert spread["metrics"]["tpot_ms"] == pytest.approx(fixed["metrics"]["tpot_ms"], rel=0.15)


def test_bad_range_ratio_is_one_line():
    from planner.base.errors import PlannerError
    from planner.deploy.scenario_file import scenario_from_mapping

    doc = {"model": "llama-3.1-70b", "weights": "fp8", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1},
           "workload": {"phase": "serve", "concurrency": 8, "random_range_ratio": 1.5}}
    with pytest.raises(PlannerError, match="random_range_ratio"):
        scenario_from_mapping(doc, "t")
    doc["workload"] = {"phase": "serve", "concurrency": 8, "random_range_ratio": 0.5, "range_ratio_form": "up"}
    with pytest.raises(PlannerError, match="range_ratio_form"):
        scenario_from_mapping(doc, "t")


def _served(**workload):
    from planner.deploy.scenario_file import scenario_from_mapping

    doc = {"model": "llama-3.1-70b", "weights": "fp8", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1},
           "engine": "vllm", "workload": {"phase": "serve", "input_len": 1024, "output_len": 256, **workload}}
    return scenario_from_mapping(doc, "t")


def test_request_rate_and_burst_in_a_scenario():
    """workload.request_rate R: an open loop at R requests/s (vllm bench serve --request-rate); inf with no
    concurrency: every prompt at t = 0. A slow rate leaves the engine idle between requests, so its TTFT is near a
    lone prompt's; the same prompts in a burst queue behind each other."""
    from planner.serving.client import client_for

    slow, burst = _served(request_rate=0.05, num_prompts=20), _served(request_rate="inf", num_prompts=20)
    assert (client_for(slow).rate, client_for(slow).concurrency, client_for(slow).num_prompts) == (0.05, None, 20)
    assert (client_for(burst).rate, client_for(burst).concurrency) == (None, None)
    capped = client_for(_served(request_rate=2, concurrency=4, arrival="constant"))
    assert (capped.rate, capped.concurrency, capped.arrival, capped.num_prompts) == (2, 4, "constant", 1000)
    a, b = estimate(slow), estimate(burst)
    assert a["simulation"]["client"]["request_rate"] == 0.05
    assert b["metrics"]["ttft_ms"] > 3 * a["metrics"]["ttft_ms"]


@pytest.mark.parametrize("bad", [0, -1, "fast"])
def test_bad_request_rate_is_one_line(bad):
    from planner.base.errors import PlannerError

    with pytest.raises(PlannerError, match="request_rate"):
        _served(request_rate=bad)


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_closed_form_waves_count_only_the_requests_in_flight(concurrency):
    """The closed-form waves (planner.serving.serve, still used where no simulation runs) put a concurrency below the
    attention-DP ranks on that many ranks: system throughput never above concurrency x the user's speed."""
    from planner.serving.serve import serve_metrics

    sc = make_scenario("kimi-k2.5", gpu="b200", gpus_per_node=8, nodes=1, engine="sglang",
                       parallelism={"tp": 2, "dp_attention": 4, "ep": 8},
                       workload={"phase": "serve", "concurrency": concurrency, "input_len": 1024,
                                 "output_len": 1024}, name="dp", file="t")
    info = {}
    m, _, _ = serve_metrics(sc, memory_report(sc), info=info)
    assert info["mode"] == "waves"
    assert m["system_output_tokens_per_s"] <= concurrency * m["output_tokens_per_s_per_user"] * (1 + 1e-9)


def test_sglang_scheduler_receive_interval_holds_arrivals_for_decode_steps():
    """--scheduler-recv-interval N: while the batch decodes, a request that arrives is taken in only every N decode
    steps (at once after a prefill). In a closed loop every later request arrives mid-decode, so the mean TTFT grows
    with N by less than N decode steps; one request alone (nothing decoding when it arrives) waits for nothing."""
    from planner.deploy.engine_options import apply_engine_options

    base = _sc("sglang", concurrency=16, out=256)
    mem = memory_report(base)
    client = Client(160, Lengths(1024, "uniform", 0.8), Lengths(256, "uniform", 0.8), concurrency=16)
    runs = {}
    for n in (1, 10, 30):
        sc = replace(base, engine=apply_engine_options(base.engine, {"scheduler_recv_interval": n}, "t.yaml"))
        runs[n] = simulate(sc, mem, client)
    ttft = {n: float(np.mean(r.ttft_s)) for n, r in runs.items()}
    step = float(np.mean(runs[1].tpot_s))
    assert ttft[1] < ttft[10] < ttft[30] < ttft[1] + 30 * step, (ttft, step)
    assert runs[30].requests == runs[1].requests == 160
    one = Client(1, Lengths(1024), Lengths(64), concurrency=1)
    alone = [float(simulate(replace(base, engine=apply_engine_options(base.engine, {"scheduler_recv_interval": n},
                                                                      "t.yaml")), mem, one).ttft_s[0])
             for n in (1, 30)]
    assert alone[0] == pytest.approx(alone[1])


def test_scheduler_receive_interval_is_sglangs_alone():
    from planner.base.errors import PlannerError
    from planner.deploy.engine_options import apply_engine_options

    with pytest.raises(PlannerError, match="no scheduler receive interval") as err:
        apply_engine_options(_sc("vllm").engine, {"scheduler_recv_interval": 10}, "mine.yaml")
    assert err.value.field == "engine_options.scheduler_recv_interval"


def test_tensorrt_llm_batch_waiting_holds_context_requests_up_to_its_iterations():
    """TensorRT-LLM batch_wait_timeout_iters / batch_wait_max_tokens_ratio: with requests decoding, a context request
    waits until the step's tokens reach the ratio of max_num_tokens or the iterations run out, so a light closed loop
    (four 1K prompts, well under 0.9 x the budget) waits the full count; a ratio the prompts already meet does not."""
    from planner.deploy.engine_options import apply_engine_options

    base = make_scenario("llama-3.1-70b", weights="fp8", gpu="b200", gpus_per_node=2, engine="trtllm",
                         parallelism={"tp": 2}, workload={"phase": "serve", "concurrency": 4, "input_len": 1024,
                                                          "output_len": 512})
    mem = memory_report(base)
    client = Client(40, Lengths(1024, "uniform", 0.8), Lengths(512, "uniform", 0.8), concurrency=4)

    def run(opts):
        return simulate(replace(base, engine=apply_engine_options(base.engine, opts, "t.yaml")), mem, client)

    plain, wait, met = run({}), run({"batch_wait_timeout_iters": 20, "batch_wait_max_tokens_ratio": 0.9}), \
        run({"batch_wait_timeout_iters": 20, "batch_wait_max_tokens_ratio": 0.001})
    step = float(np.mean(plain.tpot_s))
    extra = float(np.mean(wait.ttft_s) - np.mean(plain.ttft_s))
    assert 10 * step < extra < 21 * step, (extra, step)
    assert float(np.mean(met.ttft_s)) == pytest.approx(float(np.mean(plain.ttft_s)), rel=0.05)
    from planner.base.errors import PlannerError

    with pytest.raises(PlannerError, match="no batch waiting") as err:
        apply_engine_options(_sc("sglang").engine, {"batch_wait_timeout_iters": 20}, "mine.yaml")
    assert err.value.field == "engine_options.batch_wait_timeout_iters"


def test_tensorrt_llm_attention_dp_balance_holds_context_until_every_rank_has_one():
    """attention_dp_config enable_balance: while every DP rank decodes, a context request waits until every rank has
    one or the counter reaches timeout_iters, so TTFT grows by up to that many steps; a rank with nothing to decode
    lets it in at once (concurrency 1 over 8 ranks: no wait)."""
    from planner.base.errors import PlannerError
    from planner.deploy.engine_options import apply_engine_options

    base = make_scenario("deepseek-r1", weights="fp8-block128", gpu="b200", gpus_per_node=8, engine="trtllm",
                         parallelism={"tp": 1, "dp_attention": 8, "ep": 8},
                         workload={"phase": "serve", "concurrency": 64, "input_len": 1024, "output_len": 256})
    mem = memory_report(base)
    on = replace(base, engine=apply_engine_options(base.engine, {"attention_dp_balance": {
        "timeout_iters": 60, "batching_wait_iters": 0}}, "t.yaml"))
    assert on.engine.adp_balance == (60, 0)
    busy = Client(320, Lengths(1024, "uniform", 0.8), Lengths(256, "uniform", 0.8), concurrency=64)
    plain, held = simulate(base, mem, busy), simulate(on, mem, busy)
    step = float(np.mean(plain.tpot_s))
    extra = float(np.mean(held.ttft_s) - np.mean(plain.ttft_s))
    assert 0 < extra < 61 * step, (extra, step)
    one = Client(4, Lengths(1024), Lengths(64), concurrency=1)
    alone = [float(np.mean(simulate(sc, mem, one).ttft_s)) for sc in (on, base)]
    assert alone[0] == pytest.approx(alone[1])
    assert apply_engine_options(base.engine, {"attention_dp_balance": True}, "t.yaml").adp_balance == (50, 10)
    with pytest.raises(PlannerError, match="no attention-DP balance") as err:
        apply_engine_options(_sc("vllm").engine, {"attention_dp_balance": True}, "mine.yaml")
    assert err.value.field == "engine_options.attention_dp_balance"


def test_overlap_schedule_makes_a_request_that_arrives_mid_step_wait_one_more_step():
    """TensorRT-LLM's overlap scheduler (SGLang's overlap schedule, vLLM's async scheduling) forms step k+1 while
    step k runs, fetching requests as step k starts: in a closed loop every later request arrives mid-step and joins
    one step later, so the mean TTFT grows by less than one step beyond the longest; one request alone, sent to an
    idle engine, waits for nothing. The engines that do it say so in their profiles."""
    from planner.deploy.engine_options import apply_engine_options
    from planner.deploy.engines import load_engine

    base = make_scenario("llama-3.1-70b", weights="fp8", gpu="b200", gpus_per_node=2, engine="trtllm",
                         parallelism={"tp": 2}, workload={"phase": "serve", "concurrency": 8, "input_len": 1024,
                                                          "output_len": 256})
    assert all(load_engine(e).overlap_schedule for e in ("trtllm", "sglang", "vllm"))  # vLLM: async scheduling
    assert not load_engine("llamacpp").overlap_schedule
    mem = memory_report(base)
    off = replace(base, engine=apply_engine_options(base.engine, {"overlap_schedule": False}, "t.yaml"))
    client = Client(80, Lengths(1024, "uniform", 0.8), Lengths(256, "uniform", 0.8), concurrency=8)
    on_run, off_run = simulate(base, mem, client), simulate(off, mem, client)
    step = float(np.mean(off_run.tpot_s))
    extra = float(np.mean(on_run.ttft_s) - np.mean(off_run.ttft_s))
    longest = float(np.max(off_run.ttft_s))
    assert 0.3 * step < extra < longest, (extra, step)
    assert on_run.requests == off_run.requests == 80
    one = Client(1, Lengths(1024), Lengths(64), concurrency=1)
    assert float(simulate(base, mem, one).ttft_s[0]) == pytest.approx(float(simulate(off, mem, one).ttft_s[0]))


def test_without_chunked_prefill_a_prompt_is_scheduled_whole_or_waits():
    """TensorRT-LLM without enable_chunked_prefill schedules a context request only where the step's token budget
    holds all of it (microBatchScheduler.cpp's `break`): in a burst of eight 1K prompts under a 1.5K budget the first
    prompt prefills in a step of its own 1,024 tokens and each later one in a step of its own, while chunking fills
    every step to 1,536 tokens, so the first token comes later there and the burst's prompt steps are fewer. A prompt
    longer than the whole budget is still served (chunked). Non-booleans are a one-line error naming the field."""
    from planner.base.errors import PlannerError
    from planner.deploy.engine_options import apply_engine_options

    base = make_scenario("llama-3.1-8b", weights="bf16", gpu="h100-sxm", gpus_per_node=1, engine="trtllm",
                         parallelism={"tp": 1}, workload={"phase": "serve", "concurrency": 8, "input_len": 1024,
                                                          "output_len": 16})
    mem = memory_report(base)
    burst = Client(8, Lengths(1024), Lengths(16), concurrency=8)

    def run(opts, client=burst):
        eng = apply_engine_options(base.engine, {"max_batched_tokens": 1536, "overlap_schedule": False,
                                                 "request_ingest_s": 0.0, **opts}, "t.yaml")
        return simulate(replace(base, engine=eng), mem, client)

    whole, chunked = run({"chunked_prefill": False}), run({})
    assert float(np.min(whole.ttft_s)) < float(np.min(chunked.ttft_s))
    firsts = np.sort(whole.ttft_s)
    assert len(set(np.round(firsts, 9))) == 8  # one prompt per step: every first token in a step of its own
    long = run({"chunked_prefill": False}, Client(2, Lengths(4096), Lengths(16), concurrency=2))
    assert long.requests == 2
    with pytest.raises(PlannerError, match="expected true or false") as err:
        apply_engine_options(base.engine, {"chunked_prefill": "no"}, "mine.yaml")
    assert err.value.field == "engine_options.chunked_prefill"


def test_sglang_mixed_chunk_option_puts_prompt_chunks_into_decode_steps():
    """engine_options.mixed_chunk true (SGLang --enable-mixed-chunk, python/sglang/srt/managers/scheduler.py: the
    running decode requests join the prefill batch, their tokens counted against the chunk budget) runs a prompt's
    tokens inside a decode step instead of a prefill step of its own: the longest gap between two tokens of a
    decoding request is one mixed step, shorter than a prefill step plus a decode step. Non-booleans are a one-line
    error naming the field."""
    from planner.base.errors import PlannerError
    from planner.deploy.engine_options import apply_engine_options

    base = _sc("sglang", concurrency=4, inp=2048, out=64)
    mem = memory_report(base)
    client = Client(12, Lengths(2048, "uniform", range_ratio=0.5), Lengths(64, "uniform", range_ratio=0.5),
                    concurrency=4)

    def run(mixed: bool):
        eng = apply_engine_options(base.engine, {"mixed_chunk": mixed, "request_ingest_s": 0.0}, "t.yaml")
        assert eng.mixed_chunk is mixed
        return simulate(replace(base, engine=eng), mem, client)

    apart, mixed = run(False), run(True)
    assert float(np.max(mixed.itl_gap_s)) < float(np.max(apart.itl_gap_s))
    with pytest.raises(PlannerError, match="expected true or false") as err:
        apply_engine_options(base.engine, {"mixed_chunk": "yes"}, "mine.yaml")
    assert err.value.field == "engine_options.mixed_chunk"


@pytest.mark.parametrize("workload", [{"concurrency": 8, "input_len": 1024, "output_len": 64},
                                      {"request_rate": float("inf"), "num_prompts": 400, "input_len": 128,
                                       "output_len": 4}])
def test_metrics_only_estimate_gives_the_full_estimates_latencies(workload):
    """estimate(metrics_only=True), the silicon validation's call, runs the closed forms only where the simulation
    hands TPOT back to them (a burst the API server holds: the second workload) and leaves the throughput curve out;
    its TTFT and TPOT, means and percentiles, are the full document's."""
    sc = make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine="vllm",
                       parallelism={"tp": 8}, workload={"phase": "serve", **workload})
    full, lean = estimate(sc), estimate(sc, metrics_only=True)
    assert full["throughput_curve"] and not lean["throughput_curve"]
    keys = [k for k in full["metrics"] if k.startswith(("ttft", "tpot"))]
    assert len(keys) > 4 and all(lean["metrics"][k] == full["metrics"][k] for k in keys)
    held = any("intake held first tokens" in a for a in full["assumptions"])
    assert held == ("request_rate" in workload)
