"""A scenario's engine as deployed: `engine_options` (the engine's launch flags a scenario states, overriding its
profile) and the CUDA-graph assumption for an operating point the planner chooses itself.

`wl` below is a planner.deploy.scenario.Workload (phase, batch_per_gpu, concurrency); this module sits below
scenario.py, which builds scenarios with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from planner.base import limits
from planner.base.errors import PlannerError
from planner.base.yamlio import get_choice, get_number
from planner.deploy.engines import Engine, read_api_server_count

ENGINE_OPTION_KEYS = ("memory_fraction", "max_batched_tokens", "max_num_seqs", "kv_block_tokens",
                      "max_running_requests", "cuda_graph_max_batch", "graph_prefill_tokens", "enforce_eager",
                      "kernel_tables",
                      "kernel_tables_version", "request_ingest_s", "api_server_count",
                      "scheduler_recv_interval", "batch_wait_timeout_iters", "batch_wait_max_tokens_ratio",
                      "attention_dp_balance", "chunked_prefill", "overlap_schedule", "mixed_chunk")
# TensorRT-LLM AttentionDpConfig defaults (tensorrt_llm/llmapi/llm_args.py): timeout_iters 50, batching_wait_iters 10
ADP_BALANCE_DEFAULTS = {"timeout_iters": 50, "batching_wait_iters": 10}
KERNEL_TABLES = ("auto", "default", "silicon")  # Engine.kernel_tables
MAX_TOKENS = limits.MAX_TOKENS


def chooses_batch(wl: Any) -> bool:
    """Whether the planner picks the running batch itself (decode or serve with neither batch_per_gpu nor concurrency:
    MLPerf offline/server style, sizing)."""
    return wl.phase != "prefill" and not wl.batch_per_gpu and not wl.concurrency


def tuned_for_chosen_batch(engine: Engine, wl: Any) -> Engine:
    """The engine as deployed for an operating point the planner chooses: CUDA graphs cover every step it runs.

    A stated batch or concurrency benchmarks a deployment as launched, with the engine's default graph sizes (steps
    outside them pay the host launch cost, planner.perf.steps.launch_seconds). An operating point the planner picks is
    one
    the deployment is configured for, as published tuned runs are: MLPerf submissions run TensorRT engines (C++
    runtime, no Python launches) or capture their batch sizes; NVIDIA's trtllm-serve recipes set
    cuda_graph_config.max_batch_size to the max batch; SGLang takes --cuda-graph-max-bs and piecewise prefill graphs.
    A scenario that states engine_options.cuda_graph_max_batch keeps it."""
    if not chooses_batch(wl) or (engine.cuda_graph_max_batch is None and not engine.pays_launch_floor):
        return engine
    return _every_step_graphed(engine)


@lru_cache(maxsize=256)
def _every_step_graphed(engine: Engine) -> Engine:
    """One tuned copy per engine (tuned_for_chosen_batch): the caches keyed by a scenario's engine then see the same
    object, its hash computed once."""
    return replace(engine, cuda_graph_max_batch=None, graph_prefill_tokens=MAX_TOKENS)


def apply_engine_options(engine: Engine, opts: Mapping, file: str) -> Engine:
    """Scenario overrides of engine settings (--gpu-memory-utilization / --mem-fraction-static, ...)."""
    if not opts:
        return engine
    pre = "engine_options."
    frac = get_number(opts, "memory_fraction", file, prefix=pre, default=None, minimum=0.05, maximum=1.0)
    tokens = get_number(opts, "max_batched_tokens", file, prefix=pre, default=None, integer=True, minimum=1,
                        maximum=MAX_TOKENS)
    seqs = get_number(opts, "max_num_seqs", file, prefix=pre, default=None, integer=True, minimum=1,
                      maximum=MAX_TOKENS)
    block = get_number(opts, "kv_block_tokens", file, prefix=pre, default=None, integer=True, minimum=1,
                       maximum=1 << 16)
    running = get_number(opts, "max_running_requests", file, prefix=pre, default=None, integer=True, minimum=1,
                         maximum=MAX_TOKENS)  # SGLang --max-running-requests
    graphs = get_number(opts, "cuda_graph_max_batch", file, prefix=pre, default=None, integer=True, minimum=0,
                        maximum=MAX_TOKENS)  # SGLang --cuda-graph-max-bs, vLLM max capture size
    # prompt steps of up to this many tokens replay CUDA graphs (SGLang piecewise graphs, TensorRT-LLM
    # cuda_graph_config piecewise capture_num_tokens, vLLM compile sizes); 0: prefill runs eagerly
    prefill_graphs = get_number(opts, "graph_prefill_tokens", file, prefix=pre, default=None, integer=True, minimum=0,
                                maximum=MAX_TOKENS)
    tables = get_choice(opts, "kernel_tables", KERNEL_TABLES, file, prefix=pre) if opts.get("kernel_tables") else None
    version = opts.get("kernel_tables_version")
    if version is not None:  # which import exists is checked where the GPU is known (planner.perf.steps)
        if not isinstance(version, str) or not version.strip() or "/" in version:
            raise PlannerError("expected an engine version such as 0.19.0", file=file,
                               field=f"{pre}kernel_tables_version")
        if (tables or engine.kernel_tables) == "default":
            raise PlannerError("an engine version of the silicon tables needs kernel_tables silicon or auto, not "
                               "default", file=file, field=f"{pre}kernel_tables_version")
    # the API server's per-request intake (Engine.request_ingest_s): 0 where requests come in through another
    # frontend, e.g. NVIDIA Dynamo's Rust HTTP server and tokenizer in front of the engine's worker
    ingest = get_number(opts, "request_ingest_s", file, prefix=pre, default=None, minimum=0, maximum=1)
    servers = (read_api_server_count(opts["api_server_count"], file, f"{pre}api_server_count")
               if opts.get("api_server_count") is not None else False)  # vLLM --api-server-count
    recv = get_number(opts, "scheduler_recv_interval", file, prefix=pre, default=None, integer=True, minimum=1,
                      maximum=100000)  # SGLang --scheduler-recv-interval
    if recv is not None and engine.scheduler_recv_interval is None:
        raise PlannerError(f"{engine.name} has no scheduler receive interval (SGLang's --scheduler-recv-interval); "
                           f"it takes new requests in every step", file=file, field=f"{pre}scheduler_recv_interval")
    wait = [get_number(opts, key, file, prefix=pre, default=None, integer=key.endswith("iters"), minimum=0,
                       maximum=1 if key.endswith("ratio") else 100000)
            for key in ("batch_wait_timeout_iters", "batch_wait_max_tokens_ratio")]  # TensorRT-LLM LLM API
    if any(w is not None for w in wait) and engine.batch_wait is None:
        key = "batch_wait_timeout_iters" if wait[0] is not None else "batch_wait_max_tokens_ratio"
        raise PlannerError(f"{engine.name} has no batch waiting (TensorRT-LLM's {key})", file=file, field=f"{pre}{key}")
    balance = _adp_balance(engine, opts, file, pre)
    changes: dict[str, Any] = {}
    # TensorRT-LLM enable_chunked_prefill (SGLang --chunked-prefill-size -1: off); overlap_schedule: TensorRT-LLM
    # disable_overlap_scheduler, SGLang --disable-overlap-schedule (true: off); enforce_eager: no CUDA graph and no
    # compiled step, each op launched from Python at the engine's eager_* host cost per op-record kernel
    flags = {key: opts.get(key) for key in ("chunked_prefill", "overlap_schedule", "enforce_eager", "mixed_chunk")}
    for key, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise PlannerError("expected true or false", file=file, field=f"{pre}{key}")
    changes.update({key: flags[key] for key in ("chunked_prefill", "overlap_schedule", "mixed_chunk")
                    if flags[key] is not None})
    if flags["enforce_eager"]:  # vLLM --enforce-eager, SGLang --disable-cuda-graph: every step op by op
        changes.update(cuda_graph_max_batch=0, graph_prefill_tokens=0, compiled_steps=False)
    if balance is not None:
        changes["adp_balance"] = balance or None
    if any(w is not None for w in wait):
        changes["batch_wait"] = tuple(w if w is not None else d for w, d in zip(wait, engine.batch_wait, strict=True))
    if recv is not None:
        changes["scheduler_recv_interval"] = recv
    if ingest is not None:
        changes["request_ingest_s"] = ingest
    if servers is not False:
        changes["api_server_count"] = servers
    if tables is not None:
        changes["kernel_tables"] = tables
    if version is not None:
        changes["kernel_tables_version"] = version
    if running is not None:
        changes["max_running_requests"] = running
    if graphs is not None:
        changes["cuda_graph_max_batch"] = graphs
    if prefill_graphs is not None:
        changes["graph_prefill_tokens"] = prefill_graphs
    if frac is not None:
        changes.update(memory_fraction=frac, memory_fraction_by_tp=())
    if tokens is not None:
        changes["max_batched_tokens"] = tokens
    if seqs is not None:
        changes.update(max_num_seqs=seqs, max_running_requests=running)
    if block is not None:
        changes.update(kv_block_tokens=block, mla_kv_block_tokens=block)
    return replace(engine, **changes)


def _adp_balance(engine: Engine, opts: Mapping, file: str, pre: str) -> tuple[int, int] | tuple | None:
    """engine_options.attention_dp_balance: true, false or {timeout_iters: N, batching_wait_iters: M} (TensorRT-LLM
    attention_dp_config with enable_balance) -> (timeout, batching wait), () for off, None when not stated."""
    value = opts.get("attention_dp_balance")
    if value is None:
        return None
    field = f"{pre}attention_dp_balance"
    if not engine.adp_balance_option:
        raise PlannerError(f"{engine.name} has no attention-DP balance (TensorRT-LLM's attention_dp_config)",
                           file=file, field=field)
    if value is False:
        return ()
    if value is True:
        value = {}
    if not isinstance(value, Mapping) or set(value) - set(ADP_BALANCE_DEFAULTS):
        raise PlannerError("expected true, false or {timeout_iters: N, batching_wait_iters: M}", file=file,
                           field=field)
    got = {k: get_number(value, k, file, prefix=f"{field}.", default=d, integer=True, minimum=0, maximum=100000)
           for k, d in ADP_BALANCE_DEFAULTS.items()}
    return got["timeout_iters"], got["batching_wait_iters"]
