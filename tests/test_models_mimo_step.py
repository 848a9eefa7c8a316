"""MiMo-V2-Flash (`mimo_v2_flash`) and Step-3.7-Flash (`step3p7`; issue 20): sliding-window and full-attention layers
with their own geometry; parameters equal to transformers 5.25 on the meta device, KV bytes per layer kind against
vLLM's page formula (num_kv_heads x (head_size + head_size_v) x dtype bytes, sliding layers capped at the window), op
records per attention kind, the vectorized sweep against the scalar decode model, `planner estimate` and
`planner size` on a fitting deployment, and `planner inspect` on both published configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.inventory import params_by_part
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model
from planner.model.spec import model_spec_from_config
from planner.perf.ops import step_ops
from planner.perf.steps import decode_step
from planner.perf.sweep import DecodeSweep
from planner.serving.estimate import estimate
from planner.sizing.search import size
from planner.sizing.workload import workload_from_mapping
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json, scenario

CONFIGS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "hf-configs"
MIMO, STEP = CONFIGS / "XiaomiMiMo__MiMo-V2-Flash.json", CONFIGS / "stepfun-ai__Step-3.7-Flash.json"
# transformers 5.25 on the meta device: parameters + persistent e_score_correction_bias buffers (tests/hf_reference.py)
PARAMS = {"mimo-v2-flash": 308_778_768_832 + 47 * 256, "step-3.7-flash": 195_844_496_640 + 42 * 288}


def _config(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


@pytest.mark.parametrize(("name", "path"), [("mimo-v2-flash", MIMO), ("step-3.7-flash", STEP)])
def test_matches_transformers_and_profile(name, path):
    config = _config(path)
    spec = model_spec_from_config(config, name=name, file=path.name)
    # MTP layers and Step's vision tower are not counted (transformers builds neither into the language model)
    assert params_by_part(spec) == {"language": PARAMS[name], "mtp": 0, "vision": 0}
    assert params_by_part(spec)["language"] == hf_param_count(config)
    assert load_model(name).spec == spec  # the profile holds the same config


def test_layer_layout():
    mimo, step = load_model("mimo-v2-flash").spec, load_model("step-3.7-flash").spec
    # MiMo: full on layer 0 and every 6th (hybrid_layer_pattern 0), layer 0 dense (moe_layer_freq 0)
    assert mimo.layer_kind_counts == {"attention": {"gqa": 9, "sliding": 39}, "ffn": {"dense": 1, "moe": 47}}
    assert [i for i, k in enumerate(mimo.attention_kinds) if k == "gqa"] == [0, 5, 11, 17, 23, 29, 35, 41, 47]
    # sliding: 8 kv heads (swa_num_key_value_heads = 2 x 4); full: 4; K 192, V 128; vLLM's 128-token window
    assert (mimo.num_kv_heads, mimo.full_kv_heads, mimo.head_dim, mimo.full_head_dim, mimo.v_head_dim) == \
        (8, 4, 192, 192, 128)
    assert mimo.sliding_window == 128 and (mimo.n_routed_experts, mimo.experts_per_token) == (256, 8)
    assert mimo.shared_intermediate_size == 0 and mimo.router_score_bias
    # Step: full on every 4th layer from 0, layers 0-2 dense, 288 experts top-8 + a shared expert of 1280
    assert step.layer_kind_counts == {"attention": {"gqa": 12, "sliding": 33}, "ffn": {"dense": 3, "moe": 42}}
    assert step.sliding_window == 512 and step.head_gate and step.qk_norm
    assert (step.n_routed_experts, step.experts_per_token, step.shared_intermediate_size) == (288, 8, 1280)


def test_kv_bytes_per_layer_kind():
    # vLLM page: block x num_kv_heads x (head_size + head_size_v) x dtype bytes (planner.model.kv cites it)
    mimo = kv_layout(load_model("mimo-v2-flash").spec, "bf16")
    sliding, full = 8 * (192 + 128) * 2, 4 * (192 + 128) * 2
    assert (mimo.sliding_bytes_per_token_per_layer, mimo.bytes_per_token_per_layer) == (sliding, full) == (5120, 2560)
    assert mimo.bytes_per_token_full == 39 * sliding + 9 * full == 222_720
    assert mimo.bytes_for_context(100_000) == 9 * full * 100_000 + 39 * sliding * 128  # sliding layers: the window
    # TP 8: one of 8 kv heads per rank on sliding layers; the 4 full-layer heads replicated, one per rank
    assert mimo.per_gpu_layer_bytes(8, 8, sliding=True) == sliding // 8 and mimo.per_gpu_layer_bytes(8, 8) == full // 4
    assert kv_layout(load_model("mimo-v2-flash").spec, "fp8").bytes_per_token_full == 222_720 // 2
    step = kv_layout(load_model("step-3.7-flash").spec, "bf16")
    per_layer = 2 * 8 * 128 * 2
    assert (step.sliding_bytes_per_token_per_layer, step.bytes_per_token_per_layer) == (per_layer, per_layer) == \
        (4096, 4096)
    assert step.bytes_for_context(100_000) == 12 * per_layer * 100_000 + 33 * per_layer * 512
    with pytest.raises(PlannerError, match="MLA"):
        kv_layout(load_model("step-3.7-flash").spec, "fp8_ds_mla")


def test_memory_per_request():
    sc = make_scenario("mimo-v2-flash", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8,
                       parallelism={"tp": 8}, workload={"phase": "decode", "input_len": 8192, "output_len": 1024})
    mem = memory_report(sc)
    tokens = paged_tokens(sc.workload.context_len, sc.engine.kv_block_tokens)
    assert mem.fits
    assert mem.kv_bytes_per_sequence_per_gpu == 9 * 640 * tokens + 39 * 640 * min(tokens, 128)
    assert mem.kv_bytes_per_token_per_gpu == 48 * 640


def test_op_records_follow_the_attention_kind():
    sc = make_scenario("mimo-v2-flash", weights="bf16", gpu="h200-sxm", gpus_per_node=1)
    short = {op.name: op for op in step_ops(sc, "decode", 8, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    assert short["attn_swa.decode"].count == 39 and short["attn.decode"].count == 9
    assert short["attn_swa.decode"] == long["attn_swa.decode"]  # capped at the 128-token window
    assert long["attn.decode"].kv_read_bytes == 8 * 131072 * 2560
    assert long["attn.decode"].flops == 2 * 8 * 64 * 131072 * (192 + 128)  # q.K over 192, p.V over 128
    # each kind's own K/V weights (V narrower than K) and o_proj from V's width
    assert short["attn_swa.kv_proj"].weight_bytes == 8 * (192 + 128) * 4096 * 2
    assert short["attn.kv_proj"].weight_bytes == 4 * (192 + 128) * 4096 * 2
    assert short["attn.o_proj"].weight_bytes == 4096 * 64 * 128 * 2
    step = make_scenario("step-3.7-flash", weights="bf16", gpu="h200-sxm", gpus_per_node=1)
    ops = {op.name: op for op in step_ops(step, "decode", 8, 4096)}
    assert ops["attn_swa.g_proj"].weight_bytes == ops["attn.g_proj"].weight_bytes == 64 * 4096 * 2
    assert (ops["attn_swa.decode"].count, ops["attn.decode"].count, ops["moe.shared"].count) == (33, 12, 42)


@pytest.mark.parametrize("name", ["mimo-v2-flash", "step-3.7-flash"])
def test_sweep_matches_scalar_across_the_window(name):
    sc = scenario(model=name, weights="fp8", parallelism={"tp": 8})
    sweep = DecodeSweep(sc)
    for b, c in [(1, 100), (7, 5000), (64, 300), (256, 20000)]:
        step, _ = sweep.evaluate(b, c)
        assert float(step) == pytest.approx(decode_step(sc, b, c).seconds, rel=1e-9)


@pytest.mark.parametrize(("name", "weights"), [("mimo-v2-flash", "fp8-block128"), ("step-3.7-flash", "bf16")])
def test_estimate_runs(name, weights):
    sc = make_scenario(name, weights=weights, engine="vllm", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8},
                       workload={"phase": "serve", "concurrency": 16, "input_len": 8192, "output_len": 1024})
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["tpot_ms"] > 0 and out["metrics"]["ttft_ms"] > 0


def test_size_runs():
    doc = {"model": "step-3.7-flash", "weights": ["fp8"], "kv_cache": ["bf16"], "context_len": 32768,
           "traffic": {"requests_per_s": 1.0, "input_len": 2000, "output_len": 500},
           "slo": {"ttft_ms": 5000, "tpot_ms": 50}, "purchase": "rent", "top": 1,
           "search": {"classes": ["gpu_server"], "accelerators": ["h200-sxm"], "max_nodes": 1}}
    out = size(workload_from_mapping(doc, "w.yaml"), budget_s=None)
    assert out["plans"] and out["plans"][0]["metrics"]["tpot_ms"] <= 50 * (1 + 1e-6)


def test_inspect_config_json():
    _config(MIMO)
    doc = inspect_json(MIMO)
    assert doc["architecture"] == "mimo_v2_flash" and doc["params"]["total"] == PARAMS["mimo-v2-flash"]
    assert doc["kv_cache_bytes_per_token"] == 222_720 and doc["kv_cache_sliding_window"] == 128
    assert doc["kv_cache_bytes_per_token_per_layer_by_kind"] == {"full": 2560, "sliding": 5120}
    doc = inspect_json(STEP)
    assert doc["architecture"] == "step3p7" and doc["params"]["total"] == PARAMS["step-3.7-flash"]
    assert doc["kv_cache_bytes_per_token"] == 45 * 4096 and doc["kv_cache_sliding_layers"] == 33


def test_other_config_forms_and_refusals():
    mimo = _config(MIMO)
    # without vLLM's fields, transformers' defaults: the same layer kinds and MoE layers
    bare = {k: v for k, v in mimo.items() if k not in ("hybrid_layer_pattern", "moe_layer_freq")}
    read = lambda c: model_spec_from_config(c, name="m", file="m.json")  # noqa: E731
    assert read(bare) == read(mimo)
    # a smaller variant by transformers' own field names, against transformers
    small = dict(mimo, num_hidden_layers=4, layer_types=["full_attention", "sliding_attention"] * 2,
                 mlp_layer_types=["dense", "sparse", "dense", "sparse"], n_routed_experts=16)
    del small["hybrid_layer_pattern"], small["moe_layer_freq"], small["swa_num_key_value_heads"]
    spec = model_spec_from_config(small, name="s", file="s.json")
    assert params_by_part(spec)["language"] == hf_param_count(small)
    with pytest.raises(PlannerError, match="swa_num_key_value_heads"):  # vLLM and transformers would differ
        model_spec_from_config(dict(mimo, swa_num_key_value_heads=16), name="b", file="b.json")
    step = _config(STEP)
    # the published wrapper form: the same text model under text_config, with legacy names and MTP-padded lists
    legacy = {k: v for k, v in step.items() if k not in ("model_type", "num_key_value_heads", "num_experts",
                                                         "first_k_dense_replace")}
    legacy.update(num_attention_groups=8, moe_num_experts=288, moe_layers_enum=",".join(map(str, range(3, 48))),
                  layer_types=step["layer_types"] + ["full_attention"] * 3)
    nested = {"model_type": "step3p7", "text_config": legacy, "vision_config": {}}
    assert model_spec_from_config(nested, name="s", file="s.json") == model_spec_from_config(step, name="s",
                                                                                             file="s.json")
    small = dict(step, num_hidden_layers=5, layer_types=step["layer_types"][:5], n_routed_experts=16,
                 mlp_layer_types=["dense", "sparse", "sparse", "dense", "sparse"], num_nextn_predict_layers=0)
    spec = model_spec_from_config(small, name="s", file="s.json")
    assert params_by_part(spec)["language"] == hf_param_count(small)
    with pytest.raises(PlannerError, match="num_sliding_attention_heads"):
        model_spec_from_config(dict(step, num_sliding_attention_heads=96), name="b", file="b.json")


def test_a_pool_allocated_up_front_holds_its_slots_whole_contexts():
    """llama.cpp allocates the KV for its slots' context up front. For a model whose sliding-window layers cap
    their KV (MiMo-V2-Flash), that pool divided by the full layers' bytes per token is fewer tokens than the context
    it was sized for; the simulator then never admitted the one request (found by test_estimate_is_sane: 142 + 1
    tokens against 141). The pool holds its slots' contexts, so the request is served."""
    from planner.serving.estimate import estimate

    sc = make_scenario("mimo-v2-flash", weights="gguf-iq1_s", gpu="h100-sxm", gpus_per_node=1, engine="llamacpp",
                       parallelism={"tp": 1}, workload={"phase": "serve", "input_len": 142, "output_len": 1,
                                                        "concurrency": 1})
    mem = memory_report(sc)
    assert mem.fits and mem.kv_tokens_per_gpu >= sc.workload.context_len
    assert mem.kv_bytes_per_sequence_per_gpu < sc.workload.context_len * mem.kv_bytes_per_token_per_gpu  # windowed
    assert estimate(sc)["metrics"]["ttft_ms"] > 0
