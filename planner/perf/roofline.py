"""The roofline, applied in one function: op records -> seconds, with the bound named.

GPU op:   t = max(FLOP / (peak[dtype] x eff_c(m) x depth(K)), bytes / (HBM x eff_m(m)), kernels x floor); an
          engine's fused-MoE grouped GEMM: t = max(compute, latency + bytes / (HBM x fraction)) (Machine.moe_stream_*)
CPU op:   the same with the host's AMX/AVX-512 peak and DRAM bandwidth (NUMA-aware engines use every
          socket, others one socket's worth); `pcie` ops stream their weights over the host link (a
          superchip's NVLink-C2C from Grace memory) while the GPU computes them, t = max(stream, GPU compute).
Comm op:  all-reduce  t = latency + 2(g-1)/g x bytes / bus bandwidth (NVLink/XGMI inside a node, RDMA
          across nodes, PCIe without a scale-up fabric); all-to-all t = latency + max(NVLink part,
          RDMA part) of the bytes sent to other ranks; p2p t = latency + bytes / link.
Efficiencies come from planner.hardware.efficiency (published fractions or a kernels_bench calibration).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.base.errors import PlannerError
from planner.hardware.efficiency import Curve, Efficiency, OpEfficiency, padded
from planner.perf.ops import Op

# CPU<->GPU link per direction when the accelerator profile states none: PCIe 4.0 x16, 31 GB/s (16 GT/s x 16 lanes,
# 128b/130b; ../shared/reference/hardware.yaml pcie_x16_spec, from stas00/ml-engineering network/README.md), the
# slowest link of the data-center GPUs profiled here; gen5 cards state their 63 GB/s in their profiles
PCIE_FALLBACK_BYTES_PER_S = 31e9
# Where a GPU lacks a dtype's MMA, the kernels that run those weights dequantize them: FP4 weights without FP4 tensor
# cores run as W4A16 on the BF16 MMA (Marlin: vLLM's NVFP4 / MXFP4 path before Blackwell), not on FP8
FALLBACK_DTYPE = {"fp4": ("fp4", "bf16"), "fp8": ("fp8", "bf16"), "int8": ("int8", "fp8", "bf16"),
                  "bf16": ("bf16", "fp16"), "fp16": ("fp16", "bf16")}


def mma_dtype(acc, dtype: str) -> str:
    """The compute dtype an op's weights run at on this GPU. MXFP4 weights (gpt-oss experts): on GPUs with FP4 tensor
    cores the FP4 fused-MoE kernels and their curve (Blackwell: mxfp8 x mxfp4 in TensorRT-LLM's TRTLLM / CUTLASS
    backends and vLLM's VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8, which InferenceMAX's B200 recipe sets; the grouped-GEMM
    fp4 curve is the fused NVFP4 MoE's, about the same absolute speed); on Hopper, which has no FP4 MMA, bf16 x
    mxfp4 weight-only kernels (TensorRT-LLM's TRITON backend; vLLM's Marlin, VLLM_MXFP4_USE_MARLIN in InferenceMAX's
    H100/H200 recipes): TensorRT-LLM examples/models/core/gpt_oss/README.md support matrix, SemiAnalysisAI/InferenceX
    benchmarks/single_node/fixed_seq_len/deprecated/gptoss_fp4_*.sh."""
    if dtype == "mxfp4":
        return "fp4" if acc is not None and acc.peak_flops_by_dtype.get("fp4") else "bf16"
    return dtype


@dataclass(frozen=True)
class TimedOp:
    op: Op
    seconds: float  # per occurrence
    bound: str  # compute | memory | latency | communication | host

    @property
    def total_s(self) -> float:
        return self.seconds * self.op.count


@dataclass(frozen=True)
class Machine:
    """What the roofline needs to know about where ops run."""

    acc: object | None  # planner.hardware.accelerators.Accelerator (None: CPU only)
    host: object | None  # planner.hardware.hosts.Host
    eff: Efficiency
    gpus_per_node: int  # GPUs on one scale-up fabric (planner.perf.ops.scale_up_gpus): collectives beyond go over RDMA
    numa_aware: bool  # engine spreads CPU work over all sockets
    cpu_dtype: str  # fp32 (llama.cpp AVX-512) or bf16/int8 (AMX kernels)
    cpu_memory_efficiency: float | None = None  # engine's CPU kernels' fraction of DRAM bandwidth
    cpu_compute_efficiency: Curve | None = None  # engine's CPU GEMMs' fraction of the AMX / AVX-512 peak by rows
    stream_pageable_bytes_per_s: float | None = None  # host-to-GPU weight streaming from pageable memory (engine)
    stream_overlap: bool = True  # streamed weights' copy overlaps the GEMMs that use them (engine)
    # the engine's fused-MoE kernels (planner.deploy.engines.Engine.fused_moe_stream): grouped GEMMs take
    # latency + bytes / (HBM x fraction) as their memory time, no floor; None: the table's memory curve and floor
    moe_stream_latency_s: float | None = None
    moe_stream_fraction: float | None = None


def _peak(acc, dtype: str) -> float:
    dtype = mma_dtype(acc, dtype)
    for d in FALLBACK_DTYPE.get(dtype, (dtype, "bf16")):
        try:
            return acc.peak_flops(d)
        except PlannerError:
            continue
    return acc.peak_flops("fp16")


# Short reductions run below the efficiency curves: with few K steps per output tile the prologue and epilogue
# (loading, scaling, writing C) are not amortized. DeepGEMM's dense FP8 table (shared/reference/kernels.yaml,
# H800): at M=4096, K=512 reaches 751 TFLOPS against 1,009-1,426 at K=1,536-16,384, and at M=128 358 against
# 510-645, i.e. ~0.65x; efficiency ~ K / (K + K0) fits that with K0 = 300. The curves are DeepGEMM's at typical
# K ~ 4,096, so ops are scaled by (K / (K + K0)) / (4096 / (4096 + K0)), never above 1. It matters for
# TP-split expert down projections (DeepSeek/Kimi at TP8: K = 2048 / 8 = 256).
GEMM_DEPTH_K0 = 300.0
GEMM_DEPTH_REF = 4096.0


def depth_factor(depth: float) -> float:
    if depth <= 0:
        return 1.0
    return min(1.0, depth / (depth + GEMM_DEPTH_K0) * (GEMM_DEPTH_REF + GEMM_DEPTH_K0) / GEMM_DEPTH_REF)


def _mamf_cap(acc, dtype: str) -> float:
    frac = acc.fraction("mamf_fp8" if mma_dtype(acc, dtype) in ("fp8", "fp4", "int8") else "mamf_bf16")
    return frac if frac else 1.0


def compute_curve(e: OpEfficiency, kind: str, dtype: str) -> Curve:
    """The compute curve an op of `kind` runs at for its MMA dtype; a GEMM's as a padding kernel runs it
    (planner.hardware.efficiency.padded: fewer rows never take longer than more)."""
    curve = e.compute_for(dtype)
    return padded(curve) if kind in ("gemm", "grouped_gemm") else curve


def gpu_compute_seconds(op: Op, m: Machine) -> float:
    """An op's FLOP on the GPU at the table's compute curve for its dtype (GEMMs capped at the measured MAMF and
    scaled by their reduction depth): the compute side of time_op's roofline."""
    peak = _peak(m.acc, op.dtype)
    eff_c = compute_curve(m.eff.ops[op.kind], op.kind, mma_dtype(m.acc, op.dtype)).at(op.m or 1)
    if op.kind in ("gemm", "grouped_gemm"):
        eff_c = min(eff_c, _mamf_cap(m.acc, op.dtype)) * depth_factor(op.depth)
    return op.flops / (peak * eff_c) if op.flops else 0.0


def time_op(op: Op, m: Machine) -> TimedOp:
    if op.kind == "comm":
        return TimedOp(op, comm_time(op, m), "communication")
    e = m.eff.ops[op.kind]
    if op.where == "cpu" or m.acc is None:
        return _cpu_time(op, m)
    t_c = gpu_compute_seconds(op, m)
    t_m = op.bytes / (m.acc.memory_bandwidth_bytes_per_s * e.memory.at(op.m or 1)) if op.bytes else 0.0
    if op.where == "pcie":
        # a superchip streams from its Grace memory: NVLink-C2C or the LPDDR5X share per GPU, whichever is lower
        link = m.acc.grace_stream_bytes_per_s or m.acc.host_link_bytes_per_s or PCIE_FALLBACK_BYTES_PER_S
        rate = link * m.eff.comm["pcie_fraction"]
        if m.stream_pageable_bytes_per_s:  # staged through the driver's pinned bounce buffer
            rate = min(rate, m.stream_pageable_bytes_per_s)
        t_stream = op.weight_bytes / rate
        t = max(t_c + t_stream if not m.stream_overlap else max(t_c, t_stream), e.floor_s * op.kernels)
        return TimedOp(op, t, "host" if t_stream >= t_c else "compute")
    if op.kind == "grouped_gemm" and m.moe_stream_fraction:
        t_m = m.moe_stream_latency_s + op.bytes / (m.acc.memory_bandwidth_bytes_per_s * m.moe_stream_fraction)
        return TimedOp(op, max(t_c, t_m), "compute" if t_c >= t_m else "memory")
    floor = e.floor_s * op.kernels
    # a silicon calibration's shape surface or kernel-configuration curve for this op (planner.perf.op_static and
    # sweep time the same ops the same way): its rule holds wherever the op has one, a factor of exactly 1 included
    shape = e.shaped(op) if e.shape_by_dtype or e.config_by_dtype else None
    if shape is not None:
        # a silicon calibration's shape surface: how much faster (> 1) or slower the engine's measured kernel ran at
        # this shape than the curves give. kernels_bench/silicon_fit.py fits it on the roofline of the table's op
        # records: a GEMM table times one kernel, so a GEMM's other kernels (activation quantization, a norm) keep
        # their launch floors outside it; MoE and attention tables time the planner's own op records, floors included
        # (nothing outside: a kernel the table measured below the curves' floor keeps its measured speed)
        one = e.floor_s * (1 if op.kind == "gemm" else op.kernels)
        t_kernel = max(t_c, t_m, one) / shape
        t = max(t_kernel, floor - one)
        bound = "latency" if t > t_kernel else ("compute" if t_c >= t_m else "memory")
        return TimedOp(op, t, bound)
    t = max(t_c, t_m, floor)
    bound = "latency" if t == floor and t > max(t_c, t_m) else ("compute" if t_c >= t_m else "memory")
    return TimedOp(op, t, bound)


def _cpu_time(op: Op, m: Machine) -> TimedOp:
    host = m.host
    if host is None:
        raise PlannerError("ops placed on the CPU need a host profile", field="hardware.host")
    e = m.eff.ops["cpu_experts"] if op.kind == "cpu_experts" else m.eff.ops[op.kind]
    sockets = host.sockets if m.numa_aware else 1
    bw = host.memory_bandwidth_bytes_per_s_per_socket * sockets
    frac = m.cpu_memory_efficiency or min(host.memory_bandwidth_fraction or 1.0, e.memory.at(op.m or 1))
    t_m = op.bytes / (bw * frac) if op.bytes else 0.0
    try:
        peak = host.cpu.peak_flops_per_socket(m.cpu_dtype) * sockets
        curve = m.cpu_compute_efficiency or e.compute
        t_c = op.flops / (peak * curve.at(op.m or 1)) if op.flops else 0.0
    except PlannerError:  # CPU clock not published: compute not modelled (noted by perf)
        t_c = 0.0
    t = max(t_c, t_m, e.floor_s)
    return TimedOp(op, t, "host")


def allreduce_table(op: Op, m: Machine):
    """The calibration's measured all-reduce (planner.hardware.allreduce.AllReduceTable) for an all-reduce inside
    one node among a GPU count it measured, else None."""
    g = max(op.group, 1)
    if op.comm != "allreduce" or g > max(m.gpus_per_node, 1) or not m.eff.allreduce:
        return None
    return m.eff.allreduce_table(g)


def comm_time(op: Op, m: Machine) -> float:
    c = m.eff.comm
    g = max(op.group, 1)
    if g <= 1 or not op.comm_bytes:
        return 0.0
    table = allreduce_table(op, m)
    if table is not None:
        return table.seconds(op.comm_bytes)
    acc = m.acc
    nvlink = (acc.scale_up_bytes_per_s if acc and acc.scale_up_bytes_per_s else None)
    pcie = (acc.host_link_bytes_per_s if acc and acc.host_link_bytes_per_s else PCIE_FALLBACK_BYTES_PER_S)
    intra = nvlink or pcie * c["pcie_fraction"]
    cross_node = g > max(m.gpus_per_node, 1)
    rdma = c["rdma_bytes_per_s_per_gpu"]
    if op.comm == "allreduce":
        busbw = (acc.allreduce_busbw_bytes_per_s if acc and acc.allreduce_busbw_bytes_per_s and nvlink
                 else intra * c["allreduce_busbw_fraction"])
        if cross_node:
            # NCCL runs one ring (channel) per NIC; every ring leaves each node once, so each of a node's NICs
            # carries 1/NICs of the 2 (g - 1) / g x S every GPU sends: the bus bandwidth is the node's NICs
            # together (one NIC per GPU: GPUs per node x the per-GPU RDMA rate), not one NIC's. nccl-tests
            # all_reduce_perf on 8x H200 nodes with 8 NICs each: ~350 GB/s busbw at 512 MB (NVIDIA/nccl-tests
            # #283) = 8 x ~44 GB/s, the per-GPU rate DeepEP reaches over the same CX7 400 Gb/s NICs
            busbw = min(busbw, rdma * min(max(m.gpus_per_node, 1), g))
        lat = c["allreduce_latency_cross_node_s"] if cross_node else c["allreduce_latency_s"]
        return lat + 2 * (g - 1) / g * op.comm_bytes / busbw
    if op.comm == "alltoall":
        t_intra = op.comm_bytes / (intra * c["alltoall_nvlink_fraction"])
        t_inter = op.rdma_bytes / rdma
        return c["alltoall_latency_s"] + max(t_intra, t_inter)
    link = rdma if cross_node else intra
    return c["allreduce_latency_s"] + op.comm_bytes / link
