"""A checkpoint file standing in for a scenario's weights: `weights: path/to/model.gguf` (or one part of a split set,
`-00001-of-00008.gguf`), a `.safetensors` file, a `model.safetensors.index.json` or a folder of `*.safetensors`.

The bytes come from the file's header, exactly (planner.model.gguf_file, planner.model.safetensors_file), and are
given to the tensor groups of the model's inventory (planner.model.inventory) so that placement, expert offload and
the op records read them as they read a recipe's computed bytes:
1. a stored tensor lands on the group it is: GGUF `blk.N.<role>` on the group of that llama.cpp role and layer (the
   inventory's roles are llama.cpp's names), safetensors `model.layers.N.mlp.experts.K.up_proj.weight` (and its
   scales: `.weight_scale_inv`, `.weight_packed`, `.qzeros`, ...) on the group of that module;
2. a tensor with no such group (llama.cpp's split `attn_k_b`/`attn_v_b` of DeepSeek's `attn_kv_b`, a module the
   inventory names otherwise) goes to the groups of its component in the same part and layer, else in the same part
   (routed experts stay routed experts: offload and expert parallelism move exactly the file's expert bytes);
3. else to the groups of its part; a part the model does not have (MTP layers of a model without them) is reported
   `unplaced` and not counted in memory.
Within a key the bytes are shared in proportion to the nearest recipe's bytes. The nearest recipe is the shipped
format of the file's kind (gguf-* for GGUF, the safetensors formats otherwise) whose bytes over the parts the file
holds come closest to the file's; it gives each tensor's storage and compute dtype (what the GEMMs run in) and the
output reports it, as the recipe the file matches when within RECIPE_TOLERANCE.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import replace
from functools import lru_cache

from planner.base.errors import PlannerError
from planner.base.yamlio import file_problem
from planner.model.inventory import tensor_inventory
from planner.model.models import Model, model_config
from planner.model.quant import QuantFormat, list_formats, load_format
from planner.model.safetensors_file import read_safetensors
from planner.model.stored import ExactWeights, StoredTensor

# the shipped GGUF recipes come within 4-8% of published files of theirs (tests/test_published.py misses two
# DeepSeek-R1 sizes by 4% and 8%); closer than 5% is reported as the recipe the file matches
RECIPE_TOLERANCE = 0.05
# the file's parameters against the model's: GGUF stores every weight as elements (quantized blocks included), so
# another model's file (other widths, expert count, vocabulary) is off by far more than 2%
PARAMS_TOLERANCE = 0.02
SUFFIXES = (".gguf", ".safetensors", ".safetensors.index.json")
_EXPERT = re.compile(r"\.experts\.\d+\.")
_BLOCK = re.compile(r"^blk\.(\d+)\.")


def is_checkpoint_path(text: str) -> bool:
    """Whether a `weights:` value names a checkpoint rather than a recipe: a .gguf or safetensors name, or a path
    (with a separator) that is not a quant profile (.yaml)."""
    return text.endswith(SUFFIXES) or (("/" in text or "\\" in text) and not text.endswith((".yaml", ".yml")))


def checkpoint_weights(path: str, model: Model, file: str, field: str = "weights") -> QuantFormat:
    """The nearest recipe with the checkpoint's exact bytes; problems are one error naming `file`, `field` and the
    checkpoint."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        raise PlannerError(f"{path}: {file_problem(path)}", file=file, field=field) from None
    try:
        return _checkpoint(path, (st.st_mtime_ns, st.st_size), model)
    except PlannerError as err:
        where = f"{err.file}: " if err.file else ""
        raise PlannerError(f"{where}{err.message}", file=file, field=field) from None
    except ImportError as err:  # the `files` extra is not installed
        raise PlannerError(f"reading {path} needs {err.name or 'gguf'} (pip install -e '.[files]')", file=file,
                           field=field) from None


@lru_cache(maxsize=16)
def _checkpoint(path: str, stamp: tuple[int, int], model: Model) -> QuantFormat:
    """`stamp` (mtime, size) keys the cache: a file replaced under the same name is read again."""
    if path.endswith(".gguf"):
        from planner.model.gguf_file import read_gguf  # the gguf package (files extra, 40 ms of import)

        meta, rows = read_gguf(path)
    else:
        meta, rows = read_safetensors(path)
    spec = model.spec
    rows = [replace(r, part="mtp") if r.part == "language" and r.layer is not None and r.layer >= spec.num_layers
            else r for r in rows]  # a safetensors folder without config.json: layers past the model's are MTP
    _check_model(path, meta, rows, model)
    named = f"gguf-{meta['file_type'].removeprefix('MOSTLY_').lower()}" if isinstance(meta.get("file_type"), str) \
        else None
    recipe, recipe_bytes, error = _nearest_recipe(meta["kind"], rows, model, named)
    fmt = load_format(recipe)
    group_bytes, placed = _apportion(meta["kind"], rows, model, fmt)
    by_part: dict[str, int] = {}
    for r in rows:
        by_part[r.part] = by_part.get(r.part, 0) + r.bytes
    exact = ExactWeights(path, meta["kind"], tuple(meta["files"]), model.name, group_bytes,
                         sum(r.bytes for r in rows), tuple(by_part.items()), tuple(placed.items()), recipe,
                         recipe_bytes, error, abs(error) <= RECIPE_TOLERANCE, meta.get("file_type"))
    return replace(fmt, exact=exact)


def _check_model(path: str, meta: dict, rows: list[StoredTensor], model: Model) -> None:
    """Refuse another model's checkpoint: decoder layers, and for GGUF the parameter count."""
    spec = model.spec
    layers = {r.layer for r in rows if r.part == "language" and r.layer is not None}
    if layers and len(layers) != spec.num_layers:
        raise PlannerError(f"holds {len(layers)} decoder layers, {model.name} has {spec.num_layers}: not a "
                           "checkpoint of this model", file=path)
    if meta["kind"] != "gguf":
        return  # safetensors may pack quantized weights (int32 words of 8 int4 values): elements are not weights
    have = sum(r.params for r in rows if r.part == "language")
    want = sum(t.numel for t in tensor_inventory(spec) if t.part == "language")
    if want and abs(have / want - 1) > PARAMS_TOLERANCE:
        raise PlannerError(f"holds {have:,} language-model parameters, {model.name} has {want:,}: not a checkpoint "
                           "of this model", file=path)


def _nearest_recipe(kind: str, rows: list[StoredTensor], model: Model, named: str | None) -> tuple[str, int, float]:
    """The shipped format of this file kind whose bytes over the parts both hold come closest to the file's; among
    equally close ones the recipe the file names (GGUF general.file_type MOSTLY_Q8_0 -> gguf-q8_0)."""
    spec = model.spec
    groups = tensor_inventory(spec)
    held = {r.part for r in rows} & {t.part for t in groups}
    best = None
    for name in list_formats():
        fmt = load_format(name)
        if fmt.family != kind:
            continue
        parts = held - set(fmt.exclude_parts)  # GGUF recipes leave vision (mmproj) and MTP layers out
        have = sum(r.bytes for r in rows if r.part in parts)
        nbytes = sum(b for t, b in zip(groups, fmt.inventory_bytes(spec), strict=True) if t.part in parts)
        if not nbytes or not have:
            continue
        gap = (round(abs(math.log(nbytes / have)), 9), name != named)
        if best is None or gap < best[0]:
            best = (gap, name, nbytes, nbytes / have - 1)
    if best is None:
        raise PlannerError(f"no {kind} recipe to place it as (profiles/quant/)", field="weights")
    return best[1], best[2], best[3]


def _row_keys(kind: str, r: StoredTensor) -> list:
    """The inventory keys a stored tensor may be, most exact first."""
    if kind == "gguf":
        m = _BLOCK.match(r.name)
        base = r.name[m.end():] if m else r.name
        names = [base.removesuffix(".weight"), base, base.removesuffix(".bias")]
        return [(n, r.layer) for n in dict.fromkeys(names)]
    name = _EXPERT.sub(".experts.{E}.", r.name)
    out = []
    for n in (name, name.removeprefix("language_model.")):
        module = n.rsplit(".", 1)[0]
        out += [n, f"{module}.weight"]  # scales and packing (weight_scale_inv, qzeros, ...) sit with the weight
    return list(dict.fromkeys(out))


def _apportion(kind: str, rows: list[StoredTensor], model: Model, fmt: QuantFormat) -> tuple[tuple[int, ...], dict]:
    """The file's bytes per inventory group (integers, summing to the placed bytes) and bytes by how they matched."""
    groups = tensor_inventory(model.spec)
    weights = fmt.inventory_bytes(model.spec)
    index: dict = {}
    for k, t in enumerate(groups):
        own = (t.role, t.layer) if kind == "gguf" else t.name
        for key in (("t", own), ("c", t.part, t.component, t.layer), ("c", t.part, t.component), ("p", t.part)):
            index.setdefault(key, []).append(k)
    share = [0.0] * len(groups)
    placed = {"tensor": 0, "component": 0, "part": 0, "unplaced": 0}
    for r in rows:
        keys = [("tensor", ("t", key)) for key in _row_keys(kind, r)] + [
            ("component", ("c", r.part, r.component, r.layer)), ("component", ("c", r.part, r.component)),
            ("part", ("p", r.part))]
        for how, key in keys:
            idx = index.get(key)
            if idx:
                total = sum(weights[k] for k in idx)
                for k in idx:
                    share[k] += r.bytes * (weights[k] / total if total else 1 / len(idx))
                placed[how] += r.bytes
                break
        else:
            placed["unplaced"] += r.bytes
    return _whole(share, sum(placed.values()) - placed["unplaced"]), placed


def _whole(share: list[float], total: int) -> tuple[int, ...]:
    """Integers summing to `total`, each within one byte of its share (largest remainders round up)."""
    out = [math.floor(s) for s in share]
    rest = total - sum(out)
    for k in sorted(range(len(share)), key=lambda k: out[k] - share[k])[:max(0, rest)]:
        out[k] += 1
    return tuple(out)


def add_sources(doc: dict, model: Model, weights: QuantFormat) -> dict:
    """`doc` (an estimate's answer) with what its scenario's model and weights were read from: the Hub id and the
    revision of a model's config.json (`scenario.model_config`), the checkpoint whose header gave the weight bytes
    (`scenario.weights_file`), each with an assumption line. Nothing for profiles and recipes."""
    scenario, notes = doc.setdefault("scenario", {}), doc.setdefault("assumptions", [])
    if model.hub_id:
        scenario["model_config"] = model_config(model)
        notes.append(f"model: {model.hub_id} config.json at revision {model.revision} (Hugging Face cache)")
    if weights.exact is not None:
        ex = weights.exact
        scenario["weights_file"] = ex.record()
        placed = dict(ex.placed)
        by_tensor = placed["tensor"] / ex.weights_bytes if ex.weights_bytes else 0
        how = "every tensor placed as its own tensor group" if placed["tensor"] == ex.weights_bytes else (
            f"{by_tensor:.1%} of the bytes placed tensor by tensor, the rest by component and part")
        match = (f"matches recipe {ex.recipe} ({ex.recipe_error:+.1%})" if ex.matches else
                 f"no shipped recipe within {RECIPE_TOLERANCE:.0%} (closest {ex.recipe}, {ex.recipe_error:+.1%})")
        notes.append(f"weights: {ex.weights_bytes:,} B exactly, from the header of {ex.path} ({len(ex.files)} "
                     f"file(s)); {match}, whose rules give the compute dtypes; {how}" + (
                         f"; {placed['unplaced']:,} B of parts {model.name} lacks not counted"
                         if placed["unplaced"] else ""))
    return doc

