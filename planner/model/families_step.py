"""Config reader of StepFun's Step-3.7-Flash (`step3p7`; its language model under `text_config`, model_type `step3p5`,
or at the top level as in aiconfigurator's flattened copy), as a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/step3p7, Step3p7TextConfig / Step3p7TextModel inside
Step3p7ForConditionalGeneration, + its lm_head; the planner's count is checked against it in
tests/test_models_mimo_step.py):
- per layer full_attention or sliding_attention from `layer_types` (default: all full). Legacy hub configs pad
  layer_types (and mlp_layer_types) with num_nextn_predict_layers trailing MTP entries; transformers splits them off,
  and so does the planner.
- attention (Step3p7Attention), every layer: GQA q [heads x head_dim, h], k and v [kv x head_dim, h], o_proj
  [h, heads x head_dim] (biases where attention_bias), per-head q_norm and k_norm of head_dim, and a per-head output
  gate g_proj [heads, h] (`gating`, True by default: the attention output of each head times sigmoid(g)). KV heads
  are num_key_value_heads (alias num_attention_groups). Sliding layers attend to the last `sliding_window` tokens
  with num_sliding_attention_heads query heads (legacy: attention_other_setting.num_attention_heads), the same KV
  heads and head_dim.
- feed-forward per layer from `mlp_layer_types` (dense/sparse), else the legacy `moe_layers_enum` (indices of the MoE
  layers), else transformers' default: MoE from layer 3 on. aiconfigurator's flattened copy names it
  first_k_dense_replace (3), read where neither is given. Dense: SwiGLU MLP of intermediate_size (mlp_bias). MoE
  (Step3p7SparseMoeBlock): router [E, h] with an e_score_correction_bias buffer (sigmoid scoring), E =
  n_routed_experts (aliases moe_num_experts, num_local_experts; aiconfigurator: num_experts) experts of
  moe_intermediate_size (gate_up_proj [E, 2 I, h] fused), top num_experts_per_tok (moe_top_k), and one always-active
  shared expert of share_expert_dim (built whatever n_shared_experts says).
- two RMSNorms of width h per layer (zero-centred, weight + 1: the same count), the final norm, an untied lm_head.

vLLM runs the text model as Step3p5ForCausalLM (vllm-project/vllm@01b50b9e vllm/model_executor/models/step3p5.py;
step3p7.py hands text_config to it): the same shapes, the sliding layers' heads, KV heads and head_dim from
attention_other_setting, g_proj where use_head_wise_attn_gate. Where a config would make vLLM and transformers build
different attention (sliding-layer KV heads or head_dim in attention_other_setting unlike the full layers', or
use_head_wise_attn_gate false), and where the sliding layers' query heads differ from the full layers' (one head
count per model in the planner), the planner refuses it rather than approximate.

Spec mapping (as Gemma 4's, planner.model.families_gemma4): full_head_dim / full_kv_heads are the full layers' (equal
to the sliding layers' here), so each attention kind has its own op records. head_gate marks g_proj.
Not counted: the num_nextn_predict_layers MTP layers (stored as model.layers.{45..47}: transformers ignores them on
load and builds none, params.mtp 0) and the vision tower and projector (params.vision 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

_KINDS = ("sliding_attention", "full_attention")


def _trimmed(cfg: Mapping[str, Any], key: str, layers: int, mtp: int) -> Any:
    """A per-layer list, its trailing MTP entries dropped (transformers Step3p7TextConfig.__post_init__)."""
    value = cfg.get(key)
    return value[:layers] if isinstance(value, list) and mtp and len(value) == layers + mtp else value


def _layer_types(cfg: Mapping[str, Any], layers: int, mtp: int, file: str, prefix: str) -> tuple[str, ...]:
    types = _trimmed(cfg, "layer_types", layers, mtp)
    if types is None:
        return ("full_attention",) * layers
    if not isinstance(types, list) or len(types) != layers or any(t not in _KINDS for t in types):
        raise PlannerError(f"expected {layers} entries of sliding_attention/full_attention", file=file,
                           field=f"{prefix}layer_types")
    return tuple(types)


def _moe_layers(f: Fields, cfg: Mapping[str, Any], layers: int, mtp: int) -> tuple[bool, ...]:
    types = _trimmed(cfg, "mlp_layer_types", layers, mtp)
    if types is not None:
        if not isinstance(types, list) or len(types) != layers or any(t not in ("dense", "sparse") for t in types):
            raise f._err("mlp_layer_types", f"expected {layers} entries of dense/sparse")
        return tuple(t == "sparse" for t in types)
    enum = cfg.get("moe_layers_enum")
    if enum is not None:  # comma-separated string or list of MoE layer indices
        items = enum.split(",") if isinstance(enum, str) else enum
        try:
            moe = {int(i) for i in items if str(i).strip()}
        except (TypeError, ValueError):
            raise f._err("moe_layers_enum", "expected layer indices, comma-separated or a list") from None
        return tuple(i in moe for i in range(layers))
    first = f.int("first_k_dense_replace", 3, minimum=0)  # aiconfigurator's name; transformers' default is 3
    return tuple(i >= first for i in range(layers))


def _first(f: Fields, keys: tuple[str, ...], default: int) -> int:
    """The first of `keys` the config gives (transformers' attribute aliases), else `default`."""
    for key in keys:
        if f.cfg.get(key) is not None:
            return f.int(key)
    return default


def step3p7(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """Step-3.7-Flash text model (module docstring)."""
    mtp = f.int("num_nextn_predict_layers", 0, minimum=0)
    heads, head_dim = f.int("num_attention_heads"), f.int("head_dim", 128)
    kv = _first(f, ("num_key_value_heads", "num_attention_groups"), 8)
    if heads % kv:
        raise f._err("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    other = cfg.get("attention_other_setting") or {}
    if not isinstance(other, Mapping):
        raise f._err("attention_other_setting", "expected a mapping")
    sliding_heads = f.int("num_sliding_attention_heads", None) or other.get("num_attention_heads", heads)
    if sliding_heads != heads:
        raise f._err("num_sliding_attention_heads", f"{sliding_heads} sliding-layer query heads beside {heads} on the "
                                                    "full layers: one query-head count per model is modelled")
    for key, full in (("num_attention_groups", kv), ("head_dim", head_dim)):
        if other.get(key, full) != full:  # vLLM reads them, transformers does not (module docstring)
            raise f._err(f"attention_other_setting.{key}", f"{other[key]!r} differs from the full layers' {full}: "
                                                           "vLLM and transformers would build different models")
    if cfg.get("gating", True) not in (True, "per-head") or not f.bool("use_head_wise_attn_gate", True):
        raise f._err("gating", "only the per-head attention output gate (g_proj [heads, h]) is modelled")
    types = _layer_types(cfg, layers, mtp, file, prefix)
    moe = _moe_layers(f, cfg, layers, mtp)
    experts = any(moe)
    bias = f.bool("attention_bias", False)
    return dict(
        architecture="step3p7", num_kv_heads=kv, head_dim=head_dim, qkv_bias=bias, o_bias=bias, qk_norm=True,
        head_gate=True, layer_types=types, full_head_dim=head_dim, full_kv_heads=kv,
        sliding_window=f.int("sliding_window") if "sliding_attention" in types else None,
        intermediate_size=f.int("intermediate_size", 11264),
        mlp_bias=f.bool("mlp_bias", False), moe_layers=moe,
        n_routed_experts=_first(f, ("n_routed_experts", "moe_num_experts", "num_local_experts", "num_experts"), 288)
        if experts else 0,
        experts_per_token=_first(f, ("num_experts_per_tok", "moe_top_k"), 8) if experts else 0,
        moe_intermediate_size=f.int("moe_intermediate_size", 1280) if experts else 0,
        n_shared_experts=1 if experts else 0,
        shared_intermediate_size=_first(f, ("share_expert_dim", "share_expert_dims"), 1280) if experts else 0,
        router_score_bias=experts, gate_up_fused=experts,
    )
