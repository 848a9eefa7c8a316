"""Silicon op tables as a calibration: NVIDIA aiconfigurator-core's measured per-op latencies -> efficiency curves.

    python -m kernels_bench import-silicon --system h200_sxm --engine sglang [--version V] [--json]

aiconfigurator-core (PyPI, Apache-2.0; the `silicon` extra) ships per-op latencies measured on each GPU under
`aiconfigurator_core/systems/data/<system>/<op>/<engine>/<version>/*.parquet` (latency in ms) with a
`collection_meta.yaml` each. This module reads four of them and expresses every row as the planner's own op record
for the same shapes (STYLE.md habit 8: FLOP and bytes come from planner.perf.ops, never from here):
- gemm_perf (m, n, k, gemm_dtype): planner.perf.ops._gemm with the weight bytes of planner.model.quant's storage type;
- moe_perf (num_tokens, hidden_size, inter_size, topk, num_experts, moe_tp_size, moe_ep_size, moe_dtype), rows with
  `balanced` routing: planner.perf.ops.step_ops of a scenario whose routed experts have that shape (Kimi K2.5's spec
  with the row's widths swapped in), num_tokens the MoE group's tokens (aiconfigurator queries num_tokens x
  attention-DP size), moe_tp x moe_ep GPUs, ops moe.experts + moe.permute_act. APPROXIMATE: with ep > 1 the planner
  times the busiest EP rank (planner.perf.ops.ep_load_imbalance, 1.06 at EP8 for 384 experts) while the table's
  routing is balanced; the fitted curve absorbs that factor;
- generation_mla / context_mla (num_heads per GPU, batch_size, isl, step = tokens already cached, tp_size): the
  attn.mla_decode / attn.mla_prefill record of planner.perf.steps.decode_ops / prefill_ops for DeepSeek-V3 (128
  heads) or Kimi K2.5 (64 heads) at that TP.
Fit (kernels_bench.calibrate.fit, the planner's roofline as the model): per op kind the reference dtype's rows fit
compute, memory and floor; each other dtype's rows then fit its own compute curve (`compute_by_dtype`; int4_wo,
the W4A16 kernels Kimi K2.5's INT4 experts run, as `int4`). Then kernels_bench/silicon_fit.py fits per op kind and
compute dtype a shape surface (`shape_by_dtype`: the speed factor over the curves on a grid of op-record variables,
GEMM m x width x depth, MoE rows per expert x touched experts' width x depth, MLA decode heads x bytes x context,
MLA prefill tokens x heads-context), and per MoE kernel configuration the table ran (expert shape, expert TP, EP:
Op.config) a factor curve over m on top of it (`config_by_dtype`, silicon_fit.fit_configs), both read by
planner.hardware.efficiency (OpEfficiency.shape_for) and applied by the roofline to scenarios that opt in
(engine_options.kernel_tables: silicon). Every HOLDOUT_EVERY-th distinct shape is held out;
the file written is the fit without them, so the held-out median and p90 |predicted/measured - 1| it reports are its
own, beside the curves' alone, the default table's (profiles/calibration/default.yaml) on the same rows, and
leave-model-shape-out cross-validation. Refusals as calibrate's (kernels_bench/calibration_guard.py). Writes
profiles/calibration/<gpu>-<engine>.yaml (planner.base.outputs).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import yaml

from kernels_bench import silicon_fit
from kernels_bench.calibrate import _pct, _rel, _yaml_curve, fit
from kernels_bench.calibration_guard import HEADER, check_fit, write_calibration
from kernels_bench.silicon_fit import measured_op
from planner.base.errors import PlannerError
from planner.deploy.scenario import make_scenario
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import SILICON_DIR, Efficiency, efficiency_for
from planner.model.quant import storage_types
from planner.perf.ops import _gemm, step_ops
from planner.perf.steps import decode_ops, prefill_ops

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
# MXFP4 rows fit their surface only, never a curve: over the curves the table's plain dtypes fit, or the default
# table's where it has none (curves fitted from w4a8_mxfp4_mxfp8 rows alone would time DeepSeek's FP8 / NVFP4 experts
# as gpt-oss's kernel runs)
CURVELESS = ("w4a16_mxfp4", "w4a8_mxfp4_mxfp8")
SURFACE = {"gemm_perf": {"fp8": "fp8_tensor"},
           "moe_perf": {"fp8": "fp8_tensor", "w4a16_mxfp4": "mxfp4_w4a16", "w4a8_mxfp4_mxfp8": "mxfp4"},
           "generation_mla_perf": {"fp8": "fp8_kv"}, "context_mla_perf": {"fp8": "fp8_kv"}}
# the dtype whose rows fit a kind's compute, memory and floor; attention kinds fit on their BF16-KV rows only (the
# planner has one attention curve per GPU; FP8-KV rows are held out and reported against it)
REFERENCE = {"gemm": ("bfloat16",), "grouped_gemm": ("fp8_block", "fp8", "bfloat16"),
             "attention_decode": ("bfloat16",), "attention_prefill": ("bfloat16",)}
PER_DTYPE = ("gemm", "grouped_gemm")  # kinds whose other dtypes get their own compute curve
# shapes of the models this planner is for: GEMMs with K and N of at least 1,024 (the table also sweeps K = 64),
# MoE with hidden size >= 4,096 (DeepSeek-V3/Kimi 7,168, Qwen3-235B 4,096, ...)
MIN_GEMM_KN = 1024
MIN_MOE_HIDDEN = 4096
# ... except the MXFP4 tables, whose one published MoE of that format in this planner is gpt-oss (hidden size 2,880)
MIN_MXFP4_HIDDEN = 2880
HOLDOUT_EVERY = 5
MAX_ROWS = 1200  # per (table, dtype): the shape surfaces' least squares takes them all
CURVE_ROWS = 240  # of which the curves' pattern search fits at most this many (it re-times every row per trial)
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
# Triton fused MoE. Tables with one kernel per dtype (every vLLM and TRT-LLM one, SGLang's int4 on Hopper) are as is
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
# TensorRT-LLM's MoE tables time several backends per dtype (kernel_source, ai-dynamo/aiconfigurator
# collector/trtllm/collect_moe.py): `moe_torch_flow_nongated` is relu^2 experts (Nemotron-H), never the gated SwiGLU
# experts the planner's MoE records are, so its rows are dropped (TRT-LLM 1.3.0rc23's Hopper MoE tables are nothing
# else); where a shape has two gated backends, the one the InferenceMAX B200 recipes run for TP experts is kept:
# TRTLLM-gen (`moe_torch_flow_min_latency`; dsr1_fp4_b200_trt.sh MOE_BACKEND=TRTLLM, CUTLASS with attention DP, whose
# EP plans the planner times with DeepGEMM-class curves), then CUTLASS
NOT_GATED = ("moe_torch_flow_nongated",)
KERNEL_PREFERENCE = ("moe_torch_flow_min_latency", "moe_torch_flow_cutlass")
MLA_MODELS = {128: "deepseek-v3", 64: "kimi-k2.5"}  # total attention heads -> a profile with that MLA layout
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
    if not out:
        raise PlannerError(f"no gemm/moe/mla tables for {system} {engine}" + (f" {version}" if version else ""),
                           file=str(root), field="--system")
    return out


DTYPE_COLUMN = {"gemm_perf": "gemm_dtype", "moe_perf": "moe_dtype"}  # MLA tables: kv_cache_dtype


def read_table(name: str, paths) -> object:
    """One table's rows (a DataFrame with the version folder in `table_version`): each dtype's rows from the newest
    version that holds the dtype. An engine's newest collection can be partial: TRT-LLM 1.3.0rc23's MoE tables hold
    bf16 / fp8 on Hopper and only w4a8_mxfp4_mxfp8 on Blackwell, where 1.3.0rc20's hold fp8_block, nvfp4 and the rest
    (aiconfigurator-core 0.12.0); taking the newest file whole would leave those kernels unmeasured."""
    import pandas as pd

    frames, seen = [], set()
    for path in (paths,) if isinstance(paths, Path) else paths:
        df = pd.read_parquet(path)
        if "kernel_source" in df:
            df = df[~df.kernel_source.isin(NOT_GATED)]
        col = DTYPE_COLUMN.get(name, "kv_cache_dtype")
        df = df[~df[col].isin(seen)] if col in df else df
        if not df.empty:
            frames.append(df.assign(table_version=path.parent.name))
            seen |= set(df[col]) if col in df else set()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _left_out(out: dict | None, table: str, df, dcol: str, known: dict, filters: list) -> None:
    """Record in `out` why each of a table's dtypes gives no rows: a dtype with no planner format, else the first of
    `filters` ([mask, why, mask, why, ...], applied in turn) that leaves none of its rows."""
    if out is None:
        return
    for dtype, part in df.groupby(dcol):
        if dtype not in known:
            out[f"{table}.{dtype}"] = "a table dtype the planner has no format for"
            continue
        keep = part.index
        for mask, why in zip(filters[::2], filters[1::2], strict=True):
            keep = keep[mask.loc[keep].to_numpy()]
            if keep.empty:
                values = sorted(set(map(str, part["distribution"]))) if why.startswith("no balanced") else []
                out[f"{table}.{dtype}"] = why + (f": {', '.join(values)} only" if values else "")
                break


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


def moe_ops(row, gpu: str) -> list:
    fmt, key = MOE_DTYPES[row.moe_dtype]
    g = row.moe_tp_size * row.moe_ep_size
    sc = _moe_scenario(gpu, fmt, row.hidden_size, row.inter_size, row.topk, row.num_experts, row.moe_tp_size,
                       row.moe_ep_size)
    ops = [op for op in step_ops(sc, "prefill", row.num_tokens / g, 1) if op.name in ("moe.experts", "moe.permute_act")]
    return [replace(op, count=1, dtype=key) if op.kind == "grouped_gemm" else replace(op, count=1) for op in ops]


def gemm_ops(row) -> list:
    st, key = GEMM_DTYPES[row.gemm_dtype]
    weight = storage_types()[st].tensor_bytes((row.n, row.k))
    return [replace(_gemm("gemm", 1, row.m, row.k, row.n, weight, storage_types()[st].compute), dtype=key)]


@lru_cache(maxsize=64)
def _mla_scenario(gpu: str, model: str, tp: int, kv: str):
    return make_scenario(model, weights="bf16", kv_cache=kv, gpu=gpu, gpus_per_node=min(tp, 8),
                         nodes=max(1, tp // 8), parallelism={"tp": tp}, engine="ideal", name="silicon-mla",
                         file="kernels_bench import-silicon")


def mla_ops(row, gpu: str, phase: str) -> list:
    model = MLA_MODELS[row.num_heads * row.tp_size]
    sc = _mla_scenario(gpu, model, row.tp_size, "fp8" if row.kv_cache_dtype == "fp8" else "bf16")
    per_gpu = row.batch_size / row.tp_size  # the TP group's sequences, counted per GPU as the planner does
    if phase == "decode":
        ops = decode_ops(sc, per_gpu, row.step + 1)
        name = "attn.mla_decode"
    else:
        ops = prefill_ops(sc, per_gpu * row.isl, row.isl)
        name = "attn.mla_prefill"
    return [replace(op, count=1) for op in ops if op.name == name]


def _kernel_rank(kernel: str) -> int:
    return KERNEL_PREFERENCE.index(kernel) if kernel in KERNEL_PREFERENCE else len(KERNEL_PREFERENCE)


def _every(df, n: int):
    return df if len(df) <= n else df.iloc[[round(i * (len(df) - 1) / (n - 1)) for i in range(n)]]


def load_rows(tables: dict, gpu: str, kernel: str | None = None, engine: str | None = None,
              left_out: dict | None = None) -> list[dict]:
    """Runs in calibrate's shape ({"ops", "measured_s", "weight", "layer", "group"}) plus table, dtype, holdout,
    kernel (the row's kernel_source), eager (timed without CUDA graphs: EAGER_TIMED for `engine`) and version (the
    engine version whose table the row is from: read_table). `tables`: find_tables' {name: paths} (or one path).
    `kernel`: the MoE kernel_source kept where a dtype's rows hold several (AUTO_MOE_KERNEL). `left_out`, when
    given, gets {table.dtype: why} for every table dtype none of whose rows are taken."""
    runs = []
    for name, paths in sorted(tables.items()):
        df = read_table(name, paths)
        if name == "moe_perf" and kernel and "kernel_source" in df:
            several = df.groupby("moe_dtype").kernel_source.transform("nunique") > 1
            df = df[~several | (df.kernel_source == kernel)]
        if name == "gemm_perf":
            _left_out(left_out, name, df, "gemm_dtype", GEMM_DTYPES, [
                (df.k >= MIN_GEMM_KN) & (df.n >= MIN_GEMM_KN), f"no rows with K and N >= {MIN_GEMM_KN:,}"])
            df = df[df.gemm_dtype.isin(list(GEMM_DTYPES)) & (df.k >= MIN_GEMM_KN) & (df.n >= MIN_GEMM_KN)]
            dcol, build = "gemm_dtype", gemm_ops
            shape = ("m", "n", "k")
        elif name == "moe_perf":
            wide = df.hidden_size >= df.moe_dtype.map(
                lambda d: MIN_MXFP4_HIDDEN if MOE_DTYPES.get(d, ("",))[0] == "mxfp4" else MIN_MOE_HIDDEN)
            _left_out(left_out, name, df, "moe_dtype", MOE_DTYPES, [
                df.distribution == "balanced", "no balanced-routing rows (the planner's experts share tokens evenly)",
                wide, f"no rows of hidden size >= {MIN_MOE_HIDDEN:,} ({MIN_MXFP4_HIDDEN:,} for MXFP4)"])
            df = df[df.moe_dtype.isin(list(MOE_DTYPES)) & (df.distribution == "balanced") & wide]
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
                    runs.append({"ops": ops, "measured_s": r.latency * 1e-3, "weight": 1.0, "layer": True,
                                 "group": f"{name}-{i}", "table": name, "dtype": str(dtype),
                                 "surface": SURFACE.get(name, {}).get(str(dtype)),
                                 "holdout": i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1,
                                 "model": tuple(int(v) for v in MODEL_SHAPE[name](r)),
                                 "fit_shape": getattr(r, "moe_ep_size", 1) <= MAX_SHAPE_EP,
                                 "kernel": str(getattr(r, "kernel_source", "") or ""),
                                 "eager": (engine, name, str(dtype)) in EAGER_TIMED,
                                 "version": str(r.table_version)})
    return silicon_fit.host_floors(runs)


# ---------------------------------------------------------------- fit, report, write

_errors = silicon_fit.errors


def fit_silicon(runs: list[dict], acc) -> tuple[Efficiency, dict[str, list[str]], dict]:
    """Per kind: the reference dtype's training rows (at most CURVE_ROWS) fit compute, memory and floor; each other
    dtype's rows then fit its own compute curve; then every (kind, compute dtype) gets its shape surface from all
    training rows of the table dtype that fitted its curve (kernels_bench/silicon_fit.py). Returns the table, per
    kind the dtype curves fitted, and {(kind, compute dtype): table dtype} of the surfaces."""
    eff = efficiency_for(None)
    by_kind: dict[str, dict[str, list]] = {}
    for r in runs:
        if not r["holdout"]:
            by_kind.setdefault(measured_op(r).kind, {}).setdefault(r["dtype"], []).append(r)
    train = {k: {d: _every_run([r for r in rs if silicon_fit.device_bound(r)], CURVE_ROWS) for d, rs in g.items()}
             for k, g in by_kind.items()}
    sources: dict[tuple[str, str], str] = {}
    fitted: dict[str, list[str]] = {}
    for kind, groups in sorted(by_kind.items()):
        # fp8_block first for the `fp8` curve, unless its rows are mostly at an eager host floor and another FP8
        # table has more rows that time the kernel (vLLM's block-FP8 GEMM beside its graph-timed per-tensor one)
        order = [d for d in REFERENCE.get(kind, ()) if d in groups] + sorted(
            (d for d in groups if d not in REFERENCE.get(kind, ()) and d not in CURVELESS),
            key=lambda d: (-len(train[kind][d]), d != "fp8_block", d))
        if not order:  # variant rows only (CURVELESS): their surfaces over the default curves, below
            fitted[kind] = []
            continue
        ref = order[0]
        eff = fit(train[kind][ref], eff, acc, only=(kind,))
        sources[(kind, _key(groups[ref][0]))] = ref
        if kind not in PER_DTYPE:
            fitted[kind] = []
            continue
        key = _key(groups[ref][0])
        e = eff.ops[kind]
        eff = replace(eff, ops={**eff.ops, kind: replace(e, compute_by_dtype=tuple(sorted(
            (dict(e.compute_by_dtype) | {key: e.compute}).items())))})
        done = [key]
        for d in order[1:]:
            key = _key(groups[d][0])
            if key not in done and train[kind][d]:
                eff = fit(train[kind][d], eff, acc, only=(kind,), dtype=key)
                # the key's own surface comes from the dtype's reference rows (not a variant's, SURFACE)
                sources[(kind, key)] = next((x for x in order if _key(groups[x][0]) == key
                                             and not groups[x][0]["surface"]), d)
                done.append(key)
        fitted[kind] = sorted(done)
    for kind, groups in by_kind.items():  # variant surfaces (SURFACE): from their own table dtype's rows
        for d, rs in groups.items():
            if rs[0]["surface"]:
                sources.setdefault((kind, rs[0]["surface"]), d)
    eff = silicon_fit.fit_surfaces(runs_train(runs), eff, acc, sources)
    return silicon_fit.fit_configs(runs_train(runs), eff, acc), fitted, sources


def runs_train(runs: list[dict]) -> list[dict]:
    return [r for r in runs if not r["holdout"]]


def _every_run(rows: list, n: int) -> list:
    return rows if len(rows) <= n else [rows[round(i * (len(rows) - 1) / (n - 1))] for i in range(n)]


def _key(run: dict) -> str:
    return measured_op(run).dtype


def _stats(errs: list[float], prefix: str) -> dict:
    return {f"{prefix}median_abs_error": round(_pct(errs, 0.5), 4), f"{prefix}p90_abs_error": round(_pct(errs, 0.9), 4)}


def _summary(runs: list[dict], eff: Efficiency, acc, sources: dict) -> dict:
    """Per table.dtype: held-out |error| with the surfaces, with the curves alone, with the default table, and of
    leave-model-shape-out cross-validation; MoE rows beyond MAX_SHAPE_EP (outside the surfaces' fit) apart."""
    out = {}
    default = efficiency_for(None)
    curves = replace(eff, ops={k: replace(e, shape_by_dtype=(), config_by_dtype=()) for k, e in eff.ops.items()})
    cv = silicon_fit.cv_model_shapes(runs, eff, acc, sources)
    for (table, dtype) in sorted({(r["table"], r["dtype"]) for r in runs}):
        rows = [r for r in runs if r["table"] == table and r["dtype"] == dtype]
        held = [r for r in rows if r["holdout"] and r["fit_shape"]]
        wide = [r for r in rows if r["holdout"] and not r["fit_shape"]]
        entry = {"n_fit": sum(not r["holdout"] for r in rows), "n_holdout": len(held)}
        entry |= _stats(_errors(held, eff, acc), "holdout_") | _stats(_errors(held, curves, acc), "curves_")
        entry |= _stats(_errors(held, default, acc), "default_")
        if cv.get(f"{table}.{dtype}"):
            entry |= {"n_cv_model_shapes": len({r["model"] for r in rows})} | _stats(cv[f"{table}.{dtype}"], "cv_")
        if wide:
            entry |= {"n_holdout_wide_ep": len(wide)} | _stats(_errors(wide, eff, acc), "wide_ep_")
        if any(r.get("host_floor_s") for r in rows):  # eager-timed: the floors, and the rows above them apart
            bound = [r for r in held if silicon_fit.device_bound(r)]
            entry |= {"host_floor_s": {k: float(f"{f:.3g}") for k, f in sorted(
                {r["kernel"]: r["host_floor_s"] for r in rows}.items())}, "n_holdout_device_bound": len(bound)}
            entry |= _stats(_errors(bound, eff, acc), "device_bound_")
        out[f"{table}.{dtype}"] = entry
    return out


def import_silicon(args) -> dict:
    if args.system not in SYSTEMS:
        raise PlannerError(f"unknown system {args.system!r} (known: {', '.join(SYSTEMS)})", field="--system")
    if args.engine not in ENGINES:
        raise PlannerError(f"unknown engine {args.engine!r} (known: {', '.join(ENGINES)})", field="--engine")
    root = Path(args.data) if getattr(args, "data", None) else data_root()
    gpu = SYSTEMS[args.system]
    acc = load_accelerator(gpu)
    tables = find_tables(root, args.system, args.engine, args.version)
    t0 = time.time()
    left_out: dict[str, str] = {}
    runs = load_rows(tables, gpu, AUTO_MOE_KERNEL.get((args.engine, ARCH.get(args.system, ""))), args.engine,
                     left_out)
    if len([r for r in runs if r["holdout"]]) < 2:
        raise PlannerError(f"{len(runs)} usable rows in {sorted(tables)}: too few to hold any out", field="--system")
    eff, fitted, sources = fit_silicon(runs, acc)
    held = [r for r in runs if r["holdout"] and r["fit_shape"]]
    errs = _errors(held, eff, acc)
    kinds = sorted(fitted)
    check_fit(eff, kinds, _pct(errs, 0.5), f"{args.system} {args.engine}", _Where(root))
    per_table = _summary(runs, eff, acc, sources)
    # --version: that collection alone, beside the default import (engine_options.kernel_tables_version picks it)
    name = f"{gpu}-{args.engine}" + (f"@{args.version}" if args.version else "")
    out_dir = Path(args.out) if getattr(args, "out", None) else SILICON_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    ops_doc = {}
    for kind in kinds:
        e = eff.ops[kind]
        entry = {"compute": _yaml_curve(e.compute), "memory": _yaml_curve(e.memory),
                 "floor_s": float(f"{e.floor_s:.3g}")}
        by = {d: _yaml_curve(c) for d, c in e.compute_by_dtype if d in fitted[kind]}
        if by:
            entry["compute_by_dtype"] = by
        shapes = {d: {"axes": list(sf.axes), "knots": [list(k) for k in sf.knots], "factors": list(sf.factors)}
                  for d, sf in e.shape_by_dtype}
        if shapes:
            entry["shape_by_dtype"] = shapes
        configs: dict[str, list] = {}
        for d, config, curve in e.config_by_dtype:
            configs.setdefault(d, []).append({"config": list(config), "factor": [
                [int(m) if float(m).is_integer() else m, f] for m, f in curve.points]})
        if configs:
            entry["config_by_dtype"] = configs
        entry["n"] = sum(measured_op(r).kind == kind for r in runs)
        ops_doc[kind] = entry
    # per table the newest version whose rows were taken, and a table.dtype whose rows came from an older one
    used = {(r["table"], r["version"]) for r in runs}
    versions = {t: next((p.parent.name for p in ps if (t, p.parent.name) in used), ps[0].parent.name)
                for t, ps in tables.items()}
    versions |= {f"{r['table']}.{r['dtype']}": r["version"] for r in runs if r["version"] != versions[r["table"]]}
    doc = {
        "device": name,
        "source": f"aiconfigurator-core {package_version()} silicon tables ({args.system}, {args.engine} "
                  f"{', '.join(sorted(set(versions.values())))}): "
                  + "; ".join(f"systems/data/{_under(p, root)}" for t, ps in sorted(tables.items()) for p in ps
                              if (t, p.parent.name) in used),
        "ops": ops_doc,
        "fit": {"method": "curves: pattern search on mean |log(predicted/measured)|, planner.perf.roofline.time_op as "
                          "the model (kernels_bench/silicon.py); shape_by_dtype: reweighted least squares of "
                          "log(t_curves/t_measured) on a grid of op-record variables (kernels_bench/silicon_fit.py)",
                "package": f"aiconfigurator-core {package_version()}", "system": args.system, "engine": args.engine,
                "engine_versions": versions, "holdout": f"every {HOLDOUT_EVERY}th distinct shape per table and dtype",
                "n_fit": len(runs_train(runs)), "n_holdout": len(held),
                "holdout_median_abs_error": round(_pct(errs, 0.5), 4),
                "holdout_p90_abs_error": round(_pct(errs, 0.9), 4),
                "default_holdout_median_abs_error": round(_pct(_errors(held, efficiency_for(None), acc), 0.5), 4),
                "tables": per_table, "left_out": dict(sorted(left_out.items())),
                "seconds": round(time.time() - t0, 1)},
    }
    header = (f"{HEADER} import-silicon` (kernels_bench/silicon.py): NVIDIA aiconfigurator-core's measured op\n"
              f"# latencies on {args.system} with {args.engine}, fitted as fractions of profiles/hardware/{gpu}.yaml "
              "peaks; curves\n# [[m, fraction], ...] over GEMM rows m as in default.yaml. int4 = W4A16 (int4_wo). "
              "shape_by_dtype:"
              "\n# speed factors on a grid of op-record variables (planner.hardware.efficiency.Surface), the roofline"
              "\n# time divided by them.\n")
    write_calibration(path, header + yaml.safe_dump(doc, sort_keys=False, width=120, default_flow_style=None))
    efficiency_for.cache_clear()
    return {"device": name, "file": _rel(path), "n_fit": doc["fit"]["n_fit"], "n_holdout": len(held),
            "holdout_median_abs_error": doc["fit"]["holdout_median_abs_error"],
            "holdout_p90_abs_error": doc["fit"]["holdout_p90_abs_error"],
            "default_holdout_median_abs_error": doc["fit"]["default_holdout_median_abs_error"],
            "tables": per_table, "left_out": doc["fit"]["left_out"], "package": doc["fit"]["package"],
            "engine_versions": versions}


def _under(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class _Where:
    """What check_fit names in its refusals (calibrate passes its Store)."""

    def __init__(self, path: Path):
        self.path = path
