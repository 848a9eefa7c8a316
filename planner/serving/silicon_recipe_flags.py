"""InferenceMAX's recipe flags as data (planner.serving.silicon_recipes reads them): the TensorRT-LLM recipes' and the
SGLang recipes' memory, KV and CUDA-graph flags, by the date each silicon run was measured. No imports: rules are
plain functions of the run's lengths, GPUs, EP, concurrency and attention DP."""

from __future__ import annotations

# InferenceMAX's TensorRT-LLM recipes (trtllm-serve --extra_llm_api_options), as each file stood on main on the
# runs' measured dates: kv_cache_config dtype fp8 and free_gpu_memory_fraction, cuda_graph_config max_batch_size
# (enable_padding: decode batches up to it replay graphs), --max_num_tokens, and piecewise CUDA graphs for prompts
# (capture_num_tokens up to max_num_tokens). (model_paths, systems, precisions) -> entries (from date, rule, file @
# commit), a rule (isl, osl, gpus, ep, concurrency, attention DP) -> {kv_fp8, memory, graph, tokens, prefill_graphs};
# a key it leaves out keeps the engine profile's (silicon_recipes.TRT_OPTIONS says which are applied). Files are
# under benchmarks/.
_DSR1_PATHS = ("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3")


def _tokens(conc: int, isl: int, floor: int = 0) -> int:
    """MAX_NUM_TOKENS=$(( (CONC+ISL+64+63)/64*64 )), at least `floor` (8192 in the recipes from 2026-01-22)."""
    return max((conc + isl + 64 + 63) // 64 * 64, floor)


def _dsr1(memory: float, graph: int, floor: int = 0):
    """The DeepSeek recipes before their concurrency-dependent graph sizes: FP8 KV, a fixed memory fraction and
    graph size, MAX_NUM_TOKENS = CONC + ISL + 64 (at least `floor`)."""
    return lambda isl, osl, gpus, ep, conc, dp: {"kv_fp8": True, "memory": memory, "graph": graph,
                                                 "tokens": _tokens(conc, isl, floor)}


def _dsr1_fp8_b200_0129(isl, osl, gpus, ep, conc, dp):
    """dsr1_fp8_b200_trt.sh @ec7bafaa: graphs up to CONC; piecewise prompt graphs at 1k/1k from 64, 1k/8k from 128
    (below 256), 8k/1k from 64; at 1k/8k from 256 graphs up to CONC/8 and memory 0.7; 8k/1k on 4 GPUs memory 0.75."""
    out = {"kv_fp8": True, "memory": 0.8, "graph": conc, "tokens": _tokens(conc, isl, 8192)}
    piecewise = ((isl, osl) == (1024, 1024) and conc >= 64 or (isl, osl) == (1024, 8192) and 128 <= conc < 256
                 or (isl, osl) == (8192, 1024) and conc >= 64)
    if (isl, osl) == (1024, 8192) and conc >= 256:
        out |= {"graph": conc // 8, "memory": 0.7}
    if (isl, osl) == (8192, 1024) and gpus == 4:
        out["memory"] = 0.75
    return out | ({"prefill_graphs": out["tokens"]} if piecewise else {})


def _dsr1_fp4_b200_0203(isl, osl, gpus, ep, conc, dp):
    """dsr1_fp4_b200_trt.sh @6eecc0e6: graphs up to CONC (attention DP: CONC/4 from 4); piecewise prompt graphs at
    1k/1k on 8 GPUs with EP 8."""
    out = {"kv_fp8": True, "memory": 0.8, "graph": (conc if conc < 4 else conc // 4) if dp else conc,
           "tokens": _tokens(conc, isl, 8192)}
    return out | ({"prefill_graphs": out["tokens"]} if (isl, osl) == (1024, 1024) and gpus == 8 and ep == 8 else {})


TRT_RECIPES = (
    (("meta-llama/Llama-3.1-70B",), ("b200_sxm", "h200_sxm"), ("fp8", "fp4"), (
        ("2025-10-29", lambda isl, osl, gpus, ep, conc, dp: {"kv_fp8": True, "graph": 1024, "tokens": 16384},
         "70b_fp8_b200_trt_slurm.sh, 70b_fp4_b200_trt_docker.sh, 70b_fp8_h200_trt_slurm.sh @9596d23d"),)),
    (("openai/gpt-oss-120b",), ("b200_sxm",), ("fp4",), (
        ("2025-10-20", lambda isl, osl, gpus, ep, conc, dp: {"kv_fp8": True, "memory": 0.85, "graph": conc,
                                                             "tokens": 20000},
         "gptoss_fp4_b200_trt_slurm.sh @ac1998a5 (gptoss_fp4_b200_trt.sh @b0c4ed21 the same)"),)),
    (("openai/gpt-oss-120b",), ("h200_sxm",), ("fp4",), (
        ("2025-10-29", lambda isl, osl, gpus, ep, conc, dp: {"memory": 0.85, "graph": conc, "tokens": 20000},
         "gptoss_fp4_h200_trt_slurm.sh @9596d23d (gptoss_fp4_h200_trt.sh @b0c4ed21 the same)"),)),
    (_DSR1_PATHS, ("b200_sxm",), ("fp4",), (
        ("2025-10-29", _dsr1(0.8, 512), "dsr1_fp4_b200_trt_slurm.sh @9596d23d"),
        ("2026-01-22", _dsr1(0.8, 512, 8192), "dsr1_fp4_b200_trt.sh @b0c4ed21"),
        ("2026-02-03", _dsr1_fp4_b200_0203, "dsr1_fp4_b200_trt.sh @6eecc0e6"))),
    (_DSR1_PATHS, ("b200_sxm",), ("fp8",), (
        ("2025-10-29", _dsr1(0.8, 256), "dsr1_fp8_b200_trt_slurm.sh @9596d23d"),
        ("2026-01-22", _dsr1(0.8, 256, 8192), "dsr1_fp8_b200_trt.sh @b0c4ed21"),
        ("2026-01-29", _dsr1_fp8_b200_0129, "dsr1_fp8_b200_trt.sh @ec7bafaa"))),
    (_DSR1_PATHS, ("h200_sxm",), ("fp8",), (
        ("2025-10-29", _dsr1(0.75, 128), "dsr1_fp8_h200_trt_slurm.sh @9596d23d"),
        ("2026-01-22", _dsr1(0.75, 128, 8192), "dsr1_fp8_h200_trt.sh @b0c4ed21"))),
)


# The same SGLang recipes (planner.serving.silicon_recipes.SGLANG_RECIPES: same keys, dates and files) also pass
# --kv-cache-dtype fp8_e4m3, --mem-fraction-static, --cuda-graph-max-bs and --max-running-requests (a server with
# more requests in flight than that queues the rest: their TTFT waits for running ones to finish). (model_path,
# system, precision) -> rule (isl, osl, gpus, concurrency) -> {kv_fp8, memory, graph, running}.
def _dsr1_fp8_sglang(isl, osl, gpus, conc):
    """dsr1_fp8_b200_docker.sh @189ae51c (128 / 128 / 0.82), single_node/dsr1_fp8_b{2,3}00.sh: TP4 32 / 32 / 0.95."""
    return ({"kv_fp8": True, "memory": 0.95, "graph": 32, "running": 32} if gpus == 4 else
            {"kv_fp8": True, "memory": 0.82, "graph": 128, "running": 128})


def _dsr1_fp4_sglang(isl, osl, gpus, conc):
    return {"kv_fp8": True, "memory": 0.85, "graph": 256, "running": 256}


def _qwen35(memory: float, kv_fp8: bool, running: int | None = 128):
    """Qwen3.5 recipes: graphs up to CONC, --max-running-requests 128 (b300 fp8: CONC)."""
    return lambda isl, osl, gpus, conc: {"kv_fp8": kv_fp8, "memory": memory, "graph": conc,
                                         "running": running or conc}


_DSR1_SGLANG = {("b200_sxm", "fp4"): _dsr1_fp4_sglang, ("b200_sxm", "fp8"): _dsr1_fp8_sglang,
                ("b300_sxm", "fp4"): _dsr1_fp4_sglang, ("b300_sxm", "fp8"): _dsr1_fp8_sglang,
                ("h200_sxm", "fp8"): lambda isl, osl, gpus, conc: {  # single_node/dsr1_fp8_h200.sh @12ba0ae0
                    "memory": 0.82, **({"graph": 512, "running": 512} if (isl, osl) == (1024, 1024)
                                       else {"graph": 256, "running": 256})}}
SGLANG_MEMORY = {
    **{(m, *k): v for m in _DSR1_PATHS for k, v in _DSR1_SGLANG.items()},
    ("Qwen/Qwen3.5-397B-A17B", "b200_sxm", "bf16"): _qwen35(0.82, False),
    ("Qwen/Qwen3.5-397B-A17B", "b200_sxm", "fp8"): _qwen35(0.82, True),
    ("Qwen/Qwen3.5-397B-A17B", "b200_sxm", "fp4"): _qwen35(0.85, True),
    ("Qwen/Qwen3.5-397B-A17B", "b300_sxm", "bf16"): _qwen35(0.82, False),
    ("Qwen/Qwen3.5-397B-A17B", "b300_sxm", "fp4"): _qwen35(0.8, True),
    ("Qwen/Qwen3.5-397B-A17B", "b300_sxm", "fp8"): _qwen35(0.8, True, None),
    ("Qwen/Qwen3.5-397B-A17B", "h200_sxm", "fp8"): _qwen35(0.8, True),
    ("zhipuai/GLM-5", "b200_sxm", "fp8"): lambda isl, osl, gpus, conc: {"kv_fp8": True, "memory": 0.85, "graph": conc,
                                                                        "running": conc},
}


# aiconfigurator's aiperf-harness runs (silicon_recipes.AIC_HARNESS) deployed with the engine configuration its
# generator writes for an aggregated TensorRT-LLM worker of max_batch_size bs (the row's batch_size, per attention-DP
# rank): max_num_tokens = bs + ISL + 1500, enable_chunked_prefill false (the template's default), CUDA graphs for
# batches 1..bs and free_gpu_memory_fraction 0.80 (ai-dynamo/aiconfigurator
# src/aiconfigurator/generator/backends/trtllm.py "max_num_tokens heuristic" and
# templates/trtllm/extra_engine_args.1.0.0rc3.yaml.j2 @4361371a, 2025-10-14; the same budget, aligned to the 32-token
# KV block, in generator/rule_plugin/benchmark/trtllm.rule @HEAD). RECORDED, NOT APPLIED: as engine_options
# (max_batched_tokens, chunked_prefill false, cuda_graph_max_batch bs, memory_fraction 0.8) it made these 522 runs'
# TTFT median |error| 39% -> 59% (bias -31% -> -57%; TPOT 13% -> 12%). Unchunked, one 2,048- or 4,096-token prompt
# goes per step, so the simulated closed loop drifts apart and each prompt prefills nearly alone, while the runs
# measure about 4-5 steps (Qwen3-32B TP1 c=8: 506 / 1,124 ms at 2K / 4K against 117 / 236 ms simulated), as if the
# requests stayed in waves; what holds them together is not known (issue 18 note)
AIC_TRT_CONFIG = {"max_num_tokens": "bs + ISL + 1500", "enable_chunked_prefill": False,
                  "cuda_graph_batch_sizes": "1..bs", "free_gpu_memory_fraction": 0.80}
# The same generator's SGLang and vLLM workers (generator/rule_plugin/benchmark/{sglang,vllm}.rule, mapped by
# generator/config/backend_config_mapping.yaml @095f58a5): SGLang --max-prefill-tokens ISL + 1500 (since 95ddf241,
# 2025-12-04), --enable-mixed-chunk for aggregated workers (fa895ffb / 07a37792, 2026-01-19; engine_options
# mixed_chunk), --max-running-requests bs, --cuda-graph-bs 1..bs; vLLM --max-num-batched-tokens bs + ISL + 1500,
# --max-num-seqs bs, --cudagraph-capture-sizes 1..bs. RECORDED, NOT APPLIED (session 26, silicon tables): on the 154
# aggregated SGLang rows of the harness TTFT bias goes from -0.25..+0.04 to -0.74..-0.89 per concurrency band (all
# runs over 60%: 376 -> 457); on the 145 vLLM rows -0.16..-0.42 -> -0.49..-0.53 (376 -> 375). Like TensorRT-LLM's,
# the smaller budgets let the simulated closed loop drift apart, each prompt prefilling nearly alone, while these
# runs measure TTFT as if a round's requests arrived together: Qwen3-32B TRT-LLM TP1 H100 at concurrency 8 measures
# 506 / 1,124 ms at 2K / 4K prompts, (8 + 1) / 2 one-prompt steps of that budget (526 / 1,062 ms at the simulated
# 117 / 236 ms per step). Whether aiperf or Dynamo's frontend brings a round's requests in together is not known
AIC_GENERATED = {"sglang": {"max_prefill_tokens": "ISL + 1500", "enable_mixed_chunk": True,
                            "max_running_requests": "bs", "cuda_graph_bs": "1..bs"},
                 "vllm": {"max_num_batched_tokens": "bs + ISL + 1500", "max_num_seqs": "bs",
                          "cudagraph_capture_sizes": "1..bs"}}

# InferenceMAX's vLLM recipes for Kimi-K2.5 launch `vllm serve --tensor-parallel-size=$TP` with neither
# --enable-expert-parallel nor --data-parallel-size on every commit checked (benchmarks/single_node/
# kimik2.5_fp4_b200.sh @a58dedd5 2026-03-11, @64c20b6b, @79a42e20, @626932a1, @6c3acebf 2026-04-20;
# kimik2.5_fp4_b300.sh @a35e5369 2026-04-17 .. @ed5867f9 2026-05-12; kimik2.5_int4_b200.sh @eb02101e 2026-02-23,
# @64c20b6b, @79ea3651; kimik2.5_int4_h200.sh @70072ef5 2026-03-01 .. @749096c4): vLLM then shards every expert over
# the TP ranks, whatever EP the run id (..._tp4_ep4_n) or the CSV's columns (moe_ep 4, or the inflated 16) carry.
# Their TPOTs agree: ..._c4_tp4_0_ep4_0_572 (03-11) 8.42 ms, ..._c4_tp4_ep4_1294 (03-27) 8.36 ms, the dump's TP4
# cfg811 (04-20) 8.16 ms. Model paths whose every silicon_recipes.VLLM_RECIPES entry (the dated recipe files above)
# runs plain TP: their rows in force of such an entry are read as TP over all their GPUs
VLLM_TP_ONLY = frozenset({"moonshotai/Kimi-K2.5"})

# Disaggregated Kimi-K2.5 NVFP4 on GB200 with vLLM 0.18.0 behind NVIDIA Dynamo 1.0.1 (InferenceMAX PR #1008, 2026-04-07:
# "Recipes sourced from NVIDIA/srt-slurm branch sa-submission-q2-2026"; recipes/vllm/kimi-k2.5/{1k1k,8k1k}/
# disagg-gb200-*.yaml @8294e64e, 2026-04-06). Every one of the six recipes runs its prefill workers with
# --enforce-eager and --max-num-batched-tokens 16384, its decode workers with --max-num-batched-tokens 10240 (decode
# CUDA graphs FULL_DECODE_ONLY, capture size 16-1,024 by recipe: left at the profile's, the CSV does not say which
# recipe a row ran). (model_path, system, backend) -> (measured from, prefill pool options, decode pool options)
VLLM_DISAGG = {("moonshotai/Kimi-K2.5", "gb200", "vllm"): (
    "2026-04-06", {"enforce_eager": True, "max_batched_tokens": 16384}, {"max_batched_tokens": 10240})}
VLLM_DISAGG_NOTE = ("disaggregated vLLM rows of NVIDIA/srt-slurm's Dynamo recipes (Kimi-K2.5 gb200 from 2026-04-06, "
                    "sa-submission-q2-2026 @8294e64e): prefill pool engine_options enforce_eager true, "
                    "max_batched_tokens 16384; decode pool max_batched_tokens 10240 (silicon_recipe_flags.VLLM_DISAGG)")


def disagg_pool_options(row, measured: str | None) -> tuple[dict, dict]:
    """(prefill pool, decode pool) engine_options of a disaggregated CSV row whose recipe VLLM_DISAGG records, when it
    was `measured` (silicon_recipes.measured_on) from the recipe's date; else two empty mappings."""
    since, prefill, decode = VLLM_DISAGG.get((str(row.model_path), str(row.system), str(row.backend)), (None, {}, {}))
    return (prefill, decode) if since and measured and measured >= since else ({}, {})
