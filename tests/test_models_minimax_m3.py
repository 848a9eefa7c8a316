"""MiniMax-M3 (`minimax_m3`, `minimax_m3_vl`; issue 20): 3 dense full-attention layers and 57 block-sparse MoE layers
with a lightning indexer; parameters equal to transformers 5.25 on the meta device, KV bytes (GQA K/V + an unsplit bf16
index key on the sparse layers) against vLLM's caches, the 16 x 128-token attention cap, op records per attention kind,
the vectorized sweep against the scalar decode model, and `planner inspect` on both published config forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.inventory import params_by_part
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model, raw_config
from planner.model.spec import model_spec_from_config
from planner.perf.ops import step_ops
from planner.perf.steps import decode_step
from planner.perf.sweep import DecodeSweep
from planner.serving.estimate import estimate
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json, scenario

ROOT = Path(__file__).resolve().parents[1]
VL = ROOT.parent / "shared" / "reference" / "hf-configs" / "MiniMaxAI__MiniMax-M3.json"
NAME = "minimax-m3"


def _config() -> dict:
    if not VL.exists():
        pytest.skip(f"{VL} not present")
    return json.loads(VL.read_text())


def test_matches_transformers_and_profile():
    config = _config()
    spec = model_spec_from_config(config, name=NAME, file="m.json")
    # MiniMaxM3VLForCausalLM on the meta device: 426,174,565,632 parameters + 57 x 128 e_score_correction_bias
    assert params_by_part(spec) == {"language": 426_174_572_928, "mtp": 0, "vision": 0}
    assert params_by_part(spec)["language"] == hf_param_count(config)
    # the profile holds aiconfigurator's flattened text-only config (model_type minimax_m3): the same model
    model = load_model(NAME)
    assert model.spec == spec and model.native_weights == "bf16"
    assert raw_config(model)["model_type"] == "minimax_m3"
    assert hf_param_count(raw_config(model)) == 426_174_572_928


def test_layer_layout():
    spec = load_model(NAME).spec
    assert spec.layer_kind_counts == {"attention": {"gqa": 3, "gqa_sparse": 57}, "ffn": {"dense": 3, "moe": 57}}
    assert spec.attention_kinds[2:4] == ("gqa", "gqa_sparse") and spec.ffn_kinds[2:4] == ("dense", "moe")
    # 16 blocks of 128 tokens, the local block among them (vLLM index_topk.py, transformers MiniMaxM3VLIndexer)
    assert (spec.index_n_heads, spec.index_head_dim, spec.index_topk) == (4, 128, 16 * 128)
    assert (spec.n_routed_experts, spec.experts_per_token, spec.shared_intermediate_size) == (128, 4, 3072)


def test_kv_bytes():
    # K and V of 4 kv heads x 128 on every layer (split by TP) + a bf16 index key of 128 on the 57 sparse layers (not)
    lay = kv_layout(load_model(NAME).spec, "bf16")
    assert (lay.bytes_per_token_per_layer, lay.indexer_bytes_per_token_per_layer, lay.indexed_layers) == (2048, 256, 57)
    assert lay.bytes_per_token_full == 60 * 2 * 4 * 128 * 2 + 57 * 128 * 2 == 137_472
    assert lay.bytes_for_context(1000) == 137_472 * 1000
    # TP 8: one kv head per rank (4 heads replicated), the index key whole on every rank
    assert lay.bytes_for_context(1000, tp=8, kv_heads=4) == (60 * 512 + 57 * 256) * 1000
    fp8 = kv_layout(load_model(NAME).spec, "fp8")  # the index key stays bf16
    assert fp8.bytes_per_token_full == 60 * 1024 + 57 * 256


def test_memory_per_request():
    sc = make_scenario(NAME, weights="fp8", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8},
                       workload={"phase": "decode", "input_len": 8192, "output_len": 1024})
    mem = memory_report(sc)
    tokens = paged_tokens(sc.workload.context_len, sc.engine.kv_block_tokens)
    assert mem.fits
    assert mem.kv_bytes_per_token_per_gpu == 60 * 512 + 57 * 256
    assert mem.kv_bytes_per_sequence_per_gpu == (60 * 512 + 57 * 256) * tokens


def test_op_records_follow_the_attention_kind():
    sc = make_scenario(NAME, weights="fp8", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8})
    short = {op.name: op for op in step_ops(sc, "decode", 8, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    assert short["attn_sparse.decode"].count == 57 and short["attn.decode"].count == 3
    seqs = 8 * 8  # tokens per GPU x TP ranks of the attention group
    # sparse layers read at most 2,048 tokens per query, full layers the whole context, one kv head per rank
    assert long["attn_sparse.decode"].kv_read_bytes == seqs * 2048 * 512
    assert long["attn.decode"].kv_read_bytes == seqs * 131072 * 512
    # the indexer scores every cached key: O(context), its bf16 keys read whole on every rank
    assert long["attn.idx_block_score"].kv_read_bytes == seqs * 131072 * 256
    assert long["attn.idx_block_score"].flops == 2 * 8 * 4 * 128 * 131072
    assert short["attn.q_proj"].weight_bytes > 0 and short["attn_sparse.idx_k_proj"].weight_bytes > 0
    assert short["mlp.dense"].count == 3 and short["moe.experts"].count == 57 and short["moe.shared"].count == 57


def test_sweep_matches_scalar_across_the_cap():
    sc = scenario(model=NAME, weights="fp8")
    sweep = DecodeSweep(sc)
    for b, c in [(1, 500), (7, 5000), (64, 300), (256, 20000)]:
        step, _ = sweep.evaluate(b, c)
        assert float(step) == pytest.approx(decode_step(sc, b, c).seconds, rel=1e-9)


def test_estimate_runs():
    sc = make_scenario(NAME, weights="fp8", engine="vllm", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8},
                       workload={"phase": "serve", "concurrency": 16, "input_len": 8192, "output_len": 1024})
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["tpot_ms"] > 0 and out["metrics"]["ttft_ms"] > 0


def test_inspect_config_json():
    _config()
    doc = inspect_json(VL)
    assert doc["architecture"] == "minimax_m3" and doc["params"]["total"] == 426_174_572_928
    assert doc["kv_cache_bytes_per_token"] == 137_472 and doc["state_bytes_per_request"] == 0
    assert (doc["kv_cache_indexer_bytes_per_token_per_layer"], doc["kv_cache_indexed_layers"]) == (256, 57)
    assert doc["layer_kinds"]["attention"] == {"gqa": 3, "gqa_sparse": 57}


def test_bad_layer_lists_are_refused():
    config = _config()
    text = config["text_config"]
    sac = dict(text["sparse_attention_config"], sparse_attention_freq=[2] * 60)
    with pytest.raises(PlannerError, match="sparse_attention_freq"):
        model_spec_from_config(dict(config, text_config=dict(text, sparse_attention_config=sac)), name="b", file="b")
    with pytest.raises(PlannerError, match="moe_layer_freq"):
        model_spec_from_config(dict(config, text_config=dict(text, moe_layer_freq=[1] * 59)), name="b", file="b")
    # transformers' own names: layer_types and mlp_layer_types win over the flags
    named = dict(text, layer_types=["full_attention"] * 60, mlp_layer_types=["sparse"] * 60)
    spec = model_spec_from_config(dict(config, text_config=named), name="n", file="n")
    assert spec.layer_kind_counts == {"attention": {"gqa": 60}, "ffn": {"moe": 60}}
