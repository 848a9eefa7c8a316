"""KV cache per token: golden values with citations, window caps, paging, MHA-equivalent."""

from __future__ import annotations

import pytest

from planner.base.errors import PlannerError
from planner.model.kv import kv_layout, mha_equivalent_bytes_per_token, paged_tokens
from planner.model.models import load_model


def test_kimi_k25_bf16_70272():
    # CONTRACT.md §1: (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 B x 61 layers = 70,272 B/token
    assert kv_layout(load_model("kimi-k2.5").spec, "bf16").bytes_per_token_full == 70_272 == 576 * 2 * 61


def test_kimi_k25_fp8_ds_mla_656_per_layer():
    # deepseek-ai/FlashMLA README (FP8 KV cache): 656 B per token per layer = 512 fp8 + 16 B scales + 128 B bf16 rope
    assert kv_layout(load_model("kimi-k2.5").spec, "fp8_ds_mla").bytes_per_token_full == 61 * 656


def test_deepseek_v3_fp8():
    assert kv_layout(load_model("deepseek-v3").spec, "fp8").bytes_per_token_full == 576 * 61


def test_llama_gqa():
    # Llama-3.1-70B: 80 layers x 2 (K,V) x 8 kv heads x 128 x 2 B = 327,680 B/token
    lay = kv_layout(load_model("llama-3.1-70b").spec, "bf16")
    assert lay.bytes_per_token_full == 327_680
    assert lay.per_gpu_layer_bytes(tp=8, kv_heads=8) * 80 == 327_680 // 8
    assert lay.per_gpu_layer_bytes(tp=16, kv_heads=8) * 80 == 327_680 // 8  # a head is replicated, not split


def test_mla_latent_not_split_by_tp():
    lay = kv_layout(load_model("deepseek-v3").spec, "bf16")
    assert lay.per_gpu_layer_bytes(tp=8, kv_heads=128) == lay.bytes_per_token_per_layer


def test_gpt_oss_sliding_window_caps():
    spec = load_model("gpt-oss-120b").spec
    lay = kv_layout(spec, "bf16")
    per_layer = 2 * 8 * 64 * 2  # K,V x 8 kv heads x head_dim 64 x 2 B
    assert lay.sliding_layers == 18 and lay.full_layers == 18 and lay.sliding_window == 128
    assert lay.bytes_for_context(100) == per_layer * 36 * 100
    assert lay.bytes_for_context(10_000) == per_layer * (18 * 10_000 + 18 * 128)


def test_longer_context_never_fewer_bytes():
    for name in ("kimi-k2.5", "gpt-oss-120b", "llama-3.1-70b"):
        lay = kv_layout(load_model(name).spec, "bf16")
        sizes = [lay.bytes_for_context(n) for n in (1, 100, 128, 129, 4096, 131072)]
        assert sizes == sorted(sizes)


def test_mha_equivalent_and_saving():
    # Kimi K2.5: 64 heads x (K 192 + V 128) x 2 B x 61 = 2,498,560 B/token vs 70,272 latent (35.6x)
    spec = load_model("kimi-k2.5").spec
    assert mha_equivalent_bytes_per_token(spec) == 64 * 320 * 2 * 61
    spec = load_model("llama-3.1-70b").spec
    assert mha_equivalent_bytes_per_token(spec) == 2 * 64 * 128 * 2 * 80


def test_paging():
    assert paged_tokens(1, 16) == 16 and paged_tokens(16, 16) == 16 and paged_tokens(17, 16) == 32
    assert paged_tokens(17, 1) == 17


def test_bad_dtypes():
    with pytest.raises(PlannerError, match="fp8_ds_mla"):
        kv_layout(load_model("llama-3.1-70b").spec, "fp8_ds_mla")
    with pytest.raises(PlannerError, match="unknown KV"):
        kv_layout(load_model("kimi-k2.5").spec, "int3")
