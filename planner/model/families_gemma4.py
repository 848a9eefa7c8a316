"""Config reader of Google's Gemma 4 (`gemma4`: Gemma-4-26B-A4B and the dense 31B, language model under
`text_config`, model_type `gemma4_text`), as a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/gemma4, Gemma4TextConfig / Gemma4ForCausalLM; the planner's count is checked
against it in tests/test_models_gemma4.py):
- `layer_types` of sliding_attention and full_attention (default: every 6th layer full; the last layer is forced to
  full). Sliding layers: num_key_value_heads heads of head_dim, window `sliding_window` (halved + 1 where
  use_bidirectional_attention is "all"). Full layers: heads of global_head_dim (default 512) and, where
  attention_k_eq_v, num_global_key_value_heads KV heads and no v_proj (V is the normed K). Every layer has q_norm
  and k_norm of its head width (v_norm has no weight) and no biases unless attention_bias.
- every layer has a dense GELU-gated MLP of intermediate_size; where enable_moe_block it runs IN PARALLEL with a
  routed MoE on the same residual: a router (proj [E, h], scale [h], per_expert_scale [E]) and num_experts experts of
  moe_intermediate_size (gate and up stored fused as gate_up_proj [E, 2 I, h]), top_k_experts per token. The
  planner models that dense MLP as the MoE layer's always-active shared expert (same FLOP, weights and placement).
- seven RMSNorms of width h per MoE layer (four without the MoE block), a one-element layer_scalar per layer (a
  persistent buffer, stored in the checkpoint), tied embeddings by default.

Refused rather than approximated: per-layer input embeddings (hidden_size_per_layer_input > 0, Gemma 4 E2B/E4B)
and KV sharing across layers (num_kv_shared_layers > 0). The vision (and audio) towers are not counted (params.vision
0), as for Qwen3.5 and Llama 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

_KINDS = ("sliding_attention", "full_attention")


def _layer_types(cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[str, ...]:
    types = cfg.get("layer_types")
    if types is None:  # transformers Gemma4TextConfig: sliding unless (i + 1) % 6 == 0
        types = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers or any(t not in _KINDS for t in types):
        raise PlannerError(f"expected {layers} entries of sliding_attention/full_attention", file=file,
                           field=f"{prefix}layer_types")
    return tuple(types[:-1]) + ("full_attention",)  # transformers forces the last layer to full attention


def gemma4(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """Gemma 4 text model (module docstring)."""
    if f.int("hidden_size_per_layer_input", 256, minimum=0):
        raise f._err("hidden_size_per_layer_input", "Gemma 4 per-layer input embeddings (E2B/E4B) are not modelled; "
                                                     "only configs with hidden_size_per_layer_input 0 are read")
    if f.int("num_kv_shared_layers", 0, minimum=0):
        raise f._err("num_kv_shared_layers", "Gemma 4 KV sharing across layers (E2B/E4B) is not modelled")
    heads = f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", 4)
    k_eq_v = f.bool("attention_k_eq_v", False)
    # transformers Gemma4TextConfig.__post_init__: full layers take global_head_dim always, and
    # num_global_key_value_heads only where attention_k_eq_v
    full_kv = (f.int("num_global_key_value_heads", None) or kv_heads) if k_eq_v else kv_heads
    for key, n in (("num_key_value_heads", kv_heads), ("num_global_key_value_heads", full_kv)):
        if heads % n:
            raise f._err(key, f"{n} does not divide num_attention_heads {heads}")
    window = f.int("sliding_window", 512)
    if cfg.get("use_bidirectional_attention") == "all":
        window = window // 2 + 1  # transformers: exclusive bounds for flash attention
    moe = f.bool("enable_moe_block", False)
    inter = f.int("intermediate_size", 9216)
    return dict(
        architecture="gemma4", head_dim=f.int("head_dim", 256), num_kv_heads=kv_heads,
        tie_word_embeddings=f.bool("tie_word_embeddings", True), vocab_size=f.int("vocab_size", 262_144),
        qkv_bias=f.bool("attention_bias", False), o_bias=f.bool("attention_bias", False), qk_norm=True,
        layer_types=_layer_types(cfg, layers, file, prefix), sliding_window=window,
        intermediate_size=inter, moe_layers=(moe,) * layers,
        n_routed_experts=f.int("num_experts") if moe else 0,
        experts_per_token=f.int("top_k_experts") if moe else 0,
        moe_intermediate_size=f.int("moe_intermediate_size") if moe else 0,
        # the dense MLP beside the experts: an always-active shared expert of intermediate_size
        n_shared_experts=1 if moe else 0, shared_intermediate_size=inter if moe else 0, gate_up_fused=moe,
        full_head_dim=f.int("global_head_dim", 512), full_kv_heads=full_kv, full_k_eq_v=k_eq_v,
    )
