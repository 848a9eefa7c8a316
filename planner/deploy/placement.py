"""Weight placement: which share of every tensor group the fullest GPU of a deployment holds, and what goes to
host RAM.

Placement rules (what engines shard and what they replicate):
- routed experts: spread over the GPUs of a pipeline stage: the fullest EP rank holds
  ceil((experts + redundant) / ep) of them (EPLB redundant copies; uneven when ep does not divide),
  each also TP-split over tp x dp_attention / ep GPUs;
  the first N MoE layers' experts go to host RAM with `offload.expert_layers_on_cpu: N`
  (llama.cpp --n-cpu-moe N); on a superchip (GH200/GB200/GB300) without a host profile they go to the Grace
  memory beside each GPU, each GPU's own share (SGLang's GB200 prefill offload with prefetch);
- attention: column/row-parallel projections split by tp; MLA q_a_proj and kv_a_proj_with_mqa
  are replicated (vLLM/SGLang ReplicatedLinear); GQA K/V keep at least one head per rank; the DSA indexer
  (wq_b, wk, weights_proj, k_norm) is replicated (vllm deepseek_v2.py Indexer: "no tensor parallel, just
  replicated"); Gated DeltaNet projections, conv1d, A_log and dt_bias split by heads over tp, its norm replicated;
  every dp_attention rank holds a full copy;
- embedding, lm_head, dense MLP and shared experts: split over the engine's `dense_split` group
  (vLLM: tp; SGLang: tp x dp_attention) or `parallelism.dense_tp`;
- norms, routers, vision tower: replicated; PP puts embedding and vision on the first stage,
  lm_head and the final norm on the last, layers evenly, MTP layers on the last.
Used by memory accounting (planner.deploy.memory) and by the op records (planner.perf.ops), which read
weights as they are placed here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from math import ceil

from planner.deploy.scenario import Parallelism, Scenario
from planner.model.inventory import COMPONENTS, TensorGroup, tensor_inventory
from planner.model.quant import QuantFormat
from planner.model.spec import ModelSpec

MLA_REPLICATED = {"attn_q_a", "attn_q_a_norm", "attn_kv_a_mqa", "attn_kv_a_norm", "attn_q_a.bias",
                  "attn_kv_a_mqa.bias"}
COLUMN_SPLIT_VECTORS = {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_sinks", "ssm_conv1d", "ssm_a", "ssm_dt"}


@dataclass(frozen=True)
class WeightPlacement:
    per_gpu_bytes: int  # fullest GPU
    per_gpu_by_component: dict  # component -> bytes on the fullest GPU
    host_bytes: int  # weights in host RAM (offloaded experts, or everything when CPU-only)
    loaded_bytes: int  # one copy of everything the engine loads (GPU + host)
    stage_layers: int  # decoder layers on the fullest stage (for the KV share)
    host_bytes_per_gpu: int = 0  # fullest GPU's share of the offloaded experts (in a superchip's Grace memory)


def _stage_of(t: TensorGroup, n_layers: int, pp: int) -> int:
    if t.part == "vision" or t.role == "token_embd":
        return 0
    if t.layer is None or t.layer >= n_layers:  # final norm, lm_head, MTP layers
        return pp - 1
    return t.layer * pp // n_layers


def dense_group(sc: Scenario) -> int:
    return _dense_group(sc.parallelism, sc.engine.dense_split)


def _dense_group(par: Parallelism, dense_split: str) -> int:
    if par.dense_tp:
        return par.dense_tp
    if par.ep > 1 and par.dp_attention > 1:
        # DP-attention + EP deployments (DeepSeek, SGLang DeepEP: --moe-dense-tp-size 1) run the dense layers
        # data-parallel beside attention rather than all-reducing them over the whole EP group
        return par.tp
    return {"tp": par.tp, "tp_dp": par.gpus_per_stage, "none": 1}[dense_split]


def gpu_share(t: TensorGroup, sc: Scenario) -> float:
    """Fraction of the tensor group one GPU of its stage holds."""
    return _share(t, sc.model.spec, sc.parallelism, sc.engine.dense_split)


def _share(t: TensorGroup, spec: ModelSpec, par: Parallelism, dense_split: str) -> float:
    comp, role = t.component, t.role
    if comp == "routed_experts":
        # the fullest EP rank holds ceil((E + redundant) / ep) experts, each TP-split over stage GPUs / ep
        per_rank = ceil((spec.n_routed_experts + par.redundant_experts) / par.ep)
        return per_rank / spec.n_routed_experts / (par.gpus_per_stage / par.ep)
    if comp == "shared_experts" and par.ep > 1:
        # with expert parallelism the shared expert follows the attention TP group (vLLM TP+EP splits it over tp;
        # DeepSeek/SGLang DP-attention + EP keep one whole copy per GPU: "2 routed + 1 shared expert per GPU")
        return 1 / par.tp
    if comp in ("dense_mlp", "shared_experts", "embedding", "lm_head"):
        return 1 / _dense_group(par, dense_split)
    if comp == "attention" and t.part != "vision":
        # DSA / DeepSeek-V4 indexers and V4's compressors run replicated (vLLM ReplicatedLinear, disable_tp)
        if role in MLA_REPLICATED or role.startswith(("nextn.", "attn_idx_", "attn_cmp_")):
            return 1.0
        if role in ("attn_k", "attn_v", "attn_k.bias", "attn_v.bias"):
            return max(1, spec.num_kv_heads // par.tp) / spec.num_kv_heads
        if t.is_matrix or role in COLUMN_SPLIT_VECTORS:
            return 1 / par.tp
    return 1.0


def place_weights(sc: Scenario) -> WeightPlacement:
    """Weights of the fullest GPU (and host RAM). Depends only on the model, format, plan, offload, MTP and the
    engine's dense split, so the sizing search's KV-dtype and host-size variants of one plan share one result."""
    return _place(sc.model.spec, sc.weights, sc.parallelism, sc.expert_layers_on_cpu, sc.mtp_tokens, sc.gpu is None,
                  sc.engine.dense_split)


@lru_cache(maxsize=4096)
def _place(spec: ModelSpec, fmt: QuantFormat, par: Parallelism, on_cpu: int, mtp_tokens: int, cpu_only: bool,
           dense_split: str) -> WeightPlacement:
    moe_layer_ids = [i for i, moe in enumerate(spec.moe_layers) if moe]
    offloaded = set(moe_layer_ids[:on_cpu])
    stages: list[dict] = [defaultdict(float) for _ in range(par.pp)]
    host = loaded = 0
    host_share: list[float] = [0.0] * par.pp
    for t, nbytes in zip(tensor_inventory(spec), fmt.inventory_bytes(spec), strict=True):
        if t.part in fmt.exclude_parts or (t.part == "mtp" and mtp_tokens == 0):
            continue
        loaded += nbytes
        if cpu_only or (t.component == "routed_experts" and t.layer in offloaded):
            host += nbytes
            if not cpu_only:
                host_share[_stage_of(t, spec.num_layers, par.pp)] += nbytes * _share(t, spec, par, dense_split)
            continue
        stages[_stage_of(t, spec.num_layers, par.pp)][t.component] += nbytes * _share(t, spec, par, dense_split)
    totals = [sum(s.values()) for s in stages]
    k = max(range(par.pp), key=totals.__getitem__)
    by_comp = {c: ceil(stages[k].get(c, 0)) for c in (*COMPONENTS, "vision")}
    stage_layers = sum(1 for i in range(spec.num_layers) if i * par.pp // spec.num_layers == k)
    if mtp_tokens and k == par.pp - 1:
        stage_layers += spec.mtp_layers
    return WeightPlacement(sum(by_comp.values()), by_comp, host, loaded, stage_layers, ceil(max(host_share)))
