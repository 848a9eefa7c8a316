"""Silicon validation (issue 18 item 3): NVIDIA aiconfigurator-core's `systems/silicon_sample.csv` as scenarios.

`python -m planner silicon [PATH] [--json] [--markdown FILE]`. The CSV holds end-to-end serving runs measured on
silicon: one row per (deployment, ISL/OSL, concurrency) with the measured mean TTFT and TPOT. Each aggregated row
becomes a scenario through planner.deploy.scenario.make_scenario, each disaggregated one a scenario with prefill and
decode pools (planner.deploy.disaggregation), and is estimated (the serving simulator runs its concurrency:
planner.serving.sim, planner.serving.disagg); planner.serving.silicon_report groups the errors (error = predicted /
measured - 1, as `validate`), by mode (agg | disagg) among others.

Every mapping is stated here and in the output (`mapping`); a row that cannot be mapped is listed in `skipped` with
its reason, never dropped. The CSV is read with pandas; aiconfigurator-core itself is never imported.

Columns used (aiconfigurator-core 0.12.0): model_path, system, backend, backend_version, mode (agg | disagg),
isl, osl, gemm_quant_mode, moe_quant_mode, precision, tp_size, pp_size, attention_dp_size, moe_tp_size,
moe_ep_size, batch_size (per attention-DP rank), silicon_data_source (`silicon_concurrency=N`: the client's
concurrency for the whole deployment), silicon_ttft_ms, silicon_tpot_ms; disaggregated rows: prefill_ and decode_
num_workers, tp_size, pp_size, attention_dp_size, moe_tp_size, moe_ep_size, batch_size.
"""

from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from planner.base.errors import PlannerError
from planner.deploy.disaggregation import disaggregated, pool
from planner.deploy.scenario import Scenario, make_scenario
from planner.model.models import Model, load_model
from planner.perf import steps
from planner.serving.estimate import estimate
from planner.serving.silicon_checks import beyond_one_replica
from planner.serving.silicon_recipe_flags import VLLM_DISAGG_NOTE, disagg_pool_options
from planner.serving.silicon_recipes import (
    AIC_HARNESS,
    AIC_ROUNDS,
    CONCURRENCY,
    PROMPTS_PER_SLOT,
    RANGE_RATIO,
    architectures,
    benchmark,
    degree,
    duplicate_runs,
    measured_on,
    number,
    plan_from_id,
    recipe_kv_fp8,
    recipe_notes,
    release,
)
from planner.serving.silicon_report import summarize

PACKAGE = "aiconfigurator_core"  # the `silicon` extra (pyproject.toml): NVIDIA aiconfigurator-core, Apache-2.0
COLUMNS = ("id", "silicon_data_source", "backend", "backend_version", "model_path", "system", "precision", "mode",
           "isl", "osl", "gemm_quant_mode", "moe_quant_mode", "batch_size", "tp_size", "pp_size",
           "attention_dp_size", "moe_tp_size", "moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms",
           *(f"{role}_{key}" for role in ("prefill", "decode") for key in (
               "batch_size", "num_workers", "tp_size", "pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size")))

# model_path (the checkpoint the engine loaded) -> model profile, and why where it is not the profile's hf_repo
MODELS = {
    "deepseek-ai/DeepSeek-R1": ("deepseek-r1", ""),
    "nvidia/DeepSeek-R1-NVFP4": ("deepseek-r1", "NVIDIA's NVFP4 quantization of DeepSeek-R1"),
    "deepseek-ai/DeepSeek-V3": ("deepseek-v3", ""),
    "nvidia/DeepSeek-V3.1-NVFP4": ("deepseek-v3", "DeepSeek-V3.1 has DeepSeek-V3's architecture (config.json)"),
    "moonshotai/Kimi-K2.5": ("kimi-k2.5", ""),
    "openai/gpt-oss-120b": ("gpt-oss-120b", ""),
    "Qwen/Qwen3-235B-A22B-FP8": ("qwen3-235b-a22b", "Qwen's FP8 (block-128) release of Qwen3-235B-A22B"),
    "Qwen/Qwen3.5-397B-A17B": ("qwen3.5-397b-a17b", ""),
    "meta-llama/Llama-3.1-70B": ("llama-3.1-70b", ""),
    "zhipuai/GLM-5": ("glm-5", "zai-org/GLM-5 (Zhipu AI's organisation, renamed)"),
    "MiniMaxAI/MiniMax-M2.5": ("minimax-m2.7", "MiniMax-M2.5 has MiniMax-M2.7's architecture (every shape field of "
                               "config.json equal; the context 196,608 vs 204,800 tokens)"),
    "Qwen/Qwen3-32B": ("qwen3-32b", ""),
    "nvidia/Qwen3-32B-NVFP4": ("qwen3-32b", "NVIDIA's NVFP4 quantization of Qwen3-32B"),
    "meta-llama/Llama-3.1-8B-Instruct": ("llama-3.1-8b", "the Instruct model has the base model's architecture"),
    "nvidia/Llama-3.1-8B-Instruct-FP8": ("llama-3.1-8b", "NVIDIA's FP8 quantization of Llama-3.1-8B-Instruct"),
}
# system -> (accelerator profile, GPUs per node as the runs used them: 8-GPU HGX boards; GB200/GB300 NVL72 racks
# are one NVLink domain of 72 GPUs, 4 per compute tray; the planner's nodes = ceil(GPUs / per node))
GPUS = {"h100_sxm": ("h100-sxm", 8), "h200_sxm": ("h200-sxm", 8), "b200_sxm": ("b200", 8), "b300_sxm": ("b300", 8),
        "gb200": ("gb200", 4), "gb300": ("gb300", 4)}
ENGINES = {"trtllm": "trtllm", "sglang": "sglang", "vllm": "vllm"}
# quantization mode (aiconfigurator's GEMMQuantMode / MoEQuantMode names) -> weight format profile
FORMATS = {"fp8_block": "fp8-block128", "fp8": "fp8", "nvfp4": "nvfp4", "int4_wo": "int4-g128", "bf16": "bf16",
           "float16": "bf16"}
# a row's format in the same family as the checkpoint's native one is the checkpoint's format: the engine loads the
# checkpoint as published (DeepSeek-R1 "fp8" is its block-128 FP8; gpt-oss "nvfp4" is its MXFP4 experts;
# Kimi-K2.5 "int4_wo" is its group-32 INT4)
FAMILIES = ({"fp8", "fp8-block128"}, {"nvfp4", "nvfp4-bf16-attn", "mxfp4"}, {"int4-g32", "int4-g64", "int4-g128"})
KV_CACHE = "bf16"  # the CSV does not record the KV cache dtype; bf16 is the engines' "auto" for these checkpoints
# ... unless the checkpoint declares a KV cache quantization (planner.model.models.Model.checkpoint_kv_cache) and the
# engine's "auto" uses it from this version on. vLLM: --kv-cache-dtype auto resolves to the checkpoint's FP8 for
# ModelOpt checkpoints (vllm/utils/torch_utils.py get_kv_cache_quant_algo_string: kv_cache_quant_algo, or a
# kv_cache_scheme {dynamic: false, num_bits: 8, type: float}) since PR #30785 (merged 2025-12-16, re-landing the
# reverted #29980), i.e. from v0.14.0 (v0.13.0 may already have it; no row here ran 0.13). SGLang and TRT-LLM are
# not mapped (bf16 kept): no source read here for their defaults with these checkpoints
CHECKPOINT_KV_FROM = {"vllm": (0, 14)}
PARALLEL_MIN = 40  # cases below which one process is faster than starting others
BANDS = ((4, "<=4"), (16, "5-16"), (64, "17-64"), (256, "65-256"), (math.inf, ">256"))

MAPPING = {
    "models": {k: v[0] + (f" ({v[1]})" if v[1] else "") for k, v in MODELS.items()},
    "gpus": {k: f"{v[0]}, {v[1]} per node" for k, v in GPUS.items()},
    "engines": ENGINES,
    "formats": {**FORMATS, "rule": "moe_quant_mode for MoE models, gemm_quant_mode for dense; NaN: precision, "
                "else the checkpoint's native format; a format in the native one's family is the native one, else "
                "that of a checkpoint the model profile lists as published in that family (Kimi-K2.5 nvfp4: "
                "nvfp4-bf16-attn, NVIDIA's Kimi-K2.5-NVFP4)"},
    "replicas": "an aggregated row whose measured rate needs more than the recorded GPUs' achievable matmul peak "
                "(MAMF) for its prompts' linear layers alone ran on more replicas than it records: skipped "
                "(silicon_checks.beyond_one_replica, every bound on the safe side)",
    "duplicates": "a measurement the CSV holds more than once (same model architecture, GPU, engine, precision, "
                  "mode, lengths, concurrency, TTFT and TPOT at 0.01 ms; DeepSeek-R1 and -V3 are one architecture) "
                  "is evaluated once, as the copy whose run id names its plan and whose source dates it (else one "
                  "that names its plan, else the first); the others are listed as skipped "
                  "(silicon_recipes.duplicate_runs)",
    "parallelism": "tp = tp_size, dp_attention = attention_dp_size (0 or empty = 1), ep = moe_ep_size (0 or empty "
                   "= 1); GPUs = tp x dp_attention; moe_tp_size x moe_ep_size must equal it; an aggregated row whose "
                   "InferenceMAX run id (..._tpT_epE_n) names T GPUs while its columns give T x E is read as the id "
                   "says: T GPUs, ep E, attention DP over them where the row has it, else tp T; a row of the same "
                   "export (2026-04-06.csv, db-dump) whose id does not name its plan is read the same way where its "
                   "columns take one of that export's inflated forms of a T-GPU, EP-T run "
                   "(silicon_recipes.plan_from_id)",
    "workload": f"phase serve, input_len = isl, output_len = osl, each drawn uniformly in [{RANGE_RATIO} L, L] "
                f"(--random-range-ratio {RANGE_RATIO}, the 'below' form of InferenceMAX's client; not in the CSV), "
                f"concurrency = silicon_concurrency (batch_size x attention_dp_size where absent), num_prompts = "
                f"{PROMPTS_PER_SLOT} x concurrency; rows of aiconfigurator's gap analysis ('{AIC_HARNESS}' in "
                f"silicon_data_source): its aiperf harness, fixed lengths (stddev 0), {AIC_ROUNDS} x concurrency "
                f"requests, and Dynamo's frontend in place of the engine's API server (request_ingest_s 0)",
    "kv_cache": f"{KV_CACHE} (not in the CSV), except fp8 where the row's vLLM or TensorRT-LLM recipe sets it "
                "(engine_options below), else the KV dtype the row's checkpoint declares where the engine's auto "
                "uses it: " + ", ".join(f"{e} >= {'.'.join(map(str, v))}" for e, v in CHECKPOINT_KV_FROM.items()),
    "disaggregation": "mode disagg: prefill_num_workers workers of (prefill_tp_size, prefill_attention_dp_size, "
                      "prefill_moe_ep_size) and decode_num_workers workers of the decode_* plan, each checked as "
                      "the aggregated plan is (pp 1, moe_tp x moe_ep = tp x dp); hardware = both pools' GPUs; "
                      "concurrency = silicon_concurrency (decode_batch_size x decode dp x decode workers where "
                      "absent); KV transfer over NVLink inside one NVLink domain (GB200/GB300 NVL72), else RDMA, "
                      "1 ms per transfer, first token from the prefill worker (planner.deploy.disaggregation "
                      "defaults; the CSV states none of them); rows without worker counts are skipped; "
                      "prefill_batch_size (1 in every row) and decode_batch_size (the concurrency's share per decode "
                      "rank) are not mapped: the engine profile's batch caps apply",
    "engine_version": "reported per row; the engine profile's defaults are used for every version, except that "
                      "vLLM rows of releases before 0.14 run without async scheduling (engine_options "
                      "overlap_schedule false) and those before 0.15 with one API server, not one per DP rank "
                      "(api_server_count 1; silicon_recipes.VLLM_DEFAULT_CHANGES)",
    "engine_options": recipe_notes() + "; " + VLLM_DISAGG_NOTE,
}


@dataclass(frozen=True)
class Case:
    """One aggregated CSV row as a scenario with what was measured."""

    id: str
    scenario: Scenario
    ttft_ms: float  # measured mean TTFT
    tpot_ms: float  # measured mean TPOT
    labels: dict = field(default_factory=dict)  # model, gpu, engine, version, format, plan, band: for grouping


def default_csv() -> str:
    """The installed aiconfigurator-core's silicon_sample.csv, found without importing the package (its spec's
    folder: importlib.util.find_spec of a top-level package runs none of its code)."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec else []
    for folder in folders:
        path = Path(folder) / "systems" / "silicon_sample.csv"
        if path.is_file():
            return str(path)
    why = "is not installed" if spec is None else "has no systems/silicon_sample.csv"
    raise PlannerError(f"{PACKAGE} {why}: pip install -e '.[silicon]' (aiconfigurator-core), or give the CSV's path")


def read_csv(path: str | Path) -> pd.DataFrame:
    """The CSV with its columns checked (a one-line PlannerError naming the first missing column)."""
    file = str(path)
    try:
        df = pd.read_csv(path, dtype={"backend_version": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise PlannerError(f"cannot read the CSV: {err}".splitlines()[0], file=file) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise PlannerError(f"not aiconfigurator's silicon_sample.csv schema: no column {missing[0]!r}", file=file)
    return df


def band(concurrency: float) -> str:
    return next(label for hi, label in BANDS if concurrency <= hi)


def to_case(row, file: str = "<silicon>") -> Case | str:
    """A Case, or the reason the row is skipped."""
    row = plan_from_id(row)
    model = MODELS.get(row.model_path)
    if model is None:
        return f"model {row.model_path} has no profile"
    gpu = GPUS.get(row.system)
    if gpu is None:
        return f"GPU {row.system} has no profile"
    engine = ENGINES.get(row.backend)
    if engine is None:
        return f"engine {row.backend} has no profile"
    try:
        moe = load_model(model[0]).spec.is_moe
    except PlannerError as err:
        return f"model profile {model[0]} does not load: {err}"
    split = row.mode == "disagg"
    plans = _pools(row, moe) if split else _plan(row, "", moe)
    if isinstance(plans, str):
        return plans
    m = CONCURRENCY.search(str(row.silicon_data_source))
    conc = int(m.group(1)) if m else None
    if conc is None and not split and number(row.batch_size) is not None:
        conc = int(round(row.batch_size * plans["dp_attention"]))
    if conc is None and split and number(row.decode_batch_size) is not None:
        conc = int(round(row.decode_batch_size * plans[1][1]["dp_attention"] * plans[1][0]))
    if not conc:
        return "no concurrency recorded"
    ttft, tpot = number(row.silicon_ttft_ms), number(row.silicon_tpot_ms)
    if not ttft or not tpot or ttft <= 0 or tpot <= 0:
        return "no measured TTFT/TPOT"
    gpus = sum(w * p["tp"] * p["dp_attention"] for w, p in plans) if split else plans["tp"] * plans["dp_attention"]
    client, workload, options = benchmark(row, conc)
    try:
        name = model[0]
        fmt, why = weight_format(row, load_model(name))
        if fmt is None:
            return why
        sc = make_scenario(name, weights=fmt, kv_cache=kv_cache(row, load_model(name), fmt, conc), gpu=gpu[0],
                           gpus_per_node=min(gpu[1], gpus),
                           nodes=math.ceil(gpus / gpu[1]), engine=engine, parallelism=None if split else plans,
                           workload=workload, engine_options=options,
                           name=str(row.id), file=file)
        if split:  # two pools (planner.deploy.disaggregation), the KV path and first token at their defaults
            (pw, pplan), (dw, dplan) = plans
            popt, dopt = disagg_pool_options(row, measured_on(row))
            sc = replace(sc, disaggregation=disaggregated(sc, pool(sc, "prefill", pw, pplan, popt),
                                                          pool(sc, "decode", dw, dplan, dopt)))
    except PlannerError as err:  # the planner's own checks (e.g. tp must divide the attention heads)
        return "not a valid scenario: " + ": ".join(x for x in (err.field, err.message) if x)
    shortest = int(row.isl) * workload.get("random_range_ratio", 1.0)
    if not split and (why := beyond_one_replica(sc, conc, shortest, int(row.osl), ttft, tpot)):
        return why
    version = row.backend_version if isinstance(row.backend_version, str) else "unstated"
    label = (f"{sc.disaggregation.prefill.label} | {sc.disaggregation.decode.label}" if split
             else sc.parallelism.label)
    labels = {"model": name, "gpu": gpu[0], "engine": engine, "version": f"{engine} {version}",
              "format": sc.weights.name, "plan": label, "concurrency": conc, "band": band(conc),
              "isl": int(row.isl), "osl": int(row.osl), "mode": "disagg" if split else "agg",
              "client": client}
    return Case(str(row.id), sc, ttft, tpot, labels)


def _plan(row, prefix: str, moe: bool) -> dict | str:
    """One engine's parallel plan from the row's <prefix>tp_size, attention_dp_size, moe_tp_size, moe_ep_size and
    pp_size columns, or why it cannot be mapped."""
    col = lambda key: getattr(row, prefix + key)  # noqa: E731
    who = f" ({prefix.rstrip('_')})" if prefix else ""
    if degree(col("pp_size")) != 1:
        return f"pipeline parallel runs not mapped{who}"
    tp, dp, ep = degree(col("tp_size")), degree(col("attention_dp_size")), degree(col("moe_ep_size"))
    if not moe:
        ep = 1  # a dense model's runs carry no expert plan (the moe_* columns are placeholders)
    elif degree(col("moe_tp_size")) * ep != tp * dp:
        return (f"parallel plan inconsistent{who}: moe_tp {degree(col('moe_tp_size'))} x moe_ep {ep} != tp {tp} x "
                f"dp {dp}")
    return {"tp": tp, "dp_attention": dp, "ep": ep}


def _pools(row, moe: bool) -> tuple | str:
    """((prefill workers, plan), (decode workers, plan)) of a disaggregated row, or why it cannot be mapped."""
    out = []
    for role in ("prefill", "decode"):
        workers = number(getattr(row, f"{role}_num_workers"))
        if workers is None or workers < 1:
            return "disaggregated: prefill/decode worker counts not recorded"
        plan = _plan(row, f"{role}_", moe)
        if isinstance(plan, str):
            return plan
        out.append((int(workers), plan))
    return tuple(out)


def weight_format(row, model: Model) -> tuple[str | None, str]:
    """The row's weight format profile (FORMATS, FAMILIES), or None and why."""
    native = model.native_weights
    mode = row.moe_quant_mode if model.spec.is_moe and isinstance(row.moe_quant_mode, str) else row.gemm_quant_mode
    if not isinstance(mode, str):
        mode = row.precision if isinstance(row.precision, str) else None
    if mode is None:
        return native, ""
    fmt = FORMATS.get(mode)
    if fmt is None:
        return None, f"format {mode} has no profile"
    if any(fmt in fam and native in fam for fam in FAMILIES):
        return native, ""
    # a published checkpoint in the row's family is the one the run loaded (Kimi-K2.5 "nvfp4": NVIDIA's
    # Kimi-K2.5-NVFP4, attention BF16)
    published = [f for f, _ in model.published if any(fmt in fam and f in fam for fam in FAMILIES)]
    return (published[0] if published else fmt), ""


def kv_cache(row, model: Model, fmt: str, concurrency: int = 1) -> str:
    """The row's KV cache dtype: FP8 where its recipe runs an FP8 KV cache (silicon_recipes.VLLM_RECIPES,
    TRT_RECIPES), else the checkpoint's declared one where the engine version's auto uses it, else bf16."""
    if recipe_kv_fp8(row, concurrency):
        return "fp8"
    declared = model.checkpoint_kv_cache(fmt)
    since = CHECKPOINT_KV_FROM.get(ENGINES.get(row.backend, ""))
    version = release(row.backend_version)
    if declared and since and version is not None and version >= since:
        return declared
    return KV_CACHE


def cases(df: pd.DataFrame, file: str = "<silicon>") -> tuple[list[Case], list[dict]]:
    """(cases, skipped rows with their reason), rows in the CSV's order."""
    out, skipped = [], []
    copies = duplicate_runs(df, architectures(MODELS))
    for k, row in enumerate(df.itertuples(index=False)):
        c = f"the same measurement as {copies[k]}" if k in copies else to_case(row, file)
        if isinstance(c, str):
            skipped.append({"id": str(row.id), "model": str(row.model_path), "gpu": str(row.system),
                            "engine": str(row.backend), "mode": str(row.mode), "reason": c})
        else:
            out.append(c)
    return out, skipped


def evaluate(case: Case) -> dict:
    """Estimate one case: predicted and measured TTFT and TPOT with their errors."""
    r = estimate(case.scenario, metrics_only=True)
    m = r["metrics"]
    row = {"id": case.id, **case.labels, "fits": r["fits"], "reason": r["reason"],
           "ttft_ms": case.ttft_ms, "tpot_ms": case.tpot_ms,
           "predicted_ttft_ms": m.get("ttft_ms"), "predicted_tpot_ms": m.get("tpot_ms")}
    return row | {f"{k}_error": None if row[f"predicted_{k}_ms"] is None
                  else row[f"predicted_{k}_ms"] / row[f"{k}_ms"] - 1 for k in ("ttft", "tpot")}


def run(path: str | Path, sample: int | None = None, jobs: int | None = None, kernel_tables: str | None = None) -> dict:
    """Map, estimate and group the CSV at `path` (every `sample`-th evaluable row when given), over `jobs` processes
    (default: every CPU; forked, so each starts with this process's loaded profiles), on the kernel tables
    `kernel_tables` names (with_tables; None: each run's engine's silicon tables where imported, else the default)."""
    t0 = time.perf_counter()
    df = read_csv(path)
    found, skipped = cases(df, str(path))
    if kernel_tables is not None:
        found = [with_tables(c, kernel_tables) for c in found]
    if sample and sample > 1:
        found = found[::sample]
    # deployments together: profiles, memory and step tables are looked up while still cached
    found.sort(key=lambda c: (c.labels["model"], c.labels["gpu"], c.labels["engine"], c.labels["plan"],
                              c.labels["format"], c.labels["isl"], c.labels["osl"], c.labels["concurrency"]))
    jobs = max(1, jobs or os.cpu_count() or 1)
    parts = [found[k * len(found) // (16 * jobs):(k + 1) * len(found) // (16 * jobs)] for k in range(16 * jobs)]
    results = None
    if jobs > 1 and len(found) >= PARALLEL_MIN and threading.current_thread() is threading.main_thread():
        try:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as executor:
                results = list(executor.map(_evaluate_all, parts))
        except (OSError, ValueError, BrokenProcessPool):  # no fork here: one process
            results = None
    if results is None:
        results = [_evaluate_all(found)]
    rows = [r for part, _ in results for r in part]
    skipped += [s for _, failed in results for s in failed]
    return summarize(str(path), len(df), rows, skipped, MAPPING, time.perf_counter() - t0, sample)


def with_tables(case: Case, tables: str) -> Case:
    """The case on the kernel tables --kernel-tables names (planner.perf.steps.with_kernel_tables: silicon for
    aggregated runs where imported, a disaggregated run's pools keeping the default table; or the default alone)."""
    sc = steps.with_kernel_tables(case.scenario, tables)
    if sc is case.scenario:
        return case
    return replace(case, scenario=sc, labels={**case.labels, "kernel_tables": tables})


def _evaluate_all(found: list[Case]) -> tuple[list[dict], list[dict]]:
    """(estimated rows, rows whose estimate the planner refused with the reason) of some cases, in order."""
    rows, failed = [], []
    for c in found:
        try:
            rows.append(evaluate(c))
        except PlannerError as err:
            failed.append({"id": c.id, "model": c.labels["model"], "gpu": c.labels["gpu"],
                           "engine": c.labels["engine"], "mode": c.labels["mode"],
                           "reason": f"estimate failed: {err}"})
    return rows, failed
