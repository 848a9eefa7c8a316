"""A checkpoint file standing in for a scenario's weights (issue 22): `weights: tiny.gguf` (written here with
gguf.GGUFWriter) or a folder of safetensors (safetensors.numpy.save_file) gives the memory model the file's exact
bytes per tensor group, routed experts apart (offload, expert parallelism), and the output names the file and the
recipe it matches. Hugging Face ids in `model:` come from a cache laid out here (HF_HUB_OFFLINE, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from planner.base.errors import PlannerError
from planner.cli import main
from planner.deploy.memory import memory_report
from planner.deploy.scenario_file import load_scenario
from planner.model.inventory import tensor_inventory
from planner.model.models import load_model
from planner.sizing.workload import load_workload
from tests.test_model_files import _hub_cache

Q8_0 = gguf.GGMLQuantizationType.Q8_0
# a Qwen3-MoE small enough to write in full: 2 layers, 4 experts of width 32, hidden 64 (a multiple of Q8_0's 32)
TINY = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64, "head_dim": 16,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 128,
        "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "vocab_size": 256, "max_position_embeddings": 4096, "tie_word_embeddings": False,
        "attention_bias": False, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "torch_dtype": "bfloat16",
        "norm_topk_prob": True, "hidden_act": "silu"}


def _model(tmp_path: Path) -> str:
    folder = tmp_path / "tiny-moe"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(TINY))
    return str(folder)


def _q8(shape: tuple[int, ...]) -> np.ndarray:
    """Raw Q8_0 blocks: 34 bytes (f16 scale + 32 int8) per 32 weights along the last axis (gguf.GGML_QUANT_SIZES)."""
    return np.zeros((*shape[:-1], shape[-1] // 32 * 34), np.uint8)


def _gguf_tensors(model_dir: str, f16_experts_layer: int | None = None) -> list[tuple[str, np.ndarray, object]]:
    """Every tensor of the tiny model as llama.cpp names it (blk.N.<role>), matrices Q8_0 (the router F32), vectors
    F32; routed experts one [E, out, in] tensor per role and layer (F16 in layer `f16_experts_layer`)."""
    out = []
    for t in tensor_inventory(load_model(model_dir).spec):
        role = t.role if t.role.endswith(".bias") else f"{t.role}.weight"
        name = role if t.layer is None else f"blk.{t.layer}.{role}"
        shape = (t.count, *t.shape) if t.count > 1 else t.shape
        if not t.is_matrix or t.role == "ffn_gate_inp":
            out.append((name, np.zeros(shape, np.float32), None))
        elif t.component == "routed_experts" and t.layer == f16_experts_layer:
            out.append((name, np.zeros(shape, np.float16), None))
        else:
            out.append((name, _q8(shape), Q8_0))
    return out


def _write_gguf(path: Path, tensors, arch: str = "qwen3moe", blocks: int = 2) -> None:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-moe")
    w.add_block_count(blocks)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    for name, arr, raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _scenario(tmp_path: Path, model_dir: str, weights: str, extra: str = "", gpus: int = 1) -> Path:
    sc = tmp_path / "scenarios" / "tiny.yaml"
    sc.parent.mkdir(exist_ok=True)
    sc.write_text(f"model: {model_dir}\nweights: {weights}\nengine: llamacpp\n"
                  f"hardware: {{gpu: h100-sxm, gpus_per_node: {gpus}}}\n"
                  "workload: {phase: decode, batch_per_gpu: 1, input_len: 128, output_len: 32}\n" + extra)
    return sc


def _experts(tensors, layer: int | None = None) -> int:
    return sum(a.nbytes for n, a, _ in tensors if "_exps" in n and (layer is None or n.startswith(f"blk.{layer}.")))


def test_gguf_weights_are_the_file_bytes(tmp_path, capsys):
    model = _model(tmp_path)
    tensors = _gguf_tensors(model)
    (tmp_path / "scenarios").mkdir()
    _write_gguf(tmp_path / "scenarios" / "tiny-Q8_0.gguf", tensors)
    total = sum(a.nbytes for _, a, _ in tensors)
    sc = load_scenario(_scenario(tmp_path, model, "tiny-Q8_0.gguf"))  # relative: the YAML file's folder
    mem = memory_report(sc)
    assert mem.weights_bytes_per_gpu == total
    assert mem.weights_by_component["routed_experts"] == _experts(tensors)
    ex = sc.weights.exact
    assert ex.weights_bytes == total and dict(ex.placed) == {"tensor": total, "component": 0, "part": 0,
                                                             "unplaced": 0}
    # written as llama.cpp's Q8_0 mix writes it, so the shipped recipe gives the same bytes
    assert sc.weights.name == "gguf-q8_0" and ex.matches and ex.recipe_error == 0
    assert main(["estimate", str(_scenario(tmp_path, model, "tiny-Q8_0.gguf")), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rec = doc["scenario"]["weights_file"]
    assert rec["exact"] is True and rec["path"].endswith("scenarios/tiny-Q8_0.gguf") and rec["recipe"] == "gguf-q8_0"
    assert rec["weights_bytes"] == total == doc["memory"]["weights_bytes_per_gpu"]
    assert rec["file_type"] == "MOSTLY_Q8_0"
    assert any("from the header of" in a for a in doc["assumptions"])
    assert "tiny-Q8_0.gguf" in doc["engine_flags"]  # llama-server -m the user's own file


def test_gguf_experts_per_layer_offload_and_expert_parallel(tmp_path):
    """Layer 0's experts in F16, layer 1's in Q8_0: a recipe cannot say that, the file does."""
    model = _model(tmp_path)
    tensors = _gguf_tensors(model, f16_experts_layer=0)
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "mixed.gguf"
    _write_gguf(path, tensors)
    total = sum(a.nbytes for _, a, _ in tensors)
    off = _offload(tmp_path, model, path)
    mem = memory_report(off)
    assert mem.host_bytes == _experts(tensors, 0)  # the first MoE layer's experts, F16, exactly
    assert mem.weights_bytes_per_gpu == total - _experts(tensors, 0)
    assert not off.weights.exact.matches or off.weights.exact.recipe_error != 0
    ep = load_scenario(_scenario(tmp_path, model, str(path), "parallelism: {tp: 2, ep: 2}\n", gpus=2))
    assert memory_report(ep).weights_by_component["routed_experts"] == _experts(tensors) // 2


def _offload(tmp_path: Path, model: str, path: Path):
    sc = _scenario(tmp_path, model, str(path), "offload: {expert_layers_on_cpu: 1}\n")
    host = "host: xeon-6454s-2s-ddr5-4800-8ch"
    sc.write_text(sc.read_text().replace("gpus_per_node: 1}", f"gpus_per_node: 1, {host}}}"))
    return load_scenario(sc)


def test_gguf_split_set_names_every_part(tmp_path):
    model = _model(tmp_path)
    tensors = _gguf_tensors(model)
    half = len(tensors) // 2
    _write_gguf(tmp_path / "tiny-00001-of-00002.gguf", tensors[:half])
    _write_gguf(tmp_path / "tiny-00002-of-00002.gguf", tensors[half:])
    sc = load_scenario(_scenario(tmp_path, model, str(tmp_path / "tiny-00002-of-00002.gguf")))
    assert len(sc.weights.exact.files) == 2
    assert memory_report(sc).weights_bytes_per_gpu == sum(a.nbytes for _, a, _ in tensors)


def _hf_tensors(model_dir: str) -> dict[str, np.ndarray]:
    """The tiny model as a Hugging Face checkpoint: experts as 1-byte weights with a float32 block scale each (as
    DeepSeek's FP8 checkpoints store weight_scale_inv), everything else float16."""
    out = {}
    for t in tensor_inventory(load_model(model_dir).spec):
        for e in range(t.count):
            name = t.name.replace("{E}", str(e))
            if t.component == "routed_experts":
                out[name] = np.zeros(t.shape, np.int8)
                out[name.removesuffix(".weight") + ".weight_scale_inv"] = np.zeros((1, 1), np.float32)
            else:
                out[name] = np.zeros(t.shape, np.float16)
    return out


def test_safetensors_folder_as_weights(tmp_path):
    model = _model(tmp_path)
    tensors = _hf_tensors(model)
    names = sorted(tensors)
    save_file({n: tensors[n] for n in names[: len(names) // 2]}, str(Path(model) / "model-00001-of-00002.safetensors"))
    save_file({n: tensors[n] for n in names[len(names) // 2:]}, str(Path(model) / "model-00002-of-00002.safetensors"))
    total = sum(a.nbytes for a in tensors.values())
    sc = load_scenario(_scenario(tmp_path, model, model + "/"))
    mem = memory_report(sc)
    assert mem.weights_bytes_per_gpu == total and dict(sc.weights.exact.placed)["tensor"] == total
    experts = sum(a.nbytes for n, a in tensors.items() if ".experts." in n)  # scales included
    assert mem.weights_by_component["routed_experts"] == experts
    assert sc.weights.family == "safetensors" and sc.weights.exact.kind == "safetensors"


def test_missing_or_foreign_files_are_one_line(tmp_path, capsys):
    model = _model(tmp_path)
    sc = _scenario(tmp_path, model, "not-here.gguf")
    assert main(["estimate", str(sc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights" in err and "not-here.gguf" in err and "file not found" in err
    (sc.parent / "junk.gguf").write_bytes(b"GGUF" + b"\xff" * 40)
    assert main(["estimate", str(_scenario(tmp_path, model, "junk.gguf"))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "junk.gguf" in err and ": weights: " in err
    one_layer = [t for t in _gguf_tensors(model) if not t[0].startswith("blk.1.")]
    _write_gguf(sc.parent / "other.gguf", one_layer, blocks=1)
    with pytest.raises(PlannerError, match="holds 1 decoder layers, tiny-moe has 2"):
        load_scenario(_scenario(tmp_path, model, "other.gguf"))


def test_hub_ids_in_scenarios_workloads_and_compare(tmp_path, monkeypatch, capsys):
    rev = "0123456789abcdef0123456789abcdef01234567"
    _hub_cache(tmp_path / "hub", rev=rev)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sc = tmp_path / "qwen.yaml"
    sc.write_text("model: Qwen/Qwen3-30B-A3B\nhardware: {gpu: h100-sxm, gpus_per_node: 1}\n"
                  "workload: {phase: decode, batch_per_gpu: 8, input_len: 1024, output_len: 256}\n")
    assert main(["estimate", str(sc), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cfg = doc["scenario"]["model_config"]
    assert cfg["hub_id"] == "Qwen/Qwen3-30B-A3B" and cfg["revision"] == rev and doc["fits"]
    assert "vllm serve Qwen/Qwen3-30B-A3B" in doc["engine_flags"]
    wl = tmp_path / "wl.yaml"
    wl.write_text("model: Qwen/Qwen3-30B-A3B\ncontext_len: 8192\ntraffic: {concurrency: 4, input_len: 1000, "
                  "output_len: 200}\nslo: {ttft_ms: 3000, tpot_ms: 50}\n")
    assert load_workload(wl).models == ("Qwen/Qwen3-30B-A3B",)
    result = Path(__file__).parent / "data" / "results" / "vllm-bench-serve.json"
    assert main(["compare", str(result), "--model", "Qwen/Qwen3-30B-A3B", "--gpu", "h100-sxm", "--gpus", "1",
                 "--no-store", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["scenario"]["model_config"]["revision"] == rev
    sc.write_text(sc.read_text().replace("Qwen/Qwen3-30B-A3B", "moonshotai/Not-Cached"))
    assert main(["estimate", str(sc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moonshotai/Not-Cached" in err and "HF_HUB_OFFLINE" in err
