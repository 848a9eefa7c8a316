"""Prefill/decode disaggregation in a scenario (issue 18): a prefill pool of P workers, a decode pool of D workers,
each worker an engine instance with its own parallel plan, and the KV transfer between the pools.

    disaggregation:                     # top level of a scenario (docs/formats.md)
      prefill: {workers: 2, parallelism: {tp: 4, ep: 4}, engine_options: {max_batched_tokens: 16384}}
      decode:  {workers: 1, parallelism: {dp_attention: 8, ep: 8}}
      kv_transfer: {link: auto, bandwidth_gb_per_s: null, latency_ms: 1.0, first_token: prefill}

A pool's worker is a scenario of its own (planner.deploy.scenario.make_scenario: the scenario's model, weights, KV
dtype, GPU, engine and workload; one replica of the pool's plan, `parallelism.disaggregated` true), so memory and
fit are checked per pool by the same code as any scenario, and errors name `disaggregation.<pool>.<field>`. The
scenario's top-level `parallelism` and `engine_options`, when given, are both pools' defaults; a pool's keys override
them. The hardware holds both pools: P x (GPUs per prefill worker) + D x (GPUs per decode worker) <= gpus_per_node x
nodes; a worker spans ceil(its GPUs / gpus_per_node) nodes as any scenario does.

KV transfer (KVTransfer): a request's prompt KV, kv_bytes(prompt tokens) = the unsplit per-token KV of every layer
(planner.model.kv.KVLayout, window caps applied) plus a linear-attention state, moves from its prefill worker to its
decode worker in `streams` parallel GPU-to-GPU copies (TP ranks holding different KV heads send their own shard,
TensorRT-LLM "KV cache transmission between different sets of GPUs can occur in parallel", docs/source/1.0/features/
disagg-serving.md; an MLA latent, the same on every TP rank, is one copy) over
- NVLink when both pools fit in one NVLink domain (`link: auto`): the accelerator profile's scale_up.domain_gpus
  (GB200/GB300 NVL72: 72 GPUs), else the domain is the node (gpus_per_node). Per stream: the
  measured peer copy (scale_up_achieved) where the profile has one, else the scale-up bandwidth x the calibration's
  alltoall_nvlink_fraction (DeepEP intranode, profiles/calibration/default.yaml);
- otherwise RDMA: the calibration's rdma_bytes_per_s_per_gpu per stream (DeepEP internode 43-58 GB/s per GPU over a
  ConnectX-7 400 Gb/s NIC), as the expert all-to-all across nodes (planner.perf.roofline.comm_time).
Both engines overlap the copy with other requests' compute (Dynamo "the KV transfer is non-blocking, allowing GPU
forward passes to continue", docs.nvidia.com/dynamo design-docs/disaggregated-serving; TensorRT-LLM "Overlap
Optimization"), so the simulator (planner.serving.disagg) charges the transfer to the request, not to the steps.

Where the first token comes from (`first_token`): the prefill worker samples it in every engine here (TensorRT-LLM's
context response carries "the first generated token", disagg-serving.md; SGLang's prefill forward samples it and
ships it with the KV; vLLM's prefill runs max_tokens=1). Dynamo's frontend streams it when the prefill phase returns
it (ai-dynamo/dynamo #7590: the request's first_token_time "is locked by the prefill phase", the decode's first token
timed apart): `prefill`, the default, TTFT = queue + prefill + first-token path. trtllm-serve's disaggregated server
and SGLang's router before sgl-project/sglang #24812 stream the client everything from the decode server, so its
first token arrives after the KV transfer and the decode worker's pick-up (TensorRT-LLM serve/scripts/time_breakdown:
the disagg server's first token follows the generation server's; sglang #22853: ~200 ms more TTFT than aggregated
under load, of which the RDMA transfer of a 12,000-token prompt ~6 ms): `decode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from math import ceil

from planner.base.errors import PlannerError
from planner.base.yamlio import check_keys, get_choice, get_number, require_mapping, sub_mapping
from planner.deploy.engine_options import ENGINE_OPTION_KEYS
from planner.deploy.scenario import MAX_GPUS, PARALLEL_KEYS, Scenario, make_scenario
from planner.hardware.efficiency import efficiency_for
from planner.model.kv import KVLayout, kv_layout

KEYS = ("prefill", "decode", "kv_transfer")
POOL_KEYS = ("workers", "parallelism", "engine_options")
TRANSFER_KEYS = ("link", "bandwidth_gb_per_s", "latency_ms", "first_token")
LINKS = ("auto", "nvlink", "rdma")
FIRST_TOKEN = ("prefill", "decode")
POOL_PLAN_KEYS = tuple(k for k in PARALLEL_KEYS if k not in ("replicas", "disaggregated"))  # a worker is one replica
# Fixed cost of one request's transfer beside its bytes / bandwidth: the control messages (the decode side's
# bootstrap or NIXL notification that the blocks landed, read between scheduler steps). APPROXIMATE: no source
# publishes it apart from the bytes; 1 ms sits well under the whole RDMA transfer of a 12,000-token prompt SGLang
# users measured (~6 ms, sgl-project/sglang #22853) and well over one RDMA round trip (the 46-94 us NCCL small-message
# latencies of profiles/calibration/default.yaml). A scenario states its own as kv_transfer.latency_ms
KV_TRANSFER_LATENCY_S = 1e-3


@dataclass(frozen=True)
class Pool:
    """One phase's workers: `workers` engine instances of one plan."""

    role: str  # prefill | decode
    workers: int  # engine instances in the pool
    scenario: Scenario  # one worker: plan, engine, memory (parallelism.disaggregated true, one replica)

    @property
    def gpus_per_worker(self) -> int:
        return self.scenario.parallelism.gpus_per_replica

    @property
    def gpus(self) -> int:
        return self.workers * self.gpus_per_worker

    @property
    def label(self) -> str:
        return f"{self.workers} x {self.scenario.parallelism.label}"


@dataclass(frozen=True)
class KVTransfer:
    """The path a request's prompt KV takes from its prefill worker to its decode worker."""

    link: str  # nvlink | rdma
    bytes_per_s: float  # one request's transfer, all its parallel streams together
    latency_s: float  # fixed cost per transfer, beside bytes / bytes_per_s
    streams: int  # GPU-to-GPU copies that move one request's KV at once
    first_token: str  # prefill | decode: which worker's stream delivers the client's first token
    why: str  # how the link and bandwidth were chosen, for the assumptions

    def seconds(self, nbytes: float) -> float:
        """One transfer of `nbytes` alone on its link."""
        return self.latency_s + nbytes / self.bytes_per_s


@dataclass(frozen=True)
class Disaggregation:
    prefill: Pool
    decode: Pool
    transfer: KVTransfer
    layout: KVLayout  # the model's KV under the scenario's KV dtype
    kv_heads: int  # KV heads of the model (what TP splits)

    @property
    def gpus(self) -> int:
        return self.prefill.gpus + self.decode.gpus

    def kv_bytes(self, tokens: float) -> float:
        """Bytes one request's transfer moves for a prompt of `tokens` tokens (every layer, unsplit)."""
        n = max(1, int(tokens))
        return float(self.layout.bytes_for_context(n, 1, self.kv_heads) + self.layout.state_bytes_per_request)


def read_disaggregation(doc, base: Scenario, file: str, parallelism: Mapping | None = None,
                        engine_options: Mapping | None = None) -> Disaggregation:
    """The scenario's `disaggregation` mapping; `parallelism` and `engine_options` are the top-level defaults."""
    doc = require_mapping(doc, file, "disaggregation")
    check_keys(doc, KEYS, file, "disaggregation.")
    pools = []
    for role in ("prefill", "decode"):
        if doc.get(role) is None:
            raise PlannerError(f"missing: a disaggregated deployment states its {role} pool (workers, parallelism)",
                               file=file, field=f"disaggregation.{role}")
        p = sub_mapping(doc[role], f"disaggregation.{role}", POOL_KEYS, file)
        plan = {**(parallelism or {}), **sub_mapping(p.get("parallelism"), f"disaggregation.{role}.parallelism",
                                                     POOL_PLAN_KEYS, file)}
        options = {**(engine_options or {}), **sub_mapping(p.get("engine_options"),
                                                           f"disaggregation.{role}.engine_options",
                                                           ENGINE_OPTION_KEYS, file)}
        workers = get_number(p, "workers", file, prefix=f"disaggregation.{role}.", default=1, integer=True,
                             minimum=1, maximum=MAX_GPUS)
        pools.append(pool(base, role, workers, plan, options, file))
    kv = sub_mapping(doc.get("kv_transfer"), "disaggregation.kv_transfer", TRANSFER_KEYS, file)
    return disaggregated(base, pools[0], pools[1], kv, file)


def pool(base: Scenario, role: str, workers: int, parallelism: Mapping, engine_options: Mapping | None = None,
         file: str | None = None) -> Pool:
    """A pool of `workers` engines with one plan (a mapping spelled as a scenario's parallelism) and engine options
    over `base`'s: each worker checked as a scenario of its own."""
    file = file or base.file
    prefix = f"disaggregation.{role}."
    plan = {k: v for k, v in parallelism.items() if k not in ("replicas", "disaggregated")}
    size = 1
    for key in ("tp", "dp_attention", "pp"):  # the worker's GPUs, read as make_scenario will read them
        size *= get_number(plan, key, file, prefix=prefix + "parallelism.", default=1, integer=True, minimum=1,
                           maximum=MAX_GPUS)
    per_node = max(1, base.gpus_per_node)
    # a pool runs on the default kernel table unless its or the deployment's engine_options name the silicon ones:
    # the disaggregated silicon runs were validated on it (docs/silicon.md), where the silicon tables take TPOT p90
    # from 50% to 71%
    engine = replace(base.engine, kernel_tables="default") if base.engine.kernel_tables == "auto" else base.engine
    try:
        sc = make_scenario(
            base.model, weights=base.weights, kv_cache=base.kv_cache, gpu=base.gpu, gpus_per_node=min(per_node, size),
            nodes=ceil(size / per_node), host=base.host, parallelism={**plan, "replicas": 1, "disaggregated": True},
            expert_layers_on_cpu=base.expert_layers_on_cpu, cpu_compute=base.cpu_compute, engine=engine,
            engine_options=engine_options, mtp_tokens=base.mtp_tokens, acceptance=base.acceptance,
            workload=base.workload, slo=dict(base.slo), name=f"{base.name} ({role})", file=file)
    except PlannerError as err:
        raise PlannerError(err.message, file=file, field=prefix + (err.field or "")) from None
    return Pool(role, workers, sc)


def disaggregated(base: Scenario, prefill: Pool, decode: Pool, kv_transfer: Mapping | None = None,
                  file: str | None = None) -> Disaggregation:
    """The deployment of `base`'s model on two pools, checked against `base`'s hardware, with its KV path."""
    file = file or base.file
    wl = base.workload
    if wl.phase != "serve" or wl.batch_per_gpu or not (wl.concurrency or wl.request_rate is not None):
        raise PlannerError("a disaggregated deployment is estimated by simulating its client: state workload.phase "
                           "serve with a concurrency or a request_rate (and no batch_per_gpu)", file=file,
                           field="disaggregation")
    need = prefill.gpus + decode.gpus
    if base.gpu is not None and need > base.total_gpus:
        raise PlannerError(f"the pools need {need} GPUs (prefill {prefill.workers} x {prefill.gpus_per_worker} + "
                           f"decode {decode.workers} x {decode.gpus_per_worker}), hardware has {base.total_gpus} "
                           f"({base.gpus_per_node} per node x {base.nodes} nodes)", file=file, field="disaggregation")
    spec = base.model.spec
    layout = kv_layout(spec, base.kv_cache)
    transfer = kv_path(base, prefill, decode, layout, kv_transfer or {}, file)
    return Disaggregation(prefill, decode, transfer, layout, max(1, spec.num_kv_heads))


def nvlink_domain(base: Scenario) -> int:
    """GPUs one NVLink domain joins: the accelerator profile's scale_up.domain_gpus where the domain spans nodes
    (GB200/GB300 NVL72: 72), else one node (as planner.perf.ops.scale_up_gpus counts it for collectives)."""
    acc = base.accelerator
    domain = acc.scale_up_domain_gpus if acc is not None else None
    return max(1, base.gpus_per_node, domain or 0)


def kv_path(base: Scenario, prefill: Pool, decode: Pool, layout: KVLayout, kv: Mapping, file: str) -> KVTransfer:
    """The KV transfer between the pools (module docstring): link, bandwidth, streams, latency."""
    pre = "disaggregation.kv_transfer."
    link = get_choice(kv, "link", LINKS, file, prefix=pre, default="auto")
    latency_ms = get_number(kv, "latency_ms", file, prefix=pre, default=KV_TRANSFER_LATENCY_S * 1e3, minimum=0,
                            maximum=1e6)
    first = get_choice(kv, "first_token", FIRST_TOKEN, file, prefix=pre, default="prefill")
    stated_bw = get_number(kv, "bandwidth_gb_per_s", file, prefix=pre, default=None, minimum=1e-6, maximum=1e6)
    acc = base.accelerator
    nvlink = acc.scale_up_bytes_per_s if acc is not None else None
    domain = nvlink_domain(base)
    if link == "auto":
        link = "nvlink" if nvlink and prefill.gpus + decode.gpus <= domain else "rdma"
    if link == "nvlink" and not nvlink:
        raise PlannerError(f"{base.gpu or 'this hardware'} has no NVLink (scale-up) bandwidth in its profile",
                           file=file, field=pre + "link")
    comm = efficiency_for(base.gpu, base.engine.name).comm
    heads = max(1, base.model.spec.num_kv_heads)
    streams = min(prefill.scenario.parallelism.tp, decode.scenario.parallelism.tp, heads) if layout.split_by_tp else 1
    if link == "nvlink":
        per = acc.scale_up_achieved_bytes_per_s or nvlink * comm["alltoall_nvlink_fraction"]
        why = (f"NVLink: both pools ({prefill.gpus + decode.gpus} GPUs) in one {domain}-GPU NVLink domain, "
               f"{per / 1e9:,.0f} GB/s per stream")
    else:
        per = comm["rdma_bytes_per_s_per_gpu"]
        why = f"RDMA: {per / 1e9:,.0f} GB/s per stream (profiles/calibration rdma_bytes_per_s_per_gpu)"
    bw = stated_bw * 1e9 if stated_bw is not None else per * streams
    if stated_bw is not None:
        why = f"{link} at the stated {stated_bw:g} GB/s per request"
    else:
        why += f" x {streams} stream(s)" + (" (TP shards of the KV heads)" if streams > 1 else "")
    return KVTransfer(link, bw, latency_ms / 1e3, streams if stated_bw is None else 1, first,
                      f"{why}; {latency_ms:g} ms per transfer; first token from the {first} worker")
