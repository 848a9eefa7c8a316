"""Performance model relations (issue: performance model) and the public cases running end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.deploy.engines import load_engine
from planner.deploy.scenario_file import load_scenario
from planner.perf.ops import Op, distinct_experts, ep_bytes_per_token
from planner.perf.roofline import time_op
from planner.perf.steps import decode_step, machine, prefill_step
from planner.serving.estimate import estimate
from tests.scenario_util import scenario, sglang_dsv3

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "validation" / "public_cases.yaml"
HOST = {"cpu": "xeon-6454s", "sockets": 2, "memory_gb": 1024, "dram": "ddr5-4800", "channels_per_socket": 8}


def test_memory_bound_op_scales_with_bytes():
    m = machine(scenario())
    small = time_op(Op("x", "gemm", 1, 1e6, weight_bytes=1e9, m=1), m)
    large = time_op(Op("x", "gemm", 1, 1e6, weight_bytes=2e9, m=1), m)
    assert small.bound == large.bound == "memory"
    assert large.seconds == pytest.approx(2 * small.seconds, rel=1e-9)


def test_compute_bound_op_scales_with_flops():
    m = machine(scenario())
    a = time_op(Op("x", "gemm", 1, 1e14, weight_bytes=1e6, m=8192), m)
    b = time_op(Op("x", "gemm", 1, 2e14, weight_bytes=1e6, m=8192), m)
    assert a.bound == "compute" and b.seconds == pytest.approx(2 * a.seconds)


def test_more_ep_ranks_fewer_distinct_experts_per_rank():
    touched = [distinct_experts(384 / ep, 384, 8, tokens=64 * ep) for ep in (1, 2, 4, 8, 16, 32)]
    assert touched == sorted(touched, reverse=True)
    # E(1 - (1 - k/E)^T): one token touches exactly k experts; many tokens touch all of them
    assert distinct_experts(384, 384, 8, 1) == pytest.approx(8)
    assert distinct_experts(384, 384, 8, 100_000) == pytest.approx(384)
    assert distinct_experts(256, 256, 8, 64, skew=1.0) < distinct_experts(256, 256, 8, 64)


def test_ep_traffic_splits_intra_and_inter_node():
    intra, inter = ep_bytes_per_token(8, 8, 8, per_node=False)
    assert inter == 0 and 0 < intra < 7
    _, per_rank = ep_bytes_per_token(64, 8, 8, per_node=False)
    _, per_node = ep_bytes_per_token(64, 8, 8, per_node=True)
    assert per_node < per_rank  # node-level dedup (DeepEP normal kernels) sends fewer RDMA copies


def test_decode_batch_and_context_monotone():
    sc = scenario()
    steps = [decode_step(sc, b, 4096).seconds for b in (1, 4, 16, 64)]
    assert steps == sorted(steps)
    rates = [b / s for b, s in zip((1, 4, 16, 64), steps, strict=True)]
    assert rates == sorted(rates)  # batching amortizes weight reads
    assert decode_step(sc, 16, 65536).seconds > decode_step(sc, 16, 4096).seconds


def test_higher_bandwidth_never_slower_decode():
    h100 = decode_step(scenario(model="deepseek-v3", weights="fp8-block128", hardware={"gpu": "h100-sxm", "nodes": 2},
                                parallelism={"tp": 16}), 8, 2048)
    h200 = decode_step(scenario(model="deepseek-v3", weights="fp8-block128", hardware={"gpu": "h200-sxm", "nodes": 2},
                                parallelism={"tp": 16}), 8, 2048)
    assert h200.seconds <= h100.seconds


def test_offloading_more_layers_never_speeds_decode():
    base = dict(model="deepseek-v3", weights="gguf-q4_k_m", engine="llamacpp", parallelism={"tp": 1},
                hardware={"gpu": "h200-sxm", "gpus_per_node": 1, "host": HOST})
    times = [decode_step(scenario(**base, offload={"expert_layers_on_cpu": n}), 1, 1024).seconds
             for n in (0, 10, 30, 58)]
    assert times == sorted(times)


def test_prefill_throughput_beats_decode_per_token():
    sc = scenario()
    pre = prefill_step(sc, 8192 / 8, 8192)
    dec = decode_step(sc, 1, 8192)
    assert 8192 / 8 / pre.seconds > 1 / dec.seconds


def test_two_batch_overlap_never_slower():
    kw = dict(model="deepseek-v3", weights="fp8-block128", hardware={"gpu": "h100-sxm", "nodes": 4},
              parallelism={"tp": 1, "dp_attention": 32, "ep": 32})
    with_tbo = prefill_step(scenario(engine="sglang", **kw), 8192, 4096)
    without = prefill_step(scenario(engine="vllm", **kw), 8192, 4096)
    assert with_tbo.comm_s <= without.comm_s


def test_mtp_raises_tokens_per_user():
    plain = estimate(scenario(model="deepseek-v3", weights="fp8-block128", workload={"concurrency": 8}))
    mtp = estimate(scenario(model="deepseek-v3", weights="fp8-block128", workload={"concurrency": 8},
                            speculative={"mtp_tokens": 1, "acceptance": 0.8}))
    assert mtp["metrics"]["output_tokens_per_s_per_user"] > plain["metrics"]["output_tokens_per_s_per_user"]


def test_throughput_curve_is_a_tradeoff():
    curve = estimate(scenario())["throughput_curve"]
    assert len(curve) >= 3
    tput = [p["decode_tokens_per_s_per_gpu"] for p in curve]
    tpot = [p["tpot_ms"] for p in curve]
    assert tput == sorted(tput) and tpot == sorted(tpot)


def test_slo_limits_batch():
    free = estimate(scenario(workload={"phase": "decode"}))
    tight = estimate(scenario(workload={"phase": "decode"}, slo={"tpot_ms": 20}))
    assert tight["metrics"]["tpot_ms"] <= 20 + 1e-6
    assert tight["metrics"]["decode_tokens_per_s_per_gpu"] <= free["metrics"]["decode_tokens_per_s_per_gpu"]


@pytest.mark.parametrize("path", sorted((ROOT / "profiles" / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_report_speed_or_reason(path):
    doc = estimate(load_scenario(path))
    if doc["fits"]:
        m = doc["metrics"]
        assert m["tpot_ms"] > 0 and m["ttft_ms"] > 0 and m["decode_tokens_per_s_per_gpu"] > 0
        assert doc["bottleneck"]["decode"] in ("compute", "memory", "communication", "host")
    else:
        assert doc["reason"]


def test_single_4090_kimi_offload_is_host_bound():
    doc = estimate(load_scenario(ROOT / "profiles/scenarios/kimi-k2.5-ud-tq1_0-4090-256gb.yaml"))
    assert doc["fits"] and doc["bottleneck"]["decode"] == "host"
    assert 1 < doc["metrics"]["output_tokens_per_s_per_user"] < 30


@pytest.mark.skipif(not PUBLIC.is_file(), reason="../shared/validation not present")
def test_public_cases_run_without_error():
    from planner.serving.validate import validate

    report = validate(PUBLIC)
    assert report["skipped"] == []
    assert report["summary"]["n"] >= 0.9 * len(report["cases"])


def _serve(concurrency, **over):
    wl = {"phase": "serve", "concurrency": concurrency, "input_len": 1024, "output_len": 256}
    return estimate(scenario(model="deepseek-v3", weights="fp8-block128", workload=wl, **over))["metrics"]


def test_wave_of_one_is_prefill_then_decode():
    from planner.deploy.memory import memory_report
    from planner.serving.serve import wave

    sc = scenario(model="deepseek-v3", weights="fp8-block128",
                  workload={"phase": "serve", "concurrency": 1, "input_len": 1024, "output_len": 256})
    w = wave(sc, memory_report(sc))
    alone = prefill_step(sc, 1024 / 8, 1024)
    assert w.size == 1 and w.queue_s == 0
    assert w.ttft_s == pytest.approx(alone.seconds) and w.prefill_s == pytest.approx(alone.seconds)
    assert w.duration_s == pytest.approx(alone.seconds + 255 * w.decode_step.seconds)


def test_wave_ttft_grows_with_concurrency_and_throughput_with_batch():
    low, mid, high = _serve(1), _serve(32), _serve(128)
    # more prompts arrive together: later ones wait for earlier chunks
    assert low["ttft_ms"] <= mid["ttft_ms"] <= high["ttft_ms"]
    assert low["system_output_tokens_per_s"] < mid["system_output_tokens_per_s"] < high["system_output_tokens_per_s"]
    # every request of a wave ends with the wave, so its TPOT carries the prefill of the others
    assert high["tpot_ms"] >= low["tpot_ms"]


def test_requests_beyond_engine_limit_queue_for_whole_waves():
    cap = {"engine": "sglang", "engine_options": {"max_num_seqs": 64}}
    full, double = _serve(64, **cap), _serve(128, **cap)
    assert double["ttft_ms"] > full["ttft_ms"] + 0.4 * full["e2e_latency_ms"]
    # simulated (planner.serving.sim): the second wave's requests are sent as the first wave's answers reach the
    # client, so it is the first wave again up to the step table's interpolation (0.03% here)
    assert double["system_output_tokens_per_s"] == pytest.approx(full["system_output_tokens_per_s"], rel=1e-3)
    # 96 requests, 64 at a time: a third of them wait one whole wave (the first wave's e2e), then prefill as a wave
    # of 32 (between no time and the 64-wave's TTFT): the mean TTFT rises by (e2e + ttft_32 - ttft_64) / 3
    partial = _serve(96, **cap)
    rise = partial["ttft_ms"] - full["ttft_ms"]
    assert (full["e2e_latency_ms"] - full["ttft_ms"]) / 3 <= rise <= full["e2e_latency_ms"] / 3 * (1 + 1e-9)


def test_ep_load_imbalance_grows_with_ranks_and_shrinks_with_redundant_experts():
    from planner.perf.ops import ep_load_imbalance

    def imb(ep, redundant=0):
        return ep_load_imbalance(scenario(model="deepseek-v3", weights="fp8-block128",
                                          hardware={"gpu": "h100-sxm", "nodes": 18},
                                          parallelism={"tp": 1, "dp_attention": ep, "ep": ep,
                                                       "redundant_experts": redundant}))

    assert imb(1) == 1.0
    assert 1.0 < imb(8) < imb(32) < imb(144)
    assert imb(32, redundant=32) < imb(32)
    assert imb(32) == pytest.approx(1.18, abs=0.01)  # the LMSYS EP32 pair it is derived from


def test_engine_options_set_running_cap_and_graph_capture():
    sc = scenario(engine="sglang", engine_options={"max_running_requests": 48, "cuda_graph_max_batch": 16})
    assert sc.engine.running_cap == 48 and sc.engine.cuda_graph_max_batch == 16
    assert not sc.engine.graphed(17, prefill=False) and sc.engine.graphed(16, prefill=False)
    assert scenario(engine="vllm", engine_options={"max_num_seqs": 64}).engine.running_cap == 64


def test_engines_without_mixed_chunks_run_prefill_batches_apart():
    from planner.perf.steps import mixed_step

    sc = sglang_dsv3()
    assert not sc.engine.mixed_chunk
    dec = decode_step(sc, 8, 2000)
    # 64 prompt tokens per GPU per step at TP8 = half a 1,024-token prompt per step: one prefill every 2 steps
    step = mixed_step(sc, 8, 2000, 64, 1024)
    assert step.seconds == pytest.approx(dec.seconds + 0.5 * prefill_step(sc, 128, 1024).seconds)
    vllm = scenario(model="deepseek-v3", weights="fp8-block128", engine="vllm")
    assert vllm.engine.mixed_chunk and mixed_step(vllm, 8, 2000, 64, 1024).seconds < (
        decode_step(vllm, 8, 2000).seconds + 0.5 * prefill_step(vllm, 128, 1024).seconds)  # weights read once


def test_short_reductions_run_below_the_curve():
    from planner.perf.ops import step_ops, swiglu_depth
    from planner.perf.roofline import depth_factor

    assert depth_factor(0) == 1.0 and depth_factor(16384) == 1.0
    assert depth_factor(256) < depth_factor(512) < depth_factor(2048) < 1.0
    assert depth_factor(512) == pytest.approx(751 / 1150, rel=0.1)  # DeepGEMM K=512 vs typical K at M=4096
    # experts split 8 ways (TP8) reduce over 2048 / 8 = 256 in the down projection; EP keeps the full 2048
    tp = {op.name: op for op in step_ops(sglang_dsv3(), "prefill", 1024, 512)}
    ep = {op.name: op for op in step_ops(sglang_dsv3(parallelism={"tp": 1, "dp_attention": 8, "ep": 8}),
                                         "prefill", 1024, 512)}
    assert tp["moe.experts"].depth == pytest.approx(swiglu_depth(7168, 256))
    assert tp["moe.experts"].depth < ep["moe.experts"].depth


def test_estimate_says_how_the_load_was_served():
    waves = estimate(scenario(model="deepseek-v3", weights="fp8-block128",
                              workload={"phase": "serve", "concurrency": 64, "input_len": 1024, "output_len": 256}))
    assert waves["serving"]["mode"] == "waves" and waves["serving"]["running_per_group"] == 64
    steady = estimate(scenario(model="deepseek-v3", weights="fp8-block128",
                               workload={"phase": "serve", "input_len": 1024, "output_len": 256}))
    assert steady["serving"]["mode"] == "steady" and steady["serving"]["running_per_group"] >= 1


def test_cpu_compute_efficiency_can_differ_by_kernel_family():
    from planner.deploy.engines import load_engine

    kt = load_engine("ktransformers")
    assert kt.cpu_compute_for("fp32").at(1) == 0.40 and kt.cpu_compute_for("int8").at(64) == 0.033
    assert kt.cpu_compute_for("bf16") is None  # the calibration default applies
    llamacpp = load_engine("llamacpp").cpu_compute_for("fp32")
    assert llamacpp.at(1) < llamacpp.at(1024)  # few-row expert GEMMs run below dense ones


def test_pageable_serial_weight_streaming_is_slower_than_pinned_overlapped():
    from dataclasses import replace as dc_replace

    sc = load_scenario(ROOT / "profiles/scenarios/kimi-k2.5-ud-tq1_0-4090-256gb.yaml")
    assert sc.engine.host_stream_pageable_bytes_per_s and not sc.engine.host_stream_overlap
    machine.cache_clear()
    slow = prefill_step(sc, 512, 2048)
    engine = dc_replace(sc.engine, host_stream_pageable_bytes_per_s=None, host_stream_overlap=True)
    pinned = dc_replace(sc, engine=engine)
    machine.cache_clear()
    fast = prefill_step(pinned, 512, 2048)
    machine.cache_clear()
    assert slow.seconds > fast.seconds
    host = [t for t in slow.timed if t.op.where == "pcie"]
    assert host and all(t.seconds >= t.op.weight_bytes / 9.6e9 for t in host)  # at most the pageable rate


def _cpu_only(engine, host, model, weights):
    """One request of 1024 in / 1024 out on a CPU-only host (the lmsys Xeon 6 blog's setting)."""
    hw = {"gpu": None, "gpus_per_node": 0, "nodes": 1, "host": host}
    return scenario(model=model, weights=weights, kv_cache=None, hardware=hw, parallelism={"tp": 1}, engine=engine,
                    workload={"phase": "serve", "concurrency": 1, "input_len": 1024, "output_len": 1024})


def _sglang_cpu(model="deepseek-r1", weights="int8"):
    return _cpu_only("sglang", "xeon-6980p-2s-mrdimm-8800-12ch", model, weights)  # both sockets (TP over NUMA)


def test_cpu_only_ops_dispatch_one_after_another():
    from dataclasses import replace as dc_replace

    sc = _sglang_cpu()
    quiet = dc_replace(sc, engine=dc_replace(sc.engine, cpu_op_host_s=0.0))
    with_host, without = decode_step(sc, 1, 1536), decode_step(quiet, 1, 1536)
    assert with_host.launch_s > 0 and without.launch_s == 0
    # serial: the dispatch time adds to the work (a GPU overlaps it: max(work, launch))
    assert with_host.seconds == pytest.approx(without.seconds + with_host.launch_s)


# lm-sys/lm-sys.github.io blog/2025-07-14-intel-xeon-optimization.md, Table 1: SGLang CPU backend on 2x Xeon 6980P,
# 1024 in / 1024 out, one request (TTFT ms, TPOT ms); R1-Distill-Llama-70B has the llama-3.1-70b architecture.
SGLANG_CPU_TABLE = [("deepseek-r1", "int8", 1885.25, 67.99), ("deepseek-r1", "fp8-block128", 2235.00, 77.72),
                    ("qwen3-235b-a22b", "int8", 1164.29, 51.84), ("qwen3-235b-a22b", "fp8-block128", 1340.62, 55.88),
                    ("llama-3.1-70b", "int8", 2637.84, 76.53)]


@pytest.mark.parametrize("model,weights,ttft,tpot", SGLANG_CPU_TABLE)
def test_sglang_cpu_backend_calibration_reproduces_its_table(model, weights, ttft, tpot):
    m = estimate(_sglang_cpu(model, weights))["metrics"]
    assert m["ttft_ms"] == pytest.approx(ttft, rel=0.10)
    assert m["tpot_ms"] == pytest.approx(tpot, rel=0.15)


@pytest.mark.parametrize("value", [{"int8": [[32, 2.0]]}, {"int8": [[1024, 0.03], [32, 0.02]]}, {"fp64": 0.5},
                                   {"int8": "fast"}])
def test_bad_cpu_compute_efficiency_names_the_field(value):
    from planner.base.errors import PlannerError
    from planner.deploy.engines import _by_dtype

    with pytest.raises(PlannerError) as err:
        _by_dtype({"cpu_compute_efficiency": value}, "cpu_compute_efficiency", "engines/x.yaml")
    assert "engines/x.yaml" in str(err.value) and "cpu_compute_efficiency" in str(err.value)


def _llamacpp_cpu(model="deepseek-r1"):
    return _cpu_only("llamacpp", "xeon-6980p-1s-mrdimm-8800-12ch", model, "gguf-q8_0")  # one instance per socket


def test_sequential_cpu_experts_pay_dispatch_per_touched_expert():
    from dataclasses import replace as dc_replace

    sc = _llamacpp_cpu()
    fused = dc_replace(sc, engine=dc_replace(sc.engine, cpu_experts_sequential=False))
    seq_step, fused_step = decode_step(sc, 1, 1536), decode_step(fused, 1, 1536)
    spec = sc.model.spec
    moe_layers = sum(spec.moe_layers)
    extra = sc.engine.cpu_op_host_s * 3 * (spec.experts_per_token - 1) * moe_layers  # k experts x 3 vs 3 kernels
    assert seq_step.seconds == pytest.approx(fused_step.seconds + extra)


# the same blog's Table 1, llama.cpp Q8 on one 6980P socket (TTFT ms, TPOT ms)
LLAMACPP_CPU_TABLE = [("deepseek-r1", 24546.76, 172.01), ("qwen3-235b-a22b", 16806.34, 214.9),
                      ("llama-3.1-70b", 20306.85, 194.97)]


@pytest.mark.parametrize("model,ttft,tpot", LLAMACPP_CPU_TABLE)
def test_llamacpp_cpu_calibration_reproduces_its_table(model, ttft, tpot):
    m = estimate(_llamacpp_cpu(model))["metrics"]
    assert m["ttft_ms"] == pytest.approx(ttft, rel=0.10)
    assert m["tpot_ms"] == pytest.approx(tpot, rel=0.15)


def _unstated(model, weights, engine, gpus=8):
    from planner.serving.unstated import resolve_unstated_plan

    none = dict.fromkeys(("tp", "ep", "pp", "dp_attention", "replicas", "disaggregated"))
    sc = scenario(model=model, weights=weights, engine=engine, parallelism=none,
                  hardware={"gpu": "h200-sxm", "gpus_per_node": gpus, "nodes": 1},
                  workload={"phase": "serve", "input_len": 1000, "output_len": 1000})
    return resolve_unstated_plan(sc)


def test_unstated_plan_is_the_best_of_tp_and_dp_attention_layouts():
    from dataclasses import replace

    from planner.deploy.memory import memory_report
    from planner.serving.serve import best_decode_rate

    chosen, notes = _unstated("deepseek-v3", "fp8-block128", "sglang")
    p = chosen.parallelism
    assert notes and "parallelism not stated" in notes[0]
    rate = best_decode_rate(chosen, memory_report(chosen))
    for tp, ep, dp in ((8, 8, 1), (1, 8, 8), (4, 4, 1)):
        other = replace(chosen, parallelism=replace(p, tp=tp, ep=ep, dp_attention=dp, replicas=8 // (tp * dp)))
        mem = memory_report(other)
        assert not mem.fits or best_decode_rate(other, mem) <= rate * (1 + 1e-9)
    # MLA keeps one latent KV copy per TP rank: attention DP wins for DeepSeek at full-memory batches
    assert p.dp_attention > 1 and p.tp == 1
    # dense models and engines without attention DP keep TP layouts
    assert _unstated("llama-3.1-70b", "fp8", "sglang")[0].parallelism.dp_attention == 1
    assert _unstated("qwen3-30b-a3b", "bf16", "llamacpp", gpus=2)[0].parallelism.dp_attention == 1


def test_a_chosen_operating_point_is_served_with_graphs_a_stated_one_with_the_engine_defaults():
    """planner.deploy.engine_options.tuned_for_chosen_batch: with no batch or concurrency stated the planner picks the
    batch and assumes the deployment captures it (MLPerf-style tuned runs); a stated concurrency runs the engine's
    defaults (trtllm-serve's PyTorch backend graphs decode batches up to 128), unless engine_options says otherwise."""
    wl = {"phase": "serve", "input_len": 1024, "output_len": 256}
    chosen = scenario(model="deepseek-v3", weights="fp8-block128", engine="trtllm", workload=wl)
    stated = scenario(model="deepseek-v3", weights="fp8-block128", engine="trtllm",
                      workload={**wl, "concurrency": 1024})
    pinned = scenario(model="deepseek-v3", weights="fp8-block128", engine="trtllm", workload=wl,
                      engine_options={"cuda_graph_max_batch": 128})
    assert stated.engine.cuda_graph_max_batch == pinned.engine.cuda_graph_max_batch == 128
    assert chosen.engine.cuda_graph_max_batch is None
    big = 1024 / 8  # sequences per GPU at TP8
    assert decode_step(stated, big, 1200).launch_s > 0 and decode_step(chosen, big, 1200).launch_s == 0
    assert decode_step(stated, big, 1200).seconds >= decode_step(chosen, big, 1200).seconds
    notes = " ".join(estimate(chosen)["assumptions"])
    assert "cuda_graph_max_batch" in notes
    assert "cuda_graph_max_batch" not in " ".join(estimate(pinned)["assumptions"])


def test_vllm_fused_moe_streams_expert_bytes_after_a_fixed_latency():
    """profiles/engines/vllm.yaml fused_moe_stream: t = max(compute, latency + bytes / (HBM x fraction)), no floor;
    W4A16 (Marlin) experts keep the calibration table, other engines too."""
    sc = scenario(weights="nvfp4-bf16-attn", hardware={"gpu": "b200", "gpus_per_node": 4},
                  parallelism={"tp": 4, "ep": 4}, engine_options={"kernel_tables": "default"})  # silicon: measured
    latency, fraction = load_engine("vllm").fused_moe_stream
    assert (latency, fraction) == (1.12e-5, 0.818)  # kernels_bench fit-moe-stream --engine vllm --version 0.24.0
    m = machine(sc)
    hbm = m.acc.memory_bandwidth_bytes_per_s
    for nbytes in (1e6, 1e8, 2e9):  # a tiny call pays the latency, not the 3 x 8 us floor; a large one streams
        t = time_op(Op("moe.experts", "grouped_gemm", 1, 1e6, weight_bytes=nbytes, m=1, kernels=3, dtype="fp4"), m)
        assert t.seconds == pytest.approx(latency + nbytes / (hbm * fraction), rel=1e-9) and t.bound == "memory"
    assert machine(scenario()).moe_stream_fraction is None  # Kimi's INT4 experts: W4A16 Marlin, the table's curve
    assert machine(scenario(weights="nvfp4-bf16-attn", engine="sglang",
                            hardware={"gpu": "b200"})).moe_stream_fraction is None

