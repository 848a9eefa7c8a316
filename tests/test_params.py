"""Exact parameter accounting: every shipped profile against transformers on the meta device (difference 0),
generated configs of every supported type likewise, and golden published totals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.model.inventory import COMPONENTS, active_params_per_token, params_by_component, params_by_part
from planner.model.models import list_models, load_model, raw_config
from planner.model.spec import model_spec_from_config
from tests.hf_reference import hf_param_count

# byte copies of shared/reference/hf-configs (sources and sha256 in SOURCES.md there)
SHARED = Path(__file__).resolve().parent / "data" / "hf-configs"


@pytest.mark.parametrize("name", list_models())
def test_profile_matches_transformers(name):
    model = load_model(name)
    assert params_by_part(model.spec)["language"] == hf_param_count(raw_config(model))


@pytest.mark.parametrize("name", list_models())
def test_components_sum_to_total(name):
    spec = load_model(name).spec
    by = params_by_component(spec)
    assert set(by) == set(COMPONENTS)
    assert sum(by.values()) == params_by_part(spec)["language"]
    assert 0 < active_params_per_token(spec) <= params_by_part(spec)["language"]


def test_golden_kimi_k25():
    # CONTRACT.md §1 example; vision = (833,732,064 + 108,555,776) B / 2 B per BF16 element
    # (shared/reference/checkpoints.yaml kimi-k2.5-int4 composition: vision_tower + mm_projector)
    model = load_model("kimi-k2.5")
    parts = params_by_part(model.spec)
    assert parts["language"] == 1_026_408_232_448
    assert active_params_per_token(model.spec) == 32_861_500_928
    assert parts["vision"] == 471_143_920 == (833_732_064 + 108_555_776) // 2
    assert parts["mtp"] == 0


def test_golden_deepseek_v3_mtp_apart():
    # shared/reference/checkpoints.yaml deepseek-v3-fp8: the tensor listing holds 684,531,386,000 elements,
    # of which the float32 block scales are (2,839,104 + 290,304 + 162,398,208 + 634,368) B / 4 = 41,540,496;
    # the rest is 671,026,419,200 language parameters + the MTP layer (model card: "671B main + 14B MTP").
    parts = params_by_part(load_model("deepseek-v3").spec)
    assert parts["language"] == 671_026_419_200
    scale_elems = (2_839_104 + 290_304 + 162_398_208 + 634_368) // 4
    assert parts["language"] + parts["mtp"] + scale_elems == 684_531_386_000


def test_router_score_bias_counted_as_router():
    # checkpoints.yaml kimi-k2.5-int4: router 330,301,440 B BF16 + router_bias 92,160 B F32
    by = params_by_component(load_model("kimi-k2.5").spec)
    assert by["router"] == 330_301_440 // 2 + 92_160 // 4


def test_config_json_equals_profile(tmp_path):
    for stem, name in [("moonshotai__Kimi-K2.5", "kimi-k2.5"), ("deepseek-ai__DeepSeek-V3", "deepseek-v3")]:
        folder = tmp_path / stem
        folder.mkdir()
        (folder / "config.json").write_text(open(f"{SHARED}/{stem}.json").read())
        from_path, from_profile = load_model(str(folder)), load_model(name)
        assert from_path.spec == replace(from_profile.spec, name=from_path.spec.name)
        assert from_path.native_weights == from_profile.native_weights


# ---------------------------------------------------------------- generated configs of every supported type

def _common(d):  # d: hypothesis draw function
    heads = d(st.sampled_from([4, 8, 16]))
    return dict(
        vocab_size=d(st.integers(64, 512)), hidden_size=d(st.sampled_from([64, 128, 256])),
        num_hidden_layers=d(st.integers(1, 5)), num_attention_heads=heads,
        num_key_value_heads=d(st.sampled_from([h for h in (1, 2, 4, 8, 16) if heads % h == 0])),
        intermediate_size=d(st.sampled_from([96, 128, 320])),
        tie_word_embeddings=d(st.booleans()), attention_bias=d(st.booleans()),
    )


@st.composite
def configs(d):
    mt = d(st.sampled_from(["deepseek_v3", "kimi_k2", "deepseek_v2", "qwen3_moe", "qwen2_moe", "mixtral",
                                 "llama", "qwen3", "gpt_oss", "glm4_moe"]))
    c = _common(d)
    c["model_type"] = mt
    experts = d(st.integers(2, 12))
    topk = d(st.integers(1, experts))
    if mt in ("deepseek_v3", "kimi_k2", "deepseek_v2"):
        c.update(num_key_value_heads=c["num_attention_heads"], kv_lora_rank=d(st.sampled_from([32, 64])),
                 q_lora_rank=d(st.sampled_from([None, 48, 96])), qk_nope_head_dim=16, qk_rope_head_dim=8,
                 v_head_dim=d(st.sampled_from([16, 24])), n_routed_experts=experts, num_experts_per_tok=topk,
                 moe_intermediate_size=d(st.sampled_from([32, 48])), n_shared_experts=d(st.integers(0, 2)),
                 first_k_dense_replace=d(st.integers(0, 2)), n_group=1, topk_group=1)
        if mt == "deepseek_v2":
            c.update(moe_layer_freq=d(st.integers(1, 2)), topk_method="greedy")
    elif mt in ("qwen3_moe", "qwen2_moe"):
        c.update(num_experts=experts, num_experts_per_tok=topk, moe_intermediate_size=d(st.sampled_from([32, 48])),
                 decoder_sparse_step=d(st.integers(1, 2)), mlp_only_layers=d(st.sampled_from([[], [0]])))
        if mt == "qwen3_moe":
            c["head_dim"] = d(st.sampled_from([16, 32]))
        else:
            c["shared_expert_intermediate_size"] = d(st.sampled_from([64, 96]))
    elif mt == "mixtral":
        c.update(num_local_experts=experts, num_experts_per_tok=topk)
    elif mt == "llama":
        c.update(mlp_bias=d(st.booleans()))
    elif mt == "qwen3":
        c.update(head_dim=d(st.sampled_from([16, 32])))
    elif mt == "gpt_oss":
        n = c["num_hidden_layers"]
        c.update(num_local_experts=experts, num_experts_per_tok=topk, head_dim=16, sliding_window=8,
                 layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)])
    elif mt == "glm4_moe":
        c.update(n_routed_experts=experts, num_experts_per_tok=topk, moe_intermediate_size=48, head_dim=16,
                 n_shared_experts=d(st.integers(0, 2)), first_k_dense_replace=d(st.integers(0, 2)),
                 use_qk_norm=d(st.booleans()), n_group=1, topk_group=1)
    return c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_any_config_matches_transformers(config):
    spec = model_spec_from_config(json.loads(json.dumps(config)), name="gen", file="gen.json")
    assert params_by_part(spec)["language"] == hf_param_count(config)
    assert sum(params_by_component(spec).values()) == params_by_part(spec)["language"]
