"""The parallel plan of a published case that does not state one: the plan a tuned deployment would pick.

A plan search over layouts within a node (it asks the serving model for each layout's decode rate), so it sits
above memory accounting and serving; `estimate` applies it before anything else.
"""

from __future__ import annotations

from dataclasses import replace

from planner.deploy.engine_model import engine_refusal
from planner.deploy.memory import memory_report
from planner.deploy.scenario import Scenario
from planner.serving.serve import best_decode_rate


def resolve_unstated_plan(sc: Scenario) -> tuple[Scenario, list[str]]:
    """Published cases that do not state the parallel plan (every field null) get the plan a tuned deployment
    would pick among d GPUs within a node, replicated over the remaining GPUs: TP d (EP d over the same GPUs for
    MoE), or for MoE models in engines with data-parallel attention also DP-attention d + EP d (the sizing
    search's plan family, planner.sizing.candidates.plans): the one with the highest decode throughput per GPU at the
    largest batch memory allows. With MLA, attention DP keeps one copy of each sequence's latent KV instead of
    one per TP rank, which is why throughput deployments of DeepSeek-class models use it."""
    if sc.parallelism.stated or sc.gpu is None:
        return sc, []
    spec, total, node = sc.model.spec, sc.total_gpus, max(sc.gpus_per_node, 1)
    best, best_rate, fallback = None, -1.0, sc
    for d in (d for d in range(1, node + 1) if node % d == 0 and total % d == 0):
        layouts = []
        if spec.num_heads % d == 0:
            layouts.append((d, d if spec.is_moe and d <= spec.n_routed_experts else 1, 1))
        if spec.is_moe and d > 1 and d <= spec.n_routed_experts and sc.engine.attention_dp:
            layouts.append((1, d, d))
        for tp, ep, dp in layouts:
            if engine_refusal(sc.engine.name, sc.model, sc.kv_cache, tp):  # e.g. DeepSeek-V4's o_groups in vLLM
                continue
            par = replace(sc.parallelism, tp=tp, ep=ep, pp=1, dp_attention=dp, replicas=total // d, stated=True)
            trial = replace(sc, parallelism=par)
            fallback = trial if fallback is sc or dp == 1 else fallback
            mem = memory_report(trial)
            if mem.fits:
                rate = best_decode_rate(trial, mem)
                if rate > best_rate:
                    best, best_rate = trial, rate
    chosen = best or fallback
    p = chosen.parallelism
    layout = f"tp {p.tp}" + (f" x dp_attention {p.dp_attention}" if p.dp_attention > 1 else "")
    return chosen, [f"parallelism not stated: assumed {layout}, ep {p.ep}, {p.replicas} replica(s), the plan with "
                    "the highest decode throughput per GPU that fits"]
