"""Config reader of Kimi's hybrid linear-attention models (`kimi_linear`: Kimi-Linear-48B-A3B, and Kimi-K3's text
model under `text_config` of a `kimi_k3` config), as a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/kimi_linear, KimiLinearConfig / KimiLinearForCausalLM; the planner's count is
checked against it in tests/test_models_2026.py):
- layer_types from linear_attn_config (full_attn_layers and kda_layers, 1-indexed), else full attention where
  i and i % 4 == 0 (0-indexed), the rest KDA (Kimi Delta Attention);
- full-attention layers are DeepSeek-V3 MLA (q_lora_rank optional); KDA layers have q/k/v projections of
  num_heads x head_dim, one depthwise conv1d over q, k and v, a low-rank forget gate (f_a [d, h], f_b [H d, d]),
  a per-channel dt_bias [H d], A_log per head, beta b_proj [H, h], a low-rank output gate (g_a, g_b), a gated
  RMSNorm of width d and o_proj;
- MLP kind per layer from mlp_layer_types, else dense before first_k_dense_replace (default 1) and MoE after:
  DeepSeek-V3 MoE (num_experts, num_experts_per_token, num_shared_experts x moe_intermediate_size, sigmoid
  router with e_score_correction_bias).

Kimi-K3's config names four more things that transformers 5.25 does not build (it cannot build K3 at all:
hidden_act "situ" is not in its ACT2FN). The planner counts them from their config fields with the tensor shapes
of a synthetic K3 checkpoint generator that states it matches the real checkpoint's tensor names and widths
(third-party, APPROXIMATE until a published tensor listing is checked):
- linear_attn_config.use_full_rank_gate: one KDA output gate g_proj [H d, h] instead of g_a/g_b;
- mla_use_output_gate: an MLA output gate g_proj [heads x v_head_dim, h];
- routed_expert_hidden_size (latent MoE): routed experts run at this width between routed_expert_down_proj
  [L, h] and routed_expert_up_proj [h, L] (one of each per MoE layer), latent_moe_use_norm adds an RMSNorm of width L;
- attn_res_block_size (block attention residuals): per-layer res norms and projections of width h, under 0.001% of
  the parameters, not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields


def _kda_layer_types(f: Fields, cfg: Mapping[str, Any], lin: Mapping[str, Any], layers: int, file: str,
                     prefix: str) -> tuple[str, ...]:
    types = cfg.get("layer_types")
    if types is None and "full_attn_layers" in lin and "kda_layers" in lin:
        out: list[str | None] = [None] * layers
        for key, kind in (("full_attn_layers", "full_attention"), ("kda_layers", "linear_attention")):
            for layer in Fields(lin, file, f"{prefix}linear_attn_config.").int_list(key):
                if not 1 <= layer <= layers:
                    raise PlannerError(f"layer {layer} outside 1..{layers} (1-indexed)", file=file,
                                       field=f"{prefix}linear_attn_config.{key}")
                out[layer - 1] = kind
        if None in out:
            raise PlannerError(f"layer {out.index(None) + 1} is in neither full_attn_layers nor kda_layers",
                               file=file, field=f"{prefix}linear_attn_config")
        return tuple(t for t in out if t)
    if types is None:
        return tuple("full_attention" if i and i % 4 == 0 else "linear_attention" for i in range(layers))
    if not isinstance(types, list) or len(types) != layers \
            or any(t not in ("linear_attention", "full_attention") for t in types):
        raise PlannerError(f"expected {layers} entries of linear_attention/full_attention",
                           file=file, field=f"{prefix}layer_types")
    return tuple(types)


def _moe_layers(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[bool, ...]:
    kinds = cfg.get("mlp_layer_types")
    if kinds is None:
        first_dense = f.int("first_k_dense_replace", 1, minimum=0)
        return tuple(i >= first_dense for i in range(layers))
    if not isinstance(kinds, list) or len(kinds) != layers or any(k not in ("dense", "sparse") for k in kinds):
        raise PlannerError(f"expected {layers} entries of dense/sparse", file=file, field=f"{prefix}mlp_layer_types")
    return tuple(k == "sparse" for k in kinds)


def kimi_linear(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """Kimi-Linear / Kimi-K3 text model (module docstring). The KDA recurrent state is float32 whatever the model
    dtype (vLLM MambaStateDtypeCalculator.kda_state_dtype: (model dtype, torch.float32))."""
    lin = cfg.get("linear_attn_config") or {}
    if not isinstance(lin, Mapping):
        raise PlannerError("expected a mapping", file=file, field=f"{prefix}linear_attn_config")
    lf = Fields(lin, file, f"{prefix}linear_attn_config.")
    heads = lf.int("num_heads", f.int("linear_num_heads", 32))
    head_dim = lf.int("head_dim", f.int("linear_head_dim", 128))
    kernel = lf.int("short_conv_kernel_size", f.int("linear_conv_kernel_dim", 4))
    experts, moe_inter = f.int("num_experts"), f.int("moe_intermediate_size")
    shared = f.int("num_shared_experts", 1, minimum=0)
    nope, rope, v = f.int("qk_nope_head_dim", 128), f.int("qk_rope_head_dim", 64), f.int("v_head_dim", 128)
    return dict(
        architecture="kimi_linear", attention="mla", q_lora_rank=f.int("q_lora_rank", None),
        kv_lora_rank=f.int("kv_lora_rank", 512), qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=v,
        head_dim=nope + rope, qkv_bias=False, o_bias=False,
        layer_types=_kda_layer_types(f, cfg, lin, layers, file, prefix),
        moe_layers=_moe_layers(f, cfg, layers, file, prefix), n_routed_experts=experts,
        experts_per_token=f.int("num_experts_per_token", 8), moe_intermediate_size=moe_inter,
        n_shared_experts=shared, shared_intermediate_size=shared * moe_inter, router_score_bias=True,
        linear_num_key_heads=heads, linear_num_value_heads=heads, linear_key_head_dim=head_dim,
        linear_value_head_dim=head_dim, linear_conv_kernel=kernel, linear_state_dtype="fp32",
        # Kimi-K3 fields transformers 5.25 does not read (module docstring)
        linear_full_rank_gate=lf.bool("use_full_rank_gate", False),
        mla_output_gate=f.bool("mla_use_output_gate", False),
        latent_expert_size=f.int("routed_expert_hidden_size", 0, minimum=0),
        latent_expert_norm=f.bool("latent_moe_use_norm", False),
    )
