"""Gemma 4 (`gemma4`, issue 20): sliding and full-attention layers with their own head width and KV heads (K = V on
the full layers), a dense MLP beside 128 routed experts on every layer; parameters equal to transformers 5.25 on the
meta device, KV bytes per layer kind against vLLM's cache, memory, op records per attention kind, the vectorized
sweep against the scalar decode model, and `planner inspect` on the config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.inventory import active_params_per_token, params_by_part
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model
from planner.model.spec import model_spec_from_config
from planner.perf.ops import step_ops
from planner.perf.steps import decode_step
from planner.perf.sweep import DecodeSweep
from planner.serving.estimate import estimate
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json, scenario

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT.parent / "shared" / "reference" / "hf-configs" / "google__gemma-4-26B-A4B.json"
NAME = "gemma-4-26b-a4b"


def _config() -> dict:
    if not CONFIG.exists():
        pytest.skip(f"{CONFIG} not present")
    return json.loads(CONFIG.read_text())


def test_matches_transformers_and_profile():
    config = _config()
    spec = model_spec_from_config(config, name="g", file="g.json")
    # Gemma4ForCausalLM on the meta device: 25,233,141,760 parameters + 30 one-element layer_scalar buffers (persistent,
    # in the checkpoint); the non-persistent embed_scale is not counted
    assert params_by_part(spec) == {"language": 25_233_141_790, "mtp": 0, "vision": 0}
    assert params_by_part(spec)["language"] == hf_param_count(config)
    # top-8 of 128 experts + the dense MLP + attention + router + the (tied) embedding in full: "A4B"
    assert active_params_per_token(spec) == 3_822_530_590
    model = load_model(NAME)
    assert model.spec == model_spec_from_config(config, name=NAME, file="g.json")
    assert model.native_weights == "bf16"


def test_layer_layout():
    spec = load_model(NAME).spec
    assert spec.layer_kind_counts == {"attention": {"gqa": 5, "sliding": 25}, "ffn": {"moe": 30}}
    assert spec.attention_kinds[4:6] == ("sliding", "gqa") and spec.sliding_window == 1024
    assert (spec.head_dim, spec.num_kv_heads, spec.full_head_dim, spec.full_kv_heads, spec.full_k_eq_v) == \
        (256, 8, 512, 2, True)
    assert (spec.shared_intermediate_size, spec.n_routed_experts, spec.experts_per_token) == (2112, 128, 8)


def test_kv_bytes_per_layer_kind():
    # vLLM caches K and V of every layer, K = V included (vllm/model_executor/models/gemma4.py, planner.model.kv)
    spec = load_model(NAME).spec
    lay = kv_layout(spec, "bf16")
    sliding, full = 2 * 8 * 256 * 2, 2 * 2 * 512 * 2
    assert (lay.sliding_bytes_per_token_per_layer, lay.bytes_per_token_per_layer) == (sliding, full) == (8192, 4096)
    assert lay.bytes_per_token_full == 25 * sliding + 5 * full == 225_280
    # one request of 100k tokens: the sliding layers hold only the window
    assert lay.bytes_for_context(100_000) == 5 * full * 100_000 + 25 * sliding * 1024
    # TP 4: sliding layers 2 of 8 heads per rank; full layers 1 of 2 heads (replicated beyond 2 ranks)
    assert lay.per_gpu_layer_bytes(4, 8, sliding=True) == sliding // 4
    assert lay.per_gpu_layer_bytes(4, 8) == full // 2
    assert kv_layout(spec, "fp8").bytes_per_token_full == 225_280 // 2
    with pytest.raises(PlannerError, match="MLA"):
        kv_layout(spec, "fp8_ds_mla")


def test_memory_per_request():
    sc = make_scenario(NAME, weights="bf16", gpu="h100-sxm", gpus_per_node=2, parallelism={"tp": 2},
                       workload={"phase": "decode", "input_len": 8192, "output_len": 1024})
    mem = memory_report(sc)
    lay = kv_layout(sc.model.spec, "bf16")
    tokens = paged_tokens(sc.workload.context_len, sc.engine.kv_block_tokens)
    assert mem.fits
    assert mem.kv_bytes_per_sequence_per_gpu == 5 * 4096 // 2 * tokens + 25 * 8192 // 2 * min(tokens, 1024)
    assert mem.kv_bytes_per_sequence_per_gpu == lay.bytes_for_context(tokens, 2, 8)
    assert mem.kv_bytes_per_token_per_gpu == (5 * 4096 + 25 * 8192) // 2


def test_op_records_follow_the_attention_kind():
    sc = make_scenario(NAME, weights="bf16", gpu="h100-sxm", gpus_per_node=1)
    short = {op.name: op for op in step_ops(sc, "decode", 8, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    assert short["attn_swa.decode"].count == 25 and short["attn.decode"].count == 5
    assert short["attn_swa.decode"] == long["attn_swa.decode"]  # capped at the 1,024-token window
    assert long["attn.decode"].kv_read_bytes == 8 * 131072 * 4096
    # each kind's own weights: sliding q/k/v of 256-wide heads, full q of 512-wide heads and K only (V is K)
    assert short["attn_swa.kv_proj"].weight_bytes == 2 * 8 * 256 * 2816 * 2
    assert short["attn.kv_proj"].weight_bytes == 2 * 512 * 2816 * 2
    assert short["attn.q_proj"].weight_bytes == 16 * 512 * 2816 * 2
    assert short["moe.shared"].count == 30  # the dense MLP beside the experts


def test_sweep_matches_scalar_across_the_window():
    sc = scenario(model=NAME, weights="bf16", parallelism={"tp": 2}, hardware={"gpus_per_node": 2})
    sweep = DecodeSweep(sc)
    for b, c in [(1, 500), (7, 5000), (64, 300), (256, 20000)]:
        step, _ = sweep.evaluate(b, c)
        assert float(step) == pytest.approx(decode_step(sc, b, c).seconds, rel=1e-9)


def test_estimate_runs():
    sc = make_scenario(NAME, weights="bf16", engine="vllm", gpu="h100-sxm", gpus_per_node=1,
                       workload={"phase": "serve", "concurrency": 16, "input_len": 8192, "output_len": 1024})
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["tpot_ms"] > 0 and out["metrics"]["ttft_ms"] > 0


def test_inspect_config_json():
    _config()
    doc = inspect_json(CONFIG)
    assert doc["architecture"] == "gemma4" and doc["params"]["total"] == 25_233_141_790
    assert doc["kv_cache_bytes_per_token"] == 225_280 and doc["state_bytes_per_request"] == 0
    assert doc["kv_cache_bytes_per_token_per_layer_by_kind"] == {"full": 4096, "sliding": 8192}
    assert doc["layer_kinds"]["attention"] == {"gqa": 5, "sliding": 25}


def test_refused_and_other_shapes():
    config = _config()
    text = config["text_config"]
    for key, value in (("hidden_size_per_layer_input", 256), ("num_kv_shared_layers", 4)):
        with pytest.raises(PlannerError, match=key):
            model_spec_from_config(dict(config, text_config=dict(text, **{key: value})), name="b", file="b.json")
    # a dense Gemma 4 (no MoE block) without K = V: full layers keep v_proj and the sliding layers' KV heads
    dense = dict(config, text_config=dict(text, enable_moe_block=False, attention_k_eq_v=False, num_hidden_layers=6,
                                          layer_types=text["layer_types"][:6]))
    spec = model_spec_from_config(dense, name="d", file="d.json")
    assert spec.layer_kind_counts["ffn"] == {"dense": 6} and spec.full_kv_heads == 8
    assert params_by_part(spec)["language"] == hf_param_count(dense)
