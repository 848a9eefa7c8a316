"""Op records and the helpers every layer kind builds them with: the Op dataclass, one GEMM record, and the
weight bytes and compute dtype of each weight role as planner.deploy.placement places it (planner.perf.ops lists
the records of a step; planner.perf.ops_kinds those of the newer attention kinds)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

from planner.deploy.placement import gpu_share
from planner.deploy.scenario import Scenario
from planner.model.inventory import tensor_inventory


@dataclass(frozen=True)
class Op:
    name: str  # e.g. "attn.q_b_proj", "moe.experts", "comm.ep_dispatch"
    kind: str  # gemm | grouped_gemm | attention_decode | attention_prefill | elementwise | comm | cpu_experts
    count: int  # layers this op repeats over on the GPU
    flops: float  # per occurrence
    weight_bytes: float = 0.0  # weights read per occurrence
    act_bytes: float = 0.0  # activations read + written per occurrence
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    comm_bytes: float = 0.0  # bytes this GPU sends per occurrence (over NVLink/XGMI/PCIe inside a node)
    rdma_bytes: float = 0.0  # of which cross nodes over the scale-out NICs (all-to-all)
    comm: str = ""  # allreduce | alltoall | allgather | pcie (weights streamed from host) | ""
    group: int = 1  # GPUs in the collective
    dtype: str = "bf16"  # compute dtype of the GEMM (fp8 / fp4 / int8 where the weights allow and the GPU has it)
    m: int = 0  # GEMM rows (tokens) for efficiency curves
    where: str = "gpu"  # gpu | cpu | pcie (weights streamed from host RAM to the GPU that computes)
    kernels: int = 1  # kernel launches this op stands for (the per-kernel floor applies to each)
    depth: float = 0.0  # GEMM reduction depth K on this GPU (FLOP-weighted harmonic mean over its GEMMs; 0: n/a)
    # routed experts: (hidden, expert inter size, top-k, experts, expert TP, EP), the kernel configuration a
    # silicon calibration may carry a measured factor for (OpEfficiency.config_by_dtype); () elsewhere
    config: tuple = ()

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.act_bytes + self.kv_read_bytes + self.kv_write_bytes


@lru_cache(maxsize=64)
def _role_tensors(spec, fmt) -> tuple:
    """(role, layer kind) key, the tensor group that holds it first, its bytes and compute dtype: what _role_bytes
    needs of a model and format (the walk over every tensor is done once, not once per parallel plan)."""
    out: dict[tuple[str, str], tuple] = {}
    for t in tensor_inventory(spec):
        if t.part != "language" or not t.is_matrix:
            continue
        # the first layer of its FFN kind that holds the role (hybrids: attention roles live only in some layers)
        kind = "head" if t.layer is None else spec.weight_kind(t.layer)
        keys = [(t.role, kind)]
        if (spec.full_head_dim or spec.index_topk) and t.layer is not None:  # Gemma 4, MiniMax-M3 (DSA too): and
            keys.append((t.role, f"{kind}@{spec.attention_kind(t.layer)}"))  # of its attention kind ("moe@sliding")
        keys = [k for k in keys if k not in out]
        if not keys:
            continue
        st = fmt.storage_for(t, spec)
        nbytes = fmt.tensor_bytes(t, spec)
        for key in keys:
            out[key] = (t, nbytes, st.compute)
    return tuple((key, *v) for key, v in out.items())


@lru_cache(maxsize=512)
def _role_bytes(sc: Scenario) -> dict[tuple[str, str], tuple[float, float, str]]:
    """(role, layer kind) -> (bytes on this GPU, bytes of one expert (experts only), compute dtype) for one layer."""
    return {key: (nbytes * gpu_share(t, sc), nbytes / t.count, compute)
            for key, t, nbytes, compute in _role_tensors(sc.model.spec, sc.weights)}


def _w(sc: Scenario, role: str, kind: str) -> float:
    return _role_bytes(sc).get((role, kind), (0.0, 0.0, "bf16"))[0]


def role_dtype(sc: Scenario, role: str, kind: str) -> str:
    """Storage dtype of a weight role in this scenario's format (what its GEMMs compute in)."""
    return _role_dtypes(sc.model.spec, sc.weights).get((role, kind), "bf16")


@lru_cache(maxsize=256)
def _role_dtypes(spec, fmt) -> dict[tuple[str, str], str]:
    """(role, layer kind) -> compute dtype: the model and format's alone (the sizing search asks per plan, and the
    plans of one model and format are many)."""
    return {key: compute for key, _, _, compute in _role_tensors(spec, fmt)}


@lru_cache(maxsize=64)
def fp8_scaling(spec, fmt) -> str:
    """How the format scales the model's FP8 matmul weights: "tensor" (one scale per tensor: ModelOpt / static FP8
    checkpoints, profiles/storage_types.yaml fp8_tensor), "block" (per 128 x 128 block), "" (no FP8 weights)."""
    for _, t, _, compute in _role_tensors(spec, fmt):
        if compute == "fp8":
            return "block" if fmt.storage_for(t, spec).scale_block else "tensor"
    return ""


def swiglu_depth(h: float, inter_per_gpu: float) -> float:
    """Reduction depth of a SwiGLU MLP on one GPU: gate/up reduce over h (2/3 of the FLOP), down over the GPU's
    slice of the intermediate size (1/3); FLOP-weighted harmonic mean, as time ~ FLOP / efficiency(K)."""
    return 1 / (2 / 3 / h + 1 / 3 / max(inter_per_gpu, 1.0))


def _gemm(name: str, count: int, m: float, k: int, n: float, weight: float, dtype: str, kind: str = "gemm",
          kernels: int = 1, rows: float | None = None, depth: float | None = None) -> Op:
    """[m, k] x [k, n]: 2mkn FLOP; bf16 activations in and out (+ an fp8 copy of the input for fp8 GEMMs:
    DeepGEMM/CUTLASS block-scaled GEMMs quantize activations per token per 128 channels first).
    `rows`: the GEMM's real M for the efficiency curve when the GPU runs all `rows` tokens of its TP group on
    a 1/t column slice (FLOP and bytes are still counted as m tokens at full width).
    `depth`: the reduction depth one GPU runs (row-parallel layers split k over TP); default k."""
    quant = 3 * m * k if dtype == "fp8" else 0
    return Op(name, kind, count, 2 * m * k * n, weight_bytes=weight, act_bytes=2 * m * (k + n) + quant, dtype=dtype,
              m=ceil(rows or m), kernels=kernels, depth=depth or k)
