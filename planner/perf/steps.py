"""Step times and serving metrics from op records.

- `decode_step(sc, batch_per_gpu, kv_len)` and `prefill_step(sc, tokens_per_gpu, prompt_len)` time one
  forward step of the fullest GPU (roofline per op, communication, per-step engine overhead).
- Two-batch overlap (engine `overlap_comm: tbo_ep`, ep > 1): the EP all-to-all of one micro-batch runs
  under the compute of the other: step = compute + communication - 0.5 x min(compute, communication).
- CUDA graphs (engine `cuda_graph_max_batch`, `graph_prefill_tokens`, `eager_kernel_host_s`): a step
  outside a graph (prefill in engines that capture decode only, decode batches above the captured sizes)
  is launched kernel by kernel from Python; the GPU then waits for the host whenever launching is slower
  than running: step = max(GPU work + communication, kernels x host time per kernel).
- Ops on the CPU (engine `cpu_op_host_s`; every op of a CPU-only deployment, the CPU-resident experts of a
  hybrid one) run synchronously on the host, so their dispatch adds to the work: + kernels x host time per op.
- Pipeline parallelism: the step of one stage times pp (a token visits every stage; full pipelining).
- MTP speculative decoding: each step verifies 1 + d tokens per sequence and accepts 1 + d x acceptance;
  the d draft passes cost one MoE layer and the lm_head each.
- Serving (CONTRACT.md §2 workload): a closed loop of `concurrency` requests (or, with none given, the
  largest batch memory allows, MLPerf-offline style), each a prefill of input_len then output_len decode
  steps. In steady state a running batch of R sequences needs R x input_len / output_len prompt tokens
  prefilled per step; they share the step with decode (chunked prefill), so one mixed step reads the
  weights once and does both FLOP loads. Requests beyond R wait: Little's law gives the queueing time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from math import ceil

from planner.base.errors import PlannerError
from planner.deploy.engines import load_engine
from planner.deploy.scenario import Scenario
from planner.hardware.efficiency import (
    CAL_DIR,
    SILICON_DIR,
    SURFACE_VARIANTS,
    calibration_files,
    efficiency_for,
    silicon_file,
    silicon_versions,
)
from planner.perf.op_record import fp8_scaling
from planner.perf.ops import Op, role_dtype, scale_up_gpus, step_ops
from planner.perf.roofline import Machine, TimedOp, allreduce_table, mma_dtype, time_op
from planner.perf.step_mix import amortized, blend, chunk_per_gpu, lockstep, merge

# Two-batch overlap hides this fraction of the shorter of compute and communication. 0.5 reproduces the gains
# LMSYS measured with SGLang on 96x H100 (lm-sys blog 2025-05-05: prefill +27-35% at equal tokens per device,
# decode +25.5% at 256 tokens per device), where compute and EP communication are of similar size.
TBO_HIDDEN = 0.5
# assumed when a scenario sets mtp_tokens without an acceptance (DeepSeek-V3 report: 85-90% for the 2nd token)
DEFAULT_MTP_ACCEPTANCE = 0.7


@dataclass(frozen=True)
class Step:
    seconds: float  # one step of the fullest GPU, overhead included
    timed: tuple[TimedOp, ...]  # every op with its time and bound
    compute_s: float  # ops bound by compute or latency
    memory_s: float  # ops bound by memory
    comm_s: float  # communication (after overlap)
    host_s: float  # CPU / PCIe work of offloaded experts
    overhead_s: float  # engine per-step overhead
    launch_s: float = 0.0  # host time launching the kernels of a step run outside a CUDA graph (0 in a graph)

    @property
    def bottleneck(self) -> str:
        work = self.compute_s + self.memory_s + self.comm_s + self.host_s
        parts = {"compute": self.compute_s, "memory": self.memory_s, "communication": self.comm_s,
                 "host": self.host_s if self.launch_s <= work else self.launch_s}
        return max(parts, key=parts.get)


@lru_cache(maxsize=128)
def machine(sc: Scenario) -> Machine:
    acc = sc.accelerator
    gguf = sc.weights.family == "gguf"
    cpu_dtype = "fp32" if gguf else ("int8" if sc.weights.name == "int8" else "bf16")
    # the engine's fused-MoE weight streaming; W4A16 experts run Marlin, whose int4 compute curve describes them
    # the engine's silicon table measured its fused-MoE kernel itself, so its surfaces replace the stream model
    stream = sc.engine.fused_moe_stream if not (_w4a16_experts(sc) or uses_silicon_tables(sc)) else None
    return Machine(acc, sc.host, _efficiency(sc), scale_up_gpus(sc), sc.engine.cpu_numa_aware, cpu_dtype,
                   sc.engine.cpu_memory_efficiency, sc.engine.cpu_compute_for(cpu_dtype),
                   sc.engine.host_stream_pageable_bytes_per_s, sc.engine.host_stream_overlap, *(stream or (None, None)))


def _efficiency(sc: Scenario):
    """The GPU's efficiency table for this engine (planner.hardware.efficiency.calibration_files; the engine's silicon
    tables when the scenario asks for them, engine_options.kernel_tables), with two kernel choices the scenario makes:
    - routed experts split by tensor parallelism (ep 1) run the engine's own fused-MoE kernel, not the DeepGEMM-class
      grouped GEMM: the engine's tp_moe_kernel curves, unless the table is that engine's silicon calibration
      (it measured the engine's MoE kernel itself);
    - INT4 weight-only experts (W4A16, Kimi K2.5) run mixed-input kernels whose compute the table's `int4` grouped-GEMM
      curve describes (fitted from int4_wo MoE tables); their BF16-activation GEMMs take that curve."""
    silicon = uses_silicon_tables(sc)
    version = sc.engine.kernel_tables_version if silicon else None
    eff = efficiency_for(sc.gpu, sc.engine.name, silicon, version)
    tp_moe = (sc.engine.tp_moe_compute_by_dtype if sc.parallelism.ep == 1 and sc.model.spec.n_routed_experts
              and not silicon else ())
    w4a16 = _w4a16_experts(sc) and "int4" in dict(eff.ops["grouped_gemm"].compute_by_dtype)
    deepgemm = sc.parallelism.ep > 1 and silicon
    variants = _surface_variants(sc, w4a16, eff) if silicon else ()
    if not tp_moe and not w4a16 and not deepgemm and not variants:
        return eff
    return _with_moe_curves(sc.gpu, sc.engine.name, tp_moe, w4a16, deepgemm, silicon, variants, version)


def _surface_variants(sc: Scenario, w4a16: bool, eff) -> tuple[tuple[str, str], ...]:
    """The silicon tables' kernel-variant surfaces this scenario runs (planner.hardware.efficiency.SURFACE_VARIANTS),
    as (surface, in place of) pairs: per-tensor FP8 weights take the fp8_tensor surfaces, an FP8 KV cache the
    attention kinds' fp8_kv ones, and 4-bit weight-only experts (BF16 compute records) the int4 MoE surface, which
    their int4 compute curve belongs to, or MXFP4 ones (gpt-oss) the table's mxfp4_w4a16 surface where it has one;
    MXFP4 experts on FP4 tensor cores (W4A8, fp4 records) the mxfp4 surface in place of the NVFP4-fitted fp4 one."""
    pairs = []
    if fp8_scaling(sc.model.spec, sc.weights) == "tensor":
        pairs.append(("fp8_tensor", SURFACE_VARIANTS["fp8_tensor"]))
    if sc.kv_cache == "fp8":
        pairs.append(("fp8_kv", SURFACE_VARIANTS["fp8_kv"]))
    mxfp4 = bool(sc.model.spec.n_routed_experts) and role_dtype(sc, "ffn_up_exps", "moe") == "mxfp4"
    measured = dict(eff.ops["grouped_gemm"].shape_by_dtype)
    if w4a16:
        pairs.append(("mxfp4_w4a16" if mxfp4 and "mxfp4_w4a16" in measured else "int4", "bf16"))
    elif mxfp4 and "mxfp4" in measured:
        pairs.append(("mxfp4", mma_dtype(sc.accelerator, "mxfp4")))
    return tuple(pairs)


def uses_silicon_tables(sc: Scenario) -> bool:
    """Whether the scenario runs on the engine's silicon tables (engine_options.kernel_tables): "auto", the default,
    where they were imported for its GPU and engine (a disaggregated deployment's pools are built on "default":
    planner.deploy.disaggregation.pool), unless an engine version of them is named; "silicon" always, one line naming
    the field when none were imported for this GPU and engine (or that version); "default" never."""
    tables, version = sc.engine.kernel_tables, sc.engine.kernel_tables_version
    if tables == "default":
        return False
    if tables == "auto" and version is None:
        return silicon_file(sc.gpu, sc.engine.name) is not None
    if silicon_file(sc.gpu, sc.engine.name) is None:
        raise PlannerError(f"no silicon kernel tables for {sc.engine.name} on {sc.gpu or 'CPU'} (profiles/calibration/"
                           f"silicon/ has {', '.join(silicon_tables()) or 'none'}; `python -m kernels_bench "
                           f"import-silicon` writes them)", file=sc.file, field="engine_options.kernel_tables")
    if version is not None and silicon_file(sc.gpu, sc.engine.name, version) is None:
        have = silicon_versions(sc.gpu, sc.engine.name)
        raise PlannerError(f"no {sc.engine.name} {version} silicon tables on {sc.gpu} (imported one by one: "
                           f"{', '.join(have) or 'none'}; `python -m kernels_bench import-silicon --version "
                           f"{version}` writes them)", file=sc.file, field="engine_options.kernel_tables_version")
    return True


def on_silicon_tables(sc: Scenario) -> Scenario:
    """The scenario on its engine's silicon kernel tables (engine_options.kernel_tables: silicon) when they were
    imported for its GPU; an aggregated scenario only (a disaggregated one's pools keep the default table), and a
    scenario that names silicon tables already is left as it is. `--kernel-tables silicon` runs scenarios through
    it (the same tables as "auto", the default, takes, named)."""
    if (sc.engine.kernel_tables == "silicon" or sc.disaggregation is not None
            or silicon_file(sc.gpu, sc.engine.name) is None):
        return sc
    return replace(sc, engine=replace(sc.engine, kernel_tables="silicon"))


def on_default_table(sc: Scenario) -> Scenario:
    """The scenario on the default kernel table alone (engine_options.kernel_tables: default), whatever silicon
    tables exist: `--kernel-tables default`. A disaggregated scenario's pools are on it already."""
    if sc.engine.kernel_tables == "default":
        return sc
    return replace(sc, engine=replace(sc.engine, kernel_tables="default", kernel_tables_version=None))


def with_kernel_tables(sc: Scenario, tables: str | None) -> Scenario:
    """The scenario on the tables a command's --kernel-tables (or a workload's kernel_tables) names: silicon or
    default; None or auto: as the scenario states them."""
    if tables == "silicon":
        return on_silicon_tables(sc)
    return on_default_table(sc) if tables == "default" else sc


def silicon_tables() -> list[str]:
    """The <gpu>-<engine> pairs with imported silicon tables."""
    return sorted(p.stem for p in SILICON_DIR.glob("*.yaml") if "@" not in p.stem)


def _w4a16_experts(sc: Scenario) -> bool:
    """Routed experts stored as 4-bit weights with BF16 compute (weight-only: dequantized inside the GEMM): INT4
    (Kimi K2.5), and MXFP4 (gpt-oss) on a GPU without FP4 tensor cores (planner.perf.roofline.mma_dtype)."""
    if not sc.model.spec.n_routed_experts or sc.weights.family != "safetensors":
        return False
    dtype = role_dtype(sc, "ffn_up_exps", "moe")
    if dtype == "mxfp4":
        return mma_dtype(sc.accelerator, dtype) == "bf16"
    return sc.weights.name.startswith("int4") and dtype == "bf16"


def kernel_notes(sc: Scenario) -> list[str]:
    """Plain-language notes on kernel choices that change the efficiency table for this scenario."""
    notes = []
    profile = load_engine(sc.engine.name)
    if profile.cuda_graph_max_batch is not None and sc.engine.cuda_graph_max_batch is None:
        notes.append(f"the planner chose the batch, so the deployment is assumed configured for it: CUDA graphs "
                     f"capture every step ({sc.engine.name}'s default captures decode batches up to "
                     f"{profile.cuda_graph_max_batch}; set engine_options.cuda_graph_max_batch to model the default)")
    if profile.compiled_steps and not sc.engine.compiled_steps:  # engine_options.enforce_eager
        decode_us, prefill_us = 1e6 * launch_per_kernel(sc), 1e6 * launch_per_kernel(sc, True)
        notes.append(f"enforce_eager: no CUDA graph and no compiled step, each kernel launched from Python "
                     f"({decode_us:.0f} us per op-record kernel, {prefill_us:.0f} us in a prefill; the GPU waits "
                     f"whenever launching is slower than running)")
    silicon = uses_silicon_tables(sc)
    version = sc.engine.kernel_tables_version if silicon else None
    files = calibration_files(sc.gpu, sc.engine.name, silicon, version)
    if files:  # the default table alone (published kernel tables) goes unsaid, as before
        names = " over ".join(str(p.relative_to(CAL_DIR.parent)) for p in reversed(files))
        notes.append(f"kernel efficiencies: {names} over calibration/default.yaml")
    if not silicon and silicon_file(sc.gpu, sc.engine.name) is not None:
        notes.append(f"kernel tables: default (engine_options.kernel_tables: default, or a pool of a disaggregated "
                     f"deployment); {sc.engine.name}'s measured on {sc.gpu} are in profiles/calibration/silicon/ "
                     f"(docs/silicon.md)")
    eff = efficiency_for(sc.gpu, sc.engine.name, silicon, version)
    tp = sc.parallelism.tp
    if allreduce_table(Op("comm.attn_allreduce", "comm", 1, 0, comm="allreduce", group=tp), machine(sc)):
        notes.append(f"tensor-parallel all-reduces among {tp} GPUs: {sc.engine.name}'s own, as measured per message "
                     f"size (comm.allreduce_by_gpus of the silicon tables), not latency + bytes / bus bandwidth")
    if _w4a16_experts(sc) and "int4" in dict(eff.ops["grouped_gemm"].compute_by_dtype):
        notes.append("4-bit weight-only routed experts (W4A16: INT4, or MXFP4 on a GPU without FP4 tensor cores) "
                     "run mixed-input MoE kernels: the table's int4 grouped-GEMM curve (fitted from int4_wo MoE "
                     "silicon tables) replaces the BF16 one")
    dtype = role_dtype(sc, "ffn_up_exps", "moe")
    if (sc.parallelism.ep > 1 or not sc.model.spec.n_routed_experts or silicon
            or dtype not in dict(sc.engine.tp_moe_compute_by_dtype)):
        return notes
    return [*notes, f"routed experts split by TP (ep 1) run {sc.engine.name}'s own fused-MoE kernel: its {dtype} "
            f"efficiency (profiles/engines/{sc.engine.name}.yaml tp_moe_kernel) replaces the grouped-GEMM table"]


@lru_cache(maxsize=1024)  # a whole-catalog search asks for ~200 (GPU x engine x kernel choices); 64 evicted them
def _with_moe_curves(gpu: str | None, engine: str, tp_moe: tuple, w4a16: bool, deepgemm: bool = False,
                     silicon: bool = False, variants: tuple = (), version: str | None = None):
    """`deepgemm`: expert-parallel deployments run DeepGEMM-class grouped GEMMs (DeepEP), not the fused-MoE kernel
    an engine's silicon moe table measured: the default table's grouped_gemm, with the silicon int4 curve kept."""
    eff = efficiency_for(gpu, engine, silicon, version)
    gg = eff.ops["grouped_gemm"]
    if deepgemm:
        int4 = dict(gg.compute_by_dtype).get("int4")
        gg = efficiency_for(None).ops["grouped_gemm"]
        gg = replace(gg, compute_by_dtype=tuple(sorted((dict(gg.compute_by_dtype) | (
            {"int4": int4} if int4 else {})).items())))
    by_dtype = dict(gg.compute_by_dtype) | dict(tp_moe)
    if w4a16:
        by_dtype["bf16"] = by_dtype["int4"]
    eff = replace(eff, ops={**eff.ops, "grouped_gemm": replace(gg, compute_by_dtype=tuple(sorted(by_dtype.items())))})
    return eff.with_surfaces(variants) if variants else eff


def kernels(ops: list[Op]) -> int:
    """Kernels the op records of a step launch (each op's kernels on each layer it repeats over)."""
    return sum(op.kernels * op.count for op in ops)


def launch_seconds(sc: Scenario, ops: list[Op], prefill: bool = False) -> float:
    """Host time to launch every kernel of a step one by one (outside a CUDA graph); `prefill`: the step runs
    prompt tokens (an MLA model's prefill takes its own, longer path: engine eager_prefill_kernel_host_mla_s; another
    MoE model's eager_prefill_kernel_host_moe_s)."""
    return launch_per_kernel(sc, prefill) * kernels(ops)


def launch_per_kernel(sc: Scenario, prefill: bool = False) -> float:
    """Host seconds to launch one kernel outside a CUDA graph (launch_seconds)."""
    eng = sc.engine
    if not eng.pays_launch_floor:  # compiled code outside the graphs, or no eager figure (Engine.pays_launch_floor)
        return 0.0
    per_kernel = eng.eager_kernel_host_s
    if prefill and sc.model.spec.attention != "mla" and sc.model.spec.is_moe:
        return eng.eager_prefill_kernel_host_moe_s if eng.eager_prefill_kernel_host_moe_s is not None else per_kernel
    if sc.model.spec.attention == "mla":
        mla = eng.eager_prefill_kernel_host_mla_s if prefill else None
        per_kernel = next((x for x in (mla, eng.eager_kernel_host_mla_s) if x is not None), per_kernel)
    return per_kernel


def run_ops(sc: Scenario, ops: list[Op], graphed: bool = True, prefill: bool = False) -> Step:
    m = machine(sc)
    timed = tuple(time_op(op, m) for op in ops)
    comp = sum(t.total_s for t in timed if t.bound in ("compute", "latency"))
    mem = sum(t.total_s for t in timed if t.bound == "memory")
    host = sum(t.total_s for t in timed if t.bound == "host")
    comm = sum(t.total_s for t in timed if t.bound == "communication")
    work = comp + mem + host
    if sc.engine.overlap_comm == "tbo_ep" and sc.parallelism.ep > 1:
        # two micro-batches: one's all-to-all runs under the other's compute, hiding part of the shorter of the two
        comm = comm - TBO_HIDDEN * min(comm, work)
    overhead = sc.engine.step_overhead_s
    # ops on the CPU (every op without a GPU) run synchronously: their dispatch adds to the work
    dispatch = 0.0
    if sc.engine.cpu_op_host_s:
        dispatch = sc.engine.cpu_op_host_s * kernels(ops if sc.gpu is None else [op for op in ops if op.where == "cpu"])
    if sc.gpu is None:
        return Step(sc.parallelism.pp * (work + comm + dispatch + overhead), timed, comp, mem, comm, host, overhead,
                    dispatch)
    work += dispatch
    host += dispatch
    launch = 0.0 if graphed else launch_seconds(sc, ops, prefill)
    # pipeline parallelism: a token crosses all pp stages in turn, each taking one stage step, so the step a
    # sequence sees is pp stage steps; with pp micro-batches in flight every GPU stays busy, so per-GPU
    # throughput is still tokens per GPU / this step (no bubble once the batch fills pp micro-batches)
    stages = sc.parallelism.pp
    return Step(stages * (max(work + comm, launch) + overhead), timed, comp, mem, comm, host, overhead, launch)


def tokens_per_step(sc: Scenario) -> float:
    """Tokens each sequence gains per decode step: 1 + drafts x acceptance."""
    if not sc.mtp_tokens:
        return 1.0
    acc = sc.acceptance if sc.acceptance is not None else DEFAULT_MTP_ACCEPTANCE
    return 1.0 + sc.mtp_tokens * acc


def decode_ops(sc: Scenario, batch_per_gpu: float, kv_len: float) -> list[Op]:
    sq = 1 + sc.mtp_tokens
    ops = step_ops(sc, "decode", batch_per_gpu * sq, kv_len, sq=sq)
    if sc.mtp_tokens:
        # draft passes: one MoE layer + lm_head per draft token, for one token per sequence
        draft = step_ops(sc, "decode", batch_per_gpu, kv_len)
        layers = max(1, ceil(sc.model.spec.num_layers / sc.parallelism.pp))
        for op in draft:
            if op.name.startswith("head."):
                ops.append(replace(op, name=f"mtp.{op.name}", count=op.count * sc.mtp_tokens))
            elif op.count == layers or op.name.startswith(("moe.", "comm.ep", "comm.moe")):
                ops.append(replace(op, name=f"mtp.{op.name}", count=sc.mtp_tokens))
    return ops


def prefill_ops(sc: Scenario, tokens_per_gpu: float, prompt_len: float, cached: float = 0.0) -> list[Op]:
    """Prompt tokens attend on average to the cached prefix plus half the new part (causal)."""
    context = cached + (prompt_len - cached) / 2
    seqs = tokens_per_gpu / max(prompt_len - cached, 1)
    return step_ops(sc, "prefill", tokens_per_gpu, context, logits_tokens=seqs)


def decode_step(sc: Scenario, batch_per_gpu: float, kv_len: float) -> Step:
    graphed = sc.engine.graphed(batch_per_gpu * sc.parallelism.tp, prefill=False)
    return run_ops(sc, decode_ops(sc, batch_per_gpu, kv_len), graphed)


def prefill_step(sc: Scenario, tokens_per_gpu: float, prompt_len: float, cached: float = 0.0) -> Step:
    graphed = sc.engine.graphed(tokens_per_gpu * sc.parallelism.tp, prefill=True)
    return run_ops(sc, prefill_ops(sc, tokens_per_gpu, prompt_len, cached), graphed, prefill=True)


def mixed_step(sc: Scenario, batch_per_gpu: float, kv_len: float, prefill_tokens_per_gpu: float,
               prompt_len: float, cached: float = 0.0) -> Step:
    """A decode step plus `prefill_tokens_per_gpu` prompt tokens per step on average.

    Engines that mix (vLLM, TRT-LLM chunked prefill) run both in one forward: weights read once. Engines that
    do not (SGLang without --enable-mixed-chunk) run a separate prefill batch whenever prompts wait: with f
    prompts arriving per decode step, one batch of f prompts per step (f >= 1) or one prompt every 1/f steps,
    so each decode step carries f x one-prompt-batch (amortized; its launch floor included).

    Attention-DP ranks step in lockstep (their MoE layers exchange every rank's tokens; a rank with nothing to run
    joins with an idle batch), so a step lasts as long as its slowest rank: a prompt on one rank holds every rank's
    decode. With d ranks each busy with prompt work in a share f of steps, some rank is in 1 - (1 - f)^d of them
    (independent arrivals; `lockstep`): the non-mixing engine's prompt batch is amortized over that share, and a
    mixing engine's chunk (a prompt's tokens up to the step's token budget) adds its time to that share of steps
    instead of spreading a fraction of a chunk over every step. planner.serving.sim steps the ranks together."""
    t = sc.parallelism.tp
    if prefill_tokens_per_gpu <= 0:
        return decode_step(sc, batch_per_gpu, kv_len)
    d = sc.parallelism.dp_attention
    new = max(prompt_len - cached, 1.0)
    if not sc.engine.mixed_chunk:
        f = min(1.0, prefill_tokens_per_gpu * t / new)
        return amortized(decode_step(sc, batch_per_gpu, kv_len),
                         prefill_step(sc, prefill_tokens_per_gpu / f, prompt_len, cached), lockstep(f, d))
    chunk = float(chunk_per_gpu(sc.engine.max_batched_tokens, batch_per_gpu * t * tokens_per_step(sc), new, t))
    if d > 1 and prefill_tokens_per_gpu < chunk:
        alone = decode_step(sc, batch_per_gpu, kv_len)
        both = _merged_step(sc, batch_per_gpu, kv_len, chunk, prompt_len, cached)
        return blend(alone, both, lockstep(prefill_tokens_per_gpu / chunk, d))
    return _merged_step(sc, batch_per_gpu, kv_len, prefill_tokens_per_gpu, prompt_len, cached)


def _merged_step(sc: Scenario, batch_per_gpu: float, kv_len: float, prefill_tokens_per_gpu: float,
                 prompt_len: float, cached: float) -> Step:
    """Decode and prompt tokens in one forward (merge), weights read once."""
    ops = merge(decode_ops(sc, batch_per_gpu, kv_len), prefill_ops(sc, prefill_tokens_per_gpu, prompt_len, cached))
    return run_ops(sc, ops, sc.engine.graphed((batch_per_gpu + prefill_tokens_per_gpu) * sc.parallelism.tp,
                                              prefill=True), prefill=True)
