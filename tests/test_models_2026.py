"""Models released since late 2025 (issue 20): per-layer layout, exact parameters against transformers 5.25 on the
meta device, KV/state bytes per attention kind against the engines' allocator formulas, memory with a fixed state
per request, and one estimate per new profile on a deployment that fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.inventory import params_by_part
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model
from planner.model.spec import model_spec_from_config
from planner.serving.estimate import estimate
from tests.hf_reference import hf_param_count

HF_CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hf-configs"
NEW = {  # profile -> config stem in shared/reference/hf-configs
    "deepseek-v3.2": "deepseek-ai__DeepSeek-V3.2", "glm-5": "zai-org__GLM-5",
    "qwen3-next-80b-a3b": "Qwen__Qwen3-Next-80B-A3B-Instruct", "qwen3.5-397b-a17b": "Qwen__Qwen3.5-397B-A17B",
    "minimax-m2.7": "MiniMaxAI__MiniMax-M2.7",
}


def _config(stem: str) -> dict:
    path = HF_CONFIGS / f"{stem}.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


@pytest.mark.parametrize("stem", sorted(NEW.values()))
def test_config_matches_transformers(stem):
    config = _config(stem)
    spec = model_spec_from_config(config, name=stem, file=f"{stem}.json")
    assert params_by_part(spec)["language"] == hf_param_count(config)


@pytest.mark.parametrize("name,stem", sorted(NEW.items()))
def test_profile_equals_config(name, stem):
    spec = model_spec_from_config(_config(stem), name=name, file=f"{stem}.json")
    assert load_model(name).spec == spec


def test_layer_layouts():
    # layer_types of Qwen3-Next: 3 linear_attention then 1 full_attention, x12; DeepSeek-V3.2: DSA on all 61 layers,
    # first_k_dense_replace 3; MiniMax-M2.7: 62 GQA MoE layers
    assert load_model("qwen3-next-80b-a3b").spec.layer_kind_counts == {
        "attention": {"gqa": 12, "linear_gdn": 36}, "ffn": {"moe": 48}}
    assert load_model("qwen3-next-80b-a3b").spec.attention_kinds[:4] == ("linear_gdn",) * 3 + ("gqa",)
    assert load_model("deepseek-v3.2").spec.layer_kind_counts == {
        "attention": {"mla_dsa": 61}, "ffn": {"dense": 3, "moe": 58}}
    assert load_model("minimax-m2.7").spec.layer_kind_counts == {"attention": {"gqa": 62}, "ffn": {"moe": 62}}
    assert load_model("kimi-k2.5").spec.layer_kind_counts == {"attention": {"mla": 61}, "ffn": {"dense": 1, "moe": 60}}
    assert load_model("gpt-oss-120b").spec.layer_kind_counts["attention"] == {"gqa": 18, "sliding": 18}


def test_full_attention_interval_without_layer_types():
    # transformers Qwen3NextConfig: layer_types default = full attention where (i + 1) % full_attention_interval == 0
    config = dict(_config(NEW["qwen3-next-80b-a3b"]))
    given = config.pop("layer_types")
    config["full_attention_interval"] = 4
    spec = model_spec_from_config(config, name="q", file="q.json")
    assert spec.layer_types == tuple(given)


def test_dsa_indexer_cache_132_bytes():
    # vllm deepseek_v2.py Indexer: DeepseekV32IndexerCache(head_dim = 128 + 128 // 128 * 4, dtype uint8) per layer;
    # MLA latent (512 + 64) x 2 B in bf16, 656 B in fp8_ds_mla (FlashMLA)
    lay = kv_layout(load_model("deepseek-v3.2").spec, "bf16")
    assert lay.indexer_bytes_per_token_per_layer == 132
    assert lay.bytes_per_token_full == 61 * (576 * 2 + 132)
    assert kv_layout(load_model("deepseek-v3.2").spec, "fp8_ds_mla").bytes_per_token_full == 61 * (656 + 132)
    assert kv_layout(load_model("glm-5").spec, "bf16").bytes_per_token_full == 78 * (576 * 2 + 132)


def test_gated_deltanet_state_bytes():
    # vllm mamba_utils.py gated_delta_net_state_shape: conv (kernel - 1) x (2 Hk dk + Hv dv), recurrent Hv x dv x dk.
    # Qwen3-Next: conv 3 x (2 x 16 x 128 + 32 x 128) = 3 x 8192 in bf16, recurrent 32 x 128 x 128 in bf16
    lay = kv_layout(load_model("qwen3-next-80b-a3b").spec, "bf16")
    per_layer = 3 * 8192 * 2 + 32 * 128 * 128 * 2
    assert per_layer == 1_097_728
    assert lay.state_bytes_per_request == 36 * per_layer
    assert lay.bytes_per_token_full == 12 * 2 * 2 * 256 * 2  # 12 full layers x K,V x 2 kv heads x 256 x 2 B
    assert lay.state_bytes_per_gpu(tp=4) == 36 * per_layer // 4
    assert lay.state_bytes_per_gpu(tp=32) == 36 * per_layer // 16  # split by 16 key heads at most
    # Qwen3.5: mamba_ssm_dtype float32 -> recurrent state 4 B; conv (2 x 16 x 128 + 64 x 128) = 12,288 wide in bf16
    lay = kv_layout(load_model("qwen3.5-397b-a17b").spec, "bf16")
    assert lay.state_bytes_per_request == 45 * (3 * 12_288 * 2 + 64 * 128 * 128 * 4)


def test_state_counts_in_memory_per_request():
    sc = make_scenario("qwen3-next-80b-a3b", gpu="h200-sxm", gpus_per_node=2, parallelism={"tp": 2},
                       workload={"phase": "decode", "input_len": 4096, "output_len": 1024})
    mem = memory_report(sc)
    lay = kv_layout(sc.model.spec, "bf16")
    assert mem.fits
    tokens = paged_tokens(sc.workload.context_len, sc.engine.kv_block_tokens)
    assert mem.kv_bytes_per_sequence_per_gpu == lay.bytes_for_context(tokens, 2, 2) + lay.state_bytes_per_gpu(2)
    assert mem.kv_bytes_per_token_per_gpu == 12 * 2 * 1 * 256 * 2  # one kv head per rank x 12 full layers
    # max concurrency counts the fixed state: pool / (tokens x per-token + state)
    assert mem.max_concurrency == pytest.approx(mem.kv_cache_bytes_per_gpu / mem.kv_bytes_per_sequence_per_gpu)


DEPLOY = {  # one deployment each that fits: weights in native format on 8 x H200 (141 GB)
    "deepseek-v3.2": dict(gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8}),
    "glm-5": dict(weights="fp8", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8}),
    "qwen3-next-80b-a3b": dict(gpu="h100-sxm", gpus_per_node=4, parallelism={"tp": 4}),
    "qwen3.5-397b-a17b": dict(gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8}),
    "minimax-m2.7": dict(gpu="h100-sxm", gpus_per_node=4, parallelism={"tp": 4}),
}


@pytest.mark.parametrize("name", sorted(DEPLOY))
def test_estimate_runs(name):
    sc = make_scenario(name, engine="vllm", workload={"phase": "serve", "concurrency": 16, "input_len": 8192,
                                                      "output_len": 1024}, **DEPLOY[name])
    out = estimate(sc)
    assert out["fits"], out["reason"]
    m = out["metrics"]
    assert m["decode_tokens_per_s_per_gpu"] > 0 and m["ttft_ms"] > 0 and m["tpot_ms"] > 0


def test_dsa_decode_reads_top_k_not_the_context():
    # at 128K context the MLA attention of a DSA model reads index_topk = 2048 tokens; the indexer reads all of them
    from planner.perf.ops import step_ops
    sc = make_scenario("deepseek-v3.2", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8})
    ops = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    lay = kv_layout(sc.model.spec, "bf16")
    seqs = 8 * 8
    assert ops["attn.mla_decode"].kv_read_bytes == seqs * 2048 * 576 * 2
    assert ops["attn.dsa_index_score"].kv_read_bytes == seqs * 131072 * lay.indexer_bytes_per_token_per_layer


def test_linear_attention_decode_is_constant_in_context():
    from planner.perf.ops import step_ops
    sc = make_scenario("qwen3-next-80b-a3b", gpu="h100-sxm", gpus_per_node=4, parallelism={"tp": 4})
    short = {op.name: op for op in step_ops(sc, "decode", 4, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 4, 262144)}
    assert short["lin.gdn_decode"] == long["lin.gdn_decode"]
    assert short["lin.gdn_decode"].count == 36 and short["attn.decode"].count == 12
    assert long["attn.decode"].kv_read_bytes == 256 * short["attn.decode"].kv_read_bytes
