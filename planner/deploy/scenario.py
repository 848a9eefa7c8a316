"""A scenario (CONTRACT.md §2): model, weight format, KV dtype, hardware, parallel plan, offload, engine,
speculative decoding, workload, SLO, and (for `validate`) measured values, every part resolved to its profile.

`make_scenario(...)` builds one from Python values (profile objects or names; small mappings for the parallel plan,
workload, engine options and SLO, spelled as in the YAML) and runs every check; the YAML reader
(planner.deploy.scenario_file) is a thin layer over it, so a scenario from a file and one built in code are checked
alike, and errors name the file (or `file=` label) and the field as the YAML spells it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from planner.base import limits
from planner.base.errors import PlannerError, resolve_named
from planner.base.frozen import hash_once, state_without_hash
from planner.base.yamlio import get_choice, get_number, get_percentile, get_str, sub_mapping
from planner.deploy.correction import Correction
from planner.deploy.datasets import OUTPUT_LEN_DISTS, Dataset, load_dataset
from planner.deploy.engine_model import engine_refusal
from planner.deploy.engine_options import ENGINE_OPTION_KEYS, apply_engine_options, tuned_for_chosen_batch
from planner.deploy.engines import Engine, load_engine
from planner.hardware.accelerators import Accelerator, load_accelerator
from planner.hardware.hosts import Host, load_host
from planner.model.kv import KV_DTYPES
from planner.model.models import Model, load_model
from planner.model.quant import QuantFormat, load_format
from planner.model.weights_file import checkpoint_weights, is_checkpoint_path

PARALLEL_KEYS = ("tp", "ep", "pp", "dp_attention", "replicas", "disaggregated", "redundant_experts", "dense_tp")
WORKLOAD_KEYS = ("phase", "batch_per_gpu", "concurrency", "input_len", "output_len", "kv_len", "prefix_cache_hit",
                 "context_len", "output_len_dist", "dataset", "num_prompts", "random_range_ratio", "range_ratio_form",
                 "request_rate", "arrival")
ARRIVALS = ("poisson", "constant")  # planner.serving.client.Client.send_times
RANGE_RATIO_FORMS = ("below", "around")  # planner.serving.client.Lengths.random
SLO_KEYS = ("ttft_ms", "tpot_ms", "percentile", "output_tokens_per_s_per_user")
MAX_TOKENS = limits.MAX_TOKENS  # no model has a context near 100M tokens: larger values are typos
MAX_GPUS = limits.MAX_GPUS


def plan_label(tp: int, ep: int = 1, pp: int = 1, dp_attention: int = 1, offload_layers: int = 0) -> str:
    """One name for a parallel plan, used by sizing, reports and the dashboard: "TP8", "TP8+EP8", "DP8-attn+EP8"
    (tp 1 with data-parallel attention), "+PP2" for pipeline stages, "+4 MoE layers on CPU" for expert offload."""
    parts = [f"TP{tp}"] if dp_attention == 1 else [f"DP{dp_attention}-attn"]
    parts += [f"{k}{v}" for k, v in (("EP", ep), ("PP", pp)) if v > 1]
    if offload_layers:
        parts.append(f"{offload_layers} MoE layers on CPU")
    return "+".join(parts)


@dataclass(frozen=True)
class Parallelism:
    tp: int  # tensor parallel degree of attention (and dense layers by default)
    ep: int  # expert parallel degree of routed experts
    pp: int  # pipeline stages
    dp_attention: int  # data-parallel attention ranks inside one replica
    replicas: int  # independent copies of the model
    disaggregated: bool  # this scenario is one phase pool of a prefill/decode split
    redundant_experts: int  # extra expert copies per MoE layer for load balance (EPLB); 0 = none
    dense_tp: int | None  # TP degree of dense MLP/shared experts; None = the engine default
    stated: bool = True  # False when every field was given as null ("not stated" in published cases)

    @property
    def gpus_per_stage(self) -> int:
        return self.tp * self.dp_attention

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.dp_attention * self.pp

    @property
    def label(self) -> str:
        """The plan as deployments name it: "TP8+EP8", "DP8-attn+EP8", "TP8+PP2" (plan_label)."""
        return plan_label(self.tp, self.ep, self.pp, self.dp_attention)


@dataclass(frozen=True)
class Workload:
    phase: str  # prefill | decode | serve
    batch_per_gpu: float | None  # decode: running sequences per GPU; prefill: tokens per GPU per step
    concurrency: float | None  # requests in flight for the whole deployment
    input_len: int  # prompt tokens
    output_len: int  # generated tokens
    kv_len: int | None  # mean context during decode; None = mean_kv_len
    context_len: int  # longest request that must fit (default input_len + output_len)
    prefix_cache_hit: float  # fraction of prompt tokens served from the prefix cache
    # how output lengths vary around output_len (their mean) in a `concurrency` run: fixed (benchmark "random"
    # datasets) or exponential (chat traffic such as ShareGPT: many short answers, a long tail)
    output_len_dist: str = "fixed"
    dataset: Dataset | None = None  # benchmark request set the unstated lengths came from (planner.deploy.datasets)
    from_dataset: tuple[str, ...] = ()  # the workload fields the dataset supplied
    # prompts the benchmark client sends with `concurrency` in flight (vllm bench serve --num-prompts); None: as many
    # as the concurrency, all at once (planner.serving.client.client_for)
    num_prompts: int | None = None
    # the benchmark client's --random-range-ratio r: every prompt and answer length drawn uniformly, "below" in
    # [L r, L] (SGLang bench_serving, vLLM's benchmark_serving.py before 0.10, InferenceMAX's bench_serving) or
    # "around" in [L (1 - r), L (1 + r)] (vllm bench serve >= 0.10), L being input_len / output_len
    # Only the serving simulator draws them; the closed forms and the memory model keep L (the longest request).
    # None (not stated): fixed lengths
    random_range_ratio: float | None = None
    range_ratio_form: str = "below"
    # open loop (vllm bench serve --request-rate R, with --burstiness 1 Poisson gaps, or constant gaps): requests/s
    # sent to the whole deployment; math.inf sends every prompt at t = 0 (a burst when no concurrency caps it).
    # A concurrency stated too caps the requests in flight (--max-concurrency). Prompts: num_prompts, else 1,000
    request_rate: float | None = None
    arrival: str = "poisson"

    @property
    def new_prompt_len(self) -> float:
        """Prompt tokens a request has to prefill: those the prefix cache does not hold (at least one)."""
        return max(1.0, self.input_len * (1 - self.prefix_cache_hit))

    @property
    def mean_kv_len(self) -> float:
        """Mean context of the sequences decoding at a time (`kv_len` when stated). A request that generates L
        tokens decodes for L steps at a mean context of input + L/2, so over the running sequences the mean is
        input + E[L^2] / (2 E[L]): long answers hold their KV longer and weigh more (length-biased sampling).
        Fixed lengths: input + L/2. Exponential (1 + Exp(mean - 1)): E[L^2] = mean^2 + (mean - 1)^2, about
        input + L: twice the decode context of fixed lengths with the same mean."""
        if self.kv_len:
            return self.kv_len
        out = self.output_len
        if self.output_len_dist == "exponential" and out > 1:
            return self.input_len + (out * out + (out - 1) ** 2) / (2 * out)
        return self.input_len + out / 2


@dataclass(frozen=True)
class Measured:
    metric: str  # CONTRACT.md §3 metric vocabulary
    value: float
    source: str


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str  # where it was read, for error messages
    model: Model
    weights: QuantFormat
    kv_cache: str
    gpu: str | None  # accelerator as the scenario names it (profile name or path), a label; None = CPU only
    gpus_per_node: int
    nodes: int
    host: Host | None  # host profile (CPU, DRAM, RAM size); needed for offload and CPU-only
    parallelism: Parallelism
    expert_layers_on_cpu: int  # MoE layers whose routed experts live in host RAM
    cpu_compute: bool  # host CPU computes offloaded experts (False: streamed over PCIe)
    engine: Engine
    mtp_tokens: int  # MTP draft tokens per step (0 = no speculative decoding)
    acceptance: float | None  # mean fraction of draft tokens accepted
    workload: Workload
    slo: tuple[tuple[str, float], ...] = ()  # (key, value) pairs of the slo mapping: ttft_ms, tpot_ms, ...
    measured: tuple[Measured, ...] = ()  # validate only
    accelerator: Accelerator | None = None  # the resolved profile of `gpu`
    correction: Correction | None = None  # a per-deployment correction the file names (`correction: NAME`)
    disaggregation: object | None = None  # prefill/decode pools: planner.deploy.disaggregation.Disaggregation

    # hashed once: the per-scenario caches (perf.ops role bytes, perf.steps machine) hash a scenario per op
    __hash__ = hash_once
    __getstate__ = state_without_hash

    def slo_value(self, key: str) -> float | None:
        return dict(self.slo).get(key)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


def make_scenario(
    model: Model | str,
    *,
    weights: QuantFormat | str | None = None,
    kv_cache: str = "bf16",
    gpu: Accelerator | str | None = None,
    gpus_per_node: int | None = None,
    nodes: int = 1,
    host: Host | str | Mapping | None = None,
    parallelism: Parallelism | Mapping | None = None,
    expert_layers_on_cpu: int | str | None = 0,
    cpu_compute: bool | None = True,
    engine: Engine | str = "vllm",
    engine_options: Mapping | None = None,
    mtp_tokens: int | None = 0,
    acceptance: float | None = None,
    workload: Workload | Mapping | None = None,
    slo: Mapping | None = None,
    measured: tuple[Measured, ...] = (),
    name: str | None = None,
    file: str = "<scenario>",
) -> Scenario:
    """A checked scenario from Python values. Profiles may be given as objects or by name (or path); the parallel
    plan, workload, engine options and SLO as mappings spelled like the YAML (or a Parallelism / Workload already
    built). `weights` may name a checkpoint (a .gguf file or split part, .safetensors, an index or a folder of them:
    planner.model.weights_file): its header's exact bytes replace the recipe's. Defaults are CONTRACT.md §2's.
    Errors are PlannerErrors naming `file` and the YAML field."""
    model = model if isinstance(model, Model) else resolve_named(load_model, model, file, "model")
    if isinstance(weights, str) and is_checkpoint_path(weights):  # a GGUF / safetensors file: its exact bytes
        weights = checkpoint_weights(weights, model, file)
    elif not isinstance(weights, QuantFormat):
        weights = resolve_named(load_format, model.native_weights if weights is None else weights, file, "weights")
    if not isinstance(engine, Engine):
        engine = resolve_named(load_engine, engine, file, "engine")
    options = sub_mapping(engine_options, "engine_options", ENGINE_OPTION_KEYS, file)
    engine = apply_engine_options(engine, options, file)
    if kv_cache not in KV_DTYPES:
        raise PlannerError(f"unknown KV cache dtype {kv_cache!r}; known: {', '.join(KV_DTYPES)}",
                           file=file, field="kv_cache")
    hw = {"gpus_per_node": gpus_per_node, "nodes": nodes}
    gpn = get_number(hw, "gpus_per_node", file, prefix="hardware.", default=0 if gpu is None else 1, integer=True,
                     minimum=0, maximum=MAX_GPUS)
    nodes = get_number(hw, "nodes", file, prefix="hardware.", default=1, integer=True, minimum=1, maximum=MAX_GPUS)
    accelerator = _accelerator(gpu, file)
    label = None if gpu is None else accelerator.name if isinstance(gpu, Accelerator) else str(gpu)
    if gpu is not None and gpn < 1:
        raise PlannerError("must be >= 1 when a gpu is given", file=file, field="hardware.gpus_per_node")
    if host is not None and not isinstance(host, Host):
        host = load_host(host, file=file, field="hardware.host")
    if not isinstance(parallelism, Parallelism):
        parallelism = _parallelism(sub_mapping(parallelism, "parallelism", PARALLEL_KEYS, file), file, model, gpu,
                                   gpn * nodes)
    if refused := engine_refusal(engine.name, model, kv_cache, parallelism.tp):  # DeepSeek-V4 in vLLM / SGLang
        raise PlannerError(refused.reason, file=file, field=refused.field)
    if refused := engine.type_refusal(weights):  # ik_llama.cpp's IQ*_K GGUFs in mainline llama.cpp
        raise PlannerError(refused, file=file, field="weights")
    if parallelism.dp_attention > 1 and not engine.attention_dp:  # e.g. llama.cpp, KTransformers, MLX
        raise PlannerError(f"{parallelism.dp_attention} data-parallel attention ranks need an engine that runs them "
                           f"(profile attention_dp: true, e.g. vllm, sglang, trtllm); {engine.name} does not",
                           file=file, field="parallelism.dp_attention")
    on_cpu = _offloaded(expert_layers_on_cpu, model, file)
    if gpu is None:  # CPU only: every weight lives in host RAM
        if host is None:
            raise PlannerError("a CPU-only scenario (gpu null) needs a host profile", file=file, field="hardware.host")
        on_cpu = model.spec.num_moe_layers
    elif on_cpu and host is None and not accelerator.grace_memory_bytes_per_gpu:  # superchips: Grace memory
        raise PlannerError("expert offload needs a host profile", file=file, field="hardware.host")
    spec_dec = {"mtp_tokens": mtp_tokens, "acceptance": acceptance}
    mtp = get_number(spec_dec, "mtp_tokens", file, prefix="speculative.", default=0, integer=True, minimum=0,
                     maximum=16)
    if mtp and weights.exact is not None and not dict(weights.exact.bytes_by_part).get("mtp"):
        raise PlannerError(f"{mtp} MTP draft tokens need MTP layers; {weights.exact.path} holds none",
                           file=file, field="speculative.mtp_tokens")
    acceptance = get_number(spec_dec, "acceptance", file, prefix="speculative.", default=None, minimum=0, maximum=1)
    slo = sub_mapping(slo, "slo", SLO_KEYS, file)
    for key in ("ttft_ms", "tpot_ms", "output_tokens_per_s_per_user"):
        get_number(slo, key, file, prefix="slo.", default=None, minimum=0)
    get_percentile(slo, file, prefix="slo.")
    if not isinstance(workload, Workload):
        workload = _workload(sub_mapping(workload, "workload", WORKLOAD_KEYS, file), file, model)
    if "cuda_graph_max_batch" not in options and not options.get("enforce_eager"):
        engine = tuned_for_chosen_batch(engine, workload)
    return Scenario(
        name=str(name or Path(file).stem), file=file, model=model, weights=weights, kv_cache=kv_cache, gpu=label,
        gpus_per_node=gpn, nodes=nodes, host=host, parallelism=parallelism, expert_layers_on_cpu=on_cpu,
        cpu_compute=_bool({"cpu_compute": cpu_compute}, "cpu_compute", file, "offload.", True) and not (
            on_cpu and host is None and gpu is not None), engine=engine,  # Grace experts stream over NVLink-C2C
        mtp_tokens=mtp, acceptance=acceptance, workload=workload,
        slo=tuple((k, v) for k, v in slo.items() if v is not None), measured=tuple(measured), accelerator=accelerator,
    )


def _accelerator(gpu: Accelerator | str | None, file: str) -> Accelerator | None:
    if gpu is None or isinstance(gpu, Accelerator):
        return gpu
    if not isinstance(gpu, str):
        raise PlannerError(f"expected a string, got {type(gpu).__name__}", file=file, field="hardware.gpu")
    try:
        return load_accelerator(gpu)
    except PlannerError as err:
        raise PlannerError(err.message, file=file, field="hardware.gpu") from None


def _offloaded(value: int | str | None, model: Model, file: str) -> int:
    """`offload.expert_layers_on_cpu`: a count of MoE layers, or "all"."""
    if value == "all":
        return model.spec.num_moe_layers
    if value is None:
        return 0
    return get_number({"expert_layers_on_cpu": value}, "expert_layers_on_cpu", file, prefix="offload.", default=0,
                      integer=True, minimum=0, maximum=model.spec.num_moe_layers)


def _bool(doc: Mapping, key: str, file: str, prefix: str, default: bool) -> bool:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PlannerError(f"expected true or false, got {value!r}"[:120], file=file, field=f"{prefix}{key}")
    return value


def _parallelism(p: Mapping, file: str, model: Model, gpu: str | None, total_gpus: int) -> Parallelism:
    spec = model.spec
    num = lambda key, default=1, **kw: get_number(p, key, file, prefix="parallelism.", default=default,  # noqa: E731
                                                  integer=True, minimum=1, maximum=MAX_GPUS, **kw)
    tp, ep, pp, dp = num("tp"), num("ep"), num("pp"), num("dp_attention")
    if spec.num_heads % tp:
        raise PlannerError(f"tp {tp} does not divide the {spec.num_heads} attention heads of {model.name}",
                           file=file, field="parallelism.tp")
    if ep > 1 and not spec.is_moe:
        raise PlannerError(f"ep {ep} needs routed experts; {model.name} is dense", file=file, field="parallelism.ep")
    redundant = get_number(p, "redundant_experts", file, prefix="parallelism.", default=0, integer=True, minimum=0,
                           maximum=10**5)
    # ep need not divide the experts: vLLM gives the first E % ep ranks one expert more, and EPLB deployments
    # (DeepSeek EP144, SGLang EP72) add redundant copies; memory counts the fullest rank. More EP ranks than
    # expert copies would leave ranks without experts.
    if spec.is_moe and ep > spec.n_routed_experts + redundant:
        raise PlannerError(f"ep {ep} exceeds the {spec.n_routed_experts + redundant} routed experts"
                           f"{' (incl. redundant)' if redundant else ''} of {model.name}",
                           file=file, field="parallelism.ep")
    if pp > spec.num_layers:
        raise PlannerError(f"pp {pp} exceeds the {spec.num_layers} layers", file=file, field="parallelism.pp")
    stage = tp * dp
    if ep > stage or stage % ep:
        raise PlannerError(f"ep {ep} must divide the {stage} GPUs of a pipeline stage (tp x dp_attention)",
                           file=file, field="parallelism.ep")
    per_replica = stage * pp
    if gpu is not None:
        default_replicas = max(1, total_gpus // per_replica)
        replicas = num("replicas", default_replicas)
        if per_replica * replicas > total_gpus:
            raise PlannerError(f"plan needs {per_replica * replicas} GPUs (tp {tp} x dp_attention {dp} x pp {pp} x "
                               f"replicas {replicas}), hardware has {total_gpus}", file=file, field="parallelism")
    else:
        replicas = num("replicas")
    dense_tp = get_number(p, "dense_tp", file, prefix="parallelism.", default=None, integer=True, minimum=1)
    if dense_tp is not None and stage % dense_tp:
        raise PlannerError(f"dense_tp {dense_tp} must divide the {stage} GPUs of a stage", file=file,
                           field="parallelism.dense_tp")
    stated = not p or any(v is not None for v in p.values())
    return Parallelism(tp, ep, pp, dp, replicas, _bool(p, "disaggregated", file, "parallelism.", False), redundant,
                       dense_tp, stated)


def _workload(w: Mapping, file: str, model: Model) -> Workload:
    phase = get_choice(w, "phase", ("prefill", "decode", "serve"), file, prefix="workload.", default="decode")
    tok = lambda key, default: get_number(w, key, file, prefix="workload.", default=default,  # noqa: E731
                                          integer=True, minimum=0, maximum=MAX_TOKENS)
    dataset = None
    if w.get("dataset") is not None:
        dataset = resolve_named(load_dataset, get_str(w, "dataset", file, prefix="workload."), file,
                                "workload.dataset")
    # defaults as CONTRACT.md §2, or the named dataset's means; a prefill-only scenario generates nothing unless
    # it says so
    input_len = tok("input_len", dataset.input_len if dataset else 1024)
    output_len = tok("output_len", 0 if phase == "prefill" else dataset.output_len if dataset else 1024)
    if input_len + output_len < 1:
        raise PlannerError("input_len + output_len must be at least 1 token", file=file, field="workload.input_len")
    context = tok("context_len", input_len + output_len) or input_len + output_len
    limit = model.spec.max_context
    if limit and context > limit:
        field = "workload.context_len" if w.get("context_len") else "workload.input_len"
        raise PlannerError(f"{context:,} tokens exceed {model.name}'s max_position_embeddings {limit:,}",
                           file=file, field=field)
    return Workload(
        phase=phase,
        batch_per_gpu=get_number(w, "batch_per_gpu", file, prefix="workload.", default=None, minimum=0,
                                 maximum=MAX_TOKENS),
        concurrency=get_number(w, "concurrency", file, prefix="workload.", default=None, minimum=0,
                               maximum=MAX_TOKENS),
        input_len=input_len, output_len=output_len, kv_len=tok("kv_len", None), context_len=context,
        prefix_cache_hit=get_number(w, "prefix_cache_hit", file, prefix="workload.", default=0.0, minimum=0,
                                    maximum=1),
        output_len_dist=get_choice(w, "output_len_dist", OUTPUT_LEN_DISTS, file, prefix="workload.",
                                   default=dataset.output_len_dist if dataset else "fixed"),
        dataset=dataset,
        from_dataset=tuple(k for k in ("input_len", "output_len", "output_len_dist")
                           if dataset and w.get(k) is None and not (k == "output_len" and phase == "prefill")),
        num_prompts=get_number(w, "num_prompts", file, prefix="workload.", default=None, integer=True, minimum=1,
                               maximum=limits.MAX_PROMPTS),
        random_range_ratio=get_number(w, "random_range_ratio", file, prefix="workload.", default=None, minimum=0,
                                      maximum=1),
        range_ratio_form=get_choice(w, "range_ratio_form", RANGE_RATIO_FORMS, file, prefix="workload.",
                                    default="below"),
        request_rate=_rate(w, file),
        arrival=get_choice(w, "arrival", ARRIVALS, file, prefix="workload.", default="poisson"),
    )


def _rate(w: Mapping, file: str) -> float | None:
    """workload.request_rate: requests/s above zero, or inf / .inf (every prompt at once, as --request-rate inf)."""
    value = w.get("request_rate")
    if isinstance(value, str) and value.strip().lower() in ("inf", ".inf", "infinity"):
        return math.inf
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return math.inf
    rate = get_number(w, "request_rate", file, prefix="workload.", default=None, minimum=0, maximum=1e9)
    if rate == 0:
        raise PlannerError("request_rate must be above 0 requests/s (inf sends every prompt at once)", file=file,
                           field="workload.request_rate")
    return rate


