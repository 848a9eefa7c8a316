"""Op records of DeepSeek-V4's attention layers (planner.model.families_deepseek_v4), by attention kind:
planner.perf.ops calls `deepseek_v4_attention_ops` for the `count` layers of a stage; the MoE is planner.perf.ops'
routed MoE (hash-routed layers pick their experts by token id: the same expert work).

Per layer and token, as vLLM runs it (vllm/model_executor/layers/deepseek_v4_attention.py
DeepseekV4MultiHeadLatentAttentionWrapper; t = TP ranks, which split the heads and the output-projection groups):
- q_a + kv projections [h -> q_lora_rank + 512], one fused GEMM (fused_wqa_wkv) replicated on every rank, then q_b
  [q_lora_rank -> heads x 512] column-parallel; the fused q-norm / rope / fp8 insert of the token into its window.
- the attention (FlashMLA sparse decode with the window as one index list and the compressed cache as `extra_k_cache`):
  2 x 512 (q.K) + 2 x 512 (p.V) FLOP per head per entry read, reading each entry's 584 B once per sequence and rank
  (one K = V head, not split by TP). Entries read per query: the last min(L, 128) tokens on every layer (`attn_win.*`,
  the sweep caps its context at the window); on CSA layers the index_topk entries the indexer chose out of L / 4
  (`attn_csa.*`, context capped at 4 x index_topk); on HCA layers all L / 128 (`attn_hca.*`). The window and the
  compressed reads are one kernel, so the compressed records carry no kernel launch of their own.
- compressor on CSA / HCA layers: kv and gate [h -> 2 x coff x 512] in bf16, replicated (DeepseekCompressor
  disable_tp); the float32 state of each token written once and read coff times when its window closes.
- CSA's lightning indexer (DeepseekV4Indexer, replicated): q_b [q_lora_rank -> index heads x 128] (fp8), its compressor
  [h -> 2 x 2 x 128] and weights_proj [h -> index heads] (bf16); scoring: 2 x index heads x 128 FLOP per (query,
  compressed key), L / 4 keys of 132 B read per sequence in decode, then a top-k (`attn.csa_index_score`, uncapped: it
  grows with L / 4 as DSA's indexer grows with L).
- grouped output projection: o_a [heads x 512 / groups -> o_lora_rank] per group (inverse rope + fp8 einsum), groups
  split over TP, then o_b [groups x o_lora_rank -> h] row-parallel and the TP all-reduce.
- hyper-connections around the attention and the FFN (`hc.mix`, replicated): per sublayer an RMS norm of the m x h
  streams (m = hc_mult 4) and their float32 projection [m h -> (2 + m) m = 24] (pre, post and the m x m comb mix; the
  20 Sinkhorn steps on 4 x 4 are negligible), the collapse of m streams into one and the expansion back: 2 x 2 x m h x
  24 FLOP per token per layer, and in bf16 bytes per sublayer 2 m h (norm) + 2 m h + 2 h (collapse) + 2 m h + 2 h +
  2 m h (expand) = (8 m + 4) h, twice: (16 m + 8) h = 72 h at m = 4.
APPROXIMATE: sqrtsoftplus routing, the SwiGLU clamp and the compressors' gated sums (a few FLOP per state value) are
left out; prefill runs the same records at the mean context.
"""

from __future__ import annotations

from math import ceil

from planner.deploy.scenario import Scenario
from planner.model.kv import COMPRESSOR_STATE_BYTES, kv_layout
from planner.perf.op_record import Op, _gemm, _w, role_dtype


def deepseek_v4_caps(spec) -> dict[str, float]:
    """Context caps by op-name prefix for planner.perf.sweep: the window, and CSA's index_topk entries of 4 tokens."""
    return {"attn_win.": spec.sliding_window, "attn_csa.": 4 * spec.index_topk}


def deepseek_v4_attention_ops(sc: Scenario, phase: str, n: float, ctx: float, count: int, sq: int) -> list[Op]:
    """Attention and hyper-connections of `count` DeepSeek-V4 layers (module docstring); n = tokens this GPU's
    attention group computes per GPU, ctx = tokens attended on average."""
    s, t = sc.model.spec, sc.parallelism.tp
    h, heads, d, v4 = s.hidden_size, s.num_heads, s.head_dim, s.deepseek_v4
    layout = kv_layout(s, sc.kv_cache)
    entry, idx = layout.bytes_per_token_per_layer, layout.indexer_bytes_per_token_per_layer
    group_tokens = n * t
    seqs = group_tokens / sq if phase == "decode" else 0.0
    kind_of = "attention_decode" if phase == "decode" else "attention_prefill"
    m_dec = ceil(heads / t * sq) if phase == "decode" else ceil(group_tokens)
    kinds = s.attention_kinds
    m_hc = v4.hc_mult
    hc_out = (2 + m_hc) * m_hc
    ops = [Op("attn.norm", "elementwise", count, 4 * group_tokens * h, act_bytes=4 * group_tokens * h),
           Op("hc.mix", "elementwise", count, 2 * 2 * group_tokens * m_hc * h * hc_out,
              weight_bytes=2 * hc_out * m_hc * h * 4, act_bytes=group_tokens * (16 * m_hc + 8) * h,
              kernels=6)]  # float32 fn of both hyper-connections; norm + projection, collapse, expand per sublayer
    win = min(ctx, s.sliding_window)
    ops.append(Op(f"attn_win.{phase}", kind_of, count, 4 * n * heads * win * d, kv_read_bytes=seqs * win * entry,
                  kv_write_bytes=group_tokens * entry, m=m_dec, kernels=2))  # sparse attention + combine
    left = count
    for kind, ratio in (("sliding", 0), ("hca", _ratio(s, "hca")), ("csa", 4)):
        layers = left if kind == "csa" else round(count * kinds.count(kind) / s.num_layers)
        left -= layers
        if not layers or kind not in kinds:
            continue
        p, lk = f"attn_{'win' if kind == 'sliding' else kind}", f"moe@{kind}"
        ops.append(_gemm(f"{p}.qkv_a_proj", layers, group_tokens, h, s.q_lora_rank + d,
                         _w(sc, "attn_q_a", lk) + _w(sc, "attn_kv_a_mqa", lk), role_dtype(sc, "attn_q_a", lk),
                         kernels=3))  # + q/kv norms, rope, fp8 window insert
        ops.append(_gemm(f"{p}.q_b_proj", layers, n, s.q_lora_rank, heads * d, _w(sc, "attn_q_b", lk),
                         role_dtype(sc, "attn_q_b", lk), rows=group_tokens))
        if ratio:
            ops += _compressed(sc, phase, n, ctx, layers, seqs, p, lk, ratio, entry, idx, m_dec)
        per_group = heads * d // v4.o_groups
        ops.append(_gemm(f"{p}.o_a_proj", layers, n, per_group, v4.o_groups * v4.o_lora_rank, _w(sc, "attn_o_a", lk),
                         role_dtype(sc, "attn_o_a", lk), kernels=2, rows=group_tokens))  # + inverse rope, fp8 quant
        ops.append(_gemm(f"{p}.o_b_proj", layers, n, v4.o_groups * v4.o_lora_rank, h, _w(sc, "attn_o_b", lk),
                         role_dtype(sc, "attn_o_b", lk), rows=group_tokens,
                         depth=v4.o_groups * v4.o_lora_rank / t))  # row-parallel
    if t > 1:
        ops.append(Op("comm.attn_allreduce", "comm", count, 0, comm_bytes=n * t * h * 2, comm="allreduce", group=t))
    return ops


def _ratio(s, kind: str) -> int:
    kinds, ratios = s.attention_kinds, s.deepseek_v4.compress_ratios
    return ratios[kinds.index(kind)] if kind in kinds else 0


def _compressed(sc: Scenario, phase: str, n: float, ctx: float, layers: int, seqs: float, p: str, lk: str,
                ratio: int, entry: int, idx: int, m_dec: int) -> list[Op]:
    """A CSA / HCA group's compressor, its indexer (CSA) and its reads of the compressed cache."""
    s, t = sc.model.spec, sc.parallelism.tp
    h, heads, d = s.hidden_size, s.num_heads, s.head_dim
    group_tokens = n * t
    coff = s.deepseek_v4.coff(ratio)
    csa = coff == 2
    state = 2 * coff * (d + (s.index_head_dim if csa else 0)) * COMPRESSOR_STATE_BYTES  # per token, written once
    ops = [_gemm(f"{p}.cmp_proj", layers, group_tokens, h, 2 * coff * (d + (s.index_head_dim if csa else 0)),
                 _w(sc, "attn_cmp_kv", lk) + _w(sc, "attn_cmp_gate", lk) + _w(sc, "attn_idx_cmp_kv", lk)
                 + _w(sc, "attn_idx_cmp_gate", lk), "bf16", kernels=2),  # + the state save
           Op(f"{p}.compress", "elementwise", layers, 0, act_bytes=group_tokens * state * (1 + coff),
              kv_write_bytes=group_tokens / ratio * (entry + (idx if csa else 0)))]  # norm, rope, fp8 quant, store
    entries = min(ctx, 4 * s.index_topk) / 4 if csa else ctx / ratio  # compressed entries a query reads
    ops.append(Op(f"{p}.{phase}", "attention_decode" if phase == "decode" else "attention_prefill", layers,
                  4 * n * heads * entries * d, kv_read_bytes=seqs * entries * entry, m=m_dec, kernels=0))
    if csa:
        hi, di = s.index_n_heads, s.index_head_dim
        ops.append(_gemm(f"{p}.idx_q_b_proj", layers, group_tokens, s.q_lora_rank, hi * di,
                         _w(sc, "attn_idx_q_b", lk), role_dtype(sc, "attn_idx_q_b", lk)))
        ops.append(_gemm(f"{p}.idx_weights_proj", layers, group_tokens, h, hi, _w(sc, "attn_idx_w", lk), "bf16"))
        keys = ctx / 4  # every compressed key so far, uncapped
        ops.append(Op("attn.csa_index_score", "attention_decode" if phase == "decode" else "attention_prefill",
                      layers, 2 * group_tokens * hi * di * keys, kv_read_bytes=seqs * keys * idx,
                      act_bytes=group_tokens * keys * 4, dtype="fp8",
                      m=ceil(hi * max(1.0, group_tokens / max(seqs, 1))), kernels=2))  # logits + top-k
    return ops
