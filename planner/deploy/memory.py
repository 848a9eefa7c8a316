"""Memory fit per device: weights as planner.deploy.placement places them, KV pool by engine policy,
activation workspace and runtime overhead, and the reason when something does not fit.
Per-GPU numbers are those of the fullest GPU. On superchips (GH200, GB200, GB300) the Grace CPU's LPDDR5X is a
second tier: `grace_tier` moves the routed experts of the fewest MoE layers there when HBM is short.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil

from planner.base.units import gb
from planner.deploy.hybrid_pages import vllm_hybrid_pages
from planner.deploy.placement import WeightPlacement, dense_group, place_weights
from planner.deploy.scenario import Scenario
from planner.model.kv import KVLayout, kv_layout, paged_tokens


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
    kv_bytes_per_sequence_per_gpu: int  # one request at context_len (paged, window caps applied) + its state
    kv_tokens_per_gpu: int
    max_concurrency: float  # requests at context_len the deployment holds (all KV groups)
    max_batch_per_gpu: float  # decode sequences per GPU at the mean kv_len that fit in the pool
    weights_by_component: dict
    layout: KVLayout
    notes: tuple[str, ...] = ()  # assumption lines about the KV pool (vLLM's hybrid pages)


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
    spec, par, eng, wl = sc.model.spec, sc.parallelism, sc.engine, sc.workload
    place = place_weights(sc)
    layout = kv_layout(spec, sc.kv_cache)
    block = eng.mla_kv_block_tokens if spec.attention == "mla" else eng.kv_block_tokens
    layers_frac = place.stage_layers / spec.num_layers
    # layers with a per-token cache on the fullest stage (linear-attention layers hold a fixed state instead)
    cached_layers = place.stage_layers if not layout.linear_layers else \
        place.stage_layers * (layout.full_layers + layout.sliding_layers) / spec.num_layers
    per_token = ceil(layout.mean_layer_bytes(par.tp, spec.num_kv_heads) * cached_layers)
    # one request = its tokens' cache (window caps) + its linear-attention state (planner.model.kv)
    state = layout.state_bytes_per_gpu(par.tp, layers_frac)
    per_seq = layout.bytes_for_context(paged_tokens(wl.context_len, block), par.tp, spec.num_kv_heads,
                                       layers_frac) + state
    mean_len = round(wl.mean_kv_len)
    per_seq_mean = max(1, layout.bytes_for_context(paged_tokens(max(1, mean_len), block), par.tp,
                                                   spec.num_kv_heads, layers_frac) + state)
    notes: tuple[str, ...] = ()
    pages = vllm_hybrid_pages(spec, layout, par.tp, arch=sc.accelerator.arch, min_block_tokens=block,
                              layers_fraction=layers_frac, spec_tokens=sc.mtp_tokens) \
        if eng.hybrid_kv_pages and sc.accelerator is not None else None
    if pages:  # vLLM: whole enlarged attention blocks and padded state pages of one shared pool (hybrid_pages)
        notes = (pages.note(wl.context_len, per_seq),)
        per_seq, per_seq_mean = pages.bytes_for(wl.context_len), pages.bytes_for(max(1, mean_len))
    groups = par.dp_attention * par.replicas  # independent KV pools of one set of sequences each
    seqs_needed = _sequences_per_kv_group(sc)

    if sc.gpu is None:
        return _cpu_only(sc, place, layout, per_token, per_seq, per_seq_mean, seqs_needed)
    acc = sc.accelerator
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
        slots = max(1, seqs_needed or (1 if wl.phase == "prefill" else eng.max_num_seqs))
        pool = per_seq * slots
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
    host_reason = _host_check(sc, place)
    reason = reason or host_reason
    pool_i = max(0, int(pool))
    return MemoryReport(
        fits=not reason, reason=reason, capacity_bytes=cap, weights_bytes_per_gpu=w, kv_cache_bytes_per_gpu=pool_i,
        activation_bytes_per_gpu=act, runtime_bytes_per_gpu=rt, free_bytes_per_gpu=int(free),
        host_bytes=place.host_bytes, kv_bytes_per_token_per_gpu=per_token, kv_bytes_per_sequence_per_gpu=per_seq,
        # a pool allocated up front (llama.cpp n_ctx) holds its slots' whole contexts, whatever the per-token bytes of
        # the layers a sliding window caps (a hybrid's pool divided by full-layer bytes per token is fewer tokens)
        kv_tokens_per_gpu=(slots * max(1, wl.context_len) if eng.fraction_mode == "none" and not over
                           else pool_i // per_token if per_token else 0),
        max_concurrency=pool_i / per_seq * groups if per_seq else 0.0,
        max_batch_per_gpu=pool_i / per_seq_mean / par.tp,
        weights_by_component=dict(place.per_gpu_by_component), layout=layout, notes=notes,
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


def _host_check(sc: Scenario, place: WeightPlacement) -> str:
    if not place.host_bytes:
        return ""
    acc = sc.accelerator
    if sc.host is None and acc is not None and acc.grace_memory_bytes_per_gpu:
        # superchip: each GPU's share of the offloaded experts sits in the Grace memory beside it (the OS and the
        # engine's host process also live there; not counted)
        if place.host_bytes_per_gpu > acc.grace_memory_bytes_per_gpu:
            return (f"Grace-resident experts need {gb(place.host_bytes_per_gpu)} per GPU, {acc.display_name} has "
                    f"{gb(acc.grace_memory_bytes_per_gpu)} of Grace memory per GPU")
        return ""
    cap = getattr(sc.host, "memory_bytes", None)
    if cap and place.host_bytes > cap:
        return f"offloaded weights need {gb(place.host_bytes)} of host RAM, the host has {gb(cap)}"
    return ""


def grace_tier(sc: Scenario) -> tuple[Scenario, list[str]]:
    """The scenario with its superchip's Grace memory in use where HBM is short, and an assumption line saying so.

    A superchip scenario (the accelerator profile's `superchip_host_memory`, no host profile) whose weights, one
    request's KV, activations and runtime do not fit HBM keeps the routed experts of the fewest MoE layers in Grace
    memory, streamed over NVLink-C2C while the GPU computes (SGLang's GB200 prefill instances: "offload weights to
    the host memory with prefetching", lm-sys blog 2025-09-25). A scenario that fits HBM, or that states its
    offload, keeps its layers; HBM-only GPUs and scenarios with a host profile are returned unchanged."""
    acc = sc.accelerator
    if acc is None or not acc.grace_memory_bytes_per_gpu or sc.host is not None or not sc.model.spec.is_moe:
        return sc, []
    stated = bool(sc.expert_layers_on_cpu)
    if not stated:
        if memory_report(sc).fits:
            return sc, []

        def hbm_holds(n: int) -> bool:  # HBM fits; only the Grace side may still be short
            trial = replace(sc, expert_layers_on_cpu=n, cpu_compute=False)
            mem = memory_report(trial)
            return mem.fits or mem.reason == _host_check(trial, place_weights(trial))

        lo, hi = 1, sc.model.spec.num_moe_layers
        if not hbm_holds(hi):
            return sc, []
        while lo < hi:  # HBM use falls as layers move out: the fewest that fit
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if hbm_holds(mid) else (mid + 1, hi)
        sc = replace(sc, expert_layers_on_cpu=lo, cpu_compute=False)
    place = place_weights(sc)
    rate = acc.grace_stream_bytes_per_s or acc.host_link_bytes_per_s or 0
    return sc, [f"Grace memory tier: routed experts of {sc.expert_layers_on_cpu} of {sc.model.spec.num_moe_layers} "
                f"MoE layers live in {acc.display_name}'s Grace memory ({gb(place.host_bytes_per_gpu)} per GPU of "
                f"{gb(acc.grace_memory_bytes_per_gpu)}) and stream over NVLink-C2C at {gb(rate)}/s per GPU, "
                "prefetched while the GPU computes" + (", as the scenario states" if stated else
                                                        ", since weights and KV do not fit HBM")]


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
