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
"""

from __future__ import annotations

from math import ceil

from planner.deploy.scenario import Scenario
from planner.model.kv import kv_layout
from planner.perf.op_record import Op, _gemm, _w, role_dtype

GDN_CHUNK = 64  # tokens per chunk of fla's chunk_gated_delta_rule (chunk_size 64)


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
    """Gated DeltaNet layers: projections, short conv and the recurrent delta rule (module docstring)."""
    s, t = sc.model.spec, sc.parallelism.tp
    h, hv, dk, dv = s.hidden_size, s.linear_num_value_heads, s.linear_key_head_dim, s.linear_value_head_dim
    k_dim, v_dim = s.linear_num_key_heads * dk, hv * dv
    conv_dim = 2 * k_dim + v_dim
    group_tokens = n * t
    lk = "moe" if s.is_moe else "dense"
    in_roles = ("ssm_in", "ssm_ba", "attn_qkv", "attn_gate", "ssm_beta", "ssm_alpha")
    w_in = sum(_w(sc, r, lk) for r in in_roles)
    dt = role_dtype(sc, "ssm_in" if s.model_type == "qwen3_next" else "attn_qkv", lk)
    ops = [
        Op("lin.norm", "elementwise", count, 4 * group_tokens * h, act_bytes=4 * group_tokens * h),
        _gemm("lin.in_proj", count, n, h, 2 * k_dim + 2 * v_dim + 2 * hv, w_in, dt, kernels=2, rows=group_tokens),
    ]
    layout = kv_layout(s, sc.kv_cache)
    state = layout.state_bytes_per_gpu(t) / max(layout.linear_layers, 1)  # one request, one layer, this GPU
    per_token = 6 * hv * dk * dv + 2 * conv_dim * s.linear_conv_kernel  # state passes + conv, per token
    if phase == "decode":
        seqs = group_tokens / sq
        ops.append(Op("lin.gdn_decode", "attention_decode", count, n * per_token, kv_read_bytes=seqs * state,
                      kv_write_bytes=seqs * state, act_bytes=2 * n * (conv_dim + v_dim),
                      m=ceil(sq * hv / t), kernels=3))  # conv update, gating, fused recurrent step
    else:
        flops = n * (per_token + 2 * GDN_CHUNK * (dk + dv) * hv)
        ops.append(Op("lin.gdn_prefill", "attention_prefill", count, flops, act_bytes=4 * n * (conv_dim + v_dim),
                      kv_write_bytes=state, m=ceil(group_tokens), kernels=6))  # conv, gating, chunked scan stages
    ops.append(_gemm("lin.out_proj", count, n, v_dim, h, _w(sc, "ssm_out", lk), role_dtype(sc, "ssm_out", lk),
                     kernels=2, rows=group_tokens, depth=v_dim / t))  # + gated RMSNorm; row-parallel
    if t > 1:
        ops.append(Op("comm.lin_allreduce", "comm", count, 0, comm_bytes=n * t * h * 2, comm="allreduce", group=t))
    return ops
