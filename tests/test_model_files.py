"""Exact bytes from real checkpoint headers (issue 22): GGUF files (and split sets) written here with gguf.GGUFWriter
and safetensors files written with safetensors.numpy.save_file; `planner inspect` reads only their headers and
reports the sum of the tensor bytes, by dtype and component."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from planner.base.errors import PlannerError
from planner.cli import main
from planner.model.gguf_file import component, inspect_gguf
from planner.model.safetensors_file import inspect_safetensors

Q4_K = gguf.GGMLQuantizationType.Q4_K


def _gguf(path, tensors, arch="deepseek2", blocks=2, nextn=0, ftype=gguf.LlamaFileType.MOSTLY_Q4_K_M):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny")
    w.add_block_count(blocks)
    w.add_uint32(f"{arch}.nextn_predict_layers", nextn)
    w.add_file_type(ftype)
    for name, arr, raw_type in tensors:
        w.add_tensor(name, arr, raw_dtype=raw_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _q4k(rows: int, cols: int) -> np.ndarray:
    """Raw Q4_K blocks for a [rows, cols] weight: 144 bytes per 256 weights (gguf.GGML_QUANT_SIZES)."""
    return np.zeros((rows, cols // 256 * 144), dtype=np.uint8)


TINY = [("token_embd.weight", np.zeros((64, 32), np.float16), None),
        ("blk.0.attn_q.weight", _q4k(32, 256), Q4_K),
        ("blk.0.attn_norm.weight", np.zeros(32, np.float32), None),
        ("blk.0.ffn_gate_inp.weight", np.zeros((4, 32), np.float32), None),
        ("blk.0.ffn_up_exps.weight", _q4k(4 * 16, 512), Q4_K),
        ("blk.0.ffn_up_shexp.weight", _q4k(16, 256), Q4_K),
        ("blk.1.ffn_down.weight", _q4k(32, 256), Q4_K),
        ("output_norm.weight", np.zeros(32, np.float32), None),
        ("output.weight", np.zeros((64, 32), np.float16), None)]


def test_gguf_bytes_are_the_sum_of_tensor_bytes(tmp_path):
    path = tmp_path / "tiny-Q4_K_M.gguf"
    _gguf(path, TINY)
    doc = inspect_gguf(path)
    expected = sum(arr.nbytes for _, arr, _ in TINY)  # raw Q4_K blocks and plain arrays: bytes as stored
    assert doc["weights_bytes"] == expected == 64 * 32 * 2 * 2 + 32 * 144 + 32 * 4 * 2 + 4 * 32 * 4 + 64 * 2 * 144 \
        + 16 * 144 + 32 * 144
    assert doc["architecture"] == "deepseek2" and doc["file_type"] == "MOSTLY_Q4_K_M" and doc["tensors"] == len(TINY)
    assert doc["by_dtype"]["Q4_K"]["bytes"] == (32 + 64 * 2 + 16 + 32) * 144
    assert doc["by_dtype"]["Q4_K"]["params"] == (32 + 64 * 2 + 16 + 32) * 256
    comps = {k: v["bytes"] for k, v in doc["by_component"].items()}
    assert comps == {"routed_experts": 64 * 2 * 144, "embedding": 4096, "lm_head": 4096, "dense_mlp": 32 * 144,
                     "attention": 32 * 144, "shared_experts": 16 * 144, "router": 512, "norms": 256}
    assert doc["file_bytes"] > doc["weights_bytes"]  # header and alignment padding are apart


def test_gguf_split_set_and_mtp_layers(tmp_path):
    one = TINY[:4]
    two = [("blk.1.ffn_down.weight", _q4k(32, 256), Q4_K), ("blk.2.attn_q.weight", _q4k(32, 256), Q4_K)]
    _gguf(tmp_path / "m-00001-of-00002.gguf", one, blocks=3, nextn=1)
    _gguf(tmp_path / "m-00002-of-00002.gguf", two, blocks=3, nextn=1)
    doc = inspect_gguf(tmp_path / "m-00002-of-00002.gguf")
    assert len(doc["files"]) == 2 and doc["tensors"] == 6
    assert doc["weights_bytes"] == sum(a.nbytes for _, a, _ in one + two)
    assert doc["weights_bytes_by_part"]["mtp"] == 32 * 144  # blk.2 of 3 blocks with one next-n layer
    (tmp_path / "m-00002-of-00002.gguf").unlink()
    with pytest.raises(PlannerError, match="missing m-00002-of-00002.gguf"):
        inspect_gguf(tmp_path / "m-00001-of-00002.gguf")


def test_gguf_component_names():
    assert component("blk.3.ffn_gate_exps.weight") == "routed_experts"
    assert component("blk.3.exp_probs_b.bias") == "router"
    assert component("blk.3.attn_kv_a_norm.weight") == "norms"
    assert component("blk.3.attn_kv_b.weight") == "attention"


def test_not_a_gguf_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 20)
    assert main(["inspect", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _st_folder(tmp_path, with_config: bool):
    a = {"model.embed_tokens.weight": np.zeros((64, 32), np.float16),
         "model.layers.0.self_attn.q_proj.weight": np.zeros((32, 32), np.float16),
         "model.layers.0.input_layernorm.weight": np.zeros(32, np.float32),
         "model.layers.0.mlp.experts.0.up_proj.weight": np.zeros((16, 32), np.int8),  # fp8-like, 1 byte
         "model.layers.0.mlp.experts.0.up_proj.weight_scale_inv": np.zeros((1, 1), np.float32)}
    b = {"model.layers.0.mlp.gate.weight": np.zeros((4, 32), np.float16),
         "model.layers.0.mlp.shared_experts.up_proj.weight": np.zeros((16, 32), np.float16),
         "model.layers.1.self_attn.q_proj.weight": np.zeros((32, 32), np.float16),  # layer 1 of 1: MTP
         "model.norm.weight": np.zeros(32, np.float32), "lm_head.weight": np.zeros((64, 32), np.float16)}
    save_file(a, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(b, str(tmp_path / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    if with_config:
        (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 1}))
    return a, b


def test_safetensors_folder_exact_bytes(tmp_path):
    a, b = _st_folder(tmp_path, with_config=False)
    doc = inspect_safetensors(tmp_path)
    assert doc["weights_bytes"] == sum(x.nbytes for x in (*a.values(), *b.values()))
    assert doc["by_dtype"]["I8"]["bytes"] == 16 * 32 and doc["by_dtype"]["F32"]["bytes"] == 4 + 32 * 4 * 2
    comps = {k: v["bytes"] for k, v in doc["by_component"].items()}
    assert comps["routed_experts"] == 16 * 32 + 4  # the scale belongs to its expert
    assert comps["router"] == 4 * 32 * 2 and comps["norms"] == 2 * 32 * 4 and comps["attention"] == 2 * 32 * 32 * 2
    # the package reads the same tensors
    names = set()
    for f in doc["files"]:
        with safe_open(f, framework="numpy") as fh:
            names |= set(fh.keys())
    assert names == set(a) | set(b) and doc["tensors"] == len(names)


def test_safetensors_index_and_mtp_part(tmp_path):
    a, b = _st_folder(tmp_path, with_config=True)
    index = {"metadata": {}, "weight_map": {**dict.fromkeys(a, "model-00001-of-00002.safetensors"),
                                            **dict.fromkeys(b, "model-00002-of-00002.safetensors")}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    doc = inspect_safetensors(tmp_path / "model.safetensors.index.json")
    assert doc["weights_bytes_by_part"]["mtp"] == 32 * 32 * 2
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(PlannerError, match="not here"):
        inspect_safetensors(tmp_path)


def test_cli_inspect_dispatches_on_files(tmp_path, capsys):
    path = tmp_path / "tiny.gguf"
    _gguf(path, TINY)
    assert main(["inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights_bytes"] == sum(arr.nbytes for _, arr, _ in TINY)
    _st_folder(tmp_path, with_config=False)
    assert main(["inspect", str(tmp_path)]) == 0
    assert "by component" in capsys.readouterr().out
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 16)
    assert main(["inspect", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def _hub_cache(root, repo="Qwen/Qwen3-30B-A3B", rev="0123456789abcdef0123456789abcdef01234567"):
    """A Hugging Face cache as huggingface_hub lays it out: models--owner--name/{refs/main, snapshots/<rev>/}."""
    src = Path(__file__).parent / "data" / "hf-configs" / f"{repo.replace('/', '__')}.json"
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(rev)
    (folder / "snapshots" / rev).mkdir(parents=True)
    (folder / "snapshots" / rev / "config.json").write_text(src.read_text())


def test_model_id_resolves_offline_from_the_cache(tmp_path, monkeypatch, capsys):
    _hub_cache(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["inspect", "Qwen/Qwen3-30B-A3B", "--json"]) == 0
    by_id = json.loads(capsys.readouterr().out)
    assert main(["inspect", "qwen3-30b-a3b", "--json"]) == 0
    by_profile = json.loads(capsys.readouterr().out)
    assert by_id["params"] == by_profile["params"]
    assert main(["inspect", "moonshotai/Not-Cached"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moonshotai/Not-Cached" in err and "HF_HUB_OFFLINE" in err
