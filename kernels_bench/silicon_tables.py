"""aiconfigurator-core's silicon op tables as the planner's op records (kernels_bench import-silicon's input side).

Which systems and engines have tables (SYSTEMS -> accelerator profile, ENGINES), where they are (data_root, found
by importing the `silicon` extra's package), which version holds each table dtype (find_tables, read_table: the
newest that has it), which rows are read (dtype mapped to a planner format, balanced routing, the model shapes this
planner is for, the kernel the engine runs: AUTO_MOE_KERNEL, NOT_GATED, KERNEL_PREFERENCE) and what is left out and
why (load_rows' `left_out`), and each row as the planner's own op records for the same shapes (moe_ops, gemm_ops,
mla_ops: planner.perf's counters, never re-derived here). The fit, report and calibration file are
kernels_bench/silicon.py's.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from kernels_bench import silicon_fit
from kernels_bench.silicon_mla import MLA_MODELS, mla_ops
from planner.base.errors import PlannerError
from planner.deploy.scenario import make_scenario
from planner.hardware.accelerators import load_accelerator
from planner.model.quant import storage_types
from planner.perf.ops import _gemm, step_ops
from planner.perf.roofline import _peak

SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "b200_sxm": "b200", "b300_sxm": "b300",
           "gb200": "gb200", "gb300": "gb300", "a100_sxm": "a100-sxm-80gb", "l40s": "l40s",
           "rtx_pro_6000_server": "rtx-pro-6000", "b60": "arc-pro-b60"}
ENGINES = ("sglang", "vllm", "trtllm")
# table dtype -> (planner storage type or weight format, curve key). fp8_block is preferred to per-tensor fp8 for the
# `fp8` curve: DeepSeek-V3/Kimi-family FP8 checkpoints are block-scaled (128 x 128).
GEMM_DTYPES = {"bfloat16": ("bf16", "bf16"), "fp8_block": ("fp8_block128", "fp8"), "fp8": ("fp8_tensor", "fp8"),
               "nvfp4": ("nvfp4", "fp4")}
# int4_wo: Kimi K2.5 ships group 32 (profiles/quant/int4-g32.yaml); its bytes are counted at group 32
# MXFP4 experts (gpt-oss) are counted at MXFP4's 4.25 bits per weight: w4a16_mxfp4 (BF16 activations) on the int4
# W4A16 curve, w4a8_mxfp4_mxfp8 (MXFP8 activations, Blackwell) on the fp4 one, each with a surface of its own (SURFACE)
MOE_DTYPES = {"bfloat16": ("bf16", "bf16"), "fp8_block": ("fp8-block128", "fp8"), "fp8": ("fp8", "fp8"),
              "int4_wo": ("int4-g32", "int4"), "nvfp4": ("nvfp4", "fp4"), "w4a16_mxfp4": ("mxfp4", "int4"),
              "w4a8_mxfp4_mxfp8": ("mxfp4", "fp4")}
# table dtypes whose kernels are a variant within their compute dtype: their rows fit a shape surface of their own
# (planner.hardware.efficiency.SURFACE_VARIANTS), which the planner uses for scenarios that run that variant:
# per-tensor FP8 GEMMs (CUTLASS scaled-mm) and MoE (ModelOpt FP8), MLA over an FP8 KV cache
SURFACE = {"gemm_perf": {"fp8": "fp8_tensor"},
           "moe_perf": {"fp8": "fp8_tensor", "w4a16_mxfp4": "mxfp4_w4a16", "w4a8_mxfp4_mxfp8": "mxfp4"},
           "generation_mla_perf": {"fp8": "fp8_kv"}, "context_mla_perf": {"fp8": "fp8_kv"}}
# shapes of the models this planner is for: GEMMs with K and N of at least 1,024 (the table also sweeps K = 64),
# MoE with hidden size >= 4,096 (DeepSeek-V3/Kimi 7,168, Qwen3-235B 4,096, ...)
MIN_GEMM_KN = 1024
MIN_MOE_HIDDEN = 4096
# ... except the MXFP4 tables, whose one published MoE of that format in this planner is gpt-oss (hidden size 2,880)
MIN_MXFP4_HIDDEN = 2880
HOLDOUT_EVERY = 5
MAX_ROWS = 1200  # per (table, dtype): the shape surfaces' least squares takes them all
# MoE rows with more EP ranks than this are held out of the shape surfaces (and reported beside them): the tables'
# EP kernels scan every token's routing (num_tokens x topk rows) though only 1/ep of the pairs are local, a
# variable the planner's op record (the GPU's own pairs, as after a DeepEP dispatch) does not carry
MAX_SHAPE_EP = 8
# a row's model shape, for leave-model-shape-out cross-validation (MLA: total heads = which model)
MODEL_SHAPE = {"gemm_perf": lambda r: (r.n, r.k), "moe_perf": lambda r: (r.hidden_size, r.inter_size, r.topk,
                                                                        r.num_experts),
               "generation_mla_perf": lambda r: (r.num_heads * r.tp_size,),
               "context_mla_perf": lambda r: (r.num_heads * r.tp_size,)}
# SGLang's MoE tables time two kernels for one dtype (Triton fused MoE and a FlashInfer one, about half the rows each);
# a row of each shape is kept of the kernel `--moe-runner-backend auto` runs for the MoE models here
# (sgl-project/sglang python/sglang/srt/server_args.py, model-specific adjustments): on SM100 (Blackwell),
# DeepseekV3ForCausalLM (DeepSeek-V3/R1, Kimi K2/K2.5 INT4) with fp8 / modelopt_fp8 / modelopt_fp4 and Qwen3-MoE with
# fp8 / modelopt_fp4 / no quantization run flashinfer_trtllm (PR #13489 for Qwen3); elsewhere (Hopper) `auto` is the
# Triton fused MoE. Tables with one kernel per dtype (every vLLM one, SGLang's int4 on Hopper) are as is; TRT-LLM's
# several backends: NOT_GATED and KERNEL_PREFERENCE below
AUTO_MOE_KERNEL = {("sglang", "sm100"): "sglang_flashinfer_trtllm_moe", ("sglang", "sm90"): "sglang_fused_moe_triton"}
ARCH = {"h100_sxm": "sm90", "h200_sxm": "sm90", "b200_sxm": "sm100", "b300_sxm": "sm100", "gb200": "sm100",
        "gb300": "sm100"}
# tables timed without CUDA graphs, one layer call per timing, so each call pays the engine's host-side dispatch
# (Python layers, activation quantization launches): vLLM's block-FP8 linear (ai-dynamo/aiconfigurator
# collector/vllm/collect_gemm.py, `benchmark_with_power(..., use_cuda_graph=gemm_type != "fp8_block")` with
# outside_loop_count 1 for fp8_block, from @4bed48d9, 2026-05-11). Their rows are max(host floor, kernel): on B200
# 89% of the DeepGEMM rows sit at 0.23 ms +- 13% whatever m, n and k (GPU-bound ones reach 0.01 ms in the graph-timed
# tables), so only rows well above the floor say anything of the kernel (silicon_fit.host_floors). The planner times
# steps under CUDA graphs: the floor is reported, never written as a kernel's speed. (engine, table, dtype)
EAGER_TIMED = {("vllm", "gemm_perf", "fp8_block")}
# Per-tensor FP8 GEMM rows are timed with dynamic activation scaling, each call computing its input's scale first:
# TensorRT-LLM's collector loads no input_scale, "so TRT-LLM's FP8QDQ method runs its dynamic-quantization path and
# the collected fp8 GEMM includes the compute-scale overhead" (ai-dynamo/aiconfigurator collector/trtllm/
# collect_gemm.py @095f58a5); vLLM's runs Fp8Config(activation_scheme="dynamic"), SGLang's sgl_per_token_quant_fp8.
# The planner's per-tensor format is ModelOpt's, with a static input_scale per linear (profiles/quant/fp8.yaml), so the
# served kernel quantizes with a known scale. Each engine's quantize/<engine>/<version>/computescale_perf.parquet
# times the difference, dynamic minus static quantization of the same (m, k) activations
# (collector/<engine>/collect_computescale.py); it is taken off each such row, not below the GEMM's roofline at peak
# (aiconfigurator's own fp8_static: aic-core operators/gemm.rs). At m <= 64 it is 8.2-10 us on B200 TRT-LLM (a
# 1,024 x 8,192 row: 18.4 us measured, 10.2 us static, BF16 9.1 us), 0.6-1.2 us on vLLM, 0 on SGLang.
STATIC_SCALED = {"gemm_perf": ("fp8",)}
# TensorRT-LLM's MoE tables time several backends per dtype (kernel_source, ai-dynamo/aiconfigurator
# collector/trtllm/collect_moe.py): `moe_torch_flow_nongated` is relu^2 experts (Nemotron-H), never the gated SwiGLU
# experts the planner's MoE records are, so its rows are dropped (TRT-LLM 1.3.0rc23's Hopper MoE tables are nothing
# else); where a shape has two gated backends, the one the InferenceMAX B200 recipes run for TP experts is kept:
# TRTLLM-gen (`moe_torch_flow_min_latency`; dsr1_fp4_b200_trt.sh MOE_BACKEND=TRTLLM, CUTLASS with attention DP, whose
# EP plans the planner times with DeepGEMM-class curves), then CUTLASS
NOT_GATED = ("moe_torch_flow_nongated",)
KERNEL_PREFERENCE = ("moe_torch_flow_min_latency", "moe_torch_flow_cutlass")
# MoE rows whose collector routes them through a group-limited top-k, as (groups, top groups) (planner.perf.ops
# distinct_experts). vLLM's and SGLang's collectors route each model shape (hidden, experts, top-k) with its own
# config (ai-dynamo/aiconfigurator collector/vllm/collect_moe.py use_grouped_topk; SGLang's sglang_moe_num_expert_group
# / topk_group): DeepSeek-V3/R1/V3.2 keep 4 of 8 groups (n_group, topk_group: ../shared/reference/hf-configs/
# deepseek-ai__DeepSeek-V3.json), Kimi K2.5's one group is no grouping. Evidence in the tables: at 256 tokens, top-8
# of 256, the TP8 block-FP8 rows take 292 us on H200 vLLM 0.24.0 (297 on SGLang 0.5.14), 4.8 TB/s if all 256
# experts' 1.41 GB were read (the GPU's peak), 2.5 TB/s for the 132 the grouped routing touches. TensorRT-LLM's
# collector routes its min-latency (TRTLLM-gen) kernel's rows with DeepseekV3Gate(n_group 8, topk_group 4) whatever the
# model ("FIXME: all use deepseek setting for now"; that kernel takes at most 256 experts) and every other kernel's with
# a plain top-k (RenormalizeMoeRoutingMethod; collector/trtllm/collect_moe.py)
DEEPSEEK_GROUPS = (8, 4)
ROUTING_GROUPS = {(7168, 256, 8): DEEPSEEK_GROUPS}
TRTLLM_GROUPED = ("moe_torch_flow_min_latency", 256)
MOE_BASE = "kimi-k2.5"


def data_root() -> Path:
    try:
        import aiconfigurator_core
    except ImportError:
        raise PlannerError("aiconfigurator-core is not installed: pip install -e '.[silicon]'",
                           field="--system") from None
    return Path(aiconfigurator_core.__file__).parent / "systems" / "data"


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiconfigurator-core")
    except PackageNotFoundError:
        return "unknown"


def _versions(folder: Path) -> list[str]:
    def key(v: str):
        return [int(p) if p.isdigit() else p for p in v.replace("rc", ".").replace("post", ".").split(".")]

    return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=key) if folder.is_dir() else []


def find_tables(root: Path, system: str, engine: str, version: str | None) -> dict[str, tuple[Path, ...]]:
    """{table name: parquet paths, newest version first} for gemm, moe and MLA of one system/engine: every version
    holding the table (read_table takes each dtype from the newest that has it), or `version`'s alone."""
    out = {}
    for op, names in (("gemm", ("gemm_perf",)), ("moe", ("moe_perf",)),
                      ("mla", ("generation_mla_perf", "context_mla_perf"))):
        folder = root / system / op / engine
        versions = [version] if version else list(reversed(_versions(folder)))
        for name in names:
            paths = tuple(p for p in (folder / v / f"{name}.parquet" for v in versions) if p.is_file())
            if paths:
                out[name] = paths
    if not out and version:
        have = sorted({v for op in ("gemm", "moe", "mla") for v in _versions(root / system / op / engine)})
        raise PlannerError(f"no gemm/moe/mla tables for {system} {engine} {version} (versions with tables: "
                           f"{', '.join(have) or 'none'})", file=str(root), field="--version")
    if not out:
        raise PlannerError(f"no gemm/moe/mla tables for {system} {engine}", file=str(root), field="--system")
    return out


def find_compute_scale(root: Path, system: str, engine: str) -> Path | None:
    """The engine's newest computescale_perf.parquet on `system` (STATIC_SCALED), or None."""
    folder = root / system / "quantize" / engine
    return next((p for v in reversed(_versions(folder)) if (p := folder / v / "computescale_perf.parquet").is_file()),
                None)


class ComputeScale:
    """Seconds an engine's dynamic per-tensor FP8 activation quantization takes beyond the static one for an (m, k)
    input (STATIC_SCALED): the table's grid read linearly in (log m, log k), held at its edges; a cell the table
    lacks is filled along m, and a table without fp8 rows takes nothing off."""

    COLUMNS = ("quant_dtype", "m", "k", "latency")

    def __init__(self, path: Path):
        import pandas as pd

        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise PlannerError(f"cannot read the compute-scale table: {err}".splitlines()[0], file=str(path)) from None
        missing = [c for c in self.COLUMNS if c not in df.columns]
        if missing:
            raise PlannerError("not aiconfigurator's computescale_perf schema", file=str(path), field=missing[0])
        fp8 = df[(df.quant_dtype == "fp8") & (df.m > 0) & (df.k > 0)]
        grid = fp8.pivot_table(index="m", columns="k", values="latency", aggfunc="median")
        self.path = path
        self.log_m = np.log(grid.index.to_numpy(float))
        self.log_k = np.log(grid.columns.to_numpy(float))
        filled = grid.interpolate(limit_direction="both").to_numpy(float) if not grid.empty else np.zeros((0, 0))
        self.ms = np.clip(np.nan_to_num(filled, nan=0.0), 0.0, None)

    def seconds(self, m: float, k: float) -> float:
        if not self.ms.size:
            return 0.0
        by_k = [np.interp(np.log(m), self.log_m, col) for col in self.ms.T]
        return float(np.interp(np.log(k), self.log_k, by_k)) * 1e-3


def static_scaled(row, ops: list, cs: ComputeScale | None, acc) -> float:
    """Seconds of a per-tensor FP8 GEMM row served with a static input scale: its measured time less the engine's
    compute-scale cost (STATIC_SCALED), not below the op's roofline at peak (nor above the measured time); the measured
    time where there is no cost table."""
    measured = row.latency * 1e-3
    if cs is None:
        return measured
    op = ops[0]
    roof = max(op.flops / _peak(acc, op.dtype), op.bytes / acc.memory_bandwidth_bytes_per_s)
    return max(measured - cs.seconds(row.m, row.k), min(roof, measured))


DTYPE_COLUMN = {"gemm_perf": "gemm_dtype", "moe_perf": "moe_dtype"}  # MLA tables: kv_cache_dtype


def read_table(name: str, paths) -> object:
    """One table's rows (a DataFrame with the version folder in `table_version`): each dtype's rows from the newest
    version that holds the dtype. An engine's newest collection can be partial: TRT-LLM 1.3.0rc23's MoE tables hold
    bf16 / fp8 on Hopper and only w4a8_mxfp4_mxfp8 on Blackwell, where 1.3.0rc20's hold fp8_block, nvfp4 and the rest
    (aiconfigurator-core 0.12.0); taking the newest file whole would leave those kernels unmeasured."""
    import pandas as pd

    frames, seen = [], set()
    col = DTYPE_COLUMN.get(name, "kv_cache_dtype")
    for path in (paths,) if isinstance(paths, Path) else paths:
        df = pd.read_parquet(path)
        if "kernel_source" in df:
            df = df[~df.kernel_source.isin(NOT_GATED)]
        df = df[~df[col].isin(seen)] if col in df else df
        if not df.empty:
            frames.append(df.assign(table_version=path.parent.name))
            seen |= set(df[col]) if col in df else set()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _filtered(df, table: str, dcol: str, known: dict, filters: list, left_out: dict | None):
    """The rows of dtypes with a planner format (`known`) that pass every (mask, why, listed column) of `filters`.
    `left_out` (when given) gets, per dtype none of whose rows pass, why: no planner format, else the first filter
    that leaves none of them (with the values its rows had in the listed column, where it names one)."""
    for dtype, part in df.groupby(dcol) if left_out is not None else ():
        if dtype not in known:
            left_out[f"{table}.{dtype}"] = "a table dtype the planner has no format for"
            continue
        keep = part.index
        for mask, why, listed in filters:
            keep = keep[mask.loc[keep].to_numpy()]
            if keep.empty:
                values = sorted(set(map(str, part[listed]))) if listed else []
                left_out[f"{table}.{dtype}"] = why + (f": {', '.join(values)} only" if values else "")
                break
    keep = df[dcol].isin(list(known))
    for mask, _, _ in filters:
        keep &= mask
    return df[keep]


# ---------------------------------------------------------------- rows -> the planner's op records

@lru_cache(maxsize=256)
def _moe_scenario(gpu: str, fmt: str, hidden: int, inter: int, topk: int, experts: int, tp: int, ep: int):
    g = tp * ep
    sc = make_scenario(MOE_BASE, weights=fmt, gpu=gpu, gpus_per_node=min(g, 8), nodes=max(1, g // 8),
                       parallelism={"tp": 1, "dp_attention": g, "ep": ep}, engine="ideal",
                       name="silicon-moe", file="kernels_bench import-silicon")
    spec = replace(sc.model.spec, hidden_size=hidden, moe_intermediate_size=inter, experts_per_token=topk,
                   n_routed_experts=experts)
    return replace(sc, model=replace(sc.model, spec=spec))


def routing_groups(row) -> tuple[int, int] | None:
    """(groups, top groups) of the group-limited top-k a MoE row's collector routed it with, or None (ROUTING_GROUPS,
    TRTLLM_GROUPED)."""
    if getattr(row, "framework", "") == "TRTLLM":
        kernel, limit = TRTLLM_GROUPED
        return DEEPSEEK_GROUPS if getattr(row, "kernel_source", "") == kernel and row.num_experts <= limit else None
    return ROUTING_GROUPS.get((row.hidden_size, row.num_experts, row.topk))


def moe_ops(row, gpu: str) -> list:
    fmt, key = MOE_DTYPES[row.moe_dtype]
    g = row.moe_tp_size * row.moe_ep_size
    sc = _moe_scenario(gpu, fmt, row.hidden_size, row.inter_size, row.topk, row.num_experts, row.moe_tp_size,
                       row.moe_ep_size)
    names = ("moe.experts", "moe.permute_act")
    groups = routing_groups(row)
    # round-robin routing (planner.perf.ops.distinct_experts), through a group-limited top-k where the collector ran
    # one; with EP the tied top groups sit on some ranks only, which the record cannot say: uniform routing there
    routing = True if groups is None else groups if row.moe_ep_size == 1 else False
    ops = [op for op in step_ops(sc, "prefill", row.num_tokens / g, 1, balanced=routing) if op.name in names]
    # rows per expert as the planner's served (uniformly routed) record of as many tokens carries them, the variable
    # the surfaces are read at: its ceil(pairs / touched) is 2 wherever two pairs may share an expert, where the
    # round-robin rows' is 1 up to E / k tokens
    served = {op.name: op.m for op in step_ops(sc, "prefill", row.num_tokens / g, 1) if op.name in names}
    return [replace(op, count=1, dtype=key, m=served[op.name]) if op.kind == "grouped_gemm" else replace(op, count=1)
            for op in ops]


def gemm_ops(row) -> list:
    st, key = GEMM_DTYPES[row.gemm_dtype]
    weight = storage_types()[st].tensor_bytes((row.n, row.k))
    return [replace(_gemm("gemm", 1, row.m, row.k, row.n, weight, storage_types()[st].compute), dtype=key)]


def _kernel_rank(kernel: str) -> int:
    return KERNEL_PREFERENCE.index(kernel) if kernel in KERNEL_PREFERENCE else len(KERNEL_PREFERENCE)


def _every(df, n: int):
    return df if len(df) <= n else df.iloc[[round(i * (len(df) - 1) / (n - 1)) for i in range(n)]]


def load_rows(tables: dict, gpu: str, kernel: str | None = None, engine: str | None = None,
              left_out: dict | None = None, compute_scale: Path | None = None) -> list[dict]:
    """Runs in calibrate's shape ({"ops", "measured_s", "weight", "layer", "group"}) plus table, dtype, holdout,
    kernel (the row's kernel_source), eager (timed without CUDA graphs: EAGER_TIMED for `engine`) and version (the
    engine version whose table the row is from: read_table). `tables`: find_tables' {name: paths} (or one path).
    `kernel`: the MoE kernel_source kept where a dtype's rows hold several (AUTO_MOE_KERNEL). `left_out`, when
    given, gets {table.dtype: why} for every table dtype none of whose rows are taken. `compute_scale`: the engine's
    computescale table (find_compute_scale), taken off the rows timed with dynamic FP8 scaling (STATIC_SCALED; each
    such row keeps what was taken off in `static_s`)."""
    cs = ComputeScale(compute_scale) if compute_scale else None
    acc = load_accelerator(gpu)
    runs = []
    for name, paths in sorted(tables.items()):
        df = read_table(name, paths)
        if name == "moe_perf" and kernel and "kernel_source" in df:
            several = df.groupby("moe_dtype").kernel_source.transform("nunique") > 1
            df = df[~several | (df.kernel_source == kernel)]
        if name == "gemm_perf":
            filters = [((df.k >= MIN_GEMM_KN) & (df.n >= MIN_GEMM_KN), f"no rows with K and N >= {MIN_GEMM_KN:,}",
                        None)]
            df = _filtered(df, name, "gemm_dtype", GEMM_DTYPES, filters, left_out)
            dcol, build = "gemm_dtype", gemm_ops
            shape = ("m", "n", "k")
        elif name == "moe_perf":
            wide = df.hidden_size >= df.moe_dtype.map(
                lambda d: MIN_MXFP4_HIDDEN if MOE_DTYPES.get(d, ("",))[0] == "mxfp4" else MIN_MOE_HIDDEN)
            filters = [(df.distribution == "balanced",
                        "no balanced-routing rows (the planner's experts share tokens evenly)", "distribution"),
                       (wide, f"no rows of hidden size >= {MIN_MOE_HIDDEN:,} ({MIN_MXFP4_HIDDEN:,} for MXFP4)", None)]
            df = _filtered(df, name, "moe_dtype", MOE_DTYPES, filters, left_out)
            dcol, build = "moe_dtype", lambda r: moe_ops(r, gpu)
            shape = ("num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size")
        else:
            df = df[(df.num_heads * df.tp_size).isin(list(MLA_MODELS))]
            phase = "decode" if name.startswith("generation") else "prefill"
            dcol, build = "kv_cache_dtype", (lambda r, p=phase: mla_ops(r, gpu, p))
            shape = ("num_heads", "batch_size", "isl", "step", "tp_size")
        if "kernel_source" in df:  # a shape timed by two kernels: the preferred one (KERNEL_PREFERENCE)
            df = df.assign(kernel_rank=df.kernel_source.map(_kernel_rank))
        for dtype, part in df.groupby(dcol):
            order = list(shape) + (["kernel_rank"] if "kernel_rank" in part else [])
            part = part.sort_values(order, kind="stable").drop_duplicates(list(shape))
            part = _every(part, MAX_ROWS * HOLDOUT_EVERY // (HOLDOUT_EVERY - 1))
            for i, r in enumerate(part.itertuples(index=False)):
                if not (math.isfinite(r.latency) and r.latency > 0):
                    continue
                try:
                    ops = build(r)
                except PlannerError:
                    continue
                if ops:
                    static = str(dtype) in STATIC_SCALED.get(name, ())
                    measured = static_scaled(r, ops, cs, acc) if static else r.latency * 1e-3
                    runs.append({"ops": ops, "measured_s": measured, "weight": 1.0, "layer": True,
                                 "static_s": r.latency * 1e-3 - measured,
                                 "group": f"{name}-{i}", "table": name, "dtype": str(dtype),
                                 "surface": SURFACE.get(name, {}).get(str(dtype)),
                                 "holdout": i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1,
                                 "model": tuple(int(v) for v in MODEL_SHAPE[name](r)),
                                 "fit_shape": getattr(r, "moe_ep_size", 1) <= MAX_SHAPE_EP,
                                 "kernel": str(getattr(r, "kernel_source", "") or ""),
                                 "eager": (engine, name, str(dtype)) in EAGER_TIMED,
                                 "version": str(r.table_version)})
    return silicon_fit.host_floors(runs)
