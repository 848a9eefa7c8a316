"""Parameter and byte accounting of one model (`python -m planner inspect`), CONTRACT.md §1."""

from __future__ import annotations

from collections import defaultdict

from planner.model.inventory import (
    PARTS,
    active_params_per_token,
    params_by_component,
    params_by_part,
    tensor_inventory,
)
from planner.model.kv import kv_layout, mha_equivalent_bytes_per_token
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import Model, model_config
from planner.model.quant import QuantFormat


def weights_bytes_by_part(model: Model, fmt: QuantFormat) -> dict[str, int]:
    """Stored bytes per part under `fmt` (parts the format's files do not hold count 0)."""
    out = dict.fromkeys(PARTS, 0)
    for t in tensor_inventory(model.spec):
        if t.part not in fmt.exclude_parts:
            out[t.part] += fmt.tensor_bytes(t, model.spec)
    return out


def weights_bytes_by_component(model: Model, fmt: QuantFormat, part: str = "language") -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for t in tensor_inventory(model.spec):
        if t.part == part and t.part not in fmt.exclude_parts:
            out[t.component] += fmt.tensor_bytes(t, model.spec)
    return dict(out)


def storage_by_type(model: Model, fmt: QuantFormat) -> dict[str, dict[str, int]]:
    """Parameters and bytes per storage type actually used (e.g. Q4_K vs Q6_K in a GGUF mix)."""
    out: dict[str, dict[str, int]] = {}
    for t in tensor_inventory(model.spec):
        if t.part in fmt.exclude_parts:
            continue
        st = fmt.storage_for(t, model.spec)
        row = out.setdefault(st.name, {"params": 0, "bytes": 0})
        row["params"] += t.numel
        row["bytes"] += fmt.tensor_bytes(t, model.spec)
    return out


def inspect_model(model: Model, fmt: QuantFormat, kv_dtype: str = "bf16") -> dict:
    spec = model.spec
    parts = params_by_part(spec)
    by_part = weights_bytes_by_part(model, fmt)
    layout = kv_layout(spec, kv_dtype)
    mha = mha_equivalent_bytes_per_token(spec, "bf16" if kv_dtype == "fp8_ds_mla" else kv_dtype)
    kinds = kv_by_kind(spec, kv_dtype)
    return {
        "model": model.name,
        "architecture": spec.architecture,
        "model_type": spec.model_type,
        "source": model.source,
        **({"model_config": model_config(model)} if model.hub_id else {}),  # a Hub id: its revision
        "params": {
            "total": parts["language"],
            "active_per_token": active_params_per_token(spec),
            "mtp": parts["mtp"],
            "vision": parts["vision"],
            "by_component": params_by_component(spec),
        },
        "weights": fmt.name,
        "native_weights": model.native_weights,
        "weights_bytes": sum(by_part.values()),
        "weights_bytes_by_part": by_part,
        "weights_bytes_by_component": weights_bytes_by_component(model, fmt),
        "storage_types": storage_by_type(model, fmt),
        "kv_cache": kv_dtype,
        "kv_cache_bytes_per_token": layout.bytes_per_token_full,
        "kv_cache_bytes_per_token_per_layer": layout.bytes_per_token_per_layer,
        # Gemma 4: sliding and full layers cache different bytes per token (the field above is a full layer's)
        **({"kv_cache_bytes_per_token_per_layer_by_kind": {
            "full": layout.bytes_per_token_per_layer, "sliding": layout.sliding_bytes_per_token_per_layer}}
           if layout.sliding_bytes_per_token_per_layer else {}),
        "kv_cache_mha_equivalent_bytes_per_token": mha,
        "kv_cache_sliding_window": layout.sliding_window,
        "kv_cache_sliding_layers": layout.sliding_layers,
        # the fixed part: linear-attention conv + recurrent state of one request, all layers, unsplit
        "state_bytes_per_request": layout.state_bytes_per_request,
        "kv_cache_indexer_bytes_per_token_per_layer": layout.indexer_bytes_per_token_per_layer,
        # MiniMax-M3: the layers whose index key is cached beside K and V (0 / absent: on every layer, MLA + DSA)
        **({"kv_cache_indexed_layers": layout.indexed_layers} if layout.indexed_layers else {}),
        # DeepSeek-V4: its CSA / HCA caches, one entry per `tokens_per_entry` tokens (the windows are state above)
        **({"kv_cache_compressed": [{"tokens_per_entry": r, "layers": n, "bytes_per_entry": b}
                                    for r, n, b in layout.compressed]} if layout.compressed else {}),
        # per attention kind: what one more token adds past any window, what a request holds whatever its length
        # (full windows, linear / compressor state); one sequence of L tokens ~ L x the first + the second
        "kv_cache_by_layer_kind": [{"attention_kind": k.attention_kind, "layers": k.layers, "cached": k.cached,
                                    "bytes_per_token_per_layer": k.bytes_per_token_per_layer,
                                    "bytes_per_request_per_layer": k.bytes_per_request_per_layer}
                                   for k in kinds.kinds],
        "kv_cache_bytes_per_token_past_window": kinds.bytes_per_token,
        "kv_cache_bytes_per_request_fixed": kinds.bytes_per_request,
        "layer_kinds": spec.layer_kind_counts,
        "architecture_facts": {
            "layers": spec.num_layers, "hidden_size": spec.hidden_size, "attention": spec.attention,
            "heads": spec.num_heads, "kv_heads": spec.num_kv_heads, "head_dim": spec.head_dim,
            "kv_lora_rank": spec.kv_lora_rank or None, "q_lora_rank": spec.q_lora_rank,
            "moe_layers": spec.num_moe_layers, "routed_experts": spec.n_routed_experts,
            "experts_per_token": spec.experts_per_token, "shared_experts": spec.n_shared_experts,
            "moe_intermediate_size": spec.moe_intermediate_size or None, "vocab_size": spec.vocab_size,
            "mtp_layers": spec.mtp_layers,
        },
    }
