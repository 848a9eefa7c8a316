"""How each silicon run was benchmarked and served (planner.serving.silicon): the client, and the engine flags of
the recipe it ran, where the source publishes them. The CSV records neither; each mapping cites where it comes from,
and a row no mapping covers keeps the engine profile's defaults and InferenceMAX's client."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import replace

from planner.base.errors import PlannerError
from planner.base.limits import MAX_PROMPTS
from planner.model.models import load_model
from planner.serving.silicon_recipe_flags import SGLANG_MEMORY, TRT_RECIPES, VLLM_TP_ONLY

PROMPTS_PER_SLOT = 10  # num_prompts = 10 x concurrency: the CSV does not record it; InferenceMAX-style sweeps
# (`--num-prompts $((CONC * 10))`) run ten requests per slot, so the run is a closed loop in steady state
# lengths as the clients of such sweeps draw them: InferenceMAX's runs (the 1024/1024, 1024/8192 and 8192/1024 pairs
# and the 4-256 concurrency steps of these rows) pass --random-range-ratio 0.8 to a benchmark_serving.py whose
# random dataset draws integers in [L r, L] (InferenceMAX README "Benchmark Client Configuration"; the same "below"
# form as SGLang bench_serving). Mean lengths are then 0.9 L and requests finish at different steps, so a closed
# loop does not stay in synchronized waves (planner.serving.client.Lengths.random)
RANGE_RATIO = 0.8
# ... except the runs of aiconfigurator's own gap analysis (silicon_data_source ".../aic-auto-gap-analysis/...",
# served by NVIDIA Dynamo: "image=nvcr.io/nvidia/ai-dynamo/...-runtime"), benchmarked by the harness aiconfigurator
# generates beside each deployment (ai-dynamo/aiconfigurator src/aiconfigurator/generator/config/backend_templates/
# benchmark/bench_run.sh.j2 @095f58a5): `aiperf profile --isl L --isl-stddev 0 --osl L --osl-stddev 0` (stddev 0:
# deployment_config.yaml BenchConfig.isl_stddev / osl_stddev defaults) `--extra-inputs ignore_eos:true --concurrency
# C --num-requests C x 20` (BENCH_MULTI_ROUND 20) after `--warmup-request-count 2C`: fixed lengths, so a closed loop
# stays in waves where the engine keeps them. Dynamo's frontend (Rust HTTP server and tokenizer) takes the requests
# in, not the engine's Python API server: request_ingest_s 0 (its own per-request cost is not modelled)
AIC_HARNESS = "aic-auto-gap-analysis"
AIC_ROUNDS = 20  # (its generated engine configurations, not applied: silicon_recipe_flags.AIC_*)
# vLLM defaults that changed at a release (the engine profile models the newer), with the value rows of earlier
# releases run: async scheduling (SchedulerConfig.async_scheduling None -> on unless incompatible; overlap_schedule)
# from 0.14, vllm-project/vllm #27614 "[Core] Enable async scheduling by default" merged in the week to 2026-01-02,
# after 0.13.0; one API server per DP rank (api_server_count, profiles/engines/vllm.yaml) from 0.15
VLLM_DEFAULT_CHANGES = (((0, 14), "overlap_schedule", False), ((0, 15), "api_server_count", 1))
# InferenceMAX's SGLang recipes (SemiAnalysisAI/InferenceX), as each file stood on the runs' measured dates:
# - --scheduler-recv-interval (planner.serving.sim: the scheduler takes new requests in every N decode steps):
#   `if [[ $CONC -ge 16 ]]; then SCHEDULER_RECV_INTERVAL=30 else 10`, or one value; None: not passed (SGLang's 1);
# - --chunked-prefill-size = --max-prefill-tokens (a prefill batch's tokens: the engine's max_batched_tokens); dsr1
#   fp8's TP4 branch passes 8192 and recv 10; None: not passed (the engine profile's).
# (model_path, system, precision) -> (earliest measured date checked, recv (below concurrency 16, from 16) or None,
# chunked prefill, file @ commit). Rows of these keys measured earlier, other SGLang recipes (glm5_fp8_h200: none of
# these flags) and rows without a measured date keep the profile's defaults. --max-running-requests and
# --cuda-graph-max-bs are not mapped.
_DSR1 = {("b200_sxm", "fp4"): ("2025-11-02", (10, 30), 16384, "dsr1_fp4_b200_docker.sh @e06929c7; "
                                                               "single_node/dsr1_fp4_b200.sh @12ba0ae0"),
         ("b200_sxm", "fp8"): ("2025-11-18", (10, 30), 32768, "dsr1_fp8_b200_docker.sh @189ae51c; "
                                                               "single_node/dsr1_fp8_b200.sh @12ba0ae0"),
         ("b300_sxm", "fp4"): ("2026-04-17", (10, 30), 16384, "single_node/dsr1_fp4_b300.sh @dd9c285b"),
         ("b300_sxm", "fp8"): ("2026-04-17", (10, 30), 32768, "single_node/dsr1_fp8_b300.sh @dd9c285b"),
         ("h200_sxm", "fp8"): ("2026-03-25", None, 32768, "single_node/dsr1_fp8_h200.sh @12ba0ae0")}
SGLANG_RECIPES = {
    **{(m, *k): v for m in ("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3") for k, v in _DSR1.items()},
    **{("Qwen/Qwen3.5-397B-A17B", sys, prec): (date, (10, 30), 32768,
                                               f"single_node/qwen3.5_{prec}_{sys[:4]}.sh @{commit}")
       for sys, prec, date, commit in (("b200_sxm", "bf16", "2026-02-20", "67f51232"),
                                       ("b200_sxm", "fp8", "2026-03-03", "efd49e50"),
                                       ("b200_sxm", "fp4", "2026-04-08", "49db2008"),
                                       ("b300_sxm", "bf16", "2026-04-18", "e8924a6a"),
                                       ("b300_sxm", "fp4", "2026-04-18", "e8924a6a"))},
    ("Qwen/Qwen3.5-397B-A17B", "b300_sxm", "fp8"): ("2026-04-17", (10, 10), 16384,
                                                    "single_node/qwen3.5_fp8_b300.sh @dd9c285b"),
    ("Qwen/Qwen3.5-397B-A17B", "h200_sxm", "fp8"): ("2026-03-04", None, 16384,
                                                    "single_node/qwen3.5_fp8_h200.sh @f65d6b4b"),
    ("zhipuai/GLM-5", "b200_sxm", "fp8"): ("2026-03-20", None, 32768, "single_node/glm5_fp8_b200.sh @35d4bb36"),
}
MEASURED = re.compile(r"measured=(\d{4}-\d{2}-\d{2})")
# InferenceMAX's vLLM recipes, as each file stood on main on the runs' measured dates (git log --first-parent):
# --kv-cache-dtype fp8 (twice the KV tokens in the pool, half the KV bytes read per decode token) and
# --gpu-memory-utilization (the engine profile's memory_fraction). (model_path, system, precision) -> entries (from
# date, FP8 KV, memory fraction, file @ commit) in date order; a row takes the last entry dated on or before its
# measured date; rows measured before the first entry, or without a date, keep the engine profile's defaults (and
# the checkpoint's KV rule, silicon.kv_cache). --max-num-seqs $CONC is not mapped (the concurrency caps the batch).
# Files are under benchmarks/single_node/ unless a path is given.
VLLM_RECIPES = {
    **{("meta-llama/Llama-3.1-70B", system, prec): (("2025-10-29", True, 0.9, f"benchmarks/{files} @9596d23d"),)
       for system, prec, files in (("b200_sxm", "fp8", "70b_fp8_b200_docker.sh"),
                                   ("b200_sxm", "fp4", "70b_fp4_b200_docker.sh"),
                                   ("h100_sxm", "fp8", "70b_fp8_h100_docker.sh, 70b_fp8_h100_slurm.sh"),
                                   ("h200_sxm", "fp8", "70b_fp8_h200_slurm.sh"))},
    ("openai/gpt-oss-120b", "b200_sxm", "fp4"): (("2026-02-19", True, 0.9, "gptoss_fp4_b200.sh @8d81e0bf"),),
    ("MiniMaxAI/MiniMax-M2.5", "b200_sxm", "fp8"): (
        ("2026-03-11", False, 0.95, "minimaxm2.5_fp8_b200.sh @f342df18"),
        ("2026-04-03", True, 0.9, "minimaxm2.5_fp8_b200.sh @bddbf403")),
    ("MiniMaxAI/MiniMax-M2.5", "b200_sxm", "fp4"): (("2026-04-08", True, 0.9, "minimaxm2.5_fp4_b200.sh @79bd988e"),),
    ("MiniMaxAI/MiniMax-M2.5", "b300_sxm", "fp4"): (("2026-04-17", True, 0.9, "minimaxm2.5_fp4_b300.sh @22d0f12f"),),
    ("MiniMaxAI/MiniMax-M2.5", "b300_sxm", "fp8"): (("2026-04-17", True, 0.9, "minimaxm2.5_fp8_b300.sh @340d7854"),),
    ("MiniMaxAI/MiniMax-M2.5", "h100_sxm", "fp8"): (("2026-03-02", False, 0.9, "minimaxm2.5_fp8_h100.sh @ac0d2a85"),),
    ("MiniMaxAI/MiniMax-M2.5", "h200_sxm", "fp8"): (("2026-03-01", False, 0.95, "minimaxm2.5_fp8_h200.sh @a3634633"),),
    ("moonshotai/Kimi-K2.5", "b200_sxm", "fp4"): (
        ("2026-03-11", False, 0.9, "kimik2.5_fp4_b200.sh @a58dedd5"),
        ("2026-04-20", True, 0.9, "kimik2.5_fp4_b200.sh @6c3acebf")),
    ("moonshotai/Kimi-K2.5", "b300_sxm", "fp4"): (("2026-04-17", False, 0.9, "kimik2.5_fp4_b300.sh @a35e5369"),),
    ("moonshotai/Kimi-K2.5", "b200_sxm", "int4"): (("2026-02-23", False, 0.95, "kimik2.5_int4_b200.sh @eb02101e"),),
    ("moonshotai/Kimi-K2.5", "h200_sxm", "int4"): (("2026-03-02", False, 0.95, "kimik2.5_int4_h200.sh @749096c4"),),
}


def measured_on(row) -> str | None:
    """The date a row was measured (silicon_data_source measured=YYYY-MM-DD), or None."""
    m = MEASURED.search(str(row.silicon_data_source))
    return m.group(1) if m else None


def release(text) -> tuple[int, ...] | None:
    """(major, minor) of a release such as 0.17.0 or 1.2.0rc6.post1; None for nightlies and unstated versions."""
    m = re.match(r"(\d+)\.(\d+)", text) if isinstance(text, str) else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def _as_of(entries, row, backend: str):
    """The entry of a recipe's dated entries (from date first, in date order) in force when an InferenceMAX row of
    `backend` was measured: the last dated on or before it; None for another engine, an aiperf-harness row, a row
    without a measured date or one measured before the first entry."""
    measured = measured_on(row)
    if row.backend != backend or not entries or not measured or AIC_HARNESS in str(row.silicon_data_source):
        return None
    return next((e for e in reversed(entries) if e[0] <= measured), None)


def vllm_recipe(row) -> tuple[str, bool, float, str] | None:
    """The VLLM_RECIPES entry of an InferenceMAX vLLM row as of its measured date, or None."""
    return _as_of(VLLM_RECIPES.get((str(row.model_path), str(row.system), str(row.precision))), row, "vllm")


# InferenceMAX's TensorRT-LLM recipes with batch waiting (planner.serving.sim: context requests held while few
# tokens are scheduled), (model_paths, systems, precision, earliest date, rule (isl, osl, tp, concurrency) -> bool,
# (batch_wait_timeout_iters, batch_wait_max_tokens_ratio), file @ commit):
BATCH_WAIT = (
    (("meta-llama/Llama-3.1-70B",), ("b200_sxm", "h200_sxm"), ("fp4", "fp8"), "2025-09-19",
     lambda isl, osl, tp, conc: isl == osl == 1024 and tp < 8, (20, 0.9),
     "70b_fp8_b200_trt_slurm.sh, 70b_fp4_b200_trt_docker.sh, 70b_fp8_h200_trt_slurm.sh @ac1998a5: 1k/1k below TP8"),
    (("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3"), ("b200_sxm",), ("fp8",), "2026-01-29",
     lambda isl, osl, tp, conc: isl == osl == 1024 and conc >= 64, (40, 0.8),
     "dsr1_fp8_b200_trt.sh @ec7bafaa: DELAY_BATCHING at 1k/1k from concurrency 64"),
)

# the TRT_RECIPES flags applied, as engine_options. The recipes' --max_num_tokens (CONC + ISL + 64 for DeepSeek) is
# recorded but NOT applied: applied, it made these runs' TTFT worse (p90 69% -> 74% over 661 runs, e.g. DeepSeek-R1
# NVFP4 TP4 1K/1K at c=32: 351 ms measured, 682 ms predicted), so the simulator's reading of it (one prompt per
# iteration beside the decodes, as cpp/tensorrt_llm/batch_manager/microBatchScheduler.cpp reads without a chunking
# config) is not how those runs were scheduled; why is not understood yet (issue 18 note)
TRT_OPTIONS = {"memory": "memory_fraction", "graph": "cuda_graph_max_batch", "prefill_graphs": "graph_prefill_tokens"}


def trt_recipe(row, concurrency: int) -> dict | None:
    """The TRT_RECIPES flags of an InferenceMAX TensorRT-LLM row as of its measured date, or None."""
    entries = next((e for paths, systems, precisions, e in TRT_RECIPES if str(row.model_path) in paths
                    and str(row.system) in systems and str(row.precision) in precisions), None)
    entry = _as_of(entries, row, "trtllm")
    if entry is None:
        return None
    dp = degree(row.attention_dp_size)
    return entry[1](int(row.isl), int(row.osl), degree(row.tp_size) * dp, degree(row.moe_ep_size), concurrency, dp > 1)


def recipe_kv_fp8(row, concurrency: int) -> bool:
    """Whether a row's recipe (VLLM_RECIPES, TRT_RECIPES, SGLANG_MEMORY) runs an FP8 KV cache."""
    vllm, trt, sgl = vllm_recipe(row), trt_recipe(row, concurrency), sglang_memory(row, concurrency)
    return bool(vllm and vllm[1]) or any(bool(d and d.get("kv_fp8")) for d in (trt, sgl))


# InferenceMAX's TensorRT-LLM recipes with attention DP (rows whose attention_dp_size > 1) set attention_dp_config
# enable_balance: true, DeepSeek-R1 with timeout_iters 60 and batching_wait_iters 0, gpt-oss with the defaults
# (dsr1_{fp4,fp8}_b200_trt*.sh and dsr1_fp8_h200_trt*.sh at each measured date from 2025-12-15, e.g. @f6a9d0b6,
# @008b91a9, @d7dbd045; gptoss_fp4_b200_trt*.sh @359900b4, @d7dbd045):
ADP_BALANCE = {"deepseek-ai/DeepSeek-R1": {"timeout_iters": 60, "batching_wait_iters": 0},
               "deepseek-ai/DeepSeek-V3": {"timeout_iters": 60, "batching_wait_iters": 0},
               "openai/gpt-oss-120b": True}
ADP_BALANCE_FROM = "2025-12-15"


def benchmark(row, concurrency: int) -> tuple[str, dict, dict]:
    """(client label, scenario workload, engine_options) of one row."""
    harness = AIC_HARNESS in str(row.silicon_data_source)
    workload = {"phase": "serve", "concurrency": concurrency, "input_len": int(row.isl), "output_len": int(row.osl),
                "num_prompts": min(MAX_PROMPTS, (AIC_ROUNDS if harness else PROMPTS_PER_SLOT) * concurrency)}
    if not harness:
        workload |= {"random_range_ratio": RANGE_RATIO, "range_ratio_form": "below"}
    options = {"request_ingest_s": 0.0} if harness else {}
    measured = measured_on(row)  # recipes are matched by the date a run was measured
    if row.backend == "vllm" and (version := release(row.backend_version)):
        options |= {key: old for since, key, old in VLLM_DEFAULT_CHANGES if version < since}
    options |= sglang_flags(row, concurrency, measured)
    if (recipe := vllm_recipe(row)) is not None:
        options["memory_fraction"] = recipe[2]
    if (trt := trt_recipe(row, concurrency)) is not None:
        options |= {TRT_OPTIONS[k]: v for k, v in trt.items() if k in TRT_OPTIONS}
    if (wait := batch_wait(row, concurrency, measured)) is not None:
        options |= {"batch_wait_timeout_iters": wait[0], "batch_wait_max_tokens_ratio": wait[1]}
    if (row.backend == "trtllm" and measured and measured >= ADP_BALANCE_FROM and degree(row.attention_dp_size) > 1
            and str(row.model_path) in ADP_BALANCE):
        options["attention_dp_balance"] = ADP_BALANCE[str(row.model_path)]
    client = "aiconfigurator aiperf harness, Dynamo" if harness else "InferenceMAX-style benchmark_serving"
    return client, workload, options


# the SGLANG_MEMORY flags applied. --max-running-requests is recorded but NOT applied: DeepSeek-R1 FP8 on 8 x B200
# (dsr1_fp8_b200.sh: 128 on 8 GPUs since 2026-02-19) measures TPOT 28.7 / 42.6 / 68.8 ms at concurrency 128 / 256 /
# 512 and TTFT 2.1 s at 256: batches above 128 ran. SGLang 0.5.9 enforces the flag as a hard cap (scheduler.py
# get_num_allocatable_reqs: max_running_requests // pp_size - running), as the simulator reads it (40 s TTFT), so
# those runs most likely did not pass the file's 128 at their measured timestamp; which value they did is not known
SGLANG_OPTIONS = {"memory": "memory_fraction", "graph": "cuda_graph_max_batch"}


def sglang_memory(row, concurrency: int) -> dict | None:
    """The SGLANG_MEMORY flags of an InferenceMAX SGLang row from its SGLANG_RECIPES date on, or None."""
    found = SGLANG_RECIPES.get((str(row.model_path), str(row.system), str(row.precision)))
    rule = SGLANG_MEMORY.get((str(row.model_path), str(row.system), str(row.precision)))
    measured = measured_on(row)
    if row.backend != "sglang" or not found or not rule or not measured or measured < found[0]:
        return None
    return rule(int(row.isl), int(row.osl), degree(row.tp_size) * degree(row.attention_dp_size), concurrency)


def sglang_flags(row, concurrency: int, measured: str | None) -> dict:
    """engine_options of an InferenceMAX SGLang row's recipe (SGLANG_RECIPES) as of its `measured` date:
    scheduler_recv_interval and max_batched_tokens where the recipe passes them."""
    found = SGLANG_RECIPES.get((str(row.model_path), str(row.system), str(row.precision)))
    if row.backend != "sglang" or not found or not measured or measured < found[0]:
        return {}
    since, recv, chunk, _ = found
    tp4 = str(row.model_path).startswith("deepseek-ai") and str(row.precision) == "fp8" and degree(row.tp_size) == 4
    out = {"max_batched_tokens": 8192 if tp4 else chunk}
    memory = sglang_memory(row, concurrency) or {}
    out |= {SGLANG_OPTIONS[k]: v for k, v in memory.items() if k in SGLANG_OPTIONS}
    if recv is not None:
        out["scheduler_recv_interval"] = recv[0] if tp4 else recv[concurrency >= 16]
    return out


def batch_wait(row, concurrency: int, measured: str | None) -> tuple[int, float] | None:
    """(batch_wait_timeout_iters, batch_wait_max_tokens_ratio) of an InferenceMAX TensorRT-LLM row's recipe as of
    its `measured` date, or None (BATCH_WAIT)."""
    if row.backend != "trtllm" or not measured:
        return None
    for models, systems, precisions, since, rule, wait, _ in BATCH_WAIT:
        if (str(row.model_path) in models and str(row.system) in systems and str(row.precision) in precisions
                and measured >= since and rule(int(row.isl), int(row.osl), degree(row.tp_size), concurrency)):
            return wait
    return None


# InferenceMAX run ids name the deployment as "..._tp{T}_ep{E}_{n}": T GPUs (its recipes launch --tp T, with
# --ep-size E / --enable-expert-parallel on the same GPUs, and TensorRT-LLM's attention DP over those T ranks).
# Some rows of silicon_sample.csv (812 in aiconfigurator-core 0.12.0, all of source_file=2026-04-06.csv) carry T x E
# as their tp_size (or attention_dp_size) and T as moe_tp_size: e.g. ..._c4_tp4_ep4_1037 has tp_size 16,
# moe_tp_size 4, moe_ep_size 4, a 16-GPU plan for a 4-GPU run (its TPOT 9 ms is one 4-GPU node's). A row whose GPU
# count (tp_size x attention_dp_size) is T x E, not T, is read as the id says: T GPUs, expert parallel E, attention
# data parallel over the T GPUs where the row has attention DP, else tensor parallel.
RUN_ID_PLAN = re.compile(r"_tp(\d+)(?:_0)?_ep(\d+)(?:_0)?_\d+$")  # 2026-03-25's ids write the degrees as T_0, E_0
CONCURRENCY = re.compile(r"silicon_concurrency=(\d+)")  # the client's concurrency in silicon_data_source


def plan_from_id(row):
    """The row with its parallel columns read from its InferenceMAX run id where they multiply the id's GPU count by
    its expert-parallel degree (RUN_ID_PLAN), or, for a row of the inflating export (INFLATING_EXPORT) whose id does
    not name its plan, where the columns take one of that export's inflated forms (inflated_degree); then, where its
    recipe ran plain tensor parallelism (VLLM_TP_ONLY), TP over all its GPUs; any other row unchanged."""
    if row.mode != "agg":
        return row
    row = _plan_columns(row)
    if str(row.model_path) in VLLM_TP_ONLY and vllm_recipe(row) is not None:
        gpus = float(degree(row.tp_size) * degree(row.attention_dp_size))
        return row._replace(tp_size=gpus, attention_dp_size=1.0, moe_tp_size=gpus, moe_ep_size=1.0)
    return row


def _plan_columns(row):
    m = RUN_ID_PLAN.search(str(row.id))
    tp, dp = degree(row.tp_size), degree(row.attention_dp_size)
    if m:
        gpus, ep = int(m.group(1)), int(m.group(2))
    elif not str(row.silicon_data_source).startswith(INFLATING_EXPORT):
        return row
    else:
        gpus = ep = inflated_degree(tp, dp, degree(row.moe_tp_size), degree(row.moe_ep_size))
    if ep <= 1 or tp * dp != gpus * ep:
        return row
    tp, dp = (1, gpus) if dp > 1 else (gpus, 1)
    return row._replace(tp_size=float(tp), attention_dp_size=float(dp), moe_tp_size=float(gpus // ep),
                        moe_ep_size=float(ep))


# The export that inflates plans (source_file=2026-04-06.csv, and the database dump db-dump/2026-04-27, whose ids
# "..._cfgN" do not name the plan) writes a run of T GPUs with expert parallel E = T (the only EP > 1 InferenceMAX's
# aggregated recipes run) in one of three forms, each seen on named rows of that file (aiconfigurator-core 0.12.0):
# (tp T x T, dp 1, moe_tp T, moe_ep T): 160 rows, e.g. ..._tp8_ep8_n at tp_size 64; (tp 1, dp T x T, moe_tp T,
# moe_ep T): 34 rows; (tp T, dp T, moe_tp 1, moe_ep T x T): 40 rows. Read from the columns alone, the rule gives every
# named row of that file the plan its id gives, and it changes 192 rows of the dump (evaluated on 16 or 64 GPUs
# before, for an 8-GPU benchmark node). Other sources are left alone: aiconfigurator's own deployments do run hybrid
# expert TP x EP (..._tp4_epnone_n rows with moe_tp 2, moe_ep 2 on 4 GPUs).
INFLATING_EXPORT = ("source_file=2026-04-06.csv", "db-dump/")


def inflated_degree(tp: int, dp: int, moe_tp: int, moe_ep: int) -> int:
    """T where (tp, dp, moe_tp, moe_ep) is one of the inflated forms of a T-GPU, EP-T run, else 1."""
    k = math.isqrt(tp * dp)
    if k <= 1 or k * k != tp * dp:
        return 1
    if (moe_tp, moe_ep) == (k, k) and 1 in (tp, dp) or (tp, dp, moe_tp, moe_ep) == (k, k, 1, k * k):
        return k
    return 1


# One measurement appears up to four times in silicon_sample.csv (aiconfigurator-core 0.12.0: 3,619 aggregated rows,
# 3,082 distinct), e.g. 2026_03_25_..._tp4_0_ep4_0_342, 2026_04_06_..._tp4_ep4_1972, the database dump's
# qwen3_5_b200_sglang_fp8_..._cfg615 and aiconfigurator's gap-analysis file's qwen3_5_397b_gap_analysis_..._tp4_ep4_N:
# the same model, GPU, engine, precision, lengths and concurrency with the same TTFT and TPOT, the dump with the
# inflated plan above and the gap-analysis file rounded to 0.01 ms (338.34 for 338.3364140507183), so the times are
# compared at that rounding. Each is evaluated once: a row whose id names its plan (RUN_ID_PLAN) and whose source
# gives its measured date (the recipe flags of that day apply: SGLANG_RECIPES, VLLM_RECIPES, ...), else one that
# names its plan, else the first.
SAME_RUN = ("model_path", "system", "backend", "precision", "mode", "isl", "osl", "silicon_data_source_concurrency",
            "silicon_ttft_ms", "silicon_tpot_ms")
SAME_TIME_DECIMALS = 2  # ms: the gap-analysis file's rounding


@functools.cache
def _architectures(models: tuple) -> dict[str, str]:
    first: dict = {}
    out = {}
    for path, profile in models:
        try:
            spec = replace(load_model(profile).spec, name="")
        except PlannerError:  # the row is listed with the profile's error where it is mapped
            continue
        out[path] = first.setdefault(spec, profile)
    return out


def architectures(models: dict) -> dict[str, str]:
    """model_path -> the first mapped profile with its architecture (every spec field but the name equal), for
    `models` {model_path: (profile, why)}: DeepSeek-R1 and DeepSeek-V3 runs are one architecture's, so one
    measurement labelled with each is one run."""
    return _architectures(tuple((path, v[0]) for path, v in models.items()))


def duplicate_runs(df, architecture: dict[str, str] | None = None) -> dict[int, str]:
    """Row position -> the id of the row that stands for the same measurement (SAME_RUN), for every other copy.
    `architecture`: model_path -> a name shared by checkpoints of one architecture (the dump labels some
    DeepSeek-R1 runs of the 2026-04-06 file as DeepSeek-V3, e.g. ..._cfg83 and ..._tp8_ep1_40: same TTFT and TPOT to
    the last digit, same measured date)."""
    key = df.assign(silicon_data_source_concurrency=df.silicon_data_source.astype(str).str.extract(
        CONCURRENCY)[0].fillna(df.batch_size.astype(str)))
    if architecture:
        key = key.assign(model_path=key.model_path.map(lambda p: architecture.get(p, p)))
    times = {c: key[c].map(lambda v: round(float(v), SAME_TIME_DECIMALS)) for c in SAME_RUN[-2:]}
    key = key.assign(**times)[list(SAME_RUN)].astype(str)
    named = df.id.astype(str).map(lambda i: RUN_ID_PLAN.search(i) is not None)
    dated = df.silicon_data_source.astype(str).map(lambda s: MEASURED.search(s) is not None)
    out: dict[int, str] = {}
    for _, pos in key.groupby(list(SAME_RUN), sort=False).indices.items():
        if len(pos) < 2:
            continue
        keep = next((p for p in pos if named.iloc[p] and dated.iloc[p]), None)
        keep = next((p for p in pos if named.iloc[p]), pos[0]) if keep is None else keep
        out |= {int(p): str(df.id.iloc[keep]) for p in pos if p != keep}
    return out


def number(x, default: float | None = None) -> float | None:
    """A CSV cell as a number (empty / NaN: `default`)."""
    return default if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def degree(x, default: int = 1) -> int:
    """A parallel degree: 0 or empty means not used (1)."""
    v = number(x)
    return default if v is None or v <= 0 else int(v)


def recipe_notes() -> str:
    """The engine flags each recipe mapping above gives, with its file @ commit (the `engine_options` mapping note)."""
    short = lambda path: path.split("/")[-1]  # noqa: E731
    return ("SGLang rows of InferenceMAX recipes: --scheduler-recv-interval (10 below concurrency 16, 30 from 16), "
            "--chunked-prefill-size, and --kv-cache-dtype fp8_e4m3, --mem-fraction-static and --cuda-graph-max-bs "
            "(silicon_recipe_flags.SGLANG_MEMORY; its --max-running-requests is recorded, not applied: "
            "silicon_recipes.SGLANG_OPTIONS) where the recipe passes them (" + "; ".join(
                f"{short(k[0])} {k[1]} {k[2]} from {v[0]}: recv {v[1] or 'default'}, chunk {v[2]} ({v[3]})"
                for k, v in sorted(SGLANG_RECIPES.items())) + "); "
            "vLLM rows of InferenceMAX recipes: --kv-cache-dtype fp8 and --gpu-memory-utilization as the recipe "
            "stood on the measured date (" + "; ".join(
                f"{short(k[0])} {k[1]} {k[2]} from {d}: {'fp8 KV, ' if fp8 else ''}memory {frac} ({where})"
                for k, entries in sorted(VLLM_RECIPES.items()) for d, fp8, frac, where in entries) + "); "
            "TensorRT-LLM rows of InferenceMAX recipes: kv_cache_config dtype fp8 and free_gpu_memory_fraction, "
            "cuda_graph_config max_batch_size and piecewise prompt graphs as the recipe stood on the measured date "
            "(its --max_num_tokens is recorded, not applied: silicon_recipes.TRT_OPTIONS) (" + "; ".join(
                f"{', '.join(short(m) for m in paths)} {'/'.join(systems)} {'/'.join(precs)} from {d} ({where})"
                for paths, systems, precs, entries in TRT_RECIPES for d, _, where in entries) + "); "
            "TensorRT-LLM rows of InferenceMAX recipes with batch waiting: " + "; ".join(
                f"{', '.join(short(m) for m in b[0])} from {b[3]}: {b[5]} ({b[6]})" for b in BATCH_WAIT)
            + "; TensorRT-LLM rows with attention DP: attention_dp_config enable_balance (DeepSeek timeout_iters 60, "
            "batching_wait_iters 0; gpt-oss the defaults 50 / 10); vLLM rows of plain-TP recipes (" + ", ".join(
                short(m) for m in sorted(VLLM_TP_ONLY)) + ", the VLLM_RECIPES files above) run TP over all their "
            "GPUs whatever EP they carry")
