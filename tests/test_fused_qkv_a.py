"""MLA's q_a_proj and kv_a_proj_with_mqa read the same hidden state and are replicated on every TP rank; vLLM, SGLang
and TensorRT-LLM merge them into one GEMM at load time (engine fused_qkv_a, cited in their profiles), llama.cpp, MLX,
KTransformers and the ideal engine (kernels_bench's torch layer) run them apart."""

from __future__ import annotations

import pytest

from planner.perf.steps import decode_ops, kernels, prefill_ops
from tests.scenario_util import scenario


def _ops(engine: str, weights: str = "fp8-block128", **kw):
    sc = scenario(model="deepseek-v3", weights=weights, engine=engine, parallelism={"tp": 8}, **kw)
    return sc, {op.name: op for op in decode_ops(sc, 4, 2000)}


@pytest.mark.parametrize("engine", ["sglang", "vllm", "trtllm"])
def test_serving_engines_run_one_qkv_a_gemm_with_both_weights(engine):
    sc, fused = _ops(engine)
    _, apart = _ops("ideal")
    assert sc.engine.fused_qkv_a
    assert "attn.q_a_proj" not in fused and "attn.kv_a_proj" not in fused
    one, q_a, kv_a = fused["attn.qkv_a_proj"], apart["attn.q_a_proj"], apart["attn.kv_a_proj"]
    s = sc.model.spec
    assert one.flops == pytest.approx(q_a.flops + kv_a.flops)  # [h -> q_lora + c + r]: the same FLOP
    assert one.weight_bytes == pytest.approx(q_a.weight_bytes + kv_a.weight_bytes)
    assert one.flops == pytest.approx(2 * q_a.m * s.hidden_size * (s.q_lora_rank + s.kv_latent_elems_per_layer))
    assert one.kernels == q_a.kernels + kv_a.kernels - 1  # one GEMM launch fewer; both norms and the rope stay
    # fewer bytes of activations read: the hidden state once
    assert one.act_bytes < q_a.act_bytes + kv_a.act_bytes


def test_engines_that_keep_them_apart_and_models_without_a_query_latent():
    for engine, weights in (("llamacpp", "gguf-q4_k_m"), ("ideal", "fp8-block128")):
        sc = scenario(model="deepseek-v3", weights=weights, engine=engine)
        names = {op.name for op in prefill_ops(sc, 64, 64)}
        assert {"attn.q_a_proj", "attn.kv_a_proj"} <= names and "attn.qkv_a_proj" not in names
    lite = scenario(model="deepseek-v2-lite", engine="sglang")  # q_lora_rank null: q_proj and kv_a_proj
    names = {op.name for op in decode_ops(lite, 4, 2000)}
    assert {"attn.q_proj", "attn.kv_a_proj"} <= names and "attn.qkv_a_proj" not in names
    sglang = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang")
    ideal = scenario(model="deepseek-v3", weights="fp8-block128", engine="ideal")
    layers = sglang.model.spec.num_layers
    assert kernels(prefill_ops(ideal, 64, 64)) - kernels(prefill_ops(sglang, 64, 64)) == layers
