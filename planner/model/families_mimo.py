"""Config reader of Xiaomi's MiMo-V2-Flash (`mimo_v2_flash`), as a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/mimo_v2_flash, MiMoV2FlashConfig / MiMoV2FlashForCausalLM; the planner's count is
checked against it in tests/test_models_mimo_step.py):
- per layer full_attention or sliding_attention from `layer_types`; where the config has none, transformers' default
  (full on layer 0 and on every 6th layer, (i + 1) % 6 == 0, sliding elsewhere). The published config has no
  layer_types but `hybrid_layer_pattern` (0 full, 1 sliding; what vLLM reads), which spells out that same default;
  the planner reads layer_types, else hybrid_layer_pattern, else the default.
- attention (MiMoV2FlashAttention), no q/k norm, no biases unless attention_bias (o_proj never): q [heads x head_dim,
  h], k [kv x head_dim, h], v [kv x v_head_dim, h] with V narrower than K (128 vs 192), o_proj [h, heads x v_head_dim].
  Sliding layers have twice num_key_value_heads KV heads and a learned sink logit per query head (`sinks`, built on
  every sliding layer); full layers num_key_value_heads and no sinks.
- feed-forward per layer from `mlp_layer_types` (dense/sparse), else the 0/1 list `moe_layer_freq` (what vLLM reads),
  else transformers' default (layer 0 dense, the rest MoE): a dense SwiGLU MLP of intermediate_size, or DeepseekV3MoE
  without its shared experts: router [E, h] kept in float32 (_keep_in_fp32_modules_strict: "the checkpoint stores
  the router weight in float32") with an e_score_correction_bias buffer (sigmoid noaux_tc routing), E =
  n_routed_experts experts of moe_intermediate_size (gate and up fused, gate_up_proj [E, 2 I, h]), top
  num_experts_per_tok. No shared expert, whatever n_shared_experts says (null in the published config).
- two RMSNorms of width h per layer, the final norm, an untied lm_head.

vLLM (vllm-project/vllm@01ed47b4 vllm/model_executor/models/mimo_v2_flash.py MiMoV2FlashDecoderLayer) reads the
sliding layers' geometry from their own fields: swa_num_attention_heads, swa_num_key_value_heads, swa_head_dim,
swa_v_head_dim (64, 8, 192, 128 in the published config: the same model as transformers'). Where a config's swa_* fields
would make vLLM and transformers build different models, the planner refuses it rather than pick one.
The window: vLLM attends and caches per sliding layer `sliding_window_size` tokens (per_layer_sliding_window 128);
transformers sets sliding_window = sliding_window_size + 1 (129: "the reference SGLang implementation attends to
sliding_window_size previous tokens plus the query"). The planner keeps vLLM's 128, the allocator's cap
(planner.model.kv); a config with sliding_window only (as transformers saves it) gives sliding_window - 1.

Spec mapping (as Gemma 4's, planner.model.families_gemma4): head_dim / num_kv_heads are the sliding layers',
full_head_dim / full_kv_heads the full layers'; v_head_dim the V width of both. attention_sinks marks the sliding
layers' sinks (planner.model.inventory_swa puts them there only).
Not counted: the MTP layers (model.mtp.*: transformers ignores them on load and builds none, params.mtp 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

_KINDS = ("sliding_attention", "full_attention")


def _layer_types(cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[str, ...]:
    types, key = cfg.get("layer_types"), "layer_types"
    if types is None and cfg.get("hybrid_layer_pattern") is not None:  # vLLM's field: 1 sliding, 0 full
        key, pattern = "hybrid_layer_pattern", cfg["hybrid_layer_pattern"]
        if not isinstance(pattern, list) or any(p not in (0, 1) or isinstance(p, bool) for p in pattern):
            raise PlannerError(f"expected {layers} entries of 0/1", file=file, field=f"{prefix}{key}")
        types = [_KINDS[0] if p else _KINDS[1] for p in pattern]
    if types is None:  # transformers MiMoV2FlashConfig.__post_init__
        types = [_KINDS[1] if i == 0 or (i + 1) % 6 == 0 else _KINDS[0] for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers or any(t not in _KINDS for t in types):
        raise PlannerError(f"expected {layers} entries of sliding_attention/full_attention", file=file,
                           field=f"{prefix}{key}")
    return tuple(types)


def _moe_layers(cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[bool, ...]:
    types = cfg.get("mlp_layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers or any(t not in ("dense", "sparse") for t in types):
            raise PlannerError(f"expected {layers} entries of dense/sparse", file=file,
                               field=f"{prefix}mlp_layer_types")
        return tuple(t == "sparse" for t in types)
    freq = cfg.get("moe_layer_freq")
    if freq is not None:  # vLLM MiMoV2FlashDecoderLayer.is_moe_layer: a 0/1 list
        if not isinstance(freq, list) or len(freq) != layers or any(v not in (0, 1) or isinstance(v, bool)
                                                                    for v in freq):
            raise PlannerError(f"expected {layers} entries of 0/1", file=file, field=f"{prefix}moe_layer_freq")
        return tuple(bool(v) for v in freq)
    return (False,) + (True,) * (layers - 1)  # transformers: layer 0 dense, the rest MoE


def mimo_v2_flash(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """MiMo-V2-Flash (module docstring)."""
    heads, kv = f.int("num_attention_heads"), f.int("num_key_value_heads", 4)
    head_dim, v_dim = f.int("head_dim", 192), f.int("v_head_dim", 128)
    # the sliding layers as transformers builds them (doubled KV heads, the full layers' widths) must be vLLM's
    for key, built in (("swa_num_attention_heads", heads), ("swa_num_key_value_heads", 2 * kv),
                       ("swa_head_dim", head_dim), ("swa_v_head_dim", v_dim)):
        given = f.int(key, built)
        if given != built:
            raise f._err(key, f"{given} differs from the {built} transformers 5.25 builds (module docstring of "
                              "planner.model.families_mimo): vLLM and transformers would build different models")
    if heads % kv:
        raise f._err("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    window = f.int("sliding_window_size", None) or f.int("sliding_window", 129, minimum=2) - 1
    moe = _moe_layers(cfg, layers, file, prefix)
    experts = any(moe)
    return dict(
        architecture="mimo_v2_flash", num_kv_heads=2 * kv, head_dim=head_dim, v_head_dim=v_dim,
        qkv_bias=f.bool("attention_bias", False), o_bias=False, attention_sinks=True,
        layer_types=_layer_types(cfg, layers, file, prefix), sliding_window=window,
        full_head_dim=head_dim, full_kv_heads=kv,
        intermediate_size=f.int("intermediate_size", 16384), moe_layers=moe,
        n_routed_experts=f.int("n_routed_experts", 256) if experts else 0,
        experts_per_token=f.int("num_experts_per_tok", 8) if experts else 0,
        moe_intermediate_size=f.int("moe_intermediate_size", 2048) if experts else 0,
        router_score_bias=experts, gate_up_fused=experts,
    )
