"""Memory fit per device: weights placed by TP/EP/PP and offload, KV pool by engine policy,
activation workspace and runtime overhead, and the reason when something does not fit.

Placement rules (what engines shard and what they replicate):
- routed experts: spread over the GPUs of a pipeline stage: the fullest EP rank holds
  ceil((experts + redundant) / ep) of them (EPLB redundant copies; uneven when ep does not divide),
  each also TP-split over tp x dp_attention / ep GPUs;
  the first N MoE layers' experts go to host RAM with `offload.expert_layers_on_cpu: N`
  (llama.cpp --n-cpu-moe N);
- attention: column/row-parallel projections split by tp; MLA q_a_proj and kv_a_proj_with_mqa
  are replicated (vLLM/SGLang ReplicatedLinear); GQA K/V keep at least one head per rank;
  every dp_attention rank holds a full copy;
- embedding, lm_head, dense MLP and shared experts: split over the engine's `dense_split` group
  (vLLM: tp; SGLang: tp x dp_attention) or `parallelism.dense_tp`;
- norms, routers, vision tower: replicated; PP puts embedding and vision on the first stage,
  lm_head and the final norm on the last, layers evenly, MTP layers on the last.
Per-GPU numbers are those of the fullest GPU.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from math import ceil

from planner.base.units import gb
from planner.deploy.scenario import Scenario
from planner.model.inventory import COMPONENTS, TensorGroup, tensor_inventory
from planner.model.kv import KVLayout, kv_layout, paged_tokens

MLA_REPLICATED = {"attn_q_a", "attn_q_a_norm", "attn_kv_a_mqa", "attn_kv_a_norm", "attn_q_a.bias",
                  "attn_kv_a_mqa.bias"}
COLUMN_SPLIT_VECTORS = {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_sinks"}


@dataclass(frozen=True)
class WeightPlacement:
    per_gpu_bytes: int  # fullest GPU
    per_gpu_by_component: dict  # component -> bytes on the fullest GPU
    host_bytes: int  # weights in host RAM (offloaded experts, or everything when CPU-only)
    loaded_bytes: int  # one copy of everything the engine loads (GPU + host)
    stage_layers: int  # decoder layers on the fullest stage (for the KV share)


@dataclass(frozen=True)
class MemoryReport:
    fits: bool
    reason: str  # empty when it fits; otherwise names the quantity that does not fit
    capacity_bytes: int  # memory of one GPU (or host RAM when CPU-only)
    weights_bytes_per_gpu: int
    kv_cache_bytes_per_gpu: int  # KV pool the engine allocates (or needs, for engines without a pool)
    activation_bytes_per_gpu: int
    runtime_bytes_per_gpu: int
    free_bytes_per_gpu: int
    host_bytes: int
    kv_bytes_per_token_per_gpu: int  # one token, all layers on the fullest GPU
    kv_bytes_per_sequence_per_gpu: int  # one request at context_len (paged, window caps applied)
    kv_tokens_per_gpu: int
    max_concurrency: float  # requests at context_len the deployment holds (all KV groups)
    max_batch_per_gpu: float  # decode sequences per GPU at the mean kv_len that fit in the pool
    weights_by_component: dict
    layout: KVLayout


def _stage_of(t: TensorGroup, n_layers: int, pp: int) -> int:
    if t.part == "vision" or t.role == "token_embd":
        return 0
    if t.layer is None or t.layer >= n_layers:  # final norm, lm_head, MTP layers
        return pp - 1
    return t.layer * pp // n_layers


def dense_group(sc: Scenario) -> int:
    par = sc.parallelism
    if par.dense_tp:
        return par.dense_tp
    if par.ep > 1 and par.dp_attention > 1:
        # DP-attention + EP deployments (DeepSeek, SGLang DeepEP: --moe-dense-tp-size 1) run the dense layers
        # data-parallel beside attention rather than all-reducing them over the whole EP group
        return par.tp
    return {"tp": par.tp, "tp_dp": par.gpus_per_stage, "none": 1}[sc.engine.dense_split]


def gpu_share(t: TensorGroup, sc: Scenario) -> float:
    """Fraction of the tensor group one GPU of its stage holds."""
    spec, par = sc.model.spec, sc.parallelism
    comp, role = t.component, t.role
    if comp == "routed_experts":
        # the fullest EP rank holds ceil((E + redundant) / ep) experts, each TP-split over stage GPUs / ep
        per_rank = ceil((spec.n_routed_experts + par.redundant_experts) / par.ep)
        return per_rank / spec.n_routed_experts / (par.gpus_per_stage / par.ep)
    if comp == "shared_experts" and par.ep > 1:
        # with expert parallelism the shared expert follows the attention TP group (vLLM TP+EP splits it over tp;
        # DeepSeek/SGLang DP-attention + EP keep one whole copy per GPU: "2 routed + 1 shared expert per GPU")
        return 1 / par.tp
    if comp in ("dense_mlp", "shared_experts", "embedding", "lm_head"):
        return 1 / dense_group(sc)
    if comp == "attention" and t.part != "vision":
        if role in MLA_REPLICATED or role.startswith("nextn."):
            return 1.0
        if role in ("attn_k", "attn_v", "attn_k.bias", "attn_v.bias"):
            return max(1, spec.num_kv_heads // par.tp) / spec.num_kv_heads
        if t.is_matrix or role in COLUMN_SPLIT_VECTORS:
            return 1 / par.tp
    return 1.0


def place_weights(sc: Scenario) -> WeightPlacement:
    spec, fmt, par = sc.model.spec, sc.weights, sc.parallelism
    moe_layer_ids = [i for i, moe in enumerate(spec.moe_layers) if moe]
    offloaded = set(moe_layer_ids[: sc.expert_layers_on_cpu])
    stages: list[dict] = [defaultdict(float) for _ in range(par.pp)]
    host = loaded = 0
    for t in tensor_inventory(spec):
        if t.part in fmt.exclude_parts or (t.part == "mtp" and sc.mtp_tokens == 0):
            continue
        nbytes = fmt.tensor_bytes(t, spec)
        loaded += nbytes
        if sc.gpu is None or (t.component == "routed_experts" and t.layer in offloaded):
            host += nbytes
            continue
        stages[_stage_of(t, spec.num_layers, par.pp)][t.component] += nbytes * gpu_share(t, sc)
    totals = [sum(s.values()) for s in stages]
    k = max(range(par.pp), key=totals.__getitem__)
    by_comp = {c: ceil(stages[k].get(c, 0)) for c in (*COMPONENTS, "vision")}
    stage_layers = sum(1 for i in range(spec.num_layers) if i * par.pp // spec.num_layers == k)
    if sc.mtp_tokens and k == par.pp - 1:
        stage_layers += spec.mtp_layers
    return WeightPlacement(sum(by_comp.values()), by_comp, host, loaded, stage_layers)


def activation_bytes(sc: Scenario) -> int:
    """Peak transient memory of one forward over the engine's max_batched_tokens (approximate upper estimate).

    hidden:  T x h x 2 B x 4 live buffers (residual, normed input, attention output, FFN output)
    attn:    prefill MLA decompresses K and V per head: T x heads/tp x (q 192 + k 192 + v 128) x 2 B
             (GQA: T x (heads + 2 kv_heads)/tp x head_dim x 2 B)
    ffn:     gate+up output of the widest FFN for the tokens one GPU computes
             (MoE: T x top-k x 2 x moe_inter / (stage GPUs / ep) x 2 B, plus the T x top-k x h x 2 B
             per-expert outputs before the weighted combine, vLLM fused_moe intermediate_cache3;
             dense: T x 2 x inter / tp x 2 B)
    logits:  max_num_seqs x vocab x 4 B x 2 (fp32 logits and probabilities in the sampler, gathered
             from the vocab-parallel lm_head onto every rank)
    """
    spec, par, eng = sc.model.spec, sc.parallelism, sc.engine
    T, S = eng.max_batched_tokens, eng.max_num_seqs
    hidden = T * spec.hidden_size * 2 * 4
    heads = spec.num_heads / par.tp
    if spec.attention == "mla":
        attn = T * heads * (2 * spec.qk_head_dim + spec.v_head_dim) * 2
    else:
        attn = T * (heads + 2 * max(1, spec.num_kv_heads // par.tp)) * spec.head_dim * 2
    ffn_dense = T * 2 * spec.intermediate_size / dense_group(sc) * 2 if not all(spec.moe_layers) else 0
    ffn_moe = 0
    if spec.is_moe:
        expert_tp = par.gpus_per_stage / par.ep
        ffn_moe = T * spec.experts_per_token * 2 * spec.moe_intermediate_size / expert_tp * 2
        ffn_moe += T * spec.experts_per_token * spec.hidden_size * 2  # per-(token, expert) outputs before the combine
    logits = S * spec.vocab_size * 4 * 2  # vocab-parallel logits are gathered: every rank holds all of them
    return ceil(hidden + max(attn, ffn_dense, ffn_moe) + logits)


def runtime_bytes(sc: Scenario) -> int:
    eng = sc.engine
    multi = sc.parallelism.gpus_per_replica > 1
    return eng.cuda_context_bytes + (eng.nccl_bytes if multi else 0) + eng.cuda_graph_bytes


def memory_report(sc: Scenario) -> MemoryReport:
    from planner.hardware.accelerators import load_accelerator  # noqa: PLC0415

    spec, par, eng, wl = sc.model.spec, sc.parallelism, sc.engine, sc.workload
    place = place_weights(sc)
    layout = kv_layout(spec, sc.kv_cache)
    block = eng.mla_kv_block_tokens if spec.attention == "mla" else eng.kv_block_tokens
    layers_frac = place.stage_layers / spec.num_layers
    per_token = ceil(layout.per_gpu_layer_bytes(par.tp, spec.num_kv_heads) * place.stage_layers)
    per_seq = layout.bytes_for_context(paged_tokens(wl.context_len, block), par.tp, spec.num_kv_heads, layers_frac)
    mean_len = round(wl.mean_kv_len)
    per_seq_mean = max(1, layout.bytes_for_context(paged_tokens(max(1, mean_len), block), par.tp,
                                                   spec.num_kv_heads, layers_frac))
    groups = par.dp_attention * par.replicas  # independent KV pools of one set of sequences each
    seqs_needed = _sequences_per_kv_group(sc)

    if sc.gpu is None:
        return _cpu_only(sc, place, layout, per_token, per_seq, per_seq_mean, seqs_needed)
    acc = load_accelerator(sc.gpu)
    cap = acc.memory_bytes
    act, rt = (activation_bytes(sc), runtime_bytes(sc)) if eng.name != "ideal" else (0, 0)
    w = place.per_gpu_bytes
    frac = eng.fraction_for(par.gpus_per_stage * par.pp)
    label = f"{acc.display_name} has {gb(cap)}"
    reason = ""
    if eng.fraction_mode == "total":
        budget = frac * cap
        pool = budget - w - act - rt
        free = cap - budget
        over = w + act + rt > budget
        usable = f"{gb(budget)} usable at {eng.name} memory fraction {frac:g}"
    elif eng.fraction_mode == "static":
        static = frac * cap
        pool = static - w
        free = cap - static - act - rt
        over = w > static
        usable = f"{gb(static)} in {eng.name}'s static pool (mem_fraction_static {frac:g})"
        if not over and free < 0:
            reason = (f"activations and runtime need {gb(act + rt)} per GPU but only {gb(cap - static)} is left "
                      f"outside mem_fraction_static {frac:g}")
    elif eng.fraction_mode == "free_after_load":
        avail = cap - w - act - rt
        pool = frac * avail
        free = avail - pool
        over = avail < 0
        usable = label
    else:  # none: the KV for the configured context and slots is allocated up front
        budget = frac * cap
        pool = per_seq * max(1, seqs_needed or (1 if wl.phase == "prefill" else eng.max_num_seqs))
        free = budget - w - act - rt - pool
        over = w + act + rt > budget
        usable = f"{gb(budget)} usable" if frac < 1 else label
    if over:
        reason = (f"weights need {gb(w)} per GPU (+{gb(act + rt)} activations and runtime), "
                  f"{acc.display_name} has {gb(cap)} ({usable}); one {wl.context_len:,}-token request "
                  f"would need another {gb(per_seq)} of KV cache per GPU")
    elif not reason and pool < per_seq:
        reason = (f"KV cache for one {wl.context_len:,}-token request needs {gb(per_seq)} per GPU, "
                  f"only {gb(max(pool, 0))} is left after {gb(w)} of weights")
    elif not reason and eng.fraction_mode == "none" and free < 0:
        reason = (f"weights {gb(w)} + KV {gb(pool)} + activations and runtime {gb(act + rt)} need "
                  f"{gb(w + pool + act + rt)} per GPU, {usable}")
    elif not reason and seqs_needed and pool < seqs_needed * per_seq_mean:
        reason = (f"KV cache for {seqs_needed:g} sequences of {mean_len:,} tokens needs "
                  f"{gb(seqs_needed * per_seq_mean)} per GPU, the pool has {gb(pool)}")
    host_reason = _host_check(sc, place.host_bytes)
    reason = reason or host_reason
    pool_i = max(0, int(pool))
    return MemoryReport(
        fits=not reason, reason=reason, capacity_bytes=cap, weights_bytes_per_gpu=w, kv_cache_bytes_per_gpu=pool_i,
        activation_bytes_per_gpu=act, runtime_bytes_per_gpu=rt, free_bytes_per_gpu=int(free),
        host_bytes=place.host_bytes, kv_bytes_per_token_per_gpu=per_token, kv_bytes_per_sequence_per_gpu=per_seq,
        kv_tokens_per_gpu=pool_i // per_token if per_token else 0,
        max_concurrency=pool_i / per_seq * groups if per_seq else 0.0,
        max_batch_per_gpu=pool_i / per_seq_mean / par.tp,
        weights_by_component=place.per_gpu_by_component, layout=layout,
    )


def _sequences_per_kv_group(sc: Scenario) -> float:
    """Sequences one KV group (one attention rank's TP group) must hold at once.

    Only a decode `batch_per_gpu` is a hard requirement: the scenario says that many run together. A
    `concurrency` above what the pool holds is queued by the engine (it lowers the running batch, which the
    performance model accounts for), so it does not make a plan unfit; engines without a paged pool
    (llama.cpp, KTransformers) allocate KV for the concurrent requests they are given."""
    wl, par = sc.workload, sc.parallelism
    if wl.phase != "prefill" and wl.batch_per_gpu:
        return wl.batch_per_gpu * par.tp
    if sc.engine.fraction_mode == "none" and wl.concurrency:
        return wl.concurrency / (par.dp_attention * par.replicas)
    return 0


def _host_check(sc: Scenario, host_bytes: int) -> str:
    if not host_bytes or sc.host is None:
        return ""
    cap = getattr(sc.host, "memory_bytes", None)
    if cap and host_bytes > cap:
        return f"offloaded weights need {gb(host_bytes)} of host RAM, the host has {gb(cap)}"
    return ""


def _cpu_only(sc: Scenario, place: WeightPlacement, layout: KVLayout, per_token: int, per_seq: int,
              per_seq_mean: int, seqs_needed: float) -> MemoryReport:
    """No GPU: weights, KV and activations in host RAM."""
    cap = int(getattr(sc.host, "memory_bytes", 0) or 0)
    seqs = max(1, seqs_needed or 1)
    kv = int(per_seq * seqs)
    act = activation_bytes(sc)
    need = place.host_bytes + kv + act
    reason = ""
    if cap and need > cap:
        reason = (f"weights {gb(place.host_bytes)} + KV {gb(kv)} + activations {gb(act)} need {gb(need)} "
                  f"of host RAM, the host has {gb(cap)}")
    pool = max(0, cap - place.host_bytes - act) if cap else kv
    return MemoryReport(
        fits=not reason, reason=reason, capacity_bytes=cap, weights_bytes_per_gpu=0, kv_cache_bytes_per_gpu=0,
        activation_bytes_per_gpu=0, runtime_bytes_per_gpu=0, free_bytes_per_gpu=0, host_bytes=need,
        kv_bytes_per_token_per_gpu=per_token, kv_bytes_per_sequence_per_gpu=per_seq,
        kv_tokens_per_gpu=pool // per_token if per_token else 0,
        max_concurrency=pool / per_seq * sc.parallelism.replicas if per_seq else 0.0,
        max_batch_per_gpu=pool / per_seq_mean, weights_by_component={}, layout=layout,
    )


# engines that run attention data-parallel beside expert-parallel MoE (SGLang --enable-dp-attention, vLLM
# --data-parallel-size with --enable-expert-parallel, TensorRT-LLM enable_attention_dp)
DP_ATTENTION_ENGINES = ("sglang", "vllm", "trtllm")


def resolve_unstated_plan(sc: Scenario) -> tuple[Scenario, list[str]]:
    """Published cases that do not state the parallel plan (every field null) get the plan a tuned deployment
    would pick among d GPUs within a node, replicated over the remaining GPUs: TP d (EP d over the same GPUs for
    MoE), or for MoE models in engines with data-parallel attention also DP-attention d + EP d (the sizing
    search's plan family, planner.sizing.candidates.plans): the one with the highest decode throughput per GPU at the
    largest batch memory allows. With MLA, attention DP keeps one copy of each sequence's latent KV instead of
    one per TP rank, which is why throughput deployments of DeepSeek-class models use it."""
    if sc.parallelism.stated or sc.gpu is None:
        return sc, []
    from planner.serving.serve import best_decode_rate  # noqa: PLC0415  (serving builds on memory)

    spec, total, node = sc.model.spec, sc.total_gpus, max(sc.gpus_per_node, 1)
    best, best_rate, fallback = None, -1.0, sc
    for d in (d for d in range(1, node + 1) if node % d == 0 and total % d == 0):
        layouts = []
        if spec.num_heads % d == 0:
            layouts.append((d, d if spec.is_moe and d <= spec.n_routed_experts else 1, 1))
        if spec.is_moe and d > 1 and d <= spec.n_routed_experts and sc.engine.name in DP_ATTENTION_ENGINES:
            layouts.append((1, d, d))
        for tp, ep, dp in layouts:
            par = replace(sc.parallelism, tp=tp, ep=ep, pp=1, dp_attention=dp, replicas=total // d, stated=True)
            trial = replace(sc, parallelism=par)
            fallback = trial if fallback is sc or dp == 1 else fallback
            mem = memory_report(trial)
            if mem.fits:
                rate = best_decode_rate(trial, mem)
                if rate > best_rate:
                    best, best_rate = trial, rate
    chosen = best or fallback
    p = chosen.parallelism
    layout = f"tp {p.tp}" + (f" x dp_attention {p.dp_attention}" if p.dp_attention > 1 else "")
    return chosen, [f"parallelism not stated: assumed {layout}, ep {p.ep}, {p.replicas} replica(s), the plan with "
                    "the highest decode throughput per GPU that fits"]
