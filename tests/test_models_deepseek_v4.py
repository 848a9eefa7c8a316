"""DeepSeek-V4 (`deepseek_v4`, issue 20): Flash and Pro. Parameters equal transformers 5.25 on the meta device, the
checkpoint's stored elements and bytes equal the published Pro listing, KV bytes per layer kind and per request equal
vLLM's DeepSeek-V4 caches, op records follow the attention kinds, and `planner inspect` / `estimate` / `size` run."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from math import ceil
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.placement import gpu_share
from planner.deploy.scenario import make_scenario
from planner.model.inventory import params_by_part, tensor_inventory
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model
from planner.model.quant import load_format
from planner.model.spec import model_spec_from_config
from planner.perf.ops import step_ops
from planner.perf.steps import decode_step
from planner.perf.sweep import DecodeSweep
from planner.serving.estimate import estimate
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT.parent / "shared" / "reference" / "hf-configs"
# transformers 5.25 DeepseekV4ForCausalLM on the meta device (parameters + float32 score biases + int64 tid2eid)
HF_PARAMS = {"Flash": 284_334_567_511, "Pro": 1_572_999_528_803}
MTP_PARAMS = {"Flash": 6_610_048_891, "Pro": 25_840_145_979}  # one MTP layer each, from the checkpoint's mtp.0.*


def _config(name: str) -> dict:
    path = CONFIGS / f"deepseek-ai__DeepSeek-V4-{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["Flash", "Pro"])
def test_parameters_match_transformers_and_the_profile(name):
    config = _config(name)
    spec = model_spec_from_config(config, name=f"deepseek-v4-{name.lower()}", file="c.json")
    assert params_by_part(spec) == {"language": HF_PARAMS[name], "mtp": MTP_PARAMS[name], "vision": 0}
    assert hf_param_count(config) == HF_PARAMS[name]
    model = load_model(f"deepseek-v4-{name.lower()}")
    assert model.spec == spec and model.native_weights == "mxfp4-fp8-block128"


def test_pro_checkpoint_listing():
    """gogongxt/python scripts/models/deepseek_v4_pro.md lists every tensor of deepseek-ai/DeepSeek-V4-Pro: 145,116
    tensors, 861,608,274,846 stored elements (an int8 byte holds two fp4 values, a UE8M0 scale is one element),
    805.32 GiB. The inventory under the native format gives the same count and size."""
    spec = model_spec_from_config(_config("Pro"), name="p", file="p.json")
    fmt = load_format("mxfp4-fp8-block128")
    elements = nbytes = 0
    for t in tensor_inventory(spec):
        st = fmt.storage_for(t, spec)
        rows, cols = (1, t.shape[0]) if len(t.shape) == 1 else t.shape
        stored = {"mxfp4": rows * cols // 2 + rows * cols // 32,
                  "fp8_block128_ue8m0": rows * cols + ceil(rows / 128) * ceil(cols / 128)}.get(st.name, rows * cols)
        elements += stored * t.count
        nbytes += fmt.tensor_bytes(t, spec)
    assert elements == 861_608_274_846
    assert round(nbytes / 2**30, 2) == 805.32


def test_layer_layout():
    flash = load_model("deepseek-v4-flash").spec
    assert flash.layer_kind_counts == {"attention": {"sliding": 2, "csa": 21, "hca": 20}, "ffn": {"moe": 43}}
    assert flash.attention_kinds[:4] == ("sliding", "sliding", "csa", "hca") and flash.attention_kinds[-1] == "csa"
    v4 = flash.deepseek_v4
    assert v4.compress_ratios[-1] == 0 and len(v4.compress_ratios) == 44  # the MTP layer: window only
    assert v4.hash_layers == (True,) * 3 + (False,) * 40
    assert (v4.o_groups, v4.o_lora_rank, v4.hc_mult, flash.index_topk, flash.sliding_window) == (8, 1024, 4, 512, 128)
    pro = load_model("deepseek-v4-pro").spec
    assert pro.layer_kind_counts["attention"] == {"csa": 30, "hca": 31}
    assert (pro.n_routed_experts, pro.experts_per_token, pro.index_topk, pro.deepseek_v4.o_groups) == (384, 6, 1024, 16)


def test_kv_bytes_match_vllm():
    """vLLM: 584 B per entry (448 fp8 + 128 B rope + 8 B scales), one per 4 tokens on CSA layers + a 132-B indexer
    key, one per 128 on HCA layers; per request a 128-entry window per layer and the float32 compressor states."""
    flash = kv_layout(load_model("deepseek-v4-flash").spec, "fp8")
    assert flash.compressed == ((4, 21, 584 + 132), (128, 20, 584))
    assert flash.bytes_per_token_full == 21 * 716 / 4 + 20 * 584 / 128 == 3850.25
    windows, csa_state, hca_state = 43 * 128 * 584, 8 * (2 * 2 * 512 + 2 * 2 * 128) * 4, 128 * 2 * 512 * 4
    assert (csa_state, hca_state) == (81_920, 524_288)
    assert flash.state_bytes_per_request == windows + 21 * csa_state + 20 * hca_state == 15_420_416
    # floor(L / ratio) entries per layer; the whole cache on every TP rank (one KV head)
    assert flash.bytes_for_context(1000) == 21 * 250 * 716 + 20 * 7 * 584
    assert flash.bytes_for_context(1000, tp=8, kv_heads=1) == flash.bytes_for_context(1000)
    for dtype in ("fp8_ds_mla", "fp8_e4m3"):  # vLLM runs every fp8 cache of V4 as fp8_ds_mla
        assert kv_layout(load_model("deepseek-v4-flash").spec, dtype) == replace(flash, dtype=dtype)
    pro = kv_layout(load_model("deepseek-v4-pro").spec, "fp8")
    assert pro.bytes_per_token_full == 30 * 716 / 4 + 31 * 584 / 128
    assert pro.state_bytes_per_request == 61 * 128 * 584 + 30 * 81_920 + 31 * 524_288 == 23_270_400
    bf16 = kv_layout(load_model("deepseek-v4-flash").spec, "bf16")  # transformers' cache: 512 x 2 B per entry
    assert bf16.compressed == ((4, 21, 1024 + 132), (128, 20, 1024))


def test_memory_per_request():
    sc = make_scenario("deepseek-v4-flash", weights="mxfp4-fp8-block128", kv_cache="fp8", gpu="b200",
                       gpus_per_node=8, parallelism={"tp": 8},
                       workload={"phase": "decode", "input_len": 8192, "output_len": 1024})
    mem = memory_report(sc)
    lay = kv_layout(sc.model.spec, "fp8")
    assert mem.fits
    assert mem.kv_bytes_per_token_per_gpu == ceil(3850.25)
    tokens = paged_tokens(sc.workload.context_len, sc.engine.mla_kv_block_tokens)
    assert mem.kv_bytes_per_sequence_per_gpu == lay.bytes_for_context(tokens) + 15_420_416


@pytest.mark.parametrize("name", ["Flash", "Pro"])
def test_inspect_config_json(name):
    _config(name)
    doc = inspect_json(CONFIGS / f"deepseek-ai__DeepSeek-V4-{name}.json")
    assert doc["architecture"] == "deepseek_v4" and doc["weights"] == "mxfp4-fp8-block128"
    assert doc["params"]["total"] == HF_PARAMS[name] and doc["params"]["mtp"] == MTP_PARAMS[name]
    assert doc["kv_cache_compressed"][1]["tokens_per_entry"] == 128 and doc["state_bytes_per_request"] > 0


def test_bad_configs_are_refused():
    config = _config("Flash")
    with pytest.raises(PlannerError, match="compress_ratios"):
        model_spec_from_config(dict(config, compress_ratios=[0, 8] * 22), name="b", file="b")
    with pytest.raises(PlannerError, match="o_groups"):
        model_spec_from_config(dict(config, o_groups=7), name="b", file="b")
    with pytest.raises(PlannerError, match="compress_rates"):
        model_spec_from_config(dict(config, compress_rates={"compressed_sparse_attention": 8}), name="b", file="b")
    # transformers' own names win over the legacy fields
    named = dict(config, layer_types=["heavily_compressed_attention"] * 43, mlp_layer_types=["moe"] * 43)
    spec = model_spec_from_config(named, name="n", file="n")
    assert spec.layer_kind_counts["attention"] == {"hca": 43} and not any(spec.deepseek_v4.hash_layers)


def _flash_tp8():
    return make_scenario("deepseek-v4-flash", weights="mxfp4-fp8-block128", kv_cache="fp8", gpu="b200",
                         gpus_per_node=8, parallelism={"tp": 8})


def test_op_records_follow_the_attention_kind():
    sc = _flash_tp8()
    short = {op.name: op for op in step_ops(sc, "decode", 8, 1024)}
    long = {op.name: op for op in step_ops(sc, "decode", 8, 131072)}
    seqs, heads, d = 8 * 8, 64, 512  # tokens per GPU x TP ranks; query heads; the one K = V head's width
    # every layer reads its 128-token window; CSA layers index_topk (512) of L / 4 entries; HCA layers all L / 128
    assert long["attn_win.decode"].count == 43 and long["attn_win.decode"].kv_read_bytes == seqs * 128 * 584
    assert (long["attn_csa.decode"].count, long["attn_hca.decode"].count) == (21, 20)
    assert long["attn_csa.decode"].kv_read_bytes == seqs * 512 * 584
    assert short["attn_csa.decode"].kv_read_bytes == seqs * 1024 / 4 * 584  # below the top-k: every entry
    assert long["attn_hca.decode"].kv_read_bytes == seqs * 131072 / 128 * 584
    assert long["attn_hca.decode"].flops == 4 * 8 * heads * 1024 * d  # q.K + p.V over 512 per head and entry
    # the indexer scores every compressed key: O(L / 4), its 132-B keys read whole on every rank
    assert long["attn.csa_index_score"].kv_read_bytes == seqs * 131072 / 4 * 132
    assert long["attn.csa_index_score"].flops == 2 * seqs * 64 * 128 * 131072 / 4
    # grouped output projection: heads x 512 -> 8 x 1024 in groups, then -> h; projections per kind's weights
    assert long["attn_csa.o_a_proj"].flops == 2 * 8 * heads * d * 1024
    assert short["attn_win.qkv_a_proj"].count == 2 and short["attn_csa.idx_q_b_proj"].weight_bytes > 0
    assert "attn_win.cmp_proj" not in short and short["attn_hca.cmp_proj"].count == 20
    assert short["hc.mix"].count == 43 and short["moe.experts"].count == 43 and short["moe.shared"].count == 43
    assert short["moe.experts"].dtype == "mxfp4" and short["attn_csa.q_b_proj"].dtype == "fp8"


def test_sweep_matches_scalar_across_the_caps():
    sc = _flash_tp8()
    sweep = DecodeSweep(sc)
    for b, c in [(1, 100), (7, 1500), (64, 5000), (256, 200_000)]:  # below / above the window and 4 x top-k
        step, _ = sweep.evaluate(b, c)
        assert float(step) == pytest.approx(decode_step(sc, b, c).seconds, rel=1e-9)


def test_estimate_runs_on_8x_b200():
    sc = make_scenario("deepseek-v4-flash", weights="mxfp4-fp8-block128", kv_cache="fp8", engine="vllm", gpu="b200",
                       gpus_per_node=8, parallelism={"tp": 8},
                       workload={"phase": "serve", "concurrency": 16, "input_len": 8192, "output_len": 1024})
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["tpot_ms"] > 0 and out["metrics"]["ttft_ms"] > 0
    pro = make_scenario("deepseek-v4-pro", weights="mxfp4-fp8-block128", kv_cache="fp8", engine="vllm", gpu="b200",
                        gpus_per_node=8, parallelism={"tp": 8},
                        workload={"phase": "serve", "concurrency": 16, "input_len": 8192, "output_len": 1024})
    assert estimate(pro)["fits"]  # 864.7 GB of weights on 8 x 180 GB


def test_estimate_command(tmp_path):
    scenario = tmp_path / "dsv4-pro.yaml"
    scenario.write_text("name: dsv4-pro\nmodel: deepseek-v4-pro\nweights: mxfp4-fp8-block128\nkv_cache: fp8\n"
                        "hardware: {gpu: b200, gpus_per_node: 8, nodes: 1}\nparallelism: {tp: 8}\nengine: vllm\n"
                        "workload: {phase: decode, input_len: 32768, output_len: 1024}\n")
    out = subprocess.run([sys.executable, "-m", "planner", "estimate", str(scenario), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["fits"] and doc["metrics"]["tpot_ms"] > 0


def test_size_finds_plans(tmp_path):
    wl = tmp_path / "dsv4.yaml"
    wl.write_text("model: deepseek-v4-flash\nweights: [mxfp4-fp8-block128]\nkv_cache: [fp8]\ncontext_len: 32768\n"
                  "traffic: {requests_per_s: 2.0, input_len: 4000, output_len: 500}\n"
                  "slo: {ttft_ms: 5000, tpot_ms: 50}\npurchase: rent\ntop: 2\n"
                  "search: {classes: [gpu_server], accelerators: [b200, h200-sxm], max_nodes: 1}\n")
    out = subprocess.run([sys.executable, "-m", "planner", "size", str(wl), "--json", "--time-budget", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    plans = json.loads(out.stdout)["plans"]
    assert plans and all(p["weights"] == "mxfp4-fp8-block128" and p["metrics"]["tpot_ms"] <= 50 for p in plans)


def test_tp_placement():
    """vLLM at TP 8: q_a + kv (fused_wqa_wkv), the compressors (disable_tp) and the indexer are replicated; q_b, the
    output groups (o_groups // tp per rank), o_b and the sinks are split by heads."""
    sc = _flash_tp8()
    share = {t.role: gpu_share(t, sc) for t in tensor_inventory(sc.model.spec) if t.layer == 2}
    for role in ("attn_q_a", "attn_kv_a_mqa", "attn_cmp_kv", "attn_cmp_gate", "attn_cmp_ape", "attn_idx_cmp_kv",
                 "attn_idx_q_b", "attn_idx_w", "hc_attn_fn"):
        assert share[role] == 1.0, role
    for role in ("attn_q_b", "attn_o_a", "attn_o_b", "attn_sinks"):
        assert share[role] == 1 / 8, role
