"""Steps outside CUDA graphs: eager steps wait for the host to launch their kernels (engine eager_kernel_host_s,
eager_kernel_host_mla_s, eager_prefill_kernel_host_mla_s, eager_prefill_kernel_host_moe_s), decode inside the captured
sizes replays a graph."""

from __future__ import annotations

import pytest

from planner.perf.steps import decode_step, prefill_step
from planner.serving.estimate import estimate
from tests.scenario_util import scenario, sglang_dsv3


def test_steps_outside_cuda_graphs_wait_for_host_launches():
    from planner.perf.steps import launch_seconds, prefill_ops

    sc = sglang_dsv3()
    assert sc.engine.eager_kernel_host_s > 0 and sc.engine.graph_prefill_tokens == 0
    tiny = prefill_step(sc, 16 / 8, 16)  # a 16-token prompt: GPU work is tiny, launching ~1,500 kernels is not
    assert tiny.launch_s == pytest.approx(launch_seconds(sc, prefill_ops(sc, 16 / 8, 16), prefill=True))
    assert tiny.seconds >= tiny.launch_s and tiny.bottleneck == "host"
    # decode inside the captured sizes replays a graph: no launch cost
    assert decode_step(sc, 8, 2000).launch_s == 0


def test_mla_models_pay_their_own_host_cost_per_kernel_outside_graphs():
    """engine eager_kernel_host_mla_s: MLA models' op records stand for more real kernels, so their eager steps cost
    that much per op-record kernel; other models keep eager_kernel_host_s."""
    from dataclasses import replace

    from planner.perf.steps import kernels, launch_seconds, prefill_ops

    sc = sglang_dsv3()
    eng = sc.engine
    assert eng.eager_kernel_host_mla_s > eng.eager_kernel_host_s > 0
    ops = prefill_ops(sc, 16 / 8, 16)
    assert launch_seconds(sc, ops) == pytest.approx(eng.eager_kernel_host_mla_s * kernels(ops))
    unset = replace(sc, engine=replace(eng, eager_kernel_host_mla_s=None, eager_prefill_kernel_host_mla_s=None))
    assert launch_seconds(unset, ops, prefill=True) == pytest.approx(eng.eager_kernel_host_s * kernels(ops))
    gqa = scenario(model="llama-3.1-70b", weights="fp8", engine="sglang")
    gqa_ops = prefill_ops(gqa, 16 / 8, 16)
    assert launch_seconds(gqa, gqa_ops) == pytest.approx(eng.eager_kernel_host_s * kernels(gqa_ops))
    assert prefill_step(sc, 16 / 8, 16).seconds > prefill_step(unset, 16 / 8, 16).seconds


def test_an_mla_prefill_pays_its_own_host_cost_and_decode_keeps_the_decode_one():
    """engine eager_prefill_kernel_host_mla_s: SGLang's eager DeepSeek prefill (the MHA path) costs more host time
    per op-record kernel than its eager decode; decode batches above the captured sizes keep the decode cost."""
    from dataclasses import replace

    from planner.perf.steps import decode_ops, kernels, launch_seconds, prefill_ops

    sc = sglang_dsv3()
    eng = sc.engine
    assert eng.eager_prefill_kernel_host_mla_s > eng.eager_kernel_host_mla_s
    ops = prefill_ops(sc, 16 / 8, 16)
    assert prefill_step(sc, 16 / 8, 16).launch_s == pytest.approx(eng.eager_prefill_kernel_host_mla_s * kernels(ops))
    above = sc.engine.cuda_graph_max_batch / 8 + 1
    assert decode_step(sc, above, 2000).launch_s == pytest.approx(
        eng.eager_kernel_host_mla_s * kernels(decode_ops(sc, above, 2000)))
    unset = replace(sc, engine=replace(eng, eager_prefill_kernel_host_mla_s=None))
    assert launch_seconds(unset, ops, prefill=True) == launch_seconds(sc, ops)


def test_a_moe_prefill_pays_its_own_host_cost_and_dense_models_and_decode_keep_the_generic_one():
    """engine eager_prefill_kernel_host_moe_s: SGLang's eager prefill of a MoE model without MLA (Triton fused-MoE
    launchers, the extend path) costs the MLA prefill's host time per op-record kernel; a dense model's prefill and
    the MoE model's eager decode keep eager_kernel_host_s; an engine without the figure keeps the generic one."""
    from dataclasses import replace

    from planner.perf.steps import decode_ops, kernels, launch_seconds, prefill_ops

    moe = scenario(model="qwen3-235b-a22b", weights="fp8-block128", engine="sglang", parallelism={"tp": 8},
                   workload={"concurrency": 64})  # launched with its defaults (sglang_dsv3)
    eng = moe.engine
    assert eng.eager_prefill_kernel_host_moe_s > eng.eager_kernel_host_s > 0
    ops = prefill_ops(moe, 16 / 8, 16)
    assert prefill_step(moe, 16 / 8, 16).launch_s == pytest.approx(eng.eager_prefill_kernel_host_moe_s * kernels(ops))
    above = eng.cuda_graph_max_batch / 8 + 1
    assert decode_step(moe, above, 2000).launch_s == pytest.approx(
        eng.eager_kernel_host_s * kernels(decode_ops(moe, above, 2000)))
    dense = scenario(model="llama-3.1-70b", weights="fp8", engine="sglang", workload={"concurrency": 64})
    dense_ops = prefill_ops(dense, 16 / 8, 16)
    assert launch_seconds(dense, dense_ops, prefill=True) == pytest.approx(eng.eager_kernel_host_s * kernels(dense_ops))
    unset = replace(moe, engine=replace(eng, eager_prefill_kernel_host_moe_s=None))
    assert launch_seconds(unset, ops, prefill=True) == pytest.approx(eng.eager_kernel_host_s * kernels(ops))
    assert prefill_step(moe, 16 / 8, 16).seconds > prefill_step(unset, 16 / 8, 16).seconds


def test_sglang_dsr1_first_token_is_host_bound_until_the_prompt_outgrows_it():
    """tenstorrent/tt-inference-server #356: DeepSeek-R1 on 16x H100 (2 nodes, TP16), SGLang, one request at a
    time: TTFT 180-200 ms from 128 to 4,096 prompt tokens, 264 ms at 8,192. The eager prefill's host time sets the
    first token until the GPU work (and the cross-node all-reduces, over every NIC of the nodes) outgrows it."""
    def ttft(isl):
        sc = scenario(model="deepseek-r1", weights="fp8-block128", engine="sglang",
                      hardware={"gpu": "h100-sxm", "gpus_per_node": 8, "nodes": 2}, parallelism={"tp": 16},
                      workload={"concurrency": 1, "input_len": isl, "output_len": 128})
        return estimate(sc)["metrics"]["ttft_ms"]

    short, long = ttft(128), ttft(4096)
    assert long == pytest.approx(short, rel=0.1)
    assert ttft(8192) > 1.3 * long


def test_decode_above_captured_batch_is_never_faster_than_the_graph_model():
    sc = sglang_dsv3()
    cap = sc.engine.cuda_graph_max_batch / 8  # per GPU at TP8
    inside, above = decode_step(sc, cap, 2000), decode_step(sc, cap + 1, 2000)
    assert inside.launch_s == 0 and above.launch_s > 0
    assert above.seconds >= inside.seconds
