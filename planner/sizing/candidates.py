"""Sizing candidates: every (hardware, weight format, KV dtype, engine, parallel plan) the catalog allows, with
the checks that need no memory model (format and engine support, total weights against total memory, price,
budget for one replica). Each rejected candidate is counted under a reason; `planner/sizing/search.py` takes the rest.

Hardware classes (profiles/systems/): GPU servers (1-8 GPUs per node, whole nodes up to `search.max_nodes`),
CPU-offload workstations (1-2 GPUs + host RAM sizes), Apple unified memory machines, CPU-only servers.
Plans per GPU count G: TP G; TP G + EP G; DP-attention G + EP G (tp 1); TP per node x PP nodes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

from planner.deploy.engine_model import engine_refusal
from planner.deploy.engines import Engine, engines_for_class, load_engine
from planner.deploy.scenario import Scenario, make_scenario, plan_label
from planner.hardware.accelerators import load_accelerator
from planner.hardware.hosts import Host
from planner.hardware.systems import System, list_systems, load_system
from planner.model.inventory import tensor_inventory
from planner.model.models import load_model
from planner.model.quant import list_formats, load_format
from planner.perf.steps import with_kernel_tables
from planner.sizing.cost import UnitCost, unit_cost
from planner.sizing.workload import SizingWorkload


@dataclass(frozen=True)
class Hardware:
    system: System
    gpu: str | None  # accelerator profile; None = CPU only
    gpus_per_node: int
    nodes: int
    host: Host | None  # host with its RAM size (workstations, CPU-only servers)

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def kind_label(self) -> str:
        return self.system.display_name

    def label(self) -> str:
        parts = []
        if self.gpu:
            a = acc(self.gpu)
            parts.append(a.display_name if a.unified_memory else f"{self.gpus}x {a.display_name}"
                         + (f" ({self.nodes} nodes)" if self.nodes > 1 else ""))
        if self.host is not None:
            parts.append(f"{self.host.sockets}x {self.host.cpu.display_name}, {self.host.memory_bytes / 1e9:,.0f} GB "
                         f"{self.host.dram_kind}-{self.host.dram_mt_per_s:g}")
        return " + ".join(parts)


@dataclass(frozen=True)
class Candidate:
    model: str
    hw: Hardware
    weights: str
    kv_cache: str
    engine: str
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dp: int = 1  # dp_attention ranks
    offload_layers: int = 0  # MoE layers whose routed experts live in host RAM

    @property
    def published(self) -> bool:
        """Whether someone publishes this model's checkpoint in this format (planner.model.models.Model.published)."""
        return load_model(self.model).checkpoint(self.weights) is not None

    @property
    def plan(self) -> str:
        return plan_label(self.tp, self.ep, self.pp, self.dp, self.offload_layers)

    @property
    def gpus_per_replica(self) -> int:
        return self.hw.gpus

    @property
    def name(self) -> str:
        return f"{self.model} {self.weights} {self.hw.label()} {self.engine} {self.plan}"

    def scenario(self, wl: SizingWorkload, replicas: int = 1, concurrency: float | None = None) -> Scenario:
        """The candidate as a checked scenario (planner.deploy.scenario.make_scenario) serving the workload's
        traffic; with a percentile SLO the serving model checks the SLO there (planner.serving.arrivals). It runs
        on the engine's silicon tables where they were imported for its GPU, unless the workload says
        kernel_tables: default."""
        t, hw = wl.traffic, self.hw
        sc = make_scenario(
            self.model, weights=self.weights, kv_cache=self.kv_cache, gpu=hw.gpu,
            gpus_per_node=hw.gpus_per_node if hw.gpu else 0, nodes=hw.nodes * replicas, host=hw.host,
            parallelism={"tp": self.tp, "ep": self.ep, "pp": self.pp, "dp_attention": self.dp, "replicas": replicas},
            expert_layers_on_cpu=self.offload_layers, engine=self.engine,
            workload={"phase": "serve", "input_len": t.input_len, "output_len": t.output_len,
                      "context_len": wl.context_len, "prefix_cache_hit": t.prefix_cache_hit,
                      "concurrency": concurrency},
            slo=dict(wl.slo) or None, name=self.name, file=wl.file,
        )
        return with_kernel_tables(sc, wl.kernel_tables)


@cache
def acc(name: str):
    """Accelerator profile, read once per process (the search asks for it per candidate)."""
    return load_accelerator(name)


@lru_cache(maxsize=256)
def weights_bytes(model: str, fmt: str) -> int:
    """Bytes the engine loads (language + vision; MTP layers are not loaded without speculative decoding)."""
    m, f = load_model(model), load_format(fmt)
    return sum(f.tensor_bytes(t, m.spec) for t in tensor_inventory(m.spec)
               if t.part not in f.exclude_parts and t.part != "mtp")


def acceptable_formats(wl: SizingWorkload) -> tuple[str, ...]:
    """The weight formats the workload accepts: its `weights`, else every format profile but superseded recipes."""
    return wl.weights or tuple(n for n in list_formats() if not n.startswith("gguf-ud1"))  # ud1: superseded recipe


def formats_for(wl: SizingWorkload, engine: Engine, cls: str) -> list[str]:
    """The workload's acceptable formats that `engine` loads on a `cls` system (its profile's weight_formats)."""
    return [name for name in acceptable_formats(wl) if engine.loads(load_format(name), cpu_only=cls == "cpu_server")]


def systems_for(wl: SizingWorkload) -> list[System]:
    return [s for s in (load_system(n) for n in (wl.systems or list_systems())) if s.cls in wl.classes]


def hardware_options(system: System, wl: SizingWorkload) -> Iterator[Hardware]:
    gpus = [g for g in system.gpus if wl.accelerators is None or g in wl.accelerators]
    if system.cls == "gpu_server":
        top = max(system.gpu_counts)
        for gpu in gpus:
            for gpn in system.gpu_counts:
                for nodes in range(1, (wl.max_nodes if gpn == top else 1) + 1):
                    yield Hardware(system, gpu, gpn, nodes, None)
    elif system.cls == "apple":
        for gpu in gpus:
            yield Hardware(system, gpu, 1, 1, None)
    else:
        for n in system.gpu_counts:
            if n == 0 and system.cls == "workstation":
                continue
            for gpu in (gpus if n else [None]):
                for gb in system.memory_gb:
                    yield Hardware(system, gpu, n, 1, replace(system.host, memory_bytes=int(gb * 1e9)))


def plans(hw: Hardware, engine: str, model: str) -> Iterator[dict]:
    """Parallel layouts of one replica on `hw` (the scenario loader still checks each)."""
    spec = load_model(model).spec
    g = hw.gpus
    if hw.system.cls != "gpu_server":  # workstations: tensor split over their GPUs (llama.cpp --split-mode row)
        yield {"tp": max(1, g)}
        return
    if spec.num_heads % g == 0:
        yield {"tp": g}
        if spec.is_moe and g > 1:
            yield {"tp": g, "ep": g}
    if spec.is_moe and g > 1 and (spec.n_routed_experts >= g):
        yield {"tp": 1, "dp": g, "ep": g}
    if hw.nodes > 1 and spec.num_heads % hw.gpus_per_node == 0:
        yield {"tp": hw.gpus_per_node, "pp": hw.nodes}


def weights_reason(hw: Hardware, model: str, fmt: str, engine: str) -> str:
    """Why no plan of `model` in `fmt` on `hw` with `engine` can hold its weights ('' when the total fits): total
    weights against total memory (the engine's memory fraction of the GPUs; GPUs plus host RAM where experts can
    live on the host). The same for every KV dtype and parallel layout, so the search asks once for all of them."""
    total = weights_bytes(model, fmt)
    a = acc(hw.gpu) if hw.gpu else None
    if a is not None and hw.system.cls in ("gpu_server", "apple"):
        frac = load_engine(engine).fraction_for(hw.gpus)
        usable = frac * a.memory_bytes * hw.gpus
        if total > usable:
            where = a.display_name if a.unified_memory else f"{hw.gpus}x{a.memory_capacity_gb:g} GB"
            return (f"weights {total / 1e9:,.0f} GB exceed {where}"
                    + (f" ({usable / 1e9:,.0f} GB usable at {engine} memory fraction {frac:g})" if frac < 1 else ""))
    elif hw.host is not None:
        gpu_mem = a.memory_bytes * hw.gpus if a else 0
        if total > gpu_mem + hw.host.memory_bytes:
            gpu_part = f"{hw.gpus}x{a.memory_capacity_gb:g} GB + " if a else ""
            return f"weights {total / 1e9:,.0f} GB exceed {gpu_part}{hw.host.memory_bytes / 1e9:,.0f} GB host RAM"
    return ""


def static_reason(cand: Candidate, wl: SizingWorkload, cost: UnitCost | str, weights_checked: bool = False) -> str:
    """Why a candidate fails before any memory or speed model runs ('' when it passes). Physics first (total
    weights against total memory: weights_reason, skipped when the caller has `weights_checked`), then price, then
    what the engine or the hardware cannot do, then budget."""
    hw, spec = cand.hw, load_model(cand.model).spec
    a = acc(hw.gpu) if hw.gpu else None
    if not weights_checked and (physics := weights_reason(hw, cand.model, cand.weights, cand.engine)):
        return physics
    if isinstance(cost, str):
        return cost
    if cand.kv_cache == "fp8_ds_mla" and spec.attention != "mla":
        return "fp8_ds_mla is FlashMLA's KV layout: MLA models only"
    if cand.kv_cache not in load_engine(cand.engine).kv_cache_dtypes:
        return f"{cand.engine} has no {cand.kv_cache} KV cache"
    refused = engine_refusal(cand.engine, load_model(cand.model), cand.kv_cache, cand.tp)
    if refused:  # DeepSeek-V4 in vLLM / SGLang (planner.deploy.engine_model)
        return refused.reason
    if a is not None and cand.weights.startswith("nvfp4") and a.peak_flops_by_dtype.get("fp4") is None:
        return f"{cand.weights} needs FP4 tensor cores; {a.display_name} has none"
    if wl.budget_capex_usd is not None and cost.capex_usd > wl.budget_capex_usd:
        return f"one replica costs {cost.capex_usd:,.0f} USD, above the {wl.budget_capex_usd:,.0f} USD budget"
    if wl.budget_usd_per_hour is not None and cost.usd_per_hour > wl.budget_usd_per_hour:
        return f"one replica costs {cost.usd_per_hour:,.2f} USD/h, above the {wl.budget_usd_per_hour:,.2f} USD/h budget"
    return ""


def distinct_models(refs: tuple[str, ...]) -> list[str]:
    """The workload's models, each once: every spelling of one config path (`./a/../a/config.json`, its folder)
    is one model (the first spelling kept); profile names are compared as given."""
    seen, out = set(), []
    for ref in refs:
        path = Path(ref)
        key = ref
        if "/" in ref or "\\" in ref or path.suffix.lower() in (".json", ".yaml", ".yml"):
            try:
                key = str((path / "config.json" if path.is_dir() else path).resolve())
            except (OSError, RuntimeError):  # a symlink loop: load_model says what it is
                key = ref
        if key not in seen:
            seen.add(key)
            out.append(ref)
    return out


def enumerate_candidates(wl: SizingWorkload, rejected: Counter) -> list[tuple[Candidate, UnitCost]]:
    """Candidates that pass the static checks, with the cost of one replica; the rest are counted in `rejected`."""
    out = []
    engines_allowed = set(wl.engines) if wl.engines else None
    for system in systems_for(wl):
        for hw in hardware_options(system, wl):
            cost = unit_cost(hw, wl)
            for model in distinct_models(wl.models):
                for eng in engines_for_class(system.cls):
                    engine = eng.name
                    if engines_allowed is not None and engine not in engines_allowed:
                        continue
                    layouts = list(plans(hw, engine, model))
                    for fmt in formats_for(wl, eng, system.cls):
                        physics = weights_reason(hw, model, fmt, engine)
                        if physics:  # every KV dtype and layout fails the same way: counted at once
                            rejected[physics] += len(wl.kv_cache) * len(layouts)
                            continue
                        for kv in wl.kv_cache:
                            for layout in layouts:
                                cand = Candidate(model, hw, fmt, kv, engine, **layout)
                                reason = static_reason(cand, wl, cost, weights_checked=True)
                                if reason:
                                    rejected[reason] += 1
                                else:
                                    out.append((cand, cost))
    return out
