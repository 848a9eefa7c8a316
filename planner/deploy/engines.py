"""Serving-engine memory presets (`profiles/engines/<name>.yaml`): how much of the GPU an engine uses,
how it pages the KV cache, and what it reserves beside weights and KV."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

from planner.base.errors import PlannerError
from planner.base.yamlio import (
    PROFILES,
    check_keys,
    get_choice,
    get_number,
    get_str,
    load_document,
    profile_names,
    profile_path,
    require_mapping,
)
from planner.hardware.efficiency import DTYPES, Curve, read_curves
from planner.hardware.systems import CLASSES
from planner.model.kv import KV_DTYPES
from planner.model.quant import QuantFormat

ENGINES_DIR = PROFILES / "engines"
FRACTION_MODES = ("total", "static", "free_after_load", "none")
DENSE_SPLITS = ("tp", "tp_dp", "none")


@dataclass(frozen=True)
class Engine:
    name: str  # vllm | sglang | trtllm | llamacpp | ktransformers | mlx | ideal | ...
    fraction_mode: str  # what memory_fraction covers (see FRACTION_MODES and planner/deploy/memory.py)
    memory_fraction: float  # gpu_memory_utilization / mem_fraction_static / free_gpu_memory_fraction
    memory_fraction_by_tp: tuple[tuple[int, float], ...]  # SGLang: default fraction by TP size
    kv_block_tokens: int  # paged-KV block size in tokens
    mla_kv_block_tokens: int  # block size when the model uses MLA kernels (FlashMLA: 64)
    max_batched_tokens: int  # tokens per forward the activation buffers are sized for
    max_num_seqs: int  # sequences per step the sampler/logits buffers are sized for
    cuda_context_bytes: int  # CUDA context and library workspaces per GPU
    nccl_bytes: int  # collective buffers per GPU when more than one GPU works together
    cuda_graph_bytes: int  # captured CUDA graph memory pools per GPU
    dense_split: str  # embedding, lm_head, dense MLP, shared experts split over: tp | tp_dp (tp x dp_attention) | none
    source: str  # where the numbers come from
    overlap_comm: str = "none"  # none | tbo_ep (two micro-batches hide EP all-to-all behind compute when ep > 1)
    cpu_numa_aware: bool = False  # CPU expert kernels use every socket's DRAM bandwidth
    step_overhead_s: float = 0.0  # per-step host/scheduler time not hidden by CUDA graphs
    host_prefill: str = "cpu"  # cpu | pcie: where host-resident experts run for prompt batches (>= 32 tokens)
    cpu_memory_efficiency: float | None = None  # fraction of DRAM bandwidth the engine's CPU kernels reach
    cpu_compute_efficiency: float | None = None  # fraction of the CPU's AMX / AVX-512 peak its GEMMs reach
    # the same per CPU compute dtype (fp32: AVX-512 kernels for GGUF weights; int8 / bf16: AMX kernels), when an
    # engine's kernel families differ, each a fraction or a curve over GEMM rows; falls back to cpu_compute_efficiency
    cpu_compute_efficiency_by_dtype: tuple[tuple[str, Curve], ...] = ()
    # CUDA graphs: a replayed step costs GPU time only; one launched from Python at least its kernels' launches
    cuda_graph_max_batch: int | None = None  # decode batches (sequences per engine group) captured; None: all
    # the decode batch sizes the engine captures (up to its largest, cuda_graph_max_batch where set, which is then
    # captured too); a decode batch of b sequences replays the graph of the smallest captured size >= b, its extra
    # rows padding (graph_batch); None: every size is captured (no padding)
    cuda_graph_sizes: tuple[int, ...] | None = None
    graph_prefill_tokens: int = 0  # prefill / mixed steps up to this many tokens per group run as graphs
    eager_kernel_host_s: float = 0.0  # host time per op-record kernel outside a graph (0: not modelled)
    # the same for MLA models, whose op records stand for more real kernels (latent norms, rope, absorbed
    # projections, FP8 activation quantization); None: eager_kernel_host_s
    eager_kernel_host_mla_s: float | None = None
    # the same in an eager prefill of an MLA model, where the engine takes another path than in decode (SGLang: the
    # MHA prefill with its up-projections); None: eager_kernel_host_mla_s
    eager_prefill_kernel_host_mla_s: float | None = None
    # the same in an eager prefill of another MoE model (SGLang: the Triton fused-MoE launchers and the attention
    # backend's extend path); None: eager_kernel_host_s
    eager_prefill_kernel_host_moe_s: float | None = None
    # steps outside CUDA graphs run compiled code (vLLM's torch.compile / inductor): no launch floor modelled; the
    # eager_* figures then apply only with engine_options.enforce_eager (pays_launch_floor)
    compiled_steps: bool = False
    fused_qkv_a: bool = False  # MLA's q_a_proj and kv_a_proj_with_mqa as one GEMM, merged at load (planner.perf.ops)
    # ops on the CPU (all of them without a GPU) run synchronously, so their dispatch (PyTorch: Python/ATen and
    # OpenMP fork/join; ggml: the thread barrier per node) adds to the work: seconds per op-record kernel (0: none)
    cpu_op_host_s: float = 0.0
    cpu_experts_sequential: bool = False  # CPU expert kernels run the touched experts one at a time (llama.cpp)
    # the OpenAI-compatible API server takes in a request (chat template, tokenization, validation) in this many
    # seconds, one at a time, and streams no output while requests wait to be taken in (planner.serving.serve.wave)
    request_ingest_s: float = 0.0
    # API server processes taking requests in side by side (vLLM --api-server-count; None: one per attention-DP rank,
    # vLLM >= 0.15's default with its internal DP load balancer): the intake runs that many times faster
    api_server_count: int | None = 1
    # latency a request's first token spends outside the forward pass (HTTP, chat template, tokenizer, IPC to the
    # scheduler and back, detokenizer, first SSE chunk), added to every served TTFT
    first_token_path_s: float = 0.0
    mixed_chunk: bool = True  # prompt chunks share decode steps (vLLM, TRT-LLM); False: separate prefill batches
    # a prompt may be split over steps to fill the token budget (vLLM V1 always, SGLang --chunked-prefill-size,
    # TensorRT-LLM enable_chunked_prefill); False: a prompt is scheduled whole, in a step whose budget has room for
    # all of it (planner.serving.sim Replica._pieces)
    chunked_prefill: bool = True
    # the scheduler forms step k+1 while step k runs on the GPU (TensorRT-LLM PyTorch backend's overlap scheduler,
    # SGLang's overlap schedule, vLLM's async scheduling): it fetches new requests as step k starts, so one that
    # arrives during step k joins step k+2, not k+1 (planner.serving.sim Replica.run)
    overlap_schedule: bool = False
    # decode steps between the scheduler's polls for new requests (SGLang --scheduler-recv-interval, default 1);
    # None: the engine has no such knob and takes requests in every step (planner.serving.sim Replica._receives)
    scheduler_recv_interval: int | None = None
    # TensorRT-LLM's batch waiting (batch_wait_timeout_iters, batch_wait_max_tokens_ratio; 0 and 0.0 by default):
    # while requests decode, context requests wait up to that many iterations for the step's tokens to reach the
    # ratio of max_num_tokens (planner.serving.sim Replica._schedule); None: the engine has no such knob
    batch_wait: tuple[int, float] | None = None
    # TensorRT-LLM attention-DP balance (attention_dp_config: enable_balance, timeout_iters, batching_wait_iters;
    # off by default): context requests wait until every DP rank has one, for at most timeout_iters iterations while
    # every rank decodes, then batching_wait_iters more (planner.serving.gates); None: off or no such knob
    adp_balance: tuple[int, int] | None = None
    adp_balance_option: bool = False  # the engine offers it (engine_options.attention_dp_balance)
    # kernel tables (engine_options.kernel_tables, planner.perf.steps.uses_silicon_tables): "auto", "silicon" (also
    # calibration/silicon/<gpu>-<engine>.yaml: where imported / an error elsewhere) or "default" (default.yaml alone)
    kernel_tables: str = "auto"
    # with silicon tables: one engine version's import (<gpu>-<engine>@<version>.yaml, engine_options
    # .kernel_tables_version); None: the default import, each table dtype from the newest version holding it
    kernel_tables_version: str | None = None
    # weights streamed from host RAM to the GPU (offload with GPU compute): engines that copy from pageable
    # (mmap'd) memory go through the driver's staging buffer at this rate; None: pinned, at the link rate
    host_stream_pageable_bytes_per_s: float | None = None
    host_stream_overlap: bool = True  # False: a layer's copy and its GEMMs run one after the other
    max_running_requests: int | None = None  # scheduler cap on running sequences per group (None: max_num_seqs)
    # routed experts split by tensor parallelism (ep 1) run the engine's own fused-MoE kernel (vLLM/SGLang: Triton
    # fused_moe), not the default table's grouped GEMM (DeepGEMM, with expert parallelism): its compute efficiency
    # per dtype over rows per expert replaces the table's grouped_gemm curve (planner.perf.steps.machine)
    tp_moe_compute_by_dtype: tuple[tuple[str, Curve], ...] = ()
    # (latency_s, memory_fraction): the engine's fused-MoE kernels stream the experts' bytes at memory_fraction of
    # HBM after a fixed latency_s per call, t = max(compute, latency_s + bytes / (HBM x memory_fraction)), in place
    # of the calibration table's grouped_gemm memory fraction and floor (planner.perf.roofline.time_op); None: the
    # table's. W4A16 (Marlin) experts keep the table (their int4 compute curve describes them)
    fused_moe_stream: tuple[float, float] | None = None
    # capabilities: what the engine loads and offers (sizing reads them; a new engine is its profile alone)
    weight_formats: tuple[str, ...] = ("safetensors",)  # format names or families (safetensors | gguf) it loads
    weight_formats_cpu: tuple[str, ...] | None = None  # the same on a CPU-only server (None: weight_formats)
    ggml_forks: tuple[str, ...] = ()  # GGUF types of these forks' ggml it also runs (ik_llamacpp: IQ*_K/KS/KT/KL)
    kv_cache_dtypes: tuple[str, ...] = KV_DTYPES  # KV cache dtypes it offers (planner.model.kv.KV_DTYPES)
    attention_dp: bool = False  # runs attention data-parallel beside expert-parallel MoE
    # expert parallelism exchanges tokens (an all-to-all) only beside attention DP: without it every EP rank already
    # holds all tokens of its TP group, runs them through its own experts and the TP all-reduce sums the outputs
    ep_alltoall_needs_dp: bool = False
    # hybrid (attention + linear-attention) models share one block pool of enlarged attention pages and padded state
    # pages (vLLM's HybridAttentionMambaModelConfig; planner.deploy.hybrid_pages)
    hybrid_kv_pages: bool = False
    sizing: tuple[tuple[str, int], ...] = ()  # (system class, rank) the sizing search offers it on; rank 1 first

    def cpu_compute_for(self, dtype: str) -> Curve | None:
        """The engine's CPU GEMM efficiency for `dtype` over GEMM rows (None: the calibration table applies)."""
        by_dtype = dict(self.cpu_compute_efficiency_by_dtype)
        if dtype in by_dtype:
            return by_dtype[dtype]
        return Curve(((1.0, self.cpu_compute_efficiency),)) if self.cpu_compute_efficiency else None

    def loads(self, fmt: QuantFormat, cpu_only: bool = False) -> bool:
        """Whether the engine loads checkpoints in `fmt` (on a CPU-only server when `cpu_only`)."""
        allowed = self.weight_formats_cpu if cpu_only and self.weight_formats_cpu is not None else self.weight_formats
        return (fmt.name in allowed or fmt.family in allowed) and self.type_refusal(fmt) is None

    def type_refusal(self, fmt: QuantFormat) -> str | None:
        """Why the engine cannot run `fmt` in one line, or None: its tensor types (a fork's own ggml types), or a
        checkpoint layout only some engines' loaders read (the format's `engines`)."""
        if fmt.engines and self.name not in fmt.engines and self.name != "ideal":
            verb = "reads" if len(fmt.engines) == 1 else "read"
            return (f"{self.name} does not load {fmt.name}: only {', '.join(fmt.engines)} {verb} its checkpoint "
                    f"layout ({fmt.description})")
        missing = sorted(fmt.forks - set(self.ggml_forks))
        if not missing:
            return None
        return (f"{self.name} does not load {fmt.name}: it holds {', '.join(missing)}'s own GGUF quant types "
                f"(IQ*_K / IQ*_KS / IQ*_KT), which only an engine of that fork reads (e.g. engine {missing[0]})")

    @property
    def pays_launch_floor(self) -> bool:
        """A step outside a CUDA graph costs at least its kernels' Python launches (not compiled, an eager figure)."""
        return not self.compiled_steps and self.eager_kernel_host_s > 0

    @property
    def running_cap(self) -> int:
        return self.max_running_requests or self.max_num_seqs

    def graphed(self, group_tokens: float, prefill: bool) -> bool:
        """Whether a step of `group_tokens` tokens (decode: sequences x tokens each) replays a CUDA graph."""
        if prefill:
            return group_tokens <= self.graph_prefill_tokens
        return self.cuda_graph_max_batch is None or group_tokens <= self.cuda_graph_max_batch

    def graph_batch(self, batch: float) -> float:
        """The batch a decode step of `batch` sequences per engine group runs at: the smallest captured CUDA-graph
        size >= batch (padded rows), or the batch itself when every size is captured or it runs without a graph.
        cuda_graph_max_batch, where set, is captured whatever the list says; without it, a batch above the list's
        largest size replays no graph (vLLM) and is not padded."""
        sizes = self.cuda_graph_sizes
        if sizes is None or not self.graphed(batch, prefill=False):
            return batch
        top = self.cuda_graph_max_batch
        k = bisect_left(sizes, batch - 1e-9)
        if k < len(sizes) and (top is None or sizes[k] <= top):
            return float(sizes[k])
        return batch if top is None else float(top)

    def api_servers(self, dp_attention: int) -> int:
        """API server processes of a replica with `dp_attention` attention-DP ranks (api_server_count)."""
        return self.api_server_count or max(1, dp_attention)

    def fraction_for(self, tp_group: int) -> float:
        """Memory fraction; SGLang picks its default from the TP group size (largest entry <= tp_group)."""
        if not self.memory_fraction_by_tp:
            return self.memory_fraction
        chosen = self.memory_fraction_by_tp[0][1]
        for size, frac in self.memory_fraction_by_tp:
            if tp_group >= size:
                chosen = frac
        return chosen


def list_engines() -> list[str]:
    return profile_names(ENGINES_DIR)


@lru_cache(maxsize=32)
def load_engine(name: str) -> Engine:
    path = profile_path(ENGINES_DIR, name, "engine", "engine")
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, ("source", "fraction_mode", "memory_fraction", "memory_fraction_by_tp", "kv_block_tokens",
                     "mla_kv_block_tokens", "max_batched_tokens", "max_num_seqs", "cuda_context_bytes", "nccl_bytes",
                     "cuda_graph_bytes", "dense_split", "notes", "overlap_comm", "cpu_numa_aware", "step_overhead_s",
                     "host_prefill", "cpu_memory_efficiency", "cpu_compute_efficiency", "cuda_graph_max_batch",
                     "cuda_graph_sizes", "graph_prefill_tokens", "eager_kernel_host_s", "eager_kernel_host_mla_s",
                     "eager_prefill_kernel_host_mla_s", "eager_prefill_kernel_host_moe_s", "compiled_steps",
                     "fused_qkv_a", "cpu_op_host_s", "cpu_experts_sequential", "max_running_requests", "mixed_chunk",
                     "chunked_prefill", "overlap_schedule",
                     "host_stream_pageable_bytes_per_s", "host_stream_overlap", "tp_moe_kernel", "fused_moe_stream",
                     "request_ingest_s", "api_server_count", "scheduler_recv_interval", "batch_wait_timeout_iters",
                     "batch_wait_max_tokens_ratio", "attention_dp_balance",
                     "first_token_path_s", "weight_formats", "weight_formats_cpu", "kv_cache_dtypes", "attention_dp",
                     "ep_alltoall_needs_dp", "hybrid_kv_pages", "sizing", "ggml_forks"),
               file)
    mode = get_choice(doc, "fraction_mode", FRACTION_MODES, file)
    split = get_choice(doc, "dense_split", DENSE_SPLITS, file)
    by_tp = require_mapping(doc.get("memory_fraction_by_tp") or {}, file, "memory_fraction_by_tp")
    fractions = tuple(sorted((int(k), get_number(by_tp, k, file, prefix="memory_fraction_by_tp.", minimum=0.05,
                                                 maximum=1.0)) for k in by_tp))
    num = lambda key, **kw: get_number(doc, key, file, integer=True, minimum=0, **kw)  # noqa: E731
    return Engine(
        name=name, fraction_mode=mode,
        memory_fraction=get_number(doc, "memory_fraction", file, default=fractions[-1][1] if fractions else 1.0,
                                   minimum=0.05, maximum=1.0),
        memory_fraction_by_tp=fractions, kv_block_tokens=num("kv_block_tokens", default=1) or 1,
        mla_kv_block_tokens=num("mla_kv_block_tokens", default=1) or 1, max_batched_tokens=num("max_batched_tokens"),
        max_num_seqs=num("max_num_seqs"), cuda_context_bytes=num("cuda_context_bytes"), nccl_bytes=num("nccl_bytes"),
        cuda_graph_bytes=num("cuda_graph_bytes"), dense_split=split, source=get_str(doc, "source", file),
        overlap_comm=get_choice(doc, "overlap_comm", ("none", "tbo_ep"), file, default="none"),
        cpu_numa_aware=doc.get("cpu_numa_aware") is True,
        step_overhead_s=get_number(doc, "step_overhead_s", file, default=0.0, minimum=0, maximum=1),
        host_prefill=get_choice(doc, "host_prefill", ("cpu", "pcie"), file, default="cpu"),
        cpu_memory_efficiency=get_number(doc, "cpu_memory_efficiency", file, default=None, minimum=0.01, maximum=1),
        cpu_compute_efficiency=(get_number(doc, "cpu_compute_efficiency", file, default=None, minimum=0.01, maximum=1)
                                if not isinstance(doc.get("cpu_compute_efficiency"), dict) else None),
        cpu_compute_efficiency_by_dtype=_by_dtype(doc, "cpu_compute_efficiency", file),
        cuda_graph_max_batch=get_number(doc, "cuda_graph_max_batch", file, integer=True, default=None, minimum=0),
        cuda_graph_sizes=_graph_sizes(doc, file),
        graph_prefill_tokens=num("graph_prefill_tokens", default=0),
        eager_kernel_host_s=get_number(doc, "eager_kernel_host_s", file, default=0.0, minimum=0, maximum=1e-2),
        eager_kernel_host_mla_s=get_number(doc, "eager_kernel_host_mla_s", file, default=None, minimum=0,
                                           maximum=1e-2),
        eager_prefill_kernel_host_mla_s=get_number(doc, "eager_prefill_kernel_host_mla_s", file, default=None,
                                                   minimum=0, maximum=1e-2),
        eager_prefill_kernel_host_moe_s=get_number(doc, "eager_prefill_kernel_host_moe_s", file, default=None,
                                                   minimum=0, maximum=1e-2),
        cpu_op_host_s=get_number(doc, "cpu_op_host_s", file, default=0.0, minimum=0, maximum=1e-2),
        compiled_steps=doc.get("compiled_steps") is True,
        fused_qkv_a=doc.get("fused_qkv_a") is True,
        cpu_experts_sequential=doc.get("cpu_experts_sequential") is True,
        max_running_requests=get_number(doc, "max_running_requests", file, integer=True, default=None, minimum=1),
        mixed_chunk=doc.get("mixed_chunk", True) is not False,
        chunked_prefill=doc.get("chunked_prefill", True) is not False,
        overlap_schedule=doc.get("overlap_schedule") is True,
        scheduler_recv_interval=get_number(doc, "scheduler_recv_interval", file, integer=True, default=None, minimum=1,
                                           maximum=100000),
        batch_wait=((get_number(doc, "batch_wait_timeout_iters", file, integer=True, minimum=0, maximum=100000),
                     get_number(doc, "batch_wait_max_tokens_ratio", file, minimum=0, maximum=1))
                    if "batch_wait_timeout_iters" in doc else None),
        adp_balance_option="attention_dp_balance" in doc,
        host_stream_pageable_bytes_per_s=get_number(doc, "host_stream_pageable_bytes_per_s", file, default=None,
                                                    minimum=1e6, maximum=1e13),
        host_stream_overlap=doc.get("host_stream_overlap", True) is not False,
        tp_moe_compute_by_dtype=_tp_moe_kernel(doc, file),
        fused_moe_stream=_fused_moe_stream(doc, file),
        request_ingest_s=get_number(doc, "request_ingest_s", file, default=0.0, minimum=0, maximum=1),
        api_server_count=read_api_server_count(doc.get("api_server_count", 1), file, "api_server_count"),
        first_token_path_s=get_number(doc, "first_token_path_s", file, default=0.0, minimum=0, maximum=1),
        weight_formats=_names(doc, "weight_formats", file, None) or ("safetensors",),
        weight_formats_cpu=_names(doc, "weight_formats_cpu", file, None),
        ggml_forks=_names(doc, "ggml_forks", file, ("ik_llamacpp",)) or (),
        kv_cache_dtypes=_names(doc, "kv_cache_dtypes", file, KV_DTYPES) or KV_DTYPES,
        attention_dp=_bool(doc, "attention_dp", file),
        ep_alltoall_needs_dp=_bool(doc, "ep_alltoall_needs_dp", file),
        hybrid_kv_pages=_bool(doc, "hybrid_kv_pages", file),
        sizing=_sizing(doc, file),
    )


def _names(doc: dict, key: str, file: str, allowed: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A list of names under `key` (None when absent); with `allowed`, each must be one of them."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PlannerError("expected a non-empty list of names", file=file, field=key)
    for v in value:
        if allowed is not None and v not in allowed:
            raise PlannerError(f"unknown {v!r}; known: {', '.join(allowed)}", file=file, field=key)
    return tuple(value)


def read_api_server_count(value, file: str, field: str) -> int | None:
    """`api_server_count`: a number of API server processes, or `data_parallel_size` (one per attention-DP rank)."""
    if value == "data_parallel_size":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
        raise PlannerError(f"expected 1-1024 or data_parallel_size, got {value!r}"[:120], file=file, field=field)
    return value


def _graph_sizes(doc: dict, file: str) -> tuple[int, ...] | None:
    """`cuda_graph_sizes: [1, 2, 4, [8, 256, 8], ...]`: sizes, and [start, stop, step] ranges (stop excluded, as
    Python's range), expanded and sorted."""
    value = doc.get("cuda_graph_sizes")
    if value is None:
        return None
    sizes: set[int] = set()
    for item in value if isinstance(value, list) else [None]:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 1:
            sizes.add(item)
        elif (isinstance(item, list) and len(item) == 3 and all(isinstance(x, int) and not isinstance(x, bool)
                                                               for x in item) and 1 <= item[0] < item[1] <= 1 << 20
              and item[2] >= 1):
            sizes.update(range(*item))
        else:
            raise PlannerError(f"expected a list of sizes >= 1 and [start, stop, step] ranges, got {item!r}"[:120],
                               file=file, field="cuda_graph_sizes")
    return tuple(sorted(sizes))


def _bool(doc: dict, key: str, file: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise PlannerError(f"expected true or false, got {value!r}"[:120], file=file, field=key)
    return value


def _sizing(doc: dict, file: str) -> tuple[tuple[str, int], ...]:
    """`sizing: {system class: rank}`: where the sizing search offers the engine, and in which order."""
    entry = require_mapping(doc.get("sizing") or {}, file, "sizing")
    check_keys(entry, CLASSES, file, "sizing.")
    return tuple((cls, get_number(entry, cls, file, prefix="sizing.", integer=True, minimum=1, maximum=100))
                 for cls in CLASSES if cls in entry)


def engines_for_class(cls: str) -> list[Engine]:
    """Engines the sizing search offers on a system class, in their profiles' rank order (then by name)."""
    ranked = [(dict(e.sizing)[cls], e.name, e) for e in map(load_engine, list_engines()) if cls in dict(e.sizing)]
    return [e for _, _, e in sorted(ranked, key=lambda r: r[:2])]


def _tp_moe_kernel(doc: dict, file: str) -> tuple[tuple[str, Curve], ...]:
    """`tp_moe_kernel: {compute_by_dtype: {fp8: curve, ...}, source: "..."}` (planner.hardware.efficiency.DTYPES)."""
    if doc.get("tp_moe_kernel") is None:
        return ()
    entry = require_mapping(doc["tp_moe_kernel"], file, "tp_moe_kernel")
    check_keys(entry, ("compute_by_dtype", "source", "notes"), file, "tp_moe_kernel.")
    get_str(entry, "source", file, prefix="tp_moe_kernel.")
    return read_curves(entry.get("compute_by_dtype"), DTYPES, file, "tp_moe_kernel.compute_by_dtype")


def _fused_moe_stream(doc: dict, file: str) -> tuple[float, float] | None:
    """`fused_moe_stream: {latency_s: s, memory_fraction: f, source: "..."}` (Engine.fused_moe_stream)."""
    if doc.get("fused_moe_stream") is None:
        return None
    entry = require_mapping(doc["fused_moe_stream"], file, "fused_moe_stream")
    check_keys(entry, ("latency_s", "memory_fraction", "source", "notes"), file, "fused_moe_stream.")
    get_str(entry, "source", file, prefix="fused_moe_stream.")
    pre = "fused_moe_stream."
    return (get_number(entry, "latency_s", file, prefix=pre, minimum=0, maximum=1e-3),
            get_number(entry, "memory_fraction", file, prefix=pre, minimum=0.05, maximum=1.0))


CPU_DTYPES = ("fp32", "bf16", "int8")


def _by_dtype(doc: dict, key: str, file: str) -> tuple[tuple[str, Curve], ...]:
    """A mapping {cpu dtype: fraction or [[GEMM rows, fraction], ...]} under `key` (a plain number is read by
    the caller)."""
    value = doc.get(key)
    if not isinstance(value, dict):
        return ()
    curves = read_curves(value, CPU_DTYPES, file, key)
    for d, curve in curves:
        if any(f > 1 for _, f in curve.points):
            raise PlannerError("expected a fraction of at most 1", file=file, field=f"{key}.{d}")
    return curves
