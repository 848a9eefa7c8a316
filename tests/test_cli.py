"""The command line as users and outside checks see it: CONTRACT.md §1 and §3 fields, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "tests" / "data" / "hf-configs"  # byte copies of shared/reference/hf-configs


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_inspect_json_contract_fields():
    out = run("inspect", "kimi-k2.5", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"] == "kimi-k2.5" and doc["architecture"] == "deepseek_v3"
    assert doc["params"]["total"] == 1_026_408_232_448
    assert doc["params"]["active_per_token"] == 32_861_500_928
    assert doc["params"]["mtp"] == 0 and doc["params"]["vision"] == 471_143_920
    assert set(doc["params"]["by_component"]) == {"embedding", "attention", "dense_mlp", "shared_experts",
                                                  "routed_experts", "router", "norms", "lm_head"}
    assert doc["weights_bytes"] == 595_148_192_736
    assert set(doc["weights_bytes_by_part"]) == {"language", "mtp", "vision"}
    assert doc["kv_cache_bytes_per_token"] == 70_272


def test_inspect_folder_equals_profile(tmp_path):
    (tmp_path / "config.json").write_text((SHARED / "moonshotai__Kimi-K2.5.json").read_text())
    a = json.loads(run("inspect", str(tmp_path), "--json").stdout)
    b = json.loads(run("inspect", "kimi-k2.5", "--json").stdout)
    a.pop("source"), b.pop("source")
    assert a == b


def test_inspect_options():
    doc = json.loads(run("inspect", "deepseek-v3", "--weights", "bf16", "--kv-cache", "fp8_ds_mla", "--json").stdout)
    assert doc["kv_cache_bytes_per_token"] == 61 * 656
    assert doc["weights"] == "bf16" and doc["weights_bytes_by_part"]["mtp"] > 0


def test_estimate_json_contract_fields():
    out = run("estimate", "profiles/scenarios/kimi-k2.5-int4-8xh200.yaml", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["fits"] is True and doc["reason"] == ""
    for key in ("weights_bytes_per_gpu", "kv_cache_bytes_per_gpu", "activation_bytes_per_gpu",
                "runtime_bytes_per_gpu", "free_bytes_per_gpu", "host_bytes"):
        assert isinstance(doc["memory"][key], int)
    assert doc["capacity"]["kv_tokens_per_gpu"] > 0 and doc["capacity"]["max_concurrency"] >= 1
    assert set(doc["metrics"]) >= {"prefill_tokens_per_s_per_gpu", "ttft_ms", "decode_tokens_per_s_per_gpu",
                                   "tpot_ms", "output_tokens_per_s_per_user", "system_output_tokens_per_s",
                                   "system_total_tokens_per_s", "e2e_latency_ms"}
    assert set(doc["bottleneck"]) == {"prefill", "decode"}


def test_estimate_does_not_fit_reason():
    doc = json.loads(run("estimate", "profiles/scenarios/kimi-k2.5-bf16-8xh100.yaml", "--json").stdout)
    assert doc["fits"] is False and "weights need" in doc["reason"] and "H100 SXM has" in doc["reason"]


def test_readable_output():
    out = run("estimate", "profiles/scenarios/kimi-k2.5-int4-8xh200.yaml")
    assert out.returncode == 0 and "FITS" in out.stdout and "KV tokens per GPU" in out.stdout
    out = run("inspect", "kimi-k2.5")
    assert out.returncode == 0 and "1,026,408,232,448" in out.stdout


BAD_FILES = {
    "malformed.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: [\n", "line"),
    "unknown_key.yaml": ("model: kimi-k2.5\nweight: int4-g32\n", "weight"),
    "tp.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: 8}\nparallelism: {tp: 5}\n",
                "parallelism.tp"),
    "negative.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: -8}\n", "hardware.gpus_per_node"),
    "huge.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: 8}\n"
                  "workload: {input_len: 1e30}\n", "workload.input_len"),
    "nan.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: 8}\n"
                  "workload: {input_len: .nan}\n", "workload.input_len"),
    "string.yaml": ("model: kimi-k2.5\nhardware: {gpu: h200-sxm, gpus_per_node: 8}\n"
                  "workload: {input_len: lots}\n", "workload.input_len"),
    "list.yaml": ("- model: kimi-k2.5\n", "expected a mapping"),
    "empty.yaml": ("", "expected a mapping"),
    "tag.yaml": ("model: !!python/object/apply:os.system ['echo pwned']\n", "invalid YAML"),
    "unknown_model.yaml": ("model: gpt-7\n", "unknown model"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_scenario_one_line_error(tmp_path, name):
    text, expect = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    out = run("estimate", str(path), "--json")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr
    assert expect in lines[0]
    if name != "unknown_model.yaml":
        assert name in lines[0]


@pytest.mark.parametrize("config, expect", [
    ({"model_type": "bert", "hidden_size": 8}, "unsupported model_type 'bert'; supported: deepseek_v3"),
    ({"model_type": "llama", "hidden_size": 64}, "num_hidden_layers: missing required field"),
    ({"model_type": "kimi_k25", "vision_config": {}}, "text_config: missing required field"),
    ({"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 10, "intermediate_size": 8, "num_local_experts": 2, "num_experts_per_tok": 3},
     "num_experts_per_tok: 3 exceeds the 2 experts"),
    ({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 3, "vocab_size": 10, "intermediate_size": 8}, "does not divide"),
])
def test_bad_config_one_line_error(tmp_path, config, expect):
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = run("inspect", str(tmp_path), "--json")
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert expect in out.stderr and "config.json" in out.stderr


def test_bad_arguments_one_line():
    for args in (["frobnicate"], ["inspect"], ["inspect", "kimi-k2.5", "--weights", "int3"],
                 ["inspect", "kimi-k2.5", "--kv-cache", "fp4"], ["estimate", "missing.yaml"]):
        out = run(*args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
