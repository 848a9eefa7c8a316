"""Issue 21: estimate's answer reads as a buyer reads it (times in ms/s/min with a warning past a minute, GB and GiB
side by side, the per-user vs system speed explained), prints the engine's launch command, and refuses plans its
engine cannot run."""

from __future__ import annotations

import shlex

import pytest

from planner.base.errors import PlannerError
from planner.base.units import duration, gb_gib, rate
from planner.cli import main
from planner.deploy.scenario import make_scenario
from planner.deploy.scenario_file import load_scenario
from planner.sizing.flags import scenario_flags

H200 = "profiles/scenarios/kimi-k2.5-int4-8xh200.yaml"
RTX = "profiles/scenarios/kimi-k2.5-ud-tq1_0-4090-256gb.yaml"


@pytest.mark.parametrize("seconds, text", [(0.0211, "21.1 ms"), (0.4, "400 ms"), (4.2, "4.20 s"), (30.8, "30.8 s"),
                                           (619.25, "10.3 min"), (9000, "2.5 h"), (5e-5, "50 us")])
def test_duration_in_the_unit_a_person_reads(seconds, text):
    assert duration(seconds) == text


def test_capacity_in_gb_and_gib():
    assert gb_gib(81559 * 2**20) == "85.5 GB = 79.6 GiB"  # H100 SXM's nvidia-smi total, 81,559 MiB
    assert rate(1046.55) == "1,047 tokens/s" and rate(2.7241) == "2.72 tokens/s"


def _text(path, capsys) -> str:
    assert main(["estimate", path]) == 0
    return capsys.readouterr().out


def test_estimate_text_warns_explains_and_prints_the_launch_command(capsys):
    out = _text(RTX, capsys)
    assert "RTX 4090: 25.8 GB = 24.0 GiB" in out and 'sold as "24 GB"' in out
    assert "ttft_ms                          1.6 min" in out and "97,459.28" not in out
    assert "WARNING: the first token takes 1.6 min" in out and "WARNING: the whole request takes 3.1 min" in out
    assert "note: per-user speed (5.65 tokens/s) is one request's decode rate" in out
    launch = next(line for line in out.splitlines() if "launch (llamacpp" in line).split("): ", 1)[1]
    assert shlex.split(launch)[:3] == ["llama-server", "-m", "Kimi-K2.5-UD-TQ1_0.gguf"]
    out = _text(H200, capsys)
    assert "tpot_ms                          22.8 ms" in out and "H200 SXM: 150.8 GB = 140.4 GiB" in out
    assert "launch (vllm, one engine group): vllm serve moonshotai/Kimi-K2.5 --tensor-parallel-size 8" in out


def test_estimate_json_adds_engine_flags_and_keeps_si_units(capsys):
    import json

    assert main(["estimate", H200, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    words = shlex.split(doc["engine_flags"])
    assert words[:3] == ["vllm", "serve", "moonshotai/Kimi-K2.5"]
    assert words[words.index("--max-model-len") + 1] == "262144"
    assert int(words[words.index("--max-num-seqs") + 1]) == int(doc["serving"]["running_per_group"])
    assert isinstance(doc["metrics"]["ttft_ms"], float) and doc["metrics"]["ttft_ms"] > 1000  # ms as before


def test_scenario_flags_follow_the_plan():
    sc = make_scenario("deepseek-r1", weights="fp8-block128", kv_cache="fp8", gpu="h200-sxm", gpus_per_node=8,
                       nodes=2, engine="sglang", parallelism={"tp": 1, "dp_attention": 16, "ep": 16},
                       workload={"phase": "serve", "input_len": 1000, "output_len": 1000, "context_len": 32768})
    words = shlex.split(scenario_flags(sc, 96))
    assert words[words.index("--tp") + 1] == "16" and words[words.index("--dp") + 1] == "16"
    assert "--enable-dp-attention" in words and words[words.index("--ep-size") + 1] == "16"
    assert words[words.index("--context-length") + 1] == "32768" and words[words.index("--nnodes") + 1] == "2"
    assert words[words.index("--kv-cache-dtype") + 1] == "fp8_e4m3"
    trt = make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine="trtllm",
                        parallelism={"tp": 8})
    assert scenario_flags(trt) is None  # no command builder for TensorRT-LLM


@pytest.mark.parametrize("engine", ["llamacpp", "ktransformers", "mlx"])
def test_attention_dp_on_an_engine_without_it_is_refused(engine):
    with pytest.raises(PlannerError) as err:
        make_scenario("deepseek-r1", weights="gguf-q4_k_m" if engine == "llamacpp" else "fp8-block128",
                      gpu="h200-sxm", gpus_per_node=8, engine=engine,
                      parallelism={"tp": 1, "dp_attention": 8, "ep": 8}, file="plan.yaml")
    assert err.value.field == "parallelism.dp_attention" and engine in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_llamacpp_tensor_parallel_means_row_split(tmp_path, capsys):
    path = tmp_path / "llama-tp4.yaml"
    path.write_text("model: qwen3-30b-a3b\nweights: gguf-q4_k_m\nhardware: {gpu: rtx-4090, gpus_per_node: 4}\n"
                    "parallelism: {tp: 4}\nengine: llamacpp\nworkload: {phase: decode, batch_per_gpu: 1}\n")
    out = _text(str(path), capsys)
    assert "assumed: llama.cpp with tp 4: --split-mode row" in out
    words = shlex.split(scenario_flags(load_scenario(str(path))))
    assert words[words.index("--split-mode") + 1] == "row" and words[words.index("--tensor-split") + 1] == "1,1,1,1"
