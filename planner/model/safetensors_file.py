"""Exact bytes of a safetensors checkpoint from its headers: `planner inspect FOLDER` (every `*.safetensors` in it,
or those `model.safetensors.index.json` lists), a single `.safetensors` file, or an index file.

The header, per the format specification (huggingface/safetensors README, "Format"; the `safetensors` package
0.4-0.8 reads it the same way): 8 bytes N, an unsigned little-endian 64-bit integer; N bytes of UTF-8 JSON mapping
each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the data buffer that follows,
so the tensor's stored bytes are end - begin) and an optional `__metadata__` of strings. Only those 8 + N bytes are
read; the package caps N at 100,000,000 bytes (MAX_HEADER_SIZE), and so does this reader.

Components follow Hugging Face module names: embed_tokens, lm_head, self_attn, mlp.experts.N (routed),
shared_expert(s), mlp.gate / e_score_correction_bias (router), mlp.{gate,up,down}_proj (dense MLP), *norm; scales
and packing tensors of quantized checkpoints (weight_scale_inv, weight_scale, weight_packed, qzeros, g_idx, ...)
belong to the module they sit in. Vision towers and projectors are the `vision` part; decoder layers at or past
config.json's num_hidden_layers (when the folder has one) the `mtp` part.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.escape import terminal
from planner.base.yamlio import file_problem, is_file
from planner.model.stored import StoredTensor, summary

MAX_HEADER_BYTES = 100_000_000  # safetensors MAX_HEADER_SIZE
INDEX = "model.safetensors.index.json"
LAYER = re.compile(r"layers\.(\d+)\.")
VISION = ("vision_tower", "visual.", "vision_model", "multi_modal_projector", "mm_projector", "vision_embed")


def read_header(path: Path) -> dict:
    """The JSON header of one .safetensors file (8-byte length, then the JSON)."""
    name = str(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise PlannerError("shorter than the 8-byte safetensors header length", file=name)
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or n > path.stat().st_size - 8:
                raise PlannerError(f"header length {n:,} bytes is not a safetensors header", file=name)
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as err:
        raise PlannerError(f"cannot read: {err.strerror or type(err).__name__}", file=name) from None
    except (UnicodeDecodeError, ValueError) as err:
        raise PlannerError(f"header is not JSON: {err}"[:200], file=name) from None
    if not isinstance(header, dict):
        raise PlannerError("header is not a JSON object", file=name)
    return header


def checkpoint_files(path: Path) -> list[Path]:
    """The .safetensors files a path names: itself, those an index lists, or every one in a folder."""
    if path.is_dir():
        index = path / INDEX
        if is_file(index):
            return checkpoint_files(index)
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise PlannerError("no *.safetensors file in this folder", file=str(path))
        return files
    if path.name.endswith(".json"):
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise PlannerError("not a safetensors index (no weight_map)", file=str(path)) from None
        files = [path.parent / n for n in names]
        missing = [f.name for f in files if not is_file(f)]
        if missing:
            raise PlannerError(f"the index lists files not here: {', '.join(missing[:5])}", file=str(path))
        return files
    return [path]


def component(name: str) -> str:
    n = name.lower()
    if "embed_tokens" in n or n.endswith("wte.weight"):
        return "embedding"
    if n.startswith("lm_head") or ".lm_head" in n:
        return "lm_head"
    if re.search(r"\.experts\.\d+\.", n) or ".experts." in n:
        return "routed_experts"
    if "shared_expert" in n:
        return "shared_experts"
    if re.search(r"\.(gate|router)\.(weight|bias|e_score_correction_bias)$", n) or "e_score_correction_bias" in n \
            or "shared_expert_gate" in n:
        return "router"
    module = n.rsplit(".", 1)[0].rsplit(".", 1)[-1]  # "model.layers.0.input_layernorm.weight" -> input_layernorm
    if "norm" in module:
        return "norms"
    if "self_attn" in n or ".attn." in n or ".attention." in n:
        return "attention"
    if ".mlp." in n or ".feed_forward." in n:
        return "dense_mlp"
    return "other"


def _layers(folder: Path) -> int | None:
    cfg = folder / "config.json"
    if not is_file(cfg):
        return None
    try:
        doc = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return None
    doc = doc.get("text_config", doc) if isinstance(doc, dict) else {}
    n = doc.get("num_hidden_layers") if isinstance(doc, dict) else None
    return n if isinstance(n, int) else None


def read_safetensors(path: str | Path) -> tuple[dict, list[StoredTensor]]:
    """The files and every tensor of a safetensors checkpoint, from the headers alone."""
    path = Path(path)
    if not path.exists():
        raise PlannerError(file_problem(path), file=str(path))
    files = checkpoint_files(path)
    layers = _layers(files[0].parent)
    rows: list[StoredTensor] = []
    file_bytes = 0
    for f in files:
        file_bytes += f.stat().st_size
        for name, info in read_header(f).items():
            if name == "__metadata__":
                continue
            try:
                begin, end = info["data_offsets"]
                dtype, shape = str(info["dtype"]), [int(d) for d in info["shape"]]
            except (KeyError, TypeError, ValueError):
                raise PlannerError(f"tensor {name!r} has no dtype/shape/data_offsets", file=str(f)) from None
            elems = 1
            for d in shape:
                elems *= d
            m = LAYER.search(name)
            layer = int(m.group(1)) if m else None
            if any(v in name for v in VISION):
                part, layer = "vision", None
            else:
                part = "mtp" if layer is not None and layers is not None and layer >= layers else "language"
            rows.append(StoredTensor(name, dtype, component(name), part, layer, elems, int(end) - int(begin)))
    return {"kind": "safetensors", "model": path.name, "files": [str(f) for f in files], "file_bytes": file_bytes}, rows


def inspect_safetensors(path: str | Path) -> dict:
    """Exact stored bytes of a safetensors checkpoint by dtype, component and part (language, mtp, vision)."""
    meta, rows = read_safetensors(path)
    return {**meta, **summary(rows, ("language", "mtp", "vision"))}


def table(doc: dict) -> str:
    """The human-readable summary of a GGUF or safetensors inspection."""
    arch = f", {doc['architecture']}, {doc['file_type']}" if doc.get("architecture") else ""
    head = terminal(f"{doc['model']}  ({doc['kind']}{arch}; {len(doc['files'])} file(s), {doc['tensors']:,} tensors)")
    lines = [head, f"  weights  {doc['weights_bytes']:,} B = {doc['weights_bytes'] / 1e9:,.2f} GB "
                   f"({doc['params_total']:,} parameters; files {doc['file_bytes']:,} B with headers)"]
    lines += [f"    {part:16s} {b:>20,} B" for part, b in doc["weights_bytes_by_part"].items()]
    for title, key in (("by dtype", "by_dtype"), ("by component", "by_component")):
        lines.append(f"  {title}")
        lines += [f"    {terminal(k):16s} {r['bytes']:>20,} B {r['params']:>20,} params {r['tensors']:>6,} tensors"
                  for k, r in doc[key].items()]
    return "\n".join(lines)
