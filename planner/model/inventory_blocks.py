"""Tensor groups of the block-structured hybrids, whose layers hold one sublayer each (Nemotron-H: a Mamba-2 mixer,
an attention mixer, an MLP or an MoE per block; planner.model.families_nemotron). planner.model.inventory calls
`nemotron_block` for each block; names are transformers' (model.layers.{i}.mixer...; the checkpoint stores them under
backbone.layers.{i}.mixer...), roles llama.cpp's nemotron_h tensor names.
"""

from __future__ import annotations

from planner.model.spec import ModelSpec
from planner.model.tensor_group import TensorGroup, linear, mlp, norm


def _mamba2(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """NemotronHMamba2Mixer: in_proj [2 H p + 2 G n + H, h], depthwise conv1d [conv_dim, 1, kernel] (+ bias),
    dt_bias, A_log and D per head, grouped RMSNorm of width H p, out_proj [h, H p]."""
    h, a, q = s.hidden_size, "attention", f"{p}.mixer"
    heads, inner = s.linear_num_value_heads, s.linear_num_value_heads * s.linear_value_head_dim
    conv_dim = inner + 2 * s.linear_num_key_heads * s.linear_key_head_dim
    linear(out, f"{q}.in_proj", "ssm_in", a, part, i, inner + conv_dim + heads, h, s.linear_proj_bias)
    out.append(TensorGroup(f"{q}.conv1d.weight", "ssm_conv1d", a, part, i, (conv_dim, 1, s.linear_conv_kernel)))
    if s.linear_conv_bias:
        out.append(TensorGroup(f"{q}.conv1d.bias", "ssm_conv1d.bias", a, part, i, (conv_dim,)))
    for name, role in (("dt_bias", "ssm_dt"), ("A_log", "ssm_a"), ("D", "ssm_d")):
        out.append(TensorGroup(f"{q}.{name}", role, a, part, i, (heads,)))
    norm(out, f"{q}.norm", "ssm_norm", a, part, i, inner)
    linear(out, f"{q}.out_proj", "ssm_out", a, part, i, h, inner, s.linear_proj_bias)


def _attention(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """NemotronHAttention: GQA q/k/v/o, no bias, no q/k norm."""
    h, a, q = s.hidden_size, "attention", f"{p}.mixer"
    qd, kv = s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim
    for name, role, rows, cols in (("q_proj", "attn_q", qd, h), ("k_proj", "attn_k", kv, h),
                                   ("v_proj", "attn_v", kv, h), ("o_proj", "attn_output", h, qd)):
        linear(out, f"{q}.{name}", role, a, part, i, rows, cols)


def _moe(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """NemotronHMoE: router [E, h] + e_score_correction_bias (float32), latent projections where moe_latent_size is
    set (always-active, placed with the shared expert), E non-gated experts at the latent width, one shared expert."""
    h, q = s.hidden_size, f"{p}.mixer"
    he = s.latent_expert_size or h
    linear(out, f"{q}.gate", "ffn_gate_inp", "router", part, i, s.n_routed_experts, h)
    out.append(TensorGroup(f"{q}.gate.e_score_correction_bias", "exp_probs_b", "router", part, i,
                           (s.n_routed_experts,), 1, "f32"))
    if s.latent_expert_size:
        linear(out, f"{q}.fc1_latent_proj", "ffn_latent_down", "shared_experts", part, i, he, h, s.mlp_bias)
        linear(out, f"{q}.fc2_latent_proj", "ffn_latent_up", "shared_experts", part, i, h, he, s.mlp_bias)
    mlp(out, f"{q}.experts.{{E}}", ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), "routed_experts", part, i,
        he, s.moe_intermediate_size, count=s.n_routed_experts, gated=False)
    mlp(out, f"{q}.shared_experts", ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"), "shared_experts", part,
        i, h, s.shared_intermediate_size, s.mlp_bias, gated=False)


def nemotron_block(out: list, s: ModelSpec, i: int, part: str) -> None:
    """Block i: its RMSNorm, then its one sublayer (planner.model.families_nemotron.BLOCKS)."""
    p, kind = f"model.layers.{i}", s.block_pattern[i]
    norm(out, f"{p}.norm", "attn_norm" if kind in "M*" else "ffn_norm", "norms", part, i, s.hidden_size)
    if kind == "M":
        _mamba2(out, s, p, part, i)
    elif kind == "*":
        _attention(out, s, p, part, i)
    elif kind == "E":
        _moe(out, s, p, part, i)
    else:
        mlp(out, f"{p}.mixer", ("ffn_gate", "ffn_up", "ffn_down"), "dense_mlp", part, i, s.hidden_size,
            s.intermediate_size, s.mlp_bias, gated=False)
