"""Tensor inventory: every tensor a checkpoint stores for a model, as groups with a role and a shape.

A `TensorGroup` is `count` tensors of the same shape (the routed experts of one layer are one group
with count = n_routed_experts). Roles use llama.cpp's GGUF tensor names (`attn_kv_a_mqa`,
`ffn_down_exps`, `exp_probs_b`, ...) so quantization rules of both safetensors and GGUF formats can
name them. Parameter counts, stored bytes under any format, and per-device splits are all sums
over this one list.

Shapes are (out_features, in_features) for matrices (the in-dimension is where quantization
blocks run, llama.cpp's ne[0]) and (n,) for vectors (norms, biases, sinks).
"""

from __future__ import annotations

from functools import lru_cache

from planner.model.inventory_blocks import nemotron_block
from planner.model.inventory_deepseek_v4 import deepseek_v4_head, deepseek_v4_layer, deepseek_v4_mtp
from planner.model.inventory_gemma4 import gemma4_layer
from planner.model.inventory_swa import LAYERS as SWA_LAYERS
from planner.model.spec import ModelSpec
from planner.model.tensor_group import TensorGroup
from planner.model.tensor_group import linear as _linear
from planner.model.tensor_group import mlp as _mlp
from planner.model.tensor_group import norm as _norm

COMPONENTS = ("embedding", "attention", "dense_mlp", "shared_experts", "routed_experts", "router", "norms", "lm_head")
PARTS = ("language", "mtp", "vision")


def _indexer(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """DSA lightning indexer (transformers DeepseekV32 / GlmMoeDsa Indexer): wq_b from the q latent, one shared
    key wk with a LayerNorm (weight and bias), and weights_proj giving each indexer head's weight per token."""
    h, a, d, nh = s.hidden_size, "attention", s.index_head_dim, s.index_n_heads
    _linear(out, f"{p}.self_attn.indexer.wq_b", "attn_idx_q_b", a, part, i, nh * d, s.q_lora_rank or h)
    _linear(out, f"{p}.self_attn.indexer.wk", "attn_idx_k", a, part, i, d, h)
    out.append(TensorGroup(f"{p}.self_attn.indexer.k_norm.weight", "attn_idx_k_norm", a, part, i, (d,)))
    out.append(TensorGroup(f"{p}.self_attn.indexer.k_norm.bias", "attn_idx_k_norm.bias", a, part, i, (d,)))
    _linear(out, f"{p}.self_attn.indexer.weights_proj", "attn_idx_w", a, part, i, nh, h)


def _gated_deltanet(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """Gated DeltaNet layer (transformers Qwen3NextGatedDeltaNet / Qwen3_5MoeGatedDeltaNet). Qwen3-Next stores
    in_proj_qkvz [2 k_dim + 2 v_dim, h] and in_proj_ba [2 Hv, h]; Qwen3.5 splits them into in_proj_qkv, in_proj_z,
    in_proj_b, in_proj_a (same total). conv1d [conv_dim, 1, kernel] over q, k, v; A_log and dt_bias per v head;
    a gated RMSNorm of width dv; out_proj [h, v_dim]. Role names follow llama.cpp's qwen3next tensors."""
    h, a, q = s.hidden_size, "attention", f"{p}.linear_attn"
    k_dim = s.linear_num_key_heads * s.linear_key_head_dim
    v_dim = s.linear_num_value_heads * s.linear_value_head_dim
    hv = s.linear_num_value_heads
    conv_dim = 2 * k_dim + v_dim
    if s.model_type == "qwen3_next":
        _linear(out, f"{q}.in_proj_qkvz", "ssm_in", a, part, i, 2 * k_dim + 2 * v_dim, h)
        _linear(out, f"{q}.in_proj_ba", "ssm_ba", a, part, i, 2 * hv, h)
    else:
        _linear(out, f"{q}.in_proj_qkv", "attn_qkv", a, part, i, conv_dim, h)
        _linear(out, f"{q}.in_proj_z", "attn_gate", a, part, i, v_dim, h)
        _linear(out, f"{q}.in_proj_b", "ssm_beta", a, part, i, hv, h)
        _linear(out, f"{q}.in_proj_a", "ssm_alpha", a, part, i, hv, h)
    out.append(TensorGroup(f"{q}.conv1d.weight", "ssm_conv1d", a, part, i, (conv_dim, 1, s.linear_conv_kernel)))
    out.append(TensorGroup(f"{q}.A_log", "ssm_a", a, part, i, (hv,)))
    out.append(TensorGroup(f"{q}.dt_bias", "ssm_dt", a, part, i, (hv,)))
    _norm(out, f"{q}.norm", "ssm_norm", a, part, i, s.linear_value_head_dim)
    _linear(out, f"{q}.out_proj", "ssm_out", a, part, i, h, v_dim)


def _kda(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    """Kimi Delta Attention layer (transformers KimiLinearDeltaAttention; planner.model.families_hybrid): q/k/v
    [H d, h], one depthwise conv1d [3 H d, 1, kernel], forget gate f_a [d, h] -> f_b [H d, d] with dt_bias [H d] and
    A_log per head, beta b_proj [H, h], output gate g_a [d, h] -> g_b [H d, d] (or one g_proj [H d, h] where
    use_full_rank_gate), gated RMSNorm o_norm [d], o_proj [h, H d]."""
    h, a, q = s.hidden_size, "attention", f"{p}.self_attn"
    heads, d = s.linear_num_value_heads, s.linear_value_head_dim
    hd = heads * d
    for n, role in (("q_proj", "ssm_q"), ("k_proj", "ssm_k"), ("v_proj", "ssm_v")):
        _linear(out, f"{q}.{n}", role, a, part, i, hd, h)
    out.append(TensorGroup(f"{q}.conv1d.weight", "ssm_conv1d", a, part, i, (3 * hd, 1, s.linear_conv_kernel)))
    out.append(TensorGroup(f"{q}.forget_gate.dt_bias", "ssm_dt", a, part, i, (hd,)))
    out.append(TensorGroup(f"{q}.forget_gate.A_log", "ssm_a", a, part, i, (heads,)))  # stored [1, 1, H, 1]
    _linear(out, f"{q}.forget_gate.f_a_proj", "ssm_f_a", a, part, i, d, h)
    _linear(out, f"{q}.forget_gate.f_b_proj", "ssm_f_b", a, part, i, hd, d)
    _linear(out, f"{q}.b_proj", "ssm_beta", a, part, i, heads, h)
    if s.linear_full_rank_gate:
        _linear(out, f"{q}.g_proj", "ssm_g", a, part, i, hd, h)
    else:
        _linear(out, f"{q}.g_a_proj", "ssm_g_a", a, part, i, d, h)
        _linear(out, f"{q}.g_b_proj", "ssm_g_b", a, part, i, hd, d)
    _norm(out, f"{q}.o_norm", "ssm_norm", a, part, i, d)
    _linear(out, f"{q}.o_proj", "ssm_out", a, part, i, h, hd)


def _attention(out: list, s: ModelSpec, p: str, part: str, i: int) -> None:
    h, a = s.hidden_size, "attention"
    kind = s.attention_kind(i)
    if kind == "linear_gdn":
        _gated_deltanet(out, s, p, part, i)
        return
    if kind == "linear_kda":
        _kda(out, s, p, part, i)
        return
    if s.attention == "mla":
        q_out = s.num_heads * s.qk_head_dim
        if s.q_lora_rank is None:
            _linear(out, f"{p}.self_attn.q_proj", "attn_q", a, part, i, q_out, h)
        else:
            _linear(out, f"{p}.self_attn.q_a_proj", "attn_q_a", a, part, i, s.q_lora_rank, h, s.qkv_bias)
            _norm(out, f"{p}.self_attn.q_a_layernorm", "attn_q_a_norm", a, part, i, s.q_lora_rank)
            _linear(out, f"{p}.self_attn.q_b_proj", "attn_q_b", a, part, i, q_out, s.q_lora_rank)
        _linear(out, f"{p}.self_attn.kv_a_proj_with_mqa", "attn_kv_a_mqa", a, part, i,
                s.kv_latent_elems_per_layer, h, s.qkv_bias)
        _norm(out, f"{p}.self_attn.kv_a_layernorm", "attn_kv_a_norm", a, part, i, s.kv_lora_rank)
        _linear(out, f"{p}.self_attn.kv_b_proj", "attn_kv_b", a, part, i,
                s.num_heads * (s.qk_nope_head_dim + s.v_head_dim), s.kv_lora_rank)
        _linear(out, f"{p}.self_attn.o_proj", "attn_output", a, part, i, h, s.num_heads * s.v_head_dim, s.o_bias)
        if s.mla_output_gate:  # Kimi-K3: sigmoid gate on the attention output, from the hidden state
            _linear(out, f"{p}.self_attn.g_proj", "attn_gate", a, part, i, s.num_heads * s.v_head_dim, h)
        if kind == "mla_dsa":
            _indexer(out, s, p, part, i)
        return
    q, kv = s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim
    # gated attention (Qwen3-Next): q_proj also emits the sigmoid output gate, 2 x heads x head_dim rows
    _linear(out, f"{p}.self_attn.q_proj", "attn_q", a, part, i, q * (2 if s.attn_output_gate else 1), h, s.qkv_bias)
    _linear(out, f"{p}.self_attn.k_proj", "attn_k", a, part, i, kv, h, s.qkv_bias)
    _linear(out, f"{p}.self_attn.v_proj", "attn_v", a, part, i, kv, h, s.qkv_bias)
    _linear(out, f"{p}.self_attn.o_proj", "attn_output", a, part, i, h, q, s.o_bias)
    if s.qk_norm:  # per head (width head_dim), or over all heads at once (MiniMax-M2)
        _norm(out, f"{p}.self_attn.q_norm", "attn_q_norm", a, part, i, q if s.qk_norm_full else s.head_dim)
        _norm(out, f"{p}.self_attn.k_norm", "attn_k_norm", a, part, i, kv if s.qk_norm_full else s.head_dim)
    if s.attention_sinks:
        out.append(TensorGroup(f"{p}.self_attn.sinks", "attn_sinks", a, part, i, (s.num_heads,)))
    if kind == "gqa_sparse":  # MiniMax-M3 block-sparse layer: its lightning indexer (planner.model.families_minimax)
        d, q = s.index_head_dim, f"{p}.self_attn.indexer"
        _linear(out, f"{q}.q_proj", "attn_idx_q", a, part, i, s.index_n_heads * d, h)
        _linear(out, f"{q}.k_proj", "attn_idx_k", a, part, i, d, h)
        _norm(out, f"{q}.q_norm", "attn_idx_q_norm", a, part, i, d)
        _norm(out, f"{q}.k_norm", "attn_idx_k_norm", a, part, i, d)


def _ffn(out: list, s: ModelSpec, p: str, part: str, i: int, moe: bool) -> None:
    h = s.hidden_size
    if not moe:
        _mlp(out, f"{p}.mlp", ("ffn_gate", "ffn_up", "ffn_down"), "dense_mlp", part, i, h,
             s.intermediate_size, s.mlp_bias)
        return
    r = "router"
    _linear(out, f"{p}.mlp.gate", "ffn_gate_inp", r, part, i, s.n_routed_experts, h, s.router_linear_bias)
    if s.router_score_bias:
        # e_score_correction_bias: float32 in the checkpoints (DeepSeek-V3 / Kimi listings); a buffer in transformers
        out.append(TensorGroup(f"{p}.mlp.gate.e_score_correction_bias", "exp_probs_b", r, part, i,
                               (s.n_routed_experts,), 1, "f32"))
    he = s.latent_expert_size or h
    if s.latent_expert_size:
        # latent MoE (Kimi-K3): every token is projected to the experts' width and back once per layer, so these
        # count as always-active, placed like the shared experts
        sh = "shared_experts"
        _linear(out, f"{p}.mlp.routed_expert_down_proj", "ffn_latent_down", sh, part, i, he, h)
        _linear(out, f"{p}.mlp.routed_expert_up_proj", "ffn_latent_up", sh, part, i, h, he)
        if s.latent_expert_norm:
            _norm(out, f"{p}.mlp.routed_expert_norm", "ffn_latent_norm", sh, part, i, he)
    _mlp(out, f"{p}.mlp.experts.{{E}}", ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), "routed_experts",
         part, i, he, s.moe_intermediate_size, s.expert_bias, s.n_routed_experts)
    if s.shared_intermediate_size:
        _mlp(out, f"{p}.mlp.shared_experts", ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"),
             "shared_experts", part, i, h, s.shared_intermediate_size)
    if s.shared_expert_gate:
        _linear(out, f"{p}.mlp.shared_expert_gate", "ffn_gate_inp_shexp", "shared_experts", part, i, 1, h)


def _decoder_layer(out: list, s: ModelSpec, i: int, part: str, moe: bool) -> None:
    p = f"model.layers.{i}"
    _norm(out, f"{p}.input_layernorm", "attn_norm", "norms", part, i, s.hidden_size)
    _attention(out, s, p, part, i)
    _norm(out, f"{p}.post_attention_layernorm", "ffn_norm", "norms", part, i, s.hidden_size)
    _ffn(out, s, p, part, i, moe)


def _mtp_layer(out: list, s: ModelSpec, i: int) -> None:
    """DeepSeek-V3 MTP module as stored at model.layers.{num_layers}: a full MoE decoder layer plus
    enorm, hnorm, eh_proj [h, 2h], shared_head.norm, and its own copies of embed_tokens and
    shared_head.head (all kept BF16 in the FP8 checkpoint; DeepSeek-V3 README_WEIGHTS.md)."""
    h, p, m = s.hidden_size, f"model.layers.{i}", "mtp"
    _decoder_layer(out, s, i, m, moe=s.is_moe)
    out.append(TensorGroup(f"{p}.embed_tokens.weight", "nextn.embed_tokens", "embedding", m, i, (s.vocab_size, h)))
    for n in ("enorm", "hnorm"):
        _norm(out, f"{p}.{n}", f"nextn.{n}", "norms", m, i, h)
    out.append(TensorGroup(f"{p}.eh_proj.weight", "nextn.eh_proj", "attention", m, i, (h, 2 * h)))
    _norm(out, f"{p}.shared_head.norm", "nextn.shared_head_norm", "norms", m, i, h)
    out.append(TensorGroup(f"{p}.shared_head.head.weight", "nextn.shared_head_head", "lm_head", m, i,
                           (s.vocab_size, h)))


def _moonvit(out: list, s: ModelSpec) -> None:
    """MoonViT + patch merger. Tensor layout checked against the Kimi-K2.5 listing:
    vision_tower 833,732,064 B and mm_projector 108,555,776 B in BF16 (shared/reference/checkpoints.yaml)."""
    v, part, comp = s.vision, "vision", "vision"
    d = v.hidden
    pv = "vision_tower"
    patch_in = 3 * v.patch * v.patch  # RGB patch flattened: 3 x 14 x 14 = 588
    out.append(TensorGroup(f"{pv}.patch_embed.proj.weight", "v.patch_embd", comp, part, None, (d, patch_in)))
    out.append(TensorGroup(f"{pv}.patch_embed.proj.bias", "v.patch_embd.bias", comp, part, None, (d,)))
    out.append(TensorGroup(f"{pv}.patch_embed.pos_emb.weight", "v.position_embd", comp, part, None,
                           (v.pos_emb_hw[0] * v.pos_emb_hw[1], d)))
    for i in range(v.layers):
        b = f"{pv}.encoder.blocks.{i}"
        for n in ("norm0", "norm1"):  # LayerNorm: weight and bias
            out.append(TensorGroup(f"{b}.{n}.weight", "v.norm", comp, part, i, (d,)))
            out.append(TensorGroup(f"{b}.{n}.bias", "v.norm.bias", comp, part, i, (d,)))
        _linear(out, f"{b}.wqkv", "v.attn_qkv", comp, part, i, 3 * d, d, True)
        _linear(out, f"{b}.wo", "v.attn_out", comp, part, i, d, d, True)
        _linear(out, f"{b}.mlp.fc0", "v.ffn_up", comp, part, i, v.intermediate, d, True)
        _linear(out, f"{b}.mlp.fc1", "v.ffn_down", comp, part, i, d, v.intermediate, True)
    out.append(TensorGroup(f"{pv}.encoder.final_layernorm.weight", "v.post_norm", comp, part, None, (d,)))
    out.append(TensorGroup(f"{pv}.encoder.final_layernorm.bias", "v.post_norm.bias", comp, part, None, (d,)))
    merged = v.mm_hidden * v.merge[0] * v.merge[1]  # 2x2 patches concatenated: 1152 x 4 = 4608
    out.append(TensorGroup("mm_projector.pre_norm.weight", "mm.norm", comp, part, None, (v.mm_hidden,)))
    out.append(TensorGroup("mm_projector.pre_norm.bias", "mm.norm.bias", comp, part, None, (v.mm_hidden,)))
    _linear(out, "mm_projector.proj.0", "mm.up", comp, part, None, merged, merged, True)
    _linear(out, "mm_projector.proj.2", "mm.down", comp, part, None, v.text_hidden, merged, True)


@lru_cache(maxsize=256)
def tensor_inventory(spec: ModelSpec) -> tuple[TensorGroup, ...]:
    """Every tensor the model's checkpoint holds: language model, then MTP layers, then vision."""
    out: list[TensorGroup] = []
    h = spec.hidden_size
    out.append(TensorGroup("model.embed_tokens.weight", "token_embd", "embedding", "language", None,
                           (spec.vocab_size, h)))
    for i in range(spec.num_layers):
        if spec.block_pattern:  # Nemotron-H: one sublayer per block
            nemotron_block(out, spec, i, "language")
        elif spec.architecture == "gemma4":
            gemma4_layer(out, spec, i, "language")
        elif spec.architecture in SWA_LAYERS:  # MiMo-V2-Flash, Step-3.7-Flash
            SWA_LAYERS[spec.architecture](out, spec, i, "language")
        elif spec.deepseek_v4:
            deepseek_v4_layer(out, spec, i, "language")
        else:
            _decoder_layer(out, spec, i, "language", spec.moe_layers[i])
    _norm(out, "model.norm", "output_norm", "norms", "language", None, h)
    if spec.deepseek_v4:  # the hyper-connection streams' final collapse
        deepseek_v4_head(out, spec)
    if not spec.tie_word_embeddings:
        out.append(TensorGroup("lm_head.weight", "output", "lm_head", "language", None, (spec.vocab_size, h)))
    for j in range(spec.mtp_layers):
        (deepseek_v4_mtp if spec.deepseek_v4 else _mtp_layer)(out, spec, spec.num_layers + j)
    if spec.vision is not None:
        _moonvit(out, spec)
    return tuple(out)


def params_by_component(spec: ModelSpec, part: str = "language") -> dict[str, int]:
    counts = dict.fromkeys(COMPONENTS, 0)
    for t in tensor_inventory(spec):
        if t.part == part:
            counts[t.component] = counts.get(t.component, 0) + t.numel
    return counts


def params_by_part(spec: ModelSpec) -> dict[str, int]:
    counts = dict.fromkeys(PARTS, 0)
    for t in tensor_inventory(spec):
        counts[t.part] += t.numel
    return counts


def active_params_per_token(spec: ModelSpec) -> int:
    """CONTRACT §1: all non-expert language tensors (embedding matrix in full) + top-k of the routed experts
    + every shared expert. Routed-expert groups hold n_routed_experts copies, so top-k of them is numel * k / E."""
    total = 0
    for t in tensor_inventory(spec):
        if t.part != "language":
            continue
        if t.component == "routed_experts":
            total += t.numel // t.count * spec.experts_per_token
        else:
            total += t.numel
    return total
