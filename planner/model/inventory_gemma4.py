"""Tensor groups of one Gemma 4 decoder layer (planner.model.families_gemma4), named as transformers 5.25's
Gemma4ForCausalLM names them (model.layers.{i}...; the multimodal checkpoint stores them under
model.language_model.layers.{i}...). planner.model.inventory calls `gemma4_layer` for each layer.

Sliding layers: q/k/v/o of head_dim with num_kv_heads; full layers: head width full_head_dim, full_kv_heads KV heads
and no v_proj where full_k_eq_v. The dense MLP beside the routed experts is stored as the always-active shared expert
(component shared_experts, roles ffn_*_shexp) where the layer has the MoE block, as a dense MLP otherwise.
"""

from __future__ import annotations

from planner.model.spec import ModelSpec
from planner.model.tensor_group import TensorGroup, linear, mlp, norm

# RMSNorms of width h around the attention and the feed-forward (transformers Gemma4TextDecoderLayer)
_NORMS = (("input_layernorm", "attn_norm"), ("post_attention_layernorm", "attn_post_norm"),
          ("pre_feedforward_layernorm", "ffn_norm"), ("post_feedforward_layernorm", "ffn_post_norm"))
# and three more where the layer has the MoE block
_MOE_NORMS = (("post_feedforward_layernorm_1", "ffn_post_norm_1"), ("pre_feedforward_layernorm_2", "ffn_pre_norm_2"),
              ("post_feedforward_layernorm_2", "ffn_post_norm_2"))


def head_geometry(s: ModelSpec, i: int) -> tuple[int, int, bool]:
    """(head width, KV heads, V is K) of layer i's attention."""
    if s.layer_types[i] == "full_attention" and s.full_head_dim:
        return s.full_head_dim, s.full_kv_heads or s.num_kv_heads, s.full_k_eq_v
    return s.head_dim, s.num_kv_heads, False


def gemma4_layer(out: list, s: ModelSpec, i: int, part: str) -> None:
    p, h, a = f"model.layers.{i}", s.hidden_size, "attention"
    d, kv, k_eq_v = head_geometry(s, i)
    q = f"{p}.self_attn"
    linear(out, f"{q}.q_proj", "attn_q", a, part, i, s.num_heads * d, h, s.qkv_bias)
    linear(out, f"{q}.k_proj", "attn_k", a, part, i, kv * d, h, s.qkv_bias)
    if not k_eq_v:
        linear(out, f"{q}.v_proj", "attn_v", a, part, i, kv * d, h, s.qkv_bias)
    linear(out, f"{q}.o_proj", "attn_output", a, part, i, h, s.num_heads * d, s.o_bias)
    norm(out, f"{q}.q_norm", "attn_q_norm", a, part, i, d)
    norm(out, f"{q}.k_norm", "attn_k_norm", a, part, i, d)  # v_norm has no weight
    moe = s.moe_layers[i]
    for name, role in _NORMS + (_MOE_NORMS if moe else ()):
        norm(out, f"{p}.{name}", role, "norms", part, i, h)
    out.append(TensorGroup(f"{p}.layer_scalar", "layer_output_scale", "norms", part, i, (1,)))
    if not moe:
        mlp(out, f"{p}.mlp", ("ffn_gate", "ffn_up", "ffn_down"), "dense_mlp", part, i, h, s.intermediate_size)
        return
    mlp(out, f"{p}.mlp", ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"), "shared_experts", part, i, h,
        s.shared_intermediate_size)
    r = "router"
    linear(out, f"{p}.router.proj", "ffn_gate_inp", r, part, i, s.n_routed_experts, h)
    out.append(TensorGroup(f"{p}.router.scale", "ffn_gate_inp_scale", r, part, i, (h,)))
    out.append(TensorGroup(f"{p}.router.per_expert_scale", "ffn_exp_scale", r, part, i, (s.n_routed_experts,)))
    mlp(out, f"{p}.experts.{{E}}", ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), "routed_experts", part, i, h,
        s.moe_intermediate_size, count=s.n_routed_experts)
