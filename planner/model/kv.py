"""KV cache bytes: MLA latent or GQA/MHA heads, per token and per layer, by storage dtype.

MLA (DeepSeek-V2/V3, Kimi K2): one latent "head" per layer of kv_lora_rank + qk_rope_head_dim
elements (512 + 64 = 576), the same on every TP rank (the latent is not split by heads).
GQA/MHA: K and V of num_kv_heads heads, 2 x kv_heads x head_dim elements per layer, split over TP
ranks down to one head per rank. Sliding-window layers keep at most `sliding_window` tokens.

`fp8_ds_mla` is FlashMLA's FP8 layout: 656 B per token per layer =
512 B e4m3 latent + 4 float32 scales (one per 128 latent values, 16 B) + 64 bf16 rope values (128 B)
(deepseek-ai/FlashMLA README, "FP8 KV cache"; vLLM kv_cache_dtype fp8_ds_mla).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from planner.base.errors import PlannerError
from planner.model.spec import ModelSpec

KV_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}
KV_DTYPES = ("bf16", "fp16", "fp8", "fp8_ds_mla")
FP8_DS_MLA_BYTES_PER_LAYER = 512 * 1 + (512 // 128) * 4 + 64 * 2  # = 656


@dataclass(frozen=True)
class KVLayout:
    """Per-token KV bytes of one model under one KV dtype."""

    dtype: str  # bf16 | fp16 | fp8 | fp8_ds_mla
    bytes_per_token_full: int  # all layers, one token, before any TP split and without window caps
    full_layers: int  # layers whose cache grows with the whole context
    sliding_layers: int  # layers capped at sliding_window tokens
    sliding_window: int | None  # tokens a sliding layer keeps
    bytes_per_token_per_layer: int  # one layer, one token (unsplit)
    split_by_tp: bool  # GQA heads split across TP ranks; False for the MLA latent

    def bytes_for_context(self, tokens: int, tp: int = 1, kv_heads: int = 1, layers_fraction: float = 1.0) -> int:
        """KV bytes of one sequence of `tokens` on one GPU of a TP group (window caps applied)."""
        per_layer = self.per_gpu_layer_bytes(tp, kv_heads)
        sliding_tokens = min(tokens, self.sliding_window or tokens)
        total = per_layer * (self.full_layers * tokens + self.sliding_layers * sliding_tokens)
        return ceil(total * layers_fraction)

    def per_gpu_layer_bytes(self, tp: int, kv_heads: int) -> int:
        if not self.split_by_tp or tp <= 1:
            return self.bytes_per_token_per_layer
        # heads split over tp ranks; when tp > kv_heads each rank still holds one (replicated) head
        heads_per_rank = max(1, kv_heads // tp)
        return self.bytes_per_token_per_layer * heads_per_rank // kv_heads


def kv_layout(spec: ModelSpec, dtype: str = "bf16") -> KVLayout:
    if dtype not in KV_DTYPES and dtype not in KV_DTYPE_BYTES:
        raise PlannerError(f"unknown KV cache dtype {dtype!r}; known: {', '.join(KV_DTYPES)}", field="kv_cache")
    sliding = sum(t == "sliding_attention" for t in spec.layer_types)
    full = spec.num_layers - sliding
    if spec.attention == "mla":
        if dtype == "fp8_ds_mla":
            if spec.kv_lora_rank != 512 or spec.qk_rope_head_dim != 64:
                raise PlannerError("fp8_ds_mla is FlashMLA's layout for kv_lora_rank 512 + rope 64", field="kv_cache")
            per_layer = FP8_DS_MLA_BYTES_PER_LAYER
        else:
            per_layer = spec.kv_latent_elems_per_layer * KV_DTYPE_BYTES[dtype]
        split = False
    else:
        if dtype == "fp8_ds_mla":
            raise PlannerError(f"fp8_ds_mla needs an MLA model; {spec.name} uses {spec.attention.upper()}",
                               field="kv_cache")
        per_layer = 2 * spec.num_kv_heads * spec.head_dim * KV_DTYPE_BYTES[dtype]  # K and V
        split = True
    return KVLayout(dtype, per_layer * spec.num_layers, full, sliding, spec.sliding_window, per_layer, split)


def mha_equivalent_bytes_per_token(spec: ModelSpec, dtype: str = "bf16") -> int:
    """What the cache would be with every head's K and V stored (MLA decompressed: K of
    qk_nope + qk_rope and V of v_head_dim per head; Kimi K2.5: 64 x (192 + 128) x 2 B = 40,960 B per layer)."""
    nbytes = KV_DTYPE_BYTES.get(dtype, 1)
    if spec.attention == "mla":
        per_layer = spec.num_heads * (spec.qk_head_dim + spec.v_head_dim) * nbytes
    else:
        per_layer = 2 * spec.num_heads * spec.head_dim * nbytes
    return per_layer * spec.num_layers


def paged_tokens(tokens: int, block_tokens: int) -> int:
    """Tokens a paged allocator reserves for one sequence: rounded up to whole blocks."""
    return ceil(tokens / block_tokens) * block_tokens if block_tokens > 1 else tokens
