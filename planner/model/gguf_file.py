"""Exact bytes of a GGUF checkpoint from its header: `planner inspect model.gguf` (or one part of a split set,
`name-00001-of-00005.gguf`: every part is read).

Read with the `gguf` package (ggml-org/llama.cpp `gguf-py`, 0.17+), `gguf.GGUFReader`: it parses the key-value
metadata and the tensor infos (name, shape, ggml type, offset) and maps the file without touching tensor data
(numpy memmap: no page of tensor data is read). A tensor's stored bytes are `ReaderTensor.n_bytes` = elements /
block size x type size (gguf.GGML_QUANT_SIZES, e.g. Q4_K: 256 weights in 144 bytes), so the total is the sum of the
tensor bytes, exactly, without the header and alignment padding (reported apart as `file_bytes`).

Components follow llama.cpp's tensor names (gguf-py `gguf/constants.py` TENSOR_NAMES): token_embd, output,
blk.N.attn_*, ffn_gate_inp / exp_probs_b (router), ffn_*_exps (routed experts), ffn_*_shexp (shared experts),
ffn_gate/up/down (dense MLP), *_norm (norms). Blocks at or past `<arch>.block_count - <arch>.nextn_predict_layers`
are the MTP (next-n) layers DeepSeek-V3-style GGUFs keep.
"""

from __future__ import annotations

import re
from pathlib import Path

import gguf

from planner.base.errors import PlannerError
from planner.base.yamlio import file_problem, is_file
from planner.model.stored import StoredTensor, summary

BLOCK = re.compile(r"blk\.(\d+)\.")
SPLIT = re.compile(r"^(?P<stem>.*)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_parts(path: Path) -> list[Path]:
    """The files of a checkpoint: every part of a split set named by one part, else the file itself."""
    m = SPLIT.match(path.name)
    if not m:
        return [path]
    count = int(m.group("count"))
    parts = [path.with_name(f"{m.group('stem')}-{k:05d}-of-{count:05d}.gguf") for k in range(1, count + 1)]
    missing = [p.name for p in parts if not is_file(p)]
    if missing:
        raise PlannerError(f"split set of {count} parts is missing {', '.join(missing[:5])}", file=str(path))
    return parts


def component(name: str) -> str:
    """The CONTRACT.md component of one llama.cpp tensor name."""
    short = name.split(".", 2)[2] if name.startswith("blk.") else name
    if short.startswith("token_embd"):
        return "norms" if "norm" in short else "embedding"
    if short.startswith("output_norm") or "_norm" in short or short.startswith("norm"):
        return "norms"
    if short.startswith("output"):
        return "lm_head"
    if short.startswith(("ffn_gate_inp", "exp_probs_b")):
        return "router"
    if "_exps" in short:
        return "routed_experts"
    if "_shexp" in short:
        return "shared_experts"
    if short.startswith("ffn_"):
        return "dense_mlp"
    if short.startswith("attn_"):
        return "attention"
    return "other"


def _field(reader: gguf.GGUFReader, key: str):
    f = reader.get_field(key)
    if f is None or not f.data:
        return None
    value = f.parts[f.data[0]]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(value).decode("utf-8", "replace")
    return value.tolist()[0] if hasattr(value, "tolist") else value


def read_gguf(path: str | Path) -> tuple[dict, list[StoredTensor]]:
    """The metadata (model name, architecture, file type, block counts, files) and every tensor of a GGUF file or
    split set, from the headers alone."""
    path = Path(path)
    if not is_file(path):
        raise PlannerError(file_problem(path), file=str(path))
    rows: list[StoredTensor] = []
    arch, file_type, name, blocks, nextn, file_bytes = None, None, None, None, 0, 0
    files = split_parts(path)
    for part in files:
        try:
            reader = gguf.GGUFReader(part, "r")
        except (ValueError, OSError, KeyError, IndexError) as err:  # gguf-py's refusals of a bad header
            raise PlannerError(f"not a readable GGUF file: {err}"[:300], file=str(part)) from None
        arch = arch or _field(reader, "general.architecture")
        name = name or _field(reader, "general.name")
        file_type = file_type if file_type is not None else _field(reader, "general.file_type")
        if arch and blocks is None:
            blocks = _field(reader, f"{arch}.block_count")
            nextn = _field(reader, f"{arch}.nextn_predict_layers") or 0
        file_bytes += part.stat().st_size
        for t in reader.tensors:
            m = BLOCK.match(t.name)
            layer = int(m.group(1)) if m else None
            mtp = layer is not None and blocks is not None and nextn and layer >= blocks - nextn
            rows.append(StoredTensor(t.name, t.tensor_type.name, component(t.name), "mtp" if mtp else "language",
                                     layer, int(t.n_elements), int(t.n_bytes)))
    ftype = gguf.LlamaFileType(file_type).name if file_type in {e.value for e in gguf.LlamaFileType} else file_type
    meta = {"kind": "gguf", "model": name or path.name, "architecture": arch, "files": [str(p) for p in files],
            "file_type": ftype, "block_count": blocks, "nextn_predict_layers": nextn, "file_bytes": file_bytes}
    return meta, rows


def inspect_gguf(path: str | Path) -> dict:
    """Architecture, metadata and the exact stored bytes of a GGUF file or split set, by ggml type and component."""
    meta, rows = read_gguf(path)
    return {**meta, **summary(rows, ("language", "mtp"))}
