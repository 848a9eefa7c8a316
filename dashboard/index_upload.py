"""A `model.safetensors.index.json` uploaded to the dashboard (issue 22 item 4): the checkpoint's exact total bytes
(`metadata.total_size`, the sum of its tensors' bytes that save_pretrained / huggingface_hub write into the index),
its files, tensors and layers, beside the planner's recipes for the model shown. The weight files themselves are
never uploaded: an index names tensors and files only, so per-tensor dtypes (and bytes per component) need the
files' headers (`planner inspect FOLDER`)."""

from __future__ import annotations

import re

from planner.base.errors import PlannerError
from planner.base.yamlio import MAX_INPUT_BYTES, parse_text, require_mapping
from planner.model.models import load_model
from planner.model.quant import list_formats, load_format

LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
SCALE = re.compile(r"(scale|scales|scale_inv|_scale_2|zeros|g_idx)$")  # quantization side tensors


def upload_json(filename: str, content: bytes) -> dict:
    """An uploaded JSON object (a config.json, an index) within the input size limit; one-line errors naming it."""
    if len(content) > MAX_INPUT_BYTES:
        raise PlannerError(f"file is {len(content):,} bytes, over the {MAX_INPUT_BYTES:,}-byte input limit",
                           file=filename)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PlannerError(f"not UTF-8 text (byte {err.start})", file=filename) from None
    return require_mapping(parse_text(text, filename, json_mode=True), filename)


def read_index(filename: str, content: bytes) -> dict:
    """Files, tensors, layers, scale tensors and total bytes of an uploaded index; one-line errors naming the file."""
    doc = upload_json(filename, content)
    wmap = doc.get("weight_map")
    if not isinstance(wmap, dict) or not wmap or not all(isinstance(v, str) for v in wmap.values()):
        raise PlannerError("not a safetensors index: no weight_map of tensor names to files", file=filename,
                           field="weight_map")
    meta = doc.get("metadata")
    total = meta.get("total_size") if isinstance(meta, dict) else None
    if isinstance(total, str) and total.isdigit():
        total = int(total)
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise PlannerError("no metadata.total_size: without it an index does not give the checkpoint's bytes",
                           file=filename, field="metadata.total_size")
    layers = {int(m.group(1)) for name in wmap if (m := LAYER.search(name))}
    return {"file": filename, "total_bytes": total, "files": len(set(wmap.values())), "tensors": len(wmap),
            "scale_tensors": sum(1 for name in wmap if SCALE.search(name)),
            "layers": max(layers) + 1 if layers else 0}


def recipes_for(ref: str, total: int, top: int = 3) -> list[dict]:
    """The planner's safetensors recipes for model `ref`, nearest the checkpoint's total bytes first (every part:
    language, MTP and vision, as a checkpoint holds them)."""
    model = load_model(ref)
    out = []
    for name in list_formats():
        fmt = load_format(name)
        if fmt.family != "safetensors":
            continue
        nbytes = sum(fmt.inventory_bytes(model.spec))
        out.append({"weights": name, "bytes": nbytes, "error": nbytes / total - 1})
    return sorted(out, key=lambda r: abs(r["error"]))[:top]


def summary(filename: str, content: bytes, ref: str) -> tuple[dict | None, str]:
    """(the index and the model's nearest recipes, "") or (None, why)."""
    try:
        doc = read_index(filename, content)
        model = load_model(ref)
        doc["recipes"] = recipes_for(ref, doc["total_bytes"])
        doc["model"], doc["model_layers"] = model.name, model.spec.num_layers
    except PlannerError as err:
        return None, str(err)
    return doc, ""


def lines(doc: dict) -> list[str]:
    """The sidebar's words for an uploaded index."""
    out = [f"Checkpoint index: {doc['total_bytes'] / 1e9:,.1f} GB ({doc['total_bytes']:,} bytes, exact) in "
           f"{doc['files']:,} files, {doc['tensors']:,} tensors ({doc['scale_tensors']:,} quantization scales)"]
    if doc["layers"] and doc["layers"] < doc["model_layers"]:
        out.append(f"it has {doc['layers']} decoder layers, {doc['model']} has {doc['model_layers']}: another model?")
    near = doc["recipes"][0] if doc["recipes"] else None
    if near:
        out.append(f"nearest planner recipe for {doc['model']}: {near['weights']} {near['bytes'] / 1e9:,.1f} GB "
                   f"({near['error']:+.1%})" + ("" if abs(near["error"]) <= 0.05 else "; none within 5%"))
    return out
