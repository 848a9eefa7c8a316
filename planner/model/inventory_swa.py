"""Tensor groups of one decoder layer of the sliding-window MoE models whose attention kinds have their own geometry
and extras: MiMo-V2-Flash (planner.model.families_mimo) and Step-3.7-Flash (planner.model.families_step), named as
transformers 5.25 names them (model.layers.{i}...; Step's multimodal checkpoint stores them under
model.language_model.layers.{i}...). planner.model.inventory calls LAYERS[architecture] for each layer.

Attention: q/k/v/o of the layer kind's head width and KV heads (inventory_gemma4.head_geometry: head_dim and
num_kv_heads on sliding layers, full_head_dim and full_kv_heads on full ones), V of v_head_dim where set (MiMo 128,
K 192); MiMo: a sink logit per query head on the sliding layers; Step: per-head q_norm and k_norm and the per-head
output gate g_proj [heads, h]. Feed-forward: a dense SwiGLU MLP, or the router [E, h] (float32 for MiMo, whose
checkpoint keeps it so) with its float32 e_score_correction_bias, the routed experts and Step's one shared expert.
"""

from __future__ import annotations

from planner.model.inventory_gemma4 import head_geometry
from planner.model.spec import ModelSpec
from planner.model.tensor_group import TensorGroup, linear, mlp, norm


def _attention(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    h, a, q = s.hidden_size, "attention", f"{p}.self_attn"
    d, kv, _ = head_geometry(s, i)
    v = s.v_head_dim or d
    linear(out, f"{q}.q_proj", "attn_q", a, part, i, s.num_heads * d, h, s.qkv_bias)
    linear(out, f"{q}.k_proj", "attn_k", a, part, i, kv * d, h, s.qkv_bias)
    linear(out, f"{q}.v_proj", "attn_v", a, part, i, kv * v, h, s.qkv_bias)
    linear(out, f"{q}.o_proj", "attn_output", a, part, i, h, s.num_heads * v, s.o_bias)
    if s.qk_norm:
        norm(out, f"{q}.q_norm", "attn_q_norm", a, part, i, d)
        norm(out, f"{q}.k_norm", "attn_k_norm", a, part, i, d)
    if s.head_gate:
        linear(out, f"{q}.g_proj", "attn_gate", a, part, i, s.num_heads, h)
    if s.attention_sinks and s.layer_types[i] == "sliding_attention":  # MiMo: sliding layers only
        out.append(TensorGroup(f"{q}.sinks", "attn_sinks", a, part, i, (s.num_heads,)))


def _ffn(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    h = s.hidden_size
    if not s.moe_layers[i]:
        mlp(out, f"{p}.mlp", ("ffn_gate", "ffn_up", "ffn_down"), "dense_mlp", part, i, h, s.intermediate_size,
            s.mlp_bias)
        return
    e, r = s.n_routed_experts, "router"
    router_dtype = "f32" if s.architecture == "mimo_v2_flash" else "native"  # module docstring
    out.append(TensorGroup(f"{p}.mlp.gate.weight", "ffn_gate_inp", r, part, i, (e, h), 1, router_dtype))
    if s.router_score_bias:
        out.append(TensorGroup(f"{p}.mlp.gate.e_score_correction_bias", "exp_probs_b", r, part, i, (e,), 1, "f32"))
    mlp(out, f"{p}.mlp.experts.{{E}}", ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), "routed_experts", part, i,
        h, s.moe_intermediate_size, count=e)
    if s.shared_intermediate_size:
        mlp(out, f"{p}.mlp.shared_experts", ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"), "shared_experts",
            part, i, h, s.shared_intermediate_size, s.mlp_bias)


def swa_layer(out: list, s: ModelSpec, i: int, part: str) -> None:
    """Decoder layer i: input RMSNorm, attention, post-attention RMSNorm, feed-forward."""
    p = f"model.layers.{i}"
    norm(out, f"{p}.input_layernorm", "attn_norm", "norms", part, i, s.hidden_size)
    _attention(out, s, p, part, i)
    norm(out, f"{p}.post_attention_layernorm", "ffn_norm", "norms", part, i, s.hidden_size)
    _ffn(out, s, p, part, i)


LAYERS = {"mimo_v2_flash": swa_layer, "step3p7": swa_layer}
