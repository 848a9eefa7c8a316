"""Op records: FLOP, bytes and communication of one forward step on one GPU, layer by layer.

`step_ops(sc, phase, tokens_per_gpu, context)` lists what the fullest GPU of a pipeline stage does in
one step: `tokens_per_gpu` new tokens (decode: running sequences x tokens per sequence per step;
prefill: prompt tokens), attending to `context` earlier tokens on average. Every op carries `count`,
the number of layers it repeats over, so totals are sums of `count x value`.

Conventions (per GPU; t = tp, G = tp x dp_attention GPUs per stage, e = ep):
- TP-split GEMMs do all tokens of the attention group with 1/t of the heads: FLOP = tokens_per_gpu x the
  full-width cost; weights read once per step, split as planner.deploy.placement splits them.
- MLA decode runs weight-absorbed over the latent cache (FLOP 2 x heads x ctx x (576 + 512) per token,
  KV read ctx x 576 elements per sequence, not split by TP); MLA prefill decompresses K/V with kv_b_proj
  and runs causal attention over on average half the prompt (2 x heads x ctx x (192 + 128) per token).
- Routed experts: the stage's tokens x top-k (token, expert) pairs spread over all G GPUs; the weights
  read are those of the experts actually touched: E_rank x (1 - (1 - k/E)^T) for T stage tokens
  (uniform routing; `skew` > 0 concentrates traffic on fewer experts, a Zipf popularity). With expert
  parallelism the fullest GPU is the busiest EP rank: its routed tokens and all-to-all bytes are the mean
  times `ep_load_imbalance` (EPLB-balanced routing; derivation at EXPERT_LOAD_CV).
- 2 FLOP per multiply-accumulate; a SwiGLU expert is 3 GEMMs: 6 x h x I FLOP per token.
"""

from __future__ import annotations

from math import ceil, log, sqrt

from planner.deploy.placement import dense_group
from planner.deploy.scenario import Scenario
from planner.model.kv import kv_layout
from planner.perf.op_record import Op, _gemm, _role_bytes, _w, role_dtype, swiglu_depth
from planner.perf.ops_dsv4 import deepseek_v4_attention_ops
from planner.perf.ops_kinds import dsa_indexer_ops as _dsa_indexer_ops
from planner.perf.ops_kinds import latent_moe_ops, linear_attention_ops, mla_output_gate_ops, split_gqa_ops


def distinct_experts(experts_on_rank: float, n_experts: int, top_k: int, tokens: float, skew: float = 0.0,
                     balanced: bool | tuple[int, int] = False) -> float:
    """Expected experts of one EP rank touched by `tokens` tokens choosing top_k of n_experts each.

    Uniform: each expert is picked by a token with probability k/E, so E_rank x (1 - (1 - k/E)^T).
    skew > 0: popularity p_i ~ i^-skew (normalized to k picks per token) averaged over the rank's share.
    balanced: round-robin routing, each (token, expert) pair on an expert no pair has taken until every one has, so
    E_rank x min(1, k T / E): how aiconfigurator-core's `balanced` kernel tables route (ai-dynamo/aiconfigurator
    collector/helper.py balanced_logits: token i picks experts i + j ceil(E / k) mod E), which at 64 tokens, top-8
    of 384, touch all 384 experts where uniform routing touches 284 (kernels_bench import-silicon). balanced as
    (groups, top groups): the same logits through a group-limited top-k with k = groups (DeepSeek-V3/R1: 4 of 8
    groups; its HF config's n_group / topk_group), where a token's round-robin picks hold one expert per group, every
    group scores alike and every token keeps the same top groups (a tie): tg of its picks there, and k - tg tie picks
    that are the same experts for every token, so min(E tg / groups, tg T + k - tg)."""
    if tokens <= 0 or n_experts <= 0:
        return 0.0
    if balanced:
        groups, top = balanced if isinstance(balanced, tuple) else (1, 1)
        # the formula needs one pick per group (k = groups); with k <= top groups every pick's group is kept
        picks = min(n_experts, top_k * tokens) if top_k != groups or groups <= top else min(
            n_experts * top / groups, top * tokens + top_k - top)
        return experts_on_rank * picks / n_experts
    if skew <= 0:
        return experts_on_rank * (1 - (1 - top_k / n_experts) ** tokens)
    weights = [(i + 1) ** -skew for i in range(n_experts)]
    total = sum(weights)
    touched = sum(1 - max(0.0, 1 - min(1.0, top_k * w / total)) ** tokens for w in weights)
    return touched * experts_on_rank / n_experts


def _attention_ops(sc: Scenario, phase: str, n: float, ctx: float, count: int, sq: int) -> list[Op]:
    """Softmax attention (GQA, sliding, MLA, MLA + DSA) of `count` layers. n = tokens this GPU's attention group
    computes (per GPU FLOP accounting)."""
    s, par = sc.model.spec, sc.parallelism
    if s.deepseek_v4:  # windows, compressed caches and the indexer by layer kind, hyper-connections (ops_dsv4)
        return deepseek_v4_attention_ops(sc, phase, n, ctx, count, sq)
    h, t = s.hidden_size, par.tp
    heads = s.num_heads  # n x heads = (group tokens n x t) x (heads / t): the per-GPU share of the work
    layout = kv_layout(s, sc.kv_cache)
    # bytes per token per layer on this GPU that attention reads (the DSA indexer key is read by the indexer)
    kv_tok = layout.per_gpu_layer_bytes(t, s.num_kv_heads) - layout.indexer_bytes_per_token_per_layer
    group_tokens = n * t  # every GPU of the TP group sees all of them (its share of heads / the whole latent)
    seqs = group_tokens / sq if phase == "decode" else 0
    lk = "moe" if s.is_moe and any(s.moe_layers) else "dense"
    d = lambda role: role_dtype(sc, role, lk)  # noqa: E731
    w = lambda role: _w(sc, role, lk)  # noqa: E731
    # every TP rank holds (and normalizes) all of its group's tokens
    ops: list[Op] = [Op("attn.norm", "elementwise", count, 4 * group_tokens * h, act_bytes=4 * group_tokens * h)]
    if s.attention == "mla":
        # q_a/kv_a are replicated on every TP rank: each rank projects all n x t tokens of its group. Engines that
        # merge the two at load time (engine fused_qkv_a) run one GEMM [h -> q_lora + c + r] where the formats agree
        fused = s.q_lora_rank and sc.engine.fused_qkv_a and d("attn_q_a") == d("attn_kv_a_mqa")
        if fused:
            ops.append(_gemm("attn.qkv_a_proj", count, n * t, h, s.q_lora_rank + s.kv_latent_elems_per_layer,
                             w("attn_q_a") + w("attn_kv_a_mqa"), d("attn_q_a"), kernels=4))  # + both norms, rope
        elif s.q_lora_rank:
            ops.append(_gemm("attn.q_a_proj", count, n * t, h, s.q_lora_rank, w("attn_q_a"), d("attn_q_a"), kernels=2))
        if s.q_lora_rank:
            ops.append(_gemm("attn.q_b_proj", count, n, s.q_lora_rank, s.num_heads * s.qk_head_dim, w("attn_q_b"),
                             d("attn_q_b"), rows=group_tokens))
        else:
            ops.append(_gemm("attn.q_proj", count, n, h, s.num_heads * s.qk_head_dim, w("attn_q"), d("attn_q"),
                             rows=group_tokens))
        if not fused:
            ops.append(_gemm("attn.kv_a_proj", count, n * t, h, s.kv_latent_elems_per_layer, w("attn_kv_a_mqa"),
                             d("attn_kv_a_mqa"), kernels=3))  # + kv_a_layernorm, rope and cache write
        kvb = w("attn_kv_b")
        if s.index_topk:
            ops += _dsa_indexer_ops(sc, phase, n, ctx, count, seqs, lk)
            ctx = min(ctx, s.index_topk)  # DSA: the attention reads only the top-k tokens the indexer chose
        if phase == "decode":
            # absorbed: q_nope x W_UK (128 -> 512 per head) and o x W_UV (512 -> 128 per head)
            ops.append(_gemm("attn.absorb_uk_uv", count, n, 2 * s.qk_nope_head_dim, s.num_heads * s.kv_lora_rank,
                             kvb, d("attn_kv_b"), kernels=2, rows=group_tokens))
            flops = 2 * n * heads * ctx * (s.kv_latent_elems_per_layer + s.kv_lora_rank)
            ops.append(Op("attn.mla_decode", "attention_decode", count, flops, kv_read_bytes=seqs * ctx * kv_tok,
                          kv_write_bytes=group_tokens * kv_tok, act_bytes=4 * n * heads * s.kv_lora_rank,
                          m=ceil(s.num_heads / t * sq), kernels=2))  # split-KV attention + combine
        else:
            # decompress K_nope and V of every token in context: [ctx_tokens, 512] x [512, heads x 256]
            ops.append(_gemm("attn.kv_b_proj", count, n, s.kv_lora_rank,
                             s.num_heads * (s.qk_nope_head_dim + s.v_head_dim), kvb, d("attn_kv_b"), rows=group_tokens))
            flops = 2 * n * heads * ctx * (s.qk_head_dim + s.v_head_dim)
            ops.append(Op("attn.mla_prefill", "attention_prefill", count, flops, kv_write_bytes=group_tokens * kv_tok,
                          act_bytes=2 * n * heads * (2 * s.qk_head_dim + 2 * s.v_head_dim), m=ceil(group_tokens),
                          kernels=2))
        ops.append(_gemm("attn.o_proj", count, n, s.num_heads * s.v_head_dim, h, w("attn_output"), d("attn_output"),
                         rows=group_tokens, depth=s.num_heads * s.v_head_dim / t))  # row-parallel
    elif s.full_head_dim or s.index_topk:  # Gemma 4, MiniMax-M3: layer groups by attention kind (ops_kinds)
        ops += split_gqa_ops(sc, phase, n, ctx, count, sq)
    else:
        kv_heads = s.num_kv_heads
        gate = 2 if s.attn_output_gate else 1  # gated attention: q_proj also emits the output gate
        ops.append(_gemm("attn.q_proj", count, n, h, gate * s.num_heads * s.head_dim, w("attn_q"), d("attn_q"),
                         rows=group_tokens))
        kv_w = w("attn_k") + w("attn_v")
        ops.append(_gemm("attn.kv_proj", count, n * max(1, t / kv_heads), h, 2 * kv_heads * s.head_dim,
                         kv_w, d("attn_k"), kernels=2))  # + rope and cache write
        window = s.sliding_window or ctx
        sliding = layout.sliding_layers / (layout.full_layers + layout.sliding_layers)
        eff_ctx = ctx * (1 - sliding) + min(ctx, window) * sliding
        flops = 4 * n * heads * eff_ctx * s.head_dim
        if phase == "decode":
            ops.append(Op("attn.decode", "attention_decode", count, flops, kv_read_bytes=seqs * eff_ctx * kv_tok,
                          kv_write_bytes=group_tokens * kv_tok, m=ceil(s.num_heads / kv_heads * sq), kernels=2))
        else:
            ops.append(Op("attn.prefill", "attention_prefill", count, flops, kv_write_bytes=group_tokens * kv_tok,
                          m=ceil(group_tokens)))
        ops.append(_gemm("attn.o_proj", count, n, s.num_heads * s.head_dim, h, w("attn_output"), d("attn_output"),
                         rows=group_tokens, depth=s.num_heads * s.head_dim / t))  # row-parallel
    if t > 1:
        ops.append(Op("comm.attn_allreduce", "comm", count, 0, comm_bytes=n * t * h * 2, comm="allreduce", group=t))
    return ops


def scale_up_gpus(sc) -> int:
    """GPUs that reach each other over the scale-up fabric (NVLink, XGMI): a node's, or the accelerator's NVLink
    domain when it spans nodes (GB200/GB300 NVL72: 72 GPUs over 18 compute trays of 4), as far as the deployment
    reaches. Collectives inside it run at NVLink speed; beyond it over the scale-out NICs (RDMA)."""
    per_node = sc.gpus_per_node or 1
    domain = getattr(sc.accelerator, "scale_up_domain_gpus", None) if sc.accelerator is not None else None
    return max(per_node, domain or 0)


def ep_bytes_per_token(ep: int, top_k: int, gpus_per_node: int, per_node: bool) -> tuple[float, float]:
    """Copies of one token's hidden state sent to other ranks: (inside the node, across nodes).

    Each of the top-k experts sits on a uniformly random rank. DeepEP normal kernels (prefill) send one copy
    per remote node over RDMA and forward inside it over NVLink; low-latency kernels (decode) send one copy
    per remote rank straight over RDMA. Dispatch is fp8 (h bytes + scales) and combine bf16 (2h): 3h per copy.
    """
    local = min(ep, gpus_per_node)
    nodes = ceil(ep / local)
    p_rank = 1 - (1 - 1 / ep) ** top_k  # a given rank receives the token
    intra = (local - 1) * p_rank
    if nodes == 1:
        return intra, 0.0
    if per_node:
        p_node = 1 - (1 - 1 / nodes) ** top_k
        remote = (nodes - 1) * p_node
        return intra + remote * (local * p_rank / p_node), remote  # NVLink forwarding on the receiving node
    return intra, (ep - local) * p_rank


# Expert-parallel load imbalance. Every MoE layer ends in an all-to-all, so a step waits for the EP rank with the
# most routed tokens. After EPLB the per-expert load still varies from batch to batch with a coefficient of
# variation cv; a rank's load is the sum over its m experts (relative spread cv / sqrt(m)) and the busiest of ep
# ranks sits about sqrt(2 ln ep) spreads above the mean (Gaussian maximum):
#     busiest / mean = 1 + cv / sqrt(m) x sqrt(2 ln ep).
# cv = 0.19: LMSYS (lm-sys blog 2025-05-05) measured DeepSeek-V3 prefill on 32 H100 (EP32, 8 experts per rank) at
# 50,302 tok/s/node with in-distribution EPLB against 59,337 with simulated perfect balance: busiest rank 1.18x the
# mean = 1 + cv / sqrt(8) x sqrt(2 ln 32). APPROXIMATE: one published pair, assumed the same for every MoE model.
EXPERT_LOAD_CV = 0.19


def ep_load_imbalance(sc: Scenario) -> float:
    """Routed (token, expert) pairs of the busiest EP rank over the mean (1 without expert parallelism)."""
    e = sc.parallelism.ep
    if e <= 1 or not sc.model.spec.is_moe:
        return 1.0
    m = max(1.0, (sc.model.spec.n_routed_experts + sc.parallelism.redundant_experts) / e)
    return 1 + EXPERT_LOAD_CV / sqrt(m) * sqrt(2 * log(e))


def _ffn_ops(sc: Scenario, phase: str, n: float, moe_count: int, dense_count: int, skew: float,
             balanced: bool | tuple[int, int] = False) -> list[Op]:
    s, par = sc.model.spec, sc.parallelism
    h, G, e = s.hidden_size, par.gpus_per_stage, par.ep
    gd = dense_group(sc)
    ops: list[Op] = []
    mats = 3 if s.mlp_gated else 2  # SwiGLU gate, up, down; Nemotron-H's relu2 MLPs: up, down
    if dense_count:
        w3 = sum(_w(sc, r, "dense") for r in ("ffn_gate", "ffn_up", "ffn_down"))
        ops.append(_gemm("mlp.dense", dense_count, n, h, mats * s.intermediate_size, w3,
                         role_dtype(sc, "ffn_up", "dense"),
                         kernels=3, rows=n * gd,  # gate_up, SwiGLU, down
                         depth=swiglu_depth(h, s.intermediate_size / gd)))
        if gd > 1:
            ops.append(Op("comm.mlp_allreduce", "comm", dense_count, 0, comm_bytes=n * gd * h * 2, comm="allreduce",
                          group=gd))
    if not moe_count:
        return ops
    k, E = s.experts_per_token, s.n_routed_experts
    he = s.latent_expert_size or h  # latent MoE (Kimi-K3): experts and their all-to-all run at the latent width
    ops.append(Op("attn.ffn_norm", "elementwise", moe_count, 4 * n * par.tp * h, act_bytes=4 * n * par.tp * h))
    ops.append(_gemm("moe.router", moe_count, n * par.tp, h, E, _w(sc, "ffn_gate_inp", "moe"), "bf16",
                     kernels=2))  # + top-k
    stage_tokens = n * G
    per_rank = ceil((E + par.redundant_experts) / e)
    touched = distinct_experts(per_rank, E, k, stage_tokens, skew, balanced)
    expert_bytes = sum(_role_bytes(sc).get((r, "moe"), (0, 0, "bf16"))[1]
                       for r in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"))  # one expert, all three
    expert_tp = G / e
    busiest = 1.0 if balanced else ep_load_imbalance(sc)  # the busiest EP rank's routed tokens over the mean
    # (token, expert) pairs this GPU computes (its 1/expert_tp share of its rank's), on the busiest EP rank
    pairs = stage_tokens * k / G * busiest
    on_cpu = sc.expert_layers_on_cpu
    gpu_moe = moe_count - min(on_cpu, moe_count)
    inter = s.moe_intermediate_size
    if gpu_moe:
        ops.append(Op("moe.experts", "grouped_gemm", gpu_moe, pairs * 2 * mats * he * inter,
                      weight_bytes=touched * expert_bytes / expert_tp,
                      act_bytes=pairs * (2 * he + 6 * inter / expert_tp),
                      dtype=role_dtype(sc, "ffn_up_exps", "moe"), m=ceil(pairs * expert_tp / max(touched, 1)),
                      kernels=3, depth=swiglu_depth(he, inter / expert_tp),  # align/sort + two grouped GEMMs
                      config=(he, inter, k, E, round(expert_tp), e)))
    # gather tokens into expert order and scatter the outputs back (read + write, bf16), and SwiGLU over the
    # gate/up outputs (read 2I, write I): bandwidth-bound kernels beside the grouped GEMMs
    ops.append(Op("moe.permute_act", "elementwise", moe_count, 0,
                  act_bytes=pairs * (8 * he + 6 * inter / expert_tp), kernels=3))
    if on_cpu:
        # host-resident experts: computed by the CPU, or streamed to the GPU(s) over PCIe (NVLink-C2C from a
        # superchip's Grace memory) and computed there (cpu_compute false; and llama.cpp's op offload of large prompt
        # batches, engine host_prefill: pcie); each GPU streams its share: the touched experts of its EP rank
        # split over expert_tp (G / ep) GPUs
        stream = sc.gpu is not None and (
            not sc.cpu_compute or (phase == "prefill" and sc.engine.host_prefill == "pcie" and n >= 32))
        ops.append(Op("moe.experts_host", "cpu_experts", min(on_cpu, moe_count), pairs * 2 * mats * he * inter,
                      weight_bytes=touched * expert_bytes / (expert_tp if stream else 1),
                      dtype=role_dtype(sc, "ffn_up_exps", "moe"),
                      m=ceil(pairs / max(touched, 1)), where="pcie" if stream else "cpu",
                      # engines that run the CPU experts one after another (llama.cpp's mul_mat_id) pay the
                      # per-op dispatch for each touched expert's three matrices
                      kernels=3 * ceil(touched) if sc.engine.cpu_experts_sequential and not stream else 3))
    if s.shared_intermediate_size:
        w3 = sum(_w(sc, r, "moe") for r in ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"))
        shared_group = par.tp if e > 1 else gd  # as memory.gpu_share places the shared expert
        ops.append(_gemm("moe.shared", moe_count, n, h, mats * s.shared_intermediate_size, w3,
                         role_dtype(sc, "ffn_up_shexp", "moe"), kernels=3, rows=n * shared_group,
                         depth=swiglu_depth(h, s.shared_intermediate_size / shared_group)))
    if s.latent_expert_size:
        ops += latent_moe_ops(sc, n, moe_count, par.tp if e > 1 else gd)
    if e > 1 and (par.dp_attention > 1 or not sc.engine.ep_alltoall_needs_dp):
        intra, inter = ep_bytes_per_token(e, k, scale_up_gpus(sc), per_node=phase == "prefill")
        # the all-to-all ends when the busiest rank has received its tokens
        ops.append(Op("comm.ep_dispatch_combine", "comm", moe_count, 0, comm_bytes=n * intra * 3 * he * busiest,
                      rdma_bytes=n * inter * 3 * he * busiest, comm="alltoall", group=e))
    # TP-split experts (ep 1) reduce over the whole stage; with EP the shared expert and the TP-duplicated
    # tokens reduce over the attention TP group (the only MoE collective of an engine whose EP needs attention DP
    # for its all-to-all, when the deployment has none)
    reduce_group = G if e == 1 else par.tp
    if reduce_group > 1:
        ops.append(Op("comm.moe_allreduce", "comm", moe_count, 0, comm_bytes=n * reduce_group * h * 2,
                      comm="allreduce", group=reduce_group))
    return ops


def step_ops(sc: Scenario, phase: str, tokens_per_gpu: float, context: float, *, sq: int = 1,
             logits_tokens: float | None = None, skew: float = 0.0,
             balanced: bool | tuple[int, int] = False) -> list[Op]:
    """Ops of one step on the fullest GPU of a stage.

    tokens_per_gpu: new tokens per GPU (decode: sequences per GPU x sq); context: mean tokens attended;
    sq: tokens per sequence per step (1 + MTP drafts); logits_tokens: tokens needing lm_head per GPU;
    skew, balanced: the routing (distinct_experts; balanced also puts as many pairs on every EP rank)."""
    s, par = sc.model.spec, sc.parallelism
    layers = ceil(s.num_layers / par.pp)
    moe_layers = ceil(s.num_moe_layers / par.pp)
    dense_layers = layers - moe_layers
    n = tokens_per_gpu
    linear = ceil(s.num_linear_layers / par.pp)
    softmax = layers - linear
    if s.block_pattern:  # Nemotron-H: a block holds a mixer or a feed-forward, not both
        softmax -= ceil(s.num_mixerless_layers / par.pp)
        dense_layers = ceil(s.ffn_kinds.count("dense") / par.pp)
    ops = _attention_ops(sc, phase, n, context, softmax, sq)
    if s.mla_output_gate:
        ops += mla_output_gate_ops(sc, n, softmax)
    if linear:
        ops += linear_attention_ops(sc, phase, n, linear, sq)
    ops += _ffn_ops(sc, phase, n, moe_layers, dense_layers, skew, balanced)
    lm = n if logits_tokens is None else logits_tokens
    gv = dense_group(sc)
    ops.append(_gemm("head.lm_head", 1, lm * gv, s.hidden_size, s.vocab_size / gv, _w(sc, "output", "head"),
                     "bf16"))
    ops.append(Op("head.embed_sample", "elementwise", 1, 0, act_bytes=n * s.hidden_size * 2 + lm * s.vocab_size * 4,
                  kernels=4))  # embedding gather, final norm, softmax/top-p, sampling
    if par.pp > 1:
        ops.append(Op("comm.pp_send", "comm", 1, 0, comm_bytes=n * par.tp * s.hidden_size * 2, comm="p2p", group=2))
    return ops
