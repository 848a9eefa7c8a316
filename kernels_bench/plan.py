"""The planner's side of a bench case: shapes, op records, predicted bytes and seconds (STYLE.md habits 8, 10).

A `Case` names a model profile, a weight format, a parallel plan and a workload point. Its shapes come from the
planner's ModelSpec (optionally scaled down for CPUs: `Scale` divides hidden size, heads, routed experts and
expert widths; head dims and MLA ranks stay) and its plan (TP splits heads, EP keeps E/ep local experts).
Everything predicted is read from the planner, never re-derived here:
- op records: planner.perf.steps.decode_ops / prefill_ops (MLA) and planner.perf.ops.step_ops (MoE), one layer's ops
  (per-occurrence values of a `count`-layer op are one layer's);
- weight bytes: planner.model.quant QuantFormat.tensor_bytes of the layer's inventory tensors x memory placement share;
- KV bytes: planner.model.kv KVLayout.per_gpu_layer_bytes x tokens held;
- seconds: planner.perf.roofline.time_op on a Machine describing the bench device.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from planner.base.errors import PlannerError
from planner.deploy.placement import gpu_share
from planner.deploy.scenario import Scenario, make_scenario
from planner.hardware.efficiency import Efficiency
from planner.model.inventory import TensorGroup, tensor_inventory
from planner.model.kv import kv_layout
from planner.model.models import raw_config
from planner.model.spec import ModelSpec
from planner.perf.ops import Op, step_ops
from planner.perf.roofline import Machine, TimedOp, comm_time, time_op
from planner.perf.steps import decode_ops, prefill_ops

# A scenario places weights on an accelerator; the op records (FLOP, bytes per op) do not depend on which, and times
# come from the bench's own Machine (kernels_bench.devices.accelerator_for), so any GPU profile serves as the label.
SCENARIO_GPU = "h200-sxm"


@dataclass(frozen=True)
class Scale:
    """Divisors that shrink a model for CPU runs: hidden size, attention heads, routed experts, expert widths."""

    hidden: int = 1
    heads: int = 1
    experts: int = 1
    inter: int = 1

    def apply(self, spec: ModelSpec) -> ModelSpec:
        if self == Scale():
            return spec
        for what, n, d in (("hidden size", spec.hidden_size, self.hidden), ("heads", spec.num_heads, self.heads),
                           ("routed experts", spec.n_routed_experts, self.experts),
                           ("moe_intermediate_size", spec.moe_intermediate_size, self.inter),
                           ("shared_intermediate_size", spec.shared_intermediate_size, self.inter)):
            if n % d:
                raise PlannerError(f"scale {d} does not divide the {n} {what} of {spec.name}", field="scale")
        return replace(spec, hidden_size=spec.hidden_size // self.hidden, num_heads=spec.num_heads // self.heads,
                       num_kv_heads=spec.num_kv_heads // self.heads,
                       n_routed_experts=spec.n_routed_experts // self.experts,
                       moe_intermediate_size=spec.moe_intermediate_size // self.inter,
                       shared_intermediate_size=spec.shared_intermediate_size // self.inter)

    @property
    def tag(self) -> str:
        return "" if self == Scale() else f"-s{self.hidden}.{self.heads}.{self.experts}.{self.inter}"


@dataclass(frozen=True)
class Case:
    layer: str  # mla | moe
    phase: str  # decode | prefill
    tokens: int  # MLA decode: sequences on this TP rank; MLA prefill: prompt tokens; MoE: tokens on this GPU
    context: int = 0  # MLA decode: tokens in each sequence's cache, the new one included
    weights: str = "bf16"  # planner weight format (profiles/quant/)
    kv_cache: str = "bf16"  # planner KV dtype (bench supports bf16)
    model: str = "kimi-k2.5"
    tp: int = 1  # MLA: heads split over tp ranks; this rank is timed
    ep: int = 1  # MoE: ceil(E / ep) local experts; stage tokens = tokens x ep (DP attention)
    skew: float = 0.0  # routing: 0 = uniform random; > 0 = Zipf popularity exponent (planner.perf.ops.distinct_experts)
    scale: Scale = field(default_factory=Scale)
    components: bool = True  # also time each op of the layer on its own

    @property
    def name(self) -> str:
        plan = (f"-tp{self.tp}" if self.tp > 1 else "") + (f"-ep{self.ep}" if self.ep > 1 else "")
        kv = "" if self.kv_cache == "bf16" else f"-kv{self.kv_cache}"
        if self.layer == "mla" and self.phase == "decode":
            core = f"mla-decode-b{self.tokens}-ctx{self.context}"
        elif self.layer == "mla":
            core = f"mla-prefill-t{self.tokens}"
        else:
            core = f"moe-{self.phase}-t{self.tokens}" + (f"-skew{self.skew:g}" if self.skew else "")
        return f"{core}-{self.weights}{kv}{plan}"

    @property
    def op(self) -> str:
        return f"mla_{self.phase}" if self.layer == "mla" else "moe"

    @property
    def group(self) -> str:
        """Cross-validation group: every case and component of one shape (all formats, both routings) together."""
        return f"{self.layer}-{self.phase}-{self.tokens}-{self.context}-tp{self.tp}-ep{self.ep}{self.scale.tag}"

    @property
    def build_key(self) -> tuple:
        """Cases with equal keys share one built layer (weights are built once)."""
        return (self.layer, self.model, self.weights, self.tp if self.layer == "mla" else self.ep, self.scale)


@lru_cache(maxsize=64)
def scenario(case: Case) -> Scenario:
    """The planner scenario of one GPU of the case's plan, with the (scaled) spec swapped in."""
    if case.layer == "mla":
        par, gpus = {"tp": case.tp}, case.tp
    else:
        par, gpus = {"tp": 1, "dp_attention": case.ep, "ep": case.ep}, case.ep
    sc = make_scenario(case.model, weights=case.weights, kv_cache=case.kv_cache, gpu=SCENARIO_GPU, gpus_per_node=gpus,
                       parallelism=par, engine="ideal", name=case.name, file=f"kernels_bench case {case.name}")
    spec = case.scale.apply(sc.model.spec)
    if spec.attention != "mla" or not spec.is_moe:
        raise PlannerError(f"{case.model}: kernels_bench runs MLA + routed-expert models (DeepSeek-V3/Kimi K2 family)",
                           field="model")
    return replace(sc, model=replace(sc.model, spec=spec))


def layer_ops(case: Case) -> list[Op]:
    """One layer's op records as the planner lists them (communication left out: one device runs)."""
    sc = scenario(case)
    if case.layer == "mla":
        per_gpu = case.tokens / case.tp  # the TP group's sequences/tokens, counted per GPU as the planner does
        ops = (decode_ops(sc, per_gpu, case.context) if case.phase == "decode"
               else prefill_ops(sc, per_gpu, case.tokens))
        return [op for op in ops if op.name.startswith("attn.") and op.name != "attn.ffn_norm"]
    ops = step_ops(sc, case.phase, case.tokens, max(case.context, 1), skew=case.skew)
    return [op for op in ops if op.name == "attn.ffn_norm" or (op.name.startswith("moe.") and op.where == "gpu")]


def first_moe_layer(spec: ModelSpec) -> int:
    return next(i for i, moe in enumerate(spec.moe_layers) if moe)


def layer_tensors(case: Case) -> list[TensorGroup]:
    """Inventory tensors of the layer the case runs: attention (+ input norm) or the MoE block (+ its norm)."""
    spec = scenario(case).model.spec
    li = first_moe_layer(spec)
    out = []
    for t in tensor_inventory(spec):
        if t.part != "language" or t.layer != li:
            continue
        if case.layer == "mla" and (t.component == "attention" or t.role == "attn_norm"):
            out.append(t)
        elif case.layer == "moe" and (t.component in ("router", "routed_experts", "shared_experts")
                                      or t.role == "ffn_norm"):
            out.append(t)
    return out


def storage_of(case: Case, t: TensorGroup) -> str:
    sc = scenario(case)
    return sc.weights.storage_for(t, sc.model.spec).name


def predicted_weight_bytes(case: Case) -> int:
    """Bytes of the layer's weights on this GPU: the planner's per-tensor bytes x its placement share."""
    sc = scenario(case)
    return round(sum(sc.weights.tensor_bytes(t, sc.model.spec) * gpu_share(t, sc) for t in layer_tensors(case)))


def kv_tokens(case: Case) -> int:
    """Tokens whose latent this rank holds: decode B x context, prefill the prompt, MoE none."""
    if case.layer != "mla":
        return 0
    return case.tokens * case.context if case.phase == "decode" else case.tokens


def predicted_kv_bytes(case: Case) -> int:
    spec = scenario(case).model.spec
    return kv_layout(spec, case.kv_cache).per_gpu_layer_bytes(case.tp, spec.num_kv_heads) * kv_tokens(case)


def router_config(case: Case) -> dict:
    """Router settings the spec does not carry, read from the model's config.json (planner change requested)."""
    sc = scenario(case)
    cfg = raw_config(sc.model)
    cfg = cfg.get("text_config", cfg) if isinstance(cfg.get("text_config"), dict) else cfg
    experts = sc.model.spec.n_routed_experts
    groups = int(cfg.get("n_group") or 1)
    topk_groups = int(cfg.get("topk_group") or 1)
    if experts % groups:  # scaled-down expert count: group-limited routing no longer applies
        groups = topk_groups = 1
    return {"n_group": groups, "topk_group": topk_groups, "norm_topk_prob": bool(cfg.get("norm_topk_prob", True)),
            "routed_scaling_factor": float(cfg.get("routed_scaling_factor") or 1.0),
            "scoring_func": cfg.get("scoring_func", "sigmoid"), "rms_norm_eps": float(cfg.get("rms_norm_eps", 1e-6)),
            "rope_theta": float(cfg.get("rope_theta", 10000.0))}


def machine(acc, eff: Efficiency) -> Machine:
    """The bench device as the roofline sees it: one device, no host offload, no collectives."""
    return Machine(acc, None, eff, 1, False, "bf16")


def link_allreduce_seconds(acc, eff: Efficiency, gpus: int, sizes: list[float]) -> list[float]:
    """Seconds of an all-reduce among `gpus` GPUs of one node for each message size in bytes, by `eff`'s link model
    (planner.perf.roofline.comm_time: latency + 2 (g - 1) / g x bytes over the bus bandwidth, where `eff` holds no
    measured table for the count): what a silicon calibration's measured all-reduce is set beside."""
    m = replace(machine(acc, eff), gpus_per_node=gpus)
    return [comm_time(Op("comm.allreduce", "comm", 1, 0, comm_bytes=b, comm="allreduce", group=gpus), m)
            for b in sizes]


def predict(ops: list[Op], m: Machine) -> tuple[float, list[TimedOp]]:
    timed = [time_op(op, m) for op in ops]
    return sum(t.seconds for t in timed), timed


def op_record(op: Op) -> dict:
    """JSON form of an Op (stored with each run so calibration can re-time it)."""
    return {k: getattr(op, k) for k in op.__dataclass_fields__}


def op_from_record(d: dict) -> Op:
    return Op(**d)
