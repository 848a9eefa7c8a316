"""Tensor groups of DeepSeek-V4 (planner.model.families_deepseek_v4), named as transformers 5.25's DeepseekV4ForCausalLM
names them (model.layers.{i}...; the checkpoint stores them as layers.{i}.attn.wq_a, .ffn.experts.{E}.w1, hc_attn_fn,
...), the MTP layers as the checkpoint does (mtp.{j}...). planner.model.inventory calls `deepseek_v4_layer` per decoder
layer, `deepseek_v4_head` after the final norm and `deepseek_v4_mtp` per MTP layer.

Roles: the MLA roles where the tensor does the same job (attn_q_a, attn_q_b, attn_kv_a_mqa for the one K = V
projection), attn_o_a / attn_o_b for the grouped output projection, attn_cmp_* for the compressors (bf16 in the
checkpoint, replicated on every TP rank as vLLM's DeepseekCompressor runs them with disable_tp), attn_idx_* for the
indexer, hc_* for the hyper-connections (float32, component "norms": they mix the residual streams). Float32 tensors
(sinks, position biases, hyper-connections, the router's score bias) and the int64 hash table tid2eid carry their
dtype, as the checkpoint listing shows them (gogongxt/python scripts/models/deepseek_v4_pro.md).
"""

from __future__ import annotations

from planner.model.spec import ModelSpec
from planner.model.tensor_group import TensorGroup, linear, mlp, norm


def _vec(out: list, name: str, role: str, comp: str, part: str, i: int | None, shape: tuple[int, ...],
         dtype: str = "f32") -> None:
    out.append(TensorGroup(name, role, comp, part, i, shape, 1, dtype))


def _hyper(out: list, s: ModelSpec, p: str, role: str, part: str, i: int | None, outs: int, scales: int) -> None:
    """One hyper-connection: fn [outs, m h], base [outs], scale [scales], float32."""
    m = s.deepseek_v4.hc_mult
    _vec(out, f"{p}.fn", f"{role}_fn", "norms", part, i, (outs, m * s.hidden_size))
    _vec(out, f"{p}.base", f"{role}_base", "norms", part, i, (outs,))
    _vec(out, f"{p}.scale", f"{role}_scale", "norms", part, i, (scales,))


def _compressor(out: list, s: ModelSpec, p: str, role: str, part: str, i: int, ratio: int, width: int) -> None:
    """kv_proj and gate_proj [coff x width, h] (bf16), position_bias [ratio, coff x width] (float32), kv_norm."""
    c, h, a = s.deepseek_v4.coff(ratio), s.hidden_size, "attention"
    linear(out, f"{p}.kv_proj", f"{role}_kv", a, part, i, c * width, h)
    linear(out, f"{p}.gate_proj", f"{role}_gate", a, part, i, c * width, h)
    _vec(out, f"{p}.position_bias", f"{role}_ape", a, part, i, (ratio, c * width))
    norm(out, f"{p}.kv_norm", f"{role}_norm", a, part, i, width)


def _attention(out: list, s: ModelSpec, p: str, part: str, i: int, ratio: int) -> None:
    h, a, d, v4 = s.hidden_size, "attention", s.head_dim, s.deepseek_v4
    q = f"{p}.self_attn"
    linear(out, f"{q}.q_a_proj", "attn_q_a", a, part, i, s.q_lora_rank, h)
    norm(out, f"{q}.q_a_norm", "attn_q_a_norm", a, part, i, s.q_lora_rank)
    linear(out, f"{q}.q_b_proj", "attn_q_b", a, part, i, s.num_heads * d, s.q_lora_rank)
    linear(out, f"{q}.kv_proj", "attn_kv_a_mqa", a, part, i, d, h)
    norm(out, f"{q}.kv_norm", "attn_kv_a_norm", a, part, i, d)
    # grouped output projection: per group [o_lora_rank, heads x d / groups], stored as one [groups x rank, ...]
    linear(out, f"{q}.o_a_proj", "attn_o_a", a, part, i, v4.o_groups * v4.o_lora_rank, s.num_heads * d // v4.o_groups)
    linear(out, f"{q}.o_b_proj", "attn_o_b", a, part, i, h, v4.o_groups * v4.o_lora_rank)
    _vec(out, f"{q}.sinks", "attn_sinks", a, part, i, (s.num_heads,))
    if not ratio:
        return
    _compressor(out, s, f"{q}.compressor", "attn_cmp", part, i, ratio, d)
    if s.deepseek_v4.coff(ratio) == 2:  # CSA: the lightning indexer with its own compressor
        x = f"{q}.compressor.indexer"
        _compressor(out, s, x, "attn_idx_cmp", part, i, ratio, s.index_head_dim)
        linear(out, f"{x}.q_b_proj", "attn_idx_q_b", a, part, i, s.index_n_heads * s.index_head_dim, s.q_lora_rank)
        linear(out, f"{x}.scorer.weights_proj", "attn_idx_w", a, part, i, s.index_n_heads, h)


def _layer(out: list, s: ModelSpec, p: str, i: int, part: str, hashed: bool) -> None:
    h, m, r = s.hidden_size, s.deepseek_v4.hc_mult, "router"
    norm(out, f"{p}.input_layernorm", "attn_norm", "norms", part, i, h)
    _attention(out, s, p, part, i, s.deepseek_v4.compress_ratios[i])
    norm(out, f"{p}.post_attention_layernorm", "ffn_norm", "norms", part, i, h)
    for name in ("attn_hc", "ffn_hc"):  # pre (m), post (m) and comb (m x m) mixes from one projection
        _hyper(out, s, f"{p}.{name}", f"hc_{name[:-3]}", part, i, (2 + m) * m, 3)
    linear(out, f"{p}.mlp.gate", "ffn_gate_inp", r, part, i, s.n_routed_experts, h)
    if hashed:  # token id -> its top-k experts (DeepseekV4HashRouter: a persistent buffer)
        _vec(out, f"{p}.mlp.gate.tid2eid", "ffn_gate_tid2eid", r, part, i, (s.vocab_size, s.experts_per_token), "i64")
    else:
        _vec(out, f"{p}.mlp.gate.e_score_correction_bias", "exp_probs_b", r, part, i, (s.n_routed_experts,))
    mlp(out, f"{p}.mlp.experts.{{E}}", ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), "routed_experts", part, i,
        h, s.moe_intermediate_size, count=s.n_routed_experts)
    mlp(out, f"{p}.mlp.shared_experts", ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"), "shared_experts", part,
        i, h, s.shared_intermediate_size, s.mlp_bias)


def deepseek_v4_layer(out: list, s: ModelSpec, i: int, part: str) -> None:
    """Decoder layer i: hyper-connected attention (its compressor and indexer by compress ratio) and MoE."""
    _layer(out, s, f"model.layers.{i}", i, part, s.deepseek_v4.hash_layers[i])


def deepseek_v4_head(out: list, s: ModelSpec, p: str = "model", part: str = "language", i: int | None = None) -> None:
    """The final hyper-connection collapse (DeepseekV4HyperHead): hc_fn [m, m h], hc_base [m], hc_scale [1]."""
    m = s.deepseek_v4.hc_mult
    _vec(out, f"{p}.hc_head.hc_fn", "hc_head_fn", "norms", part, i, (m, m * s.hidden_size))
    _vec(out, f"{p}.hc_head.hc_base", "hc_head_base", "norms", part, i, (m,))
    _vec(out, f"{p}.hc_head.hc_scale", "hc_head_scale", "norms", part, i, (1,))


def deepseek_v4_mtp(out: list, s: ModelSpec, i: int) -> None:
    """MTP layer i (>= num_layers) as the checkpoint stores it at mtp.{i - num_layers}: a decoder layer (window-only
    attention, score-biased router), e_proj and h_proj [h, h], enorm, hnorm, norm and an hc_head; embed and head are
    the main model's."""
    h, p, m = s.hidden_size, f"mtp.{i - s.num_layers}", "mtp"
    _layer(out, s, p, i, m, hashed=False)
    for name in ("e_proj", "h_proj"):
        linear(out, f"{p}.{name}", f"nextn.{name}", "attention", m, i, h, h)
    for name in ("enorm", "hnorm", "norm"):
        norm(out, f"{p}.{name}", f"nextn.{name}", "norms", m, i, h)
    deepseek_v4_head(out, s, p, m, i)
