"""Nemotron-H / Nemotron-3 (`nemotron_h`, issue 20): single-sublayer blocks from hybrid_override_pattern, parameters
equal to transformers 5.25 on the meta device, Mamba-2 state per request against vLLM's state shapes, memory and op
records of a Mamba/attention/latent-MoE stack, and `planner inspect` on the config.json."""

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
from planner.serving.estimate import estimate
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json

ROOT = Path(__file__).resolve().parents[1]
SUPER = ROOT.parent / "shared" / "reference" / "hf-configs" / "nvidia__NVIDIA-Nemotron-3-Super-120B-A12B-FP8.json"
AIC = next(iter(sorted((ROOT / ".venv" / "lib").glob("python*/site-packages/aiconfigurator_core/model_configs"))),
           ROOT / "missing")
# aiconfigurator-core's verbatim configs (the `silicon` extra): Nano and Ultra (no num_hidden_layers, a
# layers_block_type list) and the dense Nemotron-H-56B (- MLP blocks)
OTHERS = {"nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16_config.json": 31_577_940_288,
          "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16_config.json": 549_308_993_536,
          "nvidia--Nemotron-H-56B-Base-8K_config.json": 56_324_350_464}


def _config(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


def test_super_matches_transformers_and_profile():
    config = _config(SUPER)
    spec = model_spec_from_config(config, name="s", file="s.json")
    # NemotronHForCausalLM on the meta device: 120,668,687,360 parameters + 40 x 512 e_score_correction_bias
    assert params_by_part(spec) == {"language": 120_668_707_840, "mtp": 0, "vision": 0}
    assert params_by_part(spec)["language"] == hf_param_count(config)
    # "12B active 120B total" (research.nvidia.com/labs/nemotron/Nemotron-3-Super): top-22 of 512 experts at the
    # 1024-wide latent + shared expert + Mamba/attention + embedding and lm_head
    assert active_params_per_token(spec) == 12_770_237_440
    model = load_model("nemotron-3-super-120b-a12b")
    assert model.spec == model_spec_from_config(config, name="nemotron-3-super-120b-a12b", file="s.json")
    assert model.native_weights == "bf16" and model.checkpoint("fp8") == "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_other_nemotron_configs_match_transformers(name):
    config = _config(AIC / name)
    spec = model_spec_from_config(config, name=name, file=name)
    assert params_by_part(spec)["language"] == OTHERS[name] == hf_param_count(config)


def test_block_layout():
    # "MEMEMEM*E...": each block is one Mamba-2 mixer, attention mixer or MoE, never two of them
    spec = load_model("nemotron-3-super-120b-a12b").spec
    assert spec.num_layers == 88 and spec.block_pattern.startswith("MEMEMEM*E")
    assert spec.layer_kind_counts == {"attention": {"gqa": 8, "linear_mamba": 40, "none": 40},
                                      "ffn": {"moe": 40, "none": 48}}
    assert spec.attention_kinds[6:9] == ("linear_mamba", "gqa", "none")
    assert spec.ffn_kinds[6:9] == ("none", "none", "moe")
    # the dense Nemotron-H: '-' blocks are relu2 MLPs (up and down only)
    dense = model_spec_from_config(_config(AIC / "nvidia--Nemotron-H-56B-Base-8K_config.json"), name="d", file="d")
    assert dense.layer_kind_counts["ffn"] == {"dense": 54, "none": 64} and not dense.mlp_gated


def test_mamba2_state_and_kv_bytes():
    # vLLM mamba_utils.py mamba2_state_shape: conv (kernel - 1) x (H p + 2 G n) in the model dtype, temporal H x p x n
    # in mamba_ssm_cache_dtype (float32 in this config). Super: H 128, p 64, G 8, n 128, kernel 4
    lay = kv_layout(load_model("nemotron-3-super-120b-a12b").spec, "bf16")
    conv_dim = 128 * 64 + 2 * 8 * 128
    per_layer = 3 * conv_dim * 2 + 128 * 64 * 128 * 4
    assert (conv_dim, per_layer) == (10_240, 4_255_744)
    assert lay.linear_layers == 40 and lay.state_bytes_per_request == 40 * per_layer == 170_229_760
    # 8 attention blocks: K and V of 2 kv heads x 128 in bf16; feed-forward blocks hold nothing
    assert (lay.full_layers, lay.sliding_layers) == (8, 0)
    assert lay.bytes_per_token_full == 8 * 2 * 2 * 128 * 2 == 8192
    assert lay.state_bytes_per_gpu(tp=4) == 40 * per_layer // 4  # the heads split over TP


def test_state_counts_in_memory_per_request():
    sc = make_scenario("nemotron-3-super-120b-a12b", weights="fp8", gpu="h100-sxm", gpus_per_node=2,
                       parallelism={"tp": 2}, workload={"phase": "decode", "input_len": 8192, "output_len": 1024})
    mem = memory_report(sc)
    lay = kv_layout(sc.model.spec, "bf16")
    assert mem.fits
    tokens = paged_tokens(sc.workload.context_len, sc.engine.kv_block_tokens)
    # vLLM's hybrid pages (planner.deploy.hybrid_pages): a Mamba page per rank of 3 x 5,120 x 2 + 64 x 64 x 128 x 4 =
    # 2,127,872 B sets the attention block to 16 x cdiv(2,127,872, 16 x 512) = 4,160 tokens (page 2,129,920 B);
    # 9,216 tokens hold 3 blocks of the attention group + 1 of each of 5 Mamba groups, 8 layers per group
    assert mem.kv_bytes_per_sequence_per_gpu == (3 + 5) * 2_129_920 * 8 == 136_314_880
    assert mem.kv_bytes_per_sequence_per_gpu >= lay.bytes_for_context(tokens, 2, 2) + lay.state_bytes_per_gpu(2)
    assert mem.kv_bytes_per_token_per_gpu == 8 * 2 * 1 * 128 * 2  # one kv head per rank x 8 attention blocks


def test_op_records_follow_the_blocks():
    sc = make_scenario("nemotron-3-super-120b-a12b", weights="fp8", gpu="h100-sxm", gpus_per_node=2,
                       parallelism={"tp": 2})
    short = {op.name: op for op in step_ops(sc, "decode", 8, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    assert short["lin.ssd_decode"] == long["lin.ssd_decode"]  # O(1) in the context
    assert short["lin.ssd_decode"].count == 40 and short["attn.decode"].count == 8
    assert short["moe.experts"].count == 40 and "mlp.dense" not in short  # no FFN on the mixer blocks
    # relu2 experts: 2 GEMMs, 4 x latent x inter FLOP per (token, expert) pair; the mixers' weights are found
    assert short["moe.experts"].flops % (4 * 1024 * 2688) == 0
    assert short["lin.in_proj"].weight_bytes > 0 and short["attn.q_proj"].weight_bytes > 0


def test_estimate_runs():
    sc = make_scenario("nemotron-3-super-120b-a12b", weights="fp8", engine="vllm", gpu="h100-sxm", gpus_per_node=2,
                       parallelism={"tp": 2}, workload={"phase": "serve", "concurrency": 16, "input_len": 8192,
                                                        "output_len": 1024})
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["tpot_ms"] > 0 and out["metrics"]["ttft_ms"] > 0


def test_inspect_config_json():
    _config(SUPER)
    doc = inspect_json(SUPER)
    assert doc["architecture"] == "nemotron_h" and doc["params"]["total"] == 120_668_707_840
    assert doc["kv_cache_bytes_per_token"] == 8192 and doc["state_bytes_per_request"] == 170_229_760
    assert doc["layer_kinds"]["attention"] == {"gqa": 8, "linear_mamba": 40, "none": 40}


def test_bad_patterns_are_refused():
    config = _config(SUPER)
    with pytest.raises(PlannerError, match="hybrid_override_pattern"):
        model_spec_from_config(dict(config, hybrid_override_pattern="MEX"), name="b", file="b.json")
    with pytest.raises(PlannerError, match="layers_block_type"):
        model_spec_from_config(dict(config, layers_block_type=["mamba", "conv"]), name="b", file="b.json")
    # the pattern decides the block count, as in transformers (num_hidden_layers is ignored where a pattern is given)
    small = dict(config, hybrid_override_pattern="M*E-", num_hidden_layers=88)
    spec = model_spec_from_config(small, name="s", file="s.json")
    assert spec.num_layers == 4 and params_by_part(spec)["language"] == hf_param_count(small)
