"""ik_llama.cpp as an engine and its GGUF quant types, and the INT4 per-channel (W4A16) and W4AFP8 formats.

- bytes per weight of every new storage type from its source's block layout (ik_llama.cpp ggml-common.h / ggml.c
  type_traits row_meta_size; compressed-tensors channel scales; SGLang's W4AFP8 loader);
- ubergarm's published Kimi-K2-Instruct ik_llama.cpp recipes reproduce llama.cpp's "model size" within 0.1%;
- mainline llama.cpp refuses IQ*_K formats in one line (make_scenario, estimate exit 2, the sizing filter);
- `planner estimate` runs each new format on a deployment that holds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.engines import load_engine
from planner.deploy.scenario import make_scenario
from planner.model.inventory import tensor_inventory
from planner.model.models import load_model
from planner.model.quant import load_format, native_format_name, storage_types

ROOT = Path(__file__).resolve().parents[1]
GiB = 2**30
ROWS, COLS = 2048, 7168  # one Kimi-K2 / DeepSeek-V3 routed expert's gate_proj [out, in]

# (type, bytes per 256-weight block, row meta bytes): ik_llama.cpp ggml/src/ggml-common.h static_asserts and
# ggml/src/ggml.c type_traits (commit 8337e4cd); bpw of the blocks = 8 * bytes / 256
IK_TYPES = [
    ("IQ2_K", 76, 0), ("IQ3_K", 110, 0), ("IQ4_K", 144, 0), ("IQ5_K", 176, 0), ("IQ6_K", 212, 0),
    ("IQ2_KS", 70, 2), ("IQ3_KS", 102, 2), ("IQ4_KS", 136, 4), ("IQ5_KS", 168, 4), ("IQ4_KSS", 128, 4),
    ("IQ2_KL", 86, 2), ("IQ1_KT", 56, 4), ("IQ2_KT", 68, 4), ("IQ3_KT", 100, 4), ("IQ4_KT", 128, 4),
]
BPW = {"IQ2_K": 2.375, "IQ3_K": 3.4375, "IQ4_K": 4.5, "IQ5_K": 5.5, "IQ6_K": 6.625, "IQ2_KS": 2.1875,
       "IQ3_KS": 3.1875, "IQ4_KS": 4.25, "IQ5_KS": 5.25, "IQ4_KSS": 4.0, "IQ2_KL": 2.6875, "IQ1_KT": 1.75,
       "IQ2_KT": 2.125, "IQ3_KT": 3.125, "IQ4_KT": 4.0}


@pytest.mark.parametrize(("name", "block_bytes", "row_meta"), IK_TYPES)
def test_ik_type_bytes(name, block_bytes, row_meta):
    st = storage_types()[name]
    assert st.fork == "ik_llamacpp" and st.block_weights == 256 and st.bits == BPW[name]
    assert st.tensor_bytes((ROWS, COLS)) == ROWS * (COLS // 256 * block_bytes + row_meta)
    assert st.fits((ROWS, COLS)) and not st.fits((ROWS, 128))  # attn_k_b's 128 columns fall back


def test_ik_fallbacks():
    """ik_llama.cpp change_type_if_necessary: IQ*_K/KS/KT -> IQ4_NL; IQ4_K -> Q5_0, IQ5_K -> Q6_0, IQ6_K -> Q8_0."""
    types = storage_types()
    assert {types[n].fallback for n, _, _ in IK_TYPES if n not in ("IQ4_K", "IQ5_K", "IQ6_K", "IQ5_KS")} == {"IQ4_NL"}
    assert (types["IQ4_K"].fallback, types["IQ5_K"].fallback, types["IQ6_K"].fallback) == ("Q5_0", "Q6_0", "Q8_0")
    assert types["Q6_0"].tensor_bytes((1, 32)) == 26 and types["Q6_0"].fork == "ik_llamacpp"


def test_int4_channel_and_w4afp8_bytes():
    types = storage_types()
    # compressed-tensors channel: int4 packed + one bf16 scale per output row + int32[2] weight_shape
    assert types["int4_channel"].tensor_bytes((ROWS, COLS)) == ROWS * COLS // 2 + ROWS * 2 + 8
    assert types["int4_channel"].compute == "bf16"
    # SGLang W4AFP8 expert: int4 + float32 scale per 128 inputs + one bf16 input scale = 0.53125 B per weight
    w4 = types["int4_g128_w4afp8"]
    assert w4.tensor_bytes((ROWS, COLS)) == ROWS * COLS // 2 + ROWS * COLS // 128 * 4 + 2 and w4.compute == "fp8"


# ubergarm's Kimi-K2-Instruct recipes with llama.cpp's own "model size" line (GiB = 2^30 B)
RECIPES = [
    pytest.param("gguf-ik-iq2_kl", 345.687 * GiB, id="iq2_kl-345.687GiB-ik_llama#612"),
    pytest.param("gguf-ik-iq1_kt", 228.948 * GiB, id="iq1_kt-228.948GiB-ik_llama#616"),
    pytest.param("gguf-ik-smol-iq1_kt", 214.182 * GiB, id="smol-iq1_kt-214.182GiB-ik_llama-discussion-477"),
]


@pytest.mark.parametrize(("fmt", "published"), RECIPES)
def test_published_recipe_within_0_1_percent(fmt, published):
    spec = load_model("kimi-k2-instruct").spec
    f = load_format(fmt)
    computed = sum(f.tensor_bytes(t, spec) for t in tensor_inventory(spec) if t.part not in f.exclude_parts)
    assert abs(computed / published - 1) <= 0.001, f"{computed / GiB:.3f} GiB vs {published / GiB:.3f} GiB"


def test_mla_split_counts_k_b_and_v_b():
    """The file holds attn_kv_b and its split (PR 612 listing: attn_k_b [128, 32768] and attn_v_b [512, 8192],
    8.00 MiB bf16 -> 4.25 MiB q8_0 each); its params come to llama.cpp's 1.027 T."""
    spec = load_model("kimi-k2-instruct").spec
    f = load_format("gguf-ik-iq2_kl")
    kv_b = next(t for t in tensor_inventory(spec) if t.role == "attn_kv_b")
    types = storage_types()
    assert types["Q8_0"].tensor_bytes((32768, 128)) == types["Q8_0"].tensor_bytes((8192, 512)) == 4.25 * 2**20
    k_b = types["Q5_0"].tensor_bytes((32768, 128))  # the recipe's attn_k_b=q5_0: 2.75 MiB
    assert f.tensor_bytes(kv_b, spec) == types["Q8_0"].tensor_bytes((16384, 512)) + k_b + \
        types["IQ5_KS"].tensor_bytes((8192, 512))
    params = sum(t.numel for t in tensor_inventory(spec) if t.part == "language") + 2 * kv_b.numel * spec.num_layers
    assert round(params / 1e12, 3) == 1.027


IK_FORMATS = ["gguf-ik-iq2_kl", "gguf-ik-iq1_kt", "gguf-ik-smol-iq1_kt"]


@pytest.mark.parametrize("fmt", IK_FORMATS)
def test_only_ik_llamacpp_loads_ik_formats(fmt):
    f = load_format(fmt)
    assert f.family == "gguf" and f.forks == {"ik_llamacpp"}
    assert load_engine("ik_llamacpp").loads(f) and load_engine("ik_llamacpp").loads(f, cpu_only=True)
    assert not load_engine("llamacpp").loads(f) and not load_engine("vllm").loads(f)
    reason = load_engine("llamacpp").type_refusal(f)
    assert reason and "\n" not in reason and "ik_llamacpp" in reason
    with pytest.raises(PlannerError, match="llamacpp does not load") as err:
        make_scenario("kimi-k2-instruct", weights=fmt, gpu="rtx-pro-6000", host="xeon-6980p-1s-mrdimm-8800-12ch",
                      expert_layers_on_cpu="all", engine="llamacpp")
    assert err.value.field == "weights"


def test_ik_llamacpp_loads_mainline_gguf():
    ik = load_engine("ik_llamacpp")
    assert ik.loads(load_format("gguf-q4_k_m")) and ik.loads(load_format("gguf-ud-q2_k_xl"))
    assert not ik.loads(load_format("int4-g32"))
    assert load_engine("llamacpp").loads(load_format("gguf-q4_k_m"))  # unchanged for mainline files


def test_native_format_from_config():
    spec = load_model("deepseek-v3").spec
    assert native_format_name({"quantization_config": {"quant_method": "w4afp8"}}, spec) == "w4afp8"
    channel = {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 4, "type": "int", "strategy": "channel", "group_size": None, "symmetric": True}}}}
    assert native_format_name({"quantization_config": channel}, spec) == "int4-channel"


def _estimate(tmp_path, name: str, body: str) -> dict:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}")
    out = subprocess.run([sys.executable, "-m", "planner", "estimate", str(path), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


HYBRID = ("hardware: {gpu: rtx-pro-6000, gpus_per_node: 1, nodes: 1, host: xeon-6980p-1s-mrdimm-8800-12ch}\n"
          "parallelism: {tp: 1}\noffload: {expert_layers_on_cpu: all, cpu_compute: true}\nengine: ik_llamacpp\n"
          "kv_cache: bf16\nworkload: {phase: serve, concurrency: 1, input_len: 2048, output_len: 256}\n")
EIGHT_H200 = ("hardware: {gpu: h200-sxm, gpus_per_node: 8, nodes: 1}\nparallelism: {tp: 8}\nkv_cache: bf16\n"
              "workload: {phase: decode, input_len: 4096, output_len: 512}\n")
ESTIMATES = [
    pytest.param("gguf-ik-iq2_kl", "model: kimi-k2-instruct\n" + HYBRID, id="ik-iq2_kl"),
    pytest.param("gguf-ik-iq1_kt", "model: kimi-k2-instruct\n" + HYBRID, id="ik-iq1_kt"),
    pytest.param("gguf-ik-smol-iq1_kt", "model: kimi-k2-instruct\n" + HYBRID, id="ik-smol-iq1_kt"),
    pytest.param("int4-channel", "model: kimi-k2-instruct\nengine: vllm\n" + EIGHT_H200, id="int4-channel-vllm"),
    pytest.param("w4afp8", "model: deepseek-v3\nengine: sglang\n" + EIGHT_H200, id="w4afp8-sglang"),
]


@pytest.mark.parametrize(("fmt", "body"), ESTIMATES)
def test_estimate_runs(tmp_path, fmt, body):
    doc = _estimate(tmp_path, fmt, f"weights: {fmt}\n{body}")
    assert doc["fits"] and doc["metrics"]["tpot_ms"] > 0
    if "ik_llamacpp" in body:
        assert "-fmoe -mla 3" in doc["engine_flags"] and "exps.=CPU" in doc["engine_flags"]


def test_estimate_refuses_ik_format_in_llamacpp(tmp_path):
    path = tmp_path / "mainline.yaml"
    path.write_text("name: mainline\nmodel: kimi-k2-instruct\nweights: gguf-ik-iq2_kl\n"
                    + HYBRID.replace("engine: ik_llamacpp", "engine: llamacpp"))
    out = subprocess.run([sys.executable, "-m", "planner", "estimate", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "llamacpp does not load gguf-ik-iq2_kl" in out.stderr


def test_compute_dtypes():
    """W4AFP8 experts time on FP8 tensor cores; W4A16 per channel on the int4 mixed-input (BF16) path."""
    from planner.perf.op_record import role_dtype
    sc = make_scenario("deepseek-v3", weights="w4afp8", gpu="h200-sxm", gpus_per_node=8,
                       parallelism={"tp": 8}, engine="sglang")
    assert role_dtype(sc, "ffn_up_exps", "moe") == "fp8" and role_dtype(sc, "attn_q_b", "moe") == "fp8"
    sc = make_scenario("kimi-k2-instruct", weights="int4-channel", gpu="h200-sxm", gpus_per_node=8,
                       parallelism={"tp": 8}, engine="vllm")
    assert role_dtype(sc, "ffn_up_exps", "moe") == "bf16"
