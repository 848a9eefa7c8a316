"""Op records of the attention kinds beyond softmax attention over the whole context (planner.perf.ops calls them
per layer kind of planner.model.spec.ModelSpec.attention_kinds).

DSA lightning indexer (DeepSeek-V3.2, GLM-5), per layer and per query token:
- wq_b [q_lora_rank -> Hi x di] from the MLA query latent, and wk + weights_proj [h -> di + Hi] (vLLM fuses
  them into one GEMM): replicated on every TP rank (vllm deepseek_v2.py Indexer), so every rank projects all
  tokens of its attention group;
- scoring: fp8 logits of Hi heads x di against every cached indexer key, 2 x Hi x di FLOP per (query, cached
  token), reading ctx x 132 B of indexer keys per sequence (planner.model.kv), then a top-k over ctx scores.
  This is the O(L) part; the MLA attention that follows reads only min(ctx, index_topk) tokens.

Gated DeltaNet (Qwen3-Next, Qwen3.5 linear layers), per layer, heads split over TP (t):
- projections: in_proj [h -> 2 k_dim + 2 v_dim + 2 Hv] column-parallel, out_proj [v_dim -> h] row-parallel;
- decode: the causal conv1d updates its (kernel - 1) x conv_dim state; the delta rule reads the Hv x dv x dk
  recurrent state, decays it, applies a rank-1 update and reads it out with q: S k, (v - S k) k^T and S q, three
  passes of dv x dk multiply-adds per v head: 6 x Hv x dk x dv FLOP per token, O(1) in the context; the state is
  read and written once per sequence per step (2 x state bytes);
- prefill: chunked scan (flash-linear-attention chunk_gated_delta_rule, 64-token chunks): per token the three
  state passes plus the intra-chunk attention, 2 x 64 x (dk + dv) per v head. APPROXIMATE: the chunk form's
  extra WY-representation work is left out (it is below the state passes for dk = dv = 128).

Kimi Delta Attention (Kimi-Linear, Kimi-K3 linear layers): the same delta rule with H heads of dk = dv = d, its decay
per channel instead of per head: one more elementwise pass over the state, 7 x H x d x d FLOP per token. Projections:
q, k, v [h -> H d] each, f_a [h -> d], b [h -> H], the output gate g [h -> H d] (full rank, Kimi-K3) or g_a
[h -> d], then f_b (and g_b) [d -> H d]. The recurrent state is float32 (planner.model.kv).

Mamba-2 (Nemotron-H, Nemotron-3 Mamba blocks; planner.model.families_nemotron maps H heads of width p, G groups and
state size n onto the linear_* fields): in_proj [h -> 2 H p + 2 G n + H] (z, x, B, C, dt) column-parallel, out_proj
[H p -> h] row-parallel; decode (vLLM selective_state_update) decays the H x p x n state by exp(dt A), adds
dt x B outer x and reads it out with C: 5 x H x p x n FLOP per token (multiply, multiply-add, multiply-add), the state
read and written once per step; prefill is the chunked SSD scan (mamba_chunk_scan_combined, chunk_size 128 in
Nemotron-3's config): the state passes plus the intra-chunk attention, 2 x 128 x (n + p) per head. APPROXIMATE as
for Gated DeltaNet: the chunk-state and state-passing stages beyond these are left out.

Gemma 4 (full_head_dim set): sliding and full-attention layers have their own head width and KV heads, so each kind
has its own q/kv/attention/o records: `attn_swa.*` for the sliding layers (context capped at the window; the vectorized
sweep caps the records of that name), `attn.*` for the full layers (kv_proj computes K only where V is K, yet K and V
are both cached: planner.model.kv). Weights are those of the first layer of each attention kind.
MiMo-V2-Flash and Step-3.7-Flash the same way (`attn_swa.*`, `attn.*`): MiMo's V is narrower than K (v_head_dim 128,
K 192: kv_proj, the p.V half of the attention FLOP and o_proj at V's width); Step adds the per-head output gate
(`attn_swa.g_proj` / `attn.g_proj`, h -> heads). Their sinks (MiMo) and q/k norms (Step) are left out (vectors).
MiniMax-M3 the same way: `attn.*` for its full-attention layers, `attn_sparse.*` for the block-sparse ones, whose
attention reads at most index_topk = 16 blocks x 128 tokens per query, plus their indexer: projections and a block
score over the whole context (`attn.idx_block_score`, uncapped, O(context) per query like DSA's indexer).

Kimi-K3 extras: the MLA output gate g_proj [h -> heads x v_head_dim] on each full-attention layer, and the latent MoE
projections (h -> routed_expert_hidden_size before the experts, back after; planner.perf.ops runs the experts at
the latent width).
"""

from __future__ import annotations

from math import ceil

from planner.deploy.scenario import Scenario
from planner.model.kv import kv_layout
from planner.perf.op_record import Op, _gemm, _w, role_dtype

GDN_CHUNK = 64  # tokens per chunk of fla's chunk_gated_delta_rule (chunk_size 64)
SSD_CHUNK = 128  # tokens per chunk of Mamba-2's SSD scan (Nemotron-3 configs: chunk_size 128)


def dsa_indexer_ops(sc: Scenario, phase: str, n: float, ctx: float, count: int, seqs: float, lk: str) -> list[Op]:
    """Indexer projections and scoring of `count` DSA layers (n tokens per GPU, its TP group's n x tp tokens)."""
    s, t = sc.model.spec, sc.parallelism.tp
    hi, di, h = s.index_n_heads, s.index_head_dim, s.hidden_size
    group_tokens = n * t  # replicated: each rank indexes every token of its attention group
    idx = kv_layout(s, sc.kv_cache).indexer_bytes_per_token_per_layer
    ops = [
        _gemm("attn.idx_q_proj", count, group_tokens, s.q_lora_rank or h, hi * di, _w(sc, "attn_idx_q_b", lk),
              role_dtype(sc, "attn_idx_q_b", lk)),
        _gemm("attn.idx_k_weights_proj", count, group_tokens, h, di + hi,
              _w(sc, "attn_idx_k", lk) + _w(sc, "attn_idx_w", lk), "bf16", kernels=3),  # + k_norm, rope, fp8 store
    ]
    flops = 2 * group_tokens * hi * di * ctx
    # decode reads every cached indexer key of its sequences; prefill scores against keys it has just computed
    reads = seqs * ctx * idx if phase == "decode" else 0.0
    ops.append(Op("attn.dsa_index_score", "attention_decode" if phase == "decode" else "attention_prefill", count,
                  flops, kv_read_bytes=reads, kv_write_bytes=group_tokens * idx,
                  act_bytes=group_tokens * ctx * 4, dtype="fp8", m=ceil(hi * max(1.0, group_tokens / max(seqs, 1))),
                  kernels=2))  # logits + top-k
    return ops


def linear_attention_ops(sc: Scenario, phase: str, n: float, count: int, sq: int) -> list[Op]:
    """Gated DeltaNet or KDA layers: projections, short conv and the recurrent delta rule (module docstring)."""
    s, t = sc.model.spec, sc.parallelism.tp
    h, hv, dk, dv = s.hidden_size, s.linear_num_value_heads, s.linear_key_head_dim, s.linear_value_head_dim
    k_dim, v_dim = s.linear_num_key_heads * dk, hv * dv
    conv_dim = 2 * k_dim + v_dim
    group_tokens = n * t
    lk = "moe" if s.is_moe else "dense"
    kda, mamba = s.architecture == "kimi_linear", s.architecture == "nemotron_h"
    ops = [Op("lin.norm", "elementwise", count, 4 * group_tokens * h, act_bytes=4 * group_tokens * h)]
    if mamba:  # z, x, B, C and one dt per head
        ops.append(_gemm("lin.in_proj", count, n, h, 2 * v_dim + 2 * k_dim + hv, _w(sc, "ssm_in", lk),
                         role_dtype(sc, "ssm_in", lk), kernels=2, rows=group_tokens))
    elif kda:
        gate = v_dim if s.linear_full_rank_gate else dk
        w_in = sum(_w(sc, r, lk) for r in ("ssm_q", "ssm_k", "ssm_v", "ssm_f_a", "ssm_beta", "ssm_g", "ssm_g_a"))
        ops.append(_gemm("lin.in_proj", count, n, h, conv_dim + dk + hv + gate, w_in, role_dtype(sc, "ssm_q", lk),
                         kernels=2, rows=group_tokens))
        low_rank = 1 if s.linear_full_rank_gate else 2  # f_b, and g_b where the output gate is low-rank
        ops.append(_gemm("lin.gate_b_proj", count, n, dk, low_rank * v_dim,
                         _w(sc, "ssm_f_b", lk) + _w(sc, "ssm_g_b", lk), role_dtype(sc, "ssm_f_b", lk),
                         rows=group_tokens))
    else:
        in_roles = ("ssm_in", "ssm_ba", "attn_qkv", "attn_gate", "ssm_beta", "ssm_alpha")
        w_in = sum(_w(sc, r, lk) for r in in_roles)
        dt = role_dtype(sc, "ssm_in" if s.model_type == "qwen3_next" else "attn_qkv", lk)
        ops.append(_gemm("lin.in_proj", count, n, h, 2 * k_dim + 2 * v_dim + 2 * hv, w_in, dt, kernels=2,
                         rows=group_tokens))
    layout = kv_layout(s, sc.kv_cache)
    state = layout.state_bytes_per_gpu(t) / max(layout.linear_layers, 1)  # one request, one layer, this GPU
    passes = 7 if kda else 5 if mamba else 6  # KDA: + the per-channel decay of the state; Mamba-2: no delta rule
    per_token = passes * hv * dk * dv + 2 * conv_dim * s.linear_conv_kernel  # state passes + conv, per token
    name, chunk = ("lin.ssd", SSD_CHUNK) if mamba else ("lin.gdn", GDN_CHUNK)
    if phase == "decode":
        seqs = group_tokens / sq
        ops.append(Op(f"{name}_decode", "attention_decode", count, n * per_token, kv_read_bytes=seqs * state,
                      kv_write_bytes=seqs * state, act_bytes=2 * n * (conv_dim + v_dim),
                      m=ceil(sq * hv / t), kernels=3))  # conv update, gating, fused recurrent step
    else:
        flops = n * (per_token + 2 * chunk * (dk + dv) * hv)
        ops.append(Op(f"{name}_prefill", "attention_prefill", count, flops, act_bytes=4 * n * (conv_dim + v_dim),
                      kv_write_bytes=state, m=ceil(group_tokens), kernels=6))  # conv, gating, chunked scan stages
    ops.append(_gemm("lin.out_proj", count, n, v_dim, h, _w(sc, "ssm_out", lk), role_dtype(sc, "ssm_out", lk),
                     kernels=2, rows=group_tokens, depth=v_dim / t))  # + gated RMSNorm; row-parallel
    if t > 1:
        ops.append(Op("comm.lin_allreduce", "comm", count, 0, comm_bytes=n * t * h * 2, comm="allreduce", group=t))
    return ops


def mla_output_gate_ops(sc: Scenario, n: float, count: int) -> list[Op]:
    """Kimi-K3's MLA output gate: g_proj [h -> heads x v_head_dim], column-parallel, + the sigmoid product."""
    s, t = sc.model.spec, sc.parallelism.tp
    lk = "moe" if s.is_moe else "dense"
    return [_gemm("attn.output_gate", count, n, s.hidden_size, s.num_heads * s.v_head_dim, _w(sc, "attn_gate", lk),
                  role_dtype(sc, "attn_gate", lk), kernels=2, rows=n * t)]


def latent_moe_ops(sc: Scenario, n: float, count: int, group: int) -> list[Op]:
    """Kimi-K3's latent MoE projections, h -> L before the routed experts and L -> h after (+ the latent RMSNorm),
    split over `group` GPUs as the shared experts are."""
    s = sc.model.spec
    w = _w(sc, "ffn_latent_down", "moe") + _w(sc, "ffn_latent_up", "moe")
    return [_gemm("moe.latent_proj", count, n, s.hidden_size, 2 * s.latent_expert_size, w,
                  role_dtype(sc, "ffn_latent_down", "moe"), kernels=3, rows=n * group)]


def gqa_groups(s) -> list[tuple[str, str, int, int, int, int]]:
    """Layer groups of a GQA model whose layers differ in attention (Gemma 4, MiniMax-M3): (op-name prefix,
    attention kind, head width, KV heads, layers, context cap (0: none)). planner.perf.sweep caps the same prefixes."""
    count = {k: s.attention_kinds.count(k) for k in ("gqa", "sliding", "gqa_sparse")}
    if s.full_head_dim:  # Gemma 4
        return [("attn_swa", "sliding", s.head_dim, s.num_kv_heads, count["sliding"], s.sliding_window or 0),
                ("attn", "gqa", s.full_head_dim, s.full_kv_heads or s.num_kv_heads, count["gqa"], 0)]
    return [("attn_sparse", "gqa_sparse", s.head_dim, s.num_kv_heads, count["gqa_sparse"], s.index_topk),
            ("attn", "gqa", s.head_dim, s.num_kv_heads, count["gqa"], 0)]


def split_gqa_ops(sc: Scenario, phase: str, n: float, ctx: float, count: int, sq: int) -> list[Op]:
    """q/kv projections, attention and o_proj of `count` GQA layers in groups by attention kind (gqa_groups; module
    docstring), and MiniMax-M3's indexer on its block-sparse layers. n = tokens this GPU's attention group computes."""
    s, t = sc.model.spec, sc.parallelism.tp
    h, heads = s.hidden_size, s.num_heads
    layout = kv_layout(s, sc.kv_cache)
    group_tokens = n * t
    seqs = group_tokens / sq if phase == "decode" else 0
    ops: list[Op] = []
    groups = gqa_groups(s)
    left = count  # this stage's share of each group (all of them without pipeline parallelism)
    for prefix, kind, d, kv_heads, layers, cap in groups:
        layers = left if prefix == "attn" else round(count * layers / s.num_layers)
        left -= layers
        if not layers or kind not in s.attention_kinds:
            continue
        lk = f"{s.weight_kind(s.attention_kinds.index(kind))}@{kind}"  # weights of this kind's first layer
        v = s.v_head_dim or d  # MiMo-V2-Flash: V of 128 beside K of 192
        kv_out = kv_heads * (d if s.full_k_eq_v and kind == "gqa" else d + v)  # K only where V is K (Gemma 4)
        kv_tok = layout.per_gpu_layer_bytes(t, s.num_kv_heads, sliding=kind == "sliding")
        eff_ctx = min(ctx, cap) if cap else ctx
        ops.append(_gemm(f"{prefix}.q_proj", layers, n, h, heads * d, _w(sc, "attn_q", lk),
                         role_dtype(sc, "attn_q", lk), rows=group_tokens))
        ops.append(_gemm(f"{prefix}.kv_proj", layers, n * max(1, t / kv_heads), h, kv_out,
                         _w(sc, "attn_k", lk) + _w(sc, "attn_v", lk), role_dtype(sc, "attn_k", lk),
                         kernels=2))  # + q/k/v norms, rope and cache write
        if kind == "gqa_sparse":
            ops += _block_index_ops(sc, phase, n, ctx, layers, seqs, lk, layout.indexer_bytes_per_token_per_layer)
        if s.head_gate:  # Step-3.7-Flash: per-head output gate g_proj [h -> heads], column-parallel
            ops.append(_gemm(f"{prefix}.g_proj", layers, n, h, heads, _w(sc, "attn_gate", lk),
                             role_dtype(sc, "attn_gate", lk), rows=group_tokens))
        flops = 2 * n * heads * eff_ctx * (d + v)  # q.K and p.V
        if phase == "decode":
            ops.append(Op(f"{prefix}.decode", "attention_decode", layers, flops, kv_read_bytes=seqs * eff_ctx * kv_tok,
                          kv_write_bytes=group_tokens * kv_tok, m=ceil(heads / kv_heads * sq), kernels=2))
        else:
            ops.append(Op(f"{prefix}.prefill", "attention_prefill", layers, flops, kv_write_bytes=group_tokens * kv_tok,
                          m=ceil(group_tokens)))
        ops.append(_gemm(f"{prefix}.o_proj", layers, n, heads * v, h, _w(sc, "attn_output", lk),
                         role_dtype(sc, "attn_output", lk), rows=group_tokens, depth=heads * v / t))  # row-parallel
    return ops


def _block_index_ops(sc: Scenario, phase: str, n: float, ctx: float, count: int, seqs: float, lk: str,
                     key_bytes: int) -> list[Op]:
    """MiniMax-M3's lightning indexer on `count` block-sparse layers: index q [h -> index heads x d] split over TP by
    index heads (vLLM MiniMaxM3IndexerMetadataBuilder: num_index_heads // tp), the one index key [h -> d] replicated;
    every query scores every cached key of its sequence (2 x index heads x d FLOP per key, the max over each 128-token
    block and the top-16 blocks in the same kernels), reading the whole bf16 index-key cache in decode."""
    s, t = sc.model.spec, sc.parallelism.tp
    hi, di, h = s.index_n_heads, s.index_head_dim, s.hidden_size
    group_tokens = n * t
    ops = [_gemm("attn_sparse.idx_q_proj", count, n, h, hi * di, _w(sc, "attn_idx_q", lk),
                 role_dtype(sc, "attn_idx_q", lk), rows=group_tokens),
           _gemm("attn_sparse.idx_k_proj", count, group_tokens, h, di, _w(sc, "attn_idx_k", lk),
                 role_dtype(sc, "attn_idx_k", lk), kernels=3)]  # + q/k norms, rope, cache write
    reads = seqs * ctx * key_bytes if phase == "decode" else 0.0
    # named attn.* (not attn_sparse.*): it scores the whole context, uncapped (planner.perf.sweep caps by prefix)
    ops.append(Op("attn.idx_block_score", "attention_decode" if phase == "decode" else "attention_prefill", count,
                  2 * n * hi * di * ctx, kv_read_bytes=reads, kv_write_bytes=group_tokens * key_bytes,
                  act_bytes=n * ctx / 128 * 4 * hi, m=ceil(max(1, hi / t) * max(1.0, group_tokens / max(seqs, 1))),
                  kernels=2))  # block scores + top-k
    return ops
