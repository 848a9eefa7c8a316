"""What a checkpoint file stores, tensor by tensor, as its header says (GGUF: planner.model.gguf_file; safetensors:
planner.model.safetensors_file), and the exact bytes such a file gives a scenario in place of a recipe
(planner.model.weights_file).

Both readers turn their header into `StoredTensor` rows; `summary` adds them up by dtype, component and part for
`planner inspect`, so the two file kinds report alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as a checkpoint header lists it."""

    name: str  # as the file names it: blk.3.ffn_up_exps.weight (GGUF), model.layers.3.mlp.gate.weight (HF)
    dtype: str  # ggml type (Q4_K, F16, ...) or safetensors dtype (BF16, F8_E4M3, I32, ...)
    component: str  # CONTRACT.md component (embedding ... lm_head), or "other"
    part: str  # language | mtp | vision
    layer: int | None  # decoder layer (blk.N / layers.N); None outside the decoder layers and in vision towers
    params: int  # elements as stored (a packed int4 tensor counts its int32 words)
    bytes: int  # stored bytes, exactly (ggml blocks x block size; safetensors end - begin offsets)


def summary(rows: list[StoredTensor], parts: tuple[str, ...]) -> dict:
    """Parameters, bytes and tensor counts by dtype and by component (largest first), bytes by part."""
    by_type: dict[str, dict[str, int]] = {}
    by_comp: dict[str, dict[str, int]] = {}
    by_part = dict.fromkeys(parts, 0)
    for r in rows:
        for table, key in ((by_type, r.dtype), (by_comp, r.component)):
            row = table.setdefault(key, {"params": 0, "bytes": 0, "tensors": 0})
            row["params"] += r.params
            row["bytes"] += r.bytes
            row["tensors"] += 1
        by_part[r.part] = by_part.get(r.part, 0) + r.bytes
    return {
        "tensors": len(rows), "params_total": sum(r.params for r in rows),
        "weights_bytes": sum(r.bytes for r in rows), "weights_bytes_by_part": by_part,
        "by_dtype": dict(sorted(by_type.items(), key=lambda kv: -kv[1]["bytes"])),
        "by_component": dict(sorted(by_comp.items(), key=lambda kv: -kv[1]["bytes"])),
    }


@dataclass(frozen=True)
class ExactWeights:
    """A checkpoint file standing in for a scenario's weight recipe: the stored bytes of every tensor group of one
    model's inventory (planner.model.inventory.tensor_inventory), read from the file's header. The recipe it is
    placed as (planner.model.quant.QuantFormat) still gives each tensor's compute dtype."""

    path: str  # the file (a split set's first part) or folder the scenario names, resolved
    kind: str  # gguf | safetensors
    files: tuple[str, ...]  # every file read (all parts of a split set)
    model: str  # the model whose inventory group_bytes follows
    group_bytes: tuple[int, ...]  # stored bytes of each inventory group, in inventory order
    weights_bytes: int  # every tensor of the file(s), exactly (no header, no alignment padding)
    bytes_by_part: tuple[tuple[str, int], ...]  # language / mtp / vision bytes of the file
    # bytes by how they found their inventory group: "tensor" (the same tensor), "component" (same part,
    # component and layer, or part and component), "part" (same part), "unplaced" (a part the model lacks)
    placed: tuple[tuple[str, int], ...]
    recipe: str  # the shipped recipe nearest the file's bytes (its rules give compute dtypes)
    recipe_bytes: int  # that recipe's bytes over the parts both the file and the model hold
    recipe_error: float  # recipe_bytes / the file's bytes over those parts - 1
    matches: bool  # |recipe_error| is within weights_file.RECIPE_TOLERANCE
    file_type: str | None = None  # GGUF general.file_type (MOSTLY_Q4_K_M, ...), as the file says

    def record(self) -> dict:
        """The file as outputs name it: which file, that bytes are exact, and the recipe it matches."""
        return {
            "path": self.path, "kind": self.kind, "files": len(self.files), "exact": True,
            "weights_bytes": self.weights_bytes, "weights_bytes_by_part": dict(self.bytes_by_part),
            "placed_bytes": dict(self.placed), "file_type": self.file_type,
            "recipe": self.recipe if self.matches else None, "closest_recipe": self.recipe,
            "closest_recipe_bytes": self.recipe_bytes, "closest_recipe_error": self.recipe_error,
        }
