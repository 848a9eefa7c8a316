"""Stored checkpoint bytes under each format, pinned to published per-tensor listings
(shared/reference/checkpoints.yaml) to the byte, and relations between formats."""

from __future__ import annotations

import pytest

from planner.model.inspect import weights_bytes_by_component, weights_bytes_by_part
from planner.model.models import list_models, load_model
from planner.model.quant import list_formats, load_format

SAFETENSORS = [f for f in list_formats() if not f.startswith("gguf-")]


def total(model: str, fmt: str) -> int:
    return sum(weights_bytes_by_part(load_model(model), load_format(fmt)).values())


def test_kimi_k25_int4_checkpoint_exact():
    # checkpoints.yaml kimi-k2.5-int4: 595,148,192,736 B (sum over the published tensor listing)
    m, f = load_model("kimi-k2.5"), load_format("int4-g32")
    assert total("kimi-k2.5", "int4-g32") == 595_148_192_736
    by = weights_bytes_by_component(m, f)
    assert by["routed_experts"] == 507_343_011_840 + 63_417_876_480 + 552_960  # packed + bf16 scales + shapes
    assert by["attention"] == 12_337_139_712
    assert by["shared_experts"] == 5_284_823_040
    assert by["dense_mlp"] == 792_723_456
    assert by["router"] == 330_301_440 + 92_160  # bf16 gate + f32 e_score_correction_bias
    assert weights_bytes_by_part(m, f)["vision"] == 833_732_064 + 108_555_776


def test_deepseek_v3_fp8_checkpoint_exact():
    # checkpoints.yaml deepseek-v3-fp8: 688,574,839,360 B incl. the MTP layer; 673,150,611,808 B without it
    m, f = load_model("deepseek-v3"), load_format("fp8-block128")
    parts = weights_bytes_by_part(m, f)
    assert sum(parts.values()) == 688_574_839_360
    assert parts["mtp"] == 15_424_227_552
    assert parts["language"] == 673_150_611_808
    by = weights_bytes_by_component(m, f)
    assert by["routed_experts"] == 665_183_059_968 + 162_398_208 - 11_277_041_664  # listing minus MTP layer 61
    assert by["attention"] == 11_600_781_312 + 2_839_104 - 187_155_168


def test_deepseek_r1_same_as_v3():
    assert total("deepseek-r1", "fp8-block128") == 688_574_839_360


def test_per_routed_expert_bytes():
    # checkpoints.yaml per_routed_expert_bytes: Kimi int4 24,772,632 B; DeepSeek fp8 44,050,944 B
    from planner.model.inventory import tensor_inventory

    for model, fmt, expected in [("kimi-k2.5", "int4-g32", 24_772_632), ("deepseek-v3", "fp8-block128", 44_050_944)]:
        m, f = load_model(model), load_format(fmt)
        experts = [t for t in tensor_inventory(m.spec) if t.component == "routed_experts" and t.layer == 5]
        assert sum(f.tensor_bytes(t, m.spec) for t in experts) // m.spec.n_routed_experts == expected


def test_gpt_oss_mxfp4_size():
    # openai/gpt-oss-120b model card: "fits into a single 80GB GPU"; checkpoint about 65 GB (60.8 GiB)
    assert 64.5e9 < total("gpt-oss-120b", "mxfp4") < 66e9


def test_bf16_is_two_bytes_per_param():
    from planner.model.inventory import params_by_part, tensor_inventory

    kept = {"f32": 4, "i64": 8}  # bytes of the dtypes a checkpoint keeps whatever the format
    for name in list_models():
        spec = load_model(name).spec
        n = sum(params_by_part(spec).values())
        # float32 score-correction biases (MiMo-V2-Flash: its router; DeepSeek-V4: also sinks, position biases,
        # hyper-connections, and the int64 tid2eid)
        extra = sum(t.numel * (kept[t.dtype] - 2) for t in tensor_inventory(spec) if t.dtype != "native")
        assert total(name, "bf16") == 2 * n + extra


@pytest.mark.parametrize("model", ["kimi-k2.5", "deepseek-v3", "qwen3-235b-a22b", "llama-3.1-70b", "gpt-oss-120b"])
def test_format_ordering(model):
    b = {f: total(model, f) for f in ("bf16", "fp8", "fp8-block128", "int8", "int4-g128", "int4-g64", "nvfp4")}
    assert b["bf16"] > b["int8"] > b["int4-g128"]
    assert b["bf16"] > b["fp8-block128"] > b["int4-g128"]
    assert b["int4-g128"] < b["int4-g64"] < b["nvfp4"] or b["int4-g64"] <= b["nvfp4"]
    assert b["fp8"] <= b["fp8-block128"]


def test_mixed_bpw_is_an_average_over_experts():
    # one more bit per routed-expert weight (language and MTP layers) and nothing else changes
    from planner.model.inventory import tensor_inventory

    spec = load_model("deepseek-r1").spec
    expert_weights = sum(t.numel for t in tensor_inventory(spec) if t.component == "routed_experts")
    assert total("deepseek-r1", "mixed-3bpw") - total("deepseek-r1", "mixed-2bpw") == expert_weights // 8
    assert total("deepseek-r1", "mixed-2.5bpw") < total("deepseek-r1", "mixed-3bpw")


@pytest.mark.parametrize("fmt", SAFETENSORS)
def test_every_format_loads_and_is_positive(fmt):
    for model in ("kimi-k2.5", "llama-3.1-70b"):
        assert total(model, fmt) > 0
