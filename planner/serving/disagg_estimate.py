"""`estimate` of a disaggregated scenario (planner.deploy.disaggregation): memory and fit per pool, speed from the
disaggregated simulation (planner.serving.disagg), in estimate's answer shape (CONTRACT.md §3).

- fits: both pools fit (each pool's worker through planner.deploy.memory, Grace memory used on superchips as
  planner.deploy.memory.grace_tier does for any scenario); the reason names the pool;
- memory and capacity: the decode pool's worker at the top level (the pool that holds the running requests),
  both pools under memory.pools;
- metrics: the simulated client's (TTFT, TPOT, ITL, E2E means and percentiles, throughput per GPU over both pools;
  prefill_tokens_per_s_per_gpu per prefill GPU while prefilling); `simulation` as estimate's plus the stages' means;
- bottleneck: the prefill pool's step of one budget of prompt tokens, the decode pool's at its mean running batch.
"""

from __future__ import annotations

from dataclasses import replace

from planner.deploy.correction import apply_correction
from planner.deploy.disaggregation import Disaggregation, Pool
from planner.deploy.memory import MemoryReport, grace_tier, memory_report
from planner.deploy.scenario import Scenario, plan_label
from planner.perf.steps import decode_step, prefill_step
from planner.serving.client import client_for
from planner.serving.disagg import simulate_disaggregated

METRICS = ("prefill_tokens_per_s_per_gpu", "ttft_ms", "decode_tokens_per_s_per_gpu", "tpot_ms",
           "output_tokens_per_s_per_user", "system_output_tokens_per_s", "system_total_tokens_per_s",
           "e2e_latency_ms")


def estimate_disaggregated(sc: Scenario) -> dict:
    """estimate's answer for a scenario with `disaggregation` (planner.serving.estimate hands it here)."""
    dis: Disaggregation = sc.disaggregation
    assumptions: list[str] = []
    pools = []
    for p in (dis.prefill, dis.decode):
        psc, notes = grace_tier(p.scenario)
        assumptions += [f"{p.role} pool: {x}" for x in notes]
        pools.append(replace(p, scenario=psc))
    dis = replace(dis, prefill=pools[0], decode=pools[1])
    mems = (memory_report(dis.prefill.scenario), memory_report(dis.decode.scenario))
    fits = all(m.fits for m in mems)
    reason = next((f"{p.role} pool: {m.reason}" for p, m in zip(pools, mems, strict=True) if not m.fits), "")
    wl = sc.workload
    assumptions = [
        f"disaggregated: prefill {dis.prefill.label} ({dis.prefill.gpus} GPUs), decode {dis.decode.label} "
        f"({dis.decode.gpus} GPUs); KV transfer {dis.transfer.why}",
        "prefill workers run prefill-only batches of up to the token budget, decode workers decode-only steps; a "
        "request's prompt and answer are reserved on its decode rank when its prefill is done (no preemption); "
        "prefix caching is not modelled", *assumptions]
    metrics = dict.fromkeys(METRICS)
    simulation, bottleneck = None, {"prefill": None, "decode": None}
    if fits:
        client = client_for(sc)
        res = simulate_disaggregated(dis, mems, client)
        metrics.update(res.sim.metrics())
        per_node = sc.gpus_per_node or 1
        metrics["decode_tokens_per_s_per_node"] = metrics["decode_tokens_per_s_per_gpu"] * per_node
        if metrics.get("prefill_tokens_per_s_per_gpu") is not None:
            metrics["prefill_tokens_per_s_per_node"] = metrics["prefill_tokens_per_s_per_gpu"] * per_node
        bottleneck = _bottleneck(dis, res.decode_running / dis.decode.scenario.parallelism.dp_attention,
                                 wl.input_len + wl.output_len / 2)
        simulation = {"client": {"concurrency": client.concurrency, "num_prompts": client.num_prompts,
                                 "request_rate": client.rate, "arrival": client.arrival if client.rate else None,
                                 "input_len": client.input.dist, "output_len": client.output.dist,
                                 "input_len_mean": client.input.mean, "output_len_mean": client.output.mean},
                      "summary": res.summary(), "summary_line": res.summary_line(),
                      "timeline": res.sim.timeline(), "distributions": res.sim.distributions()}
    correction = None
    if sc.correction is not None:
        d = dis.decode.scenario.parallelism
        line, moved = apply_correction(sc.correction, metrics, {
            "model": sc.model.name, "weights": sc.weights.name, "gpu": sc.gpu, "gpus": dis.gpus,
            "engine": sc.engine.name, "plan": plan_label(d.tp, d.ep, d.pp, d.dp_attention)})
        assumptions, correction = [*assumptions, line], {"name": sc.correction.name, "moved": moved}
    dec, mem = dis.decode.scenario, mems[1]
    return {
        "fits": fits, "reason": reason, "assumptions": assumptions,
        "scenario": {
            "name": sc.name, "model": sc.model.name, "weights": sc.weights.name, "kv_cache": sc.kv_cache,
            "gpu": sc.gpu, "gpus": dis.gpus, "engine": sc.engine.name, "parallelism": _plan(dec),
            "workload": {"phase": wl.phase, "input_len": wl.input_len, "output_len": wl.output_len,
                         "output_len_dist": wl.output_len_dist, "dataset": wl.dataset.name if wl.dataset else None,
                         **({"random_range_ratio": wl.random_range_ratio, "range_ratio_form": wl.range_ratio_form}
                            if wl.random_range_ratio is not None else {})},
            "disaggregation": {
                "prefill": {"workers": dis.prefill.workers, "parallelism": _plan(dis.prefill.scenario)},
                "decode": {"workers": dis.decode.workers, "parallelism": _plan(dec)},
                "kv_transfer": {"link": dis.transfer.link, "bandwidth_gb_per_s": dis.transfer.bytes_per_s / 1e9,
                                "latency_ms": dis.transfer.latency_s * 1e3, "streams": dis.transfer.streams,
                                "first_token": dis.transfer.first_token}},
        },
        "memory": {**_memory(mem), "pools": {p.role: {"workers": p.workers, "gpus_per_worker": p.gpus_per_worker,
                                                      "fits": m.fits, "reason": m.reason, **_memory(m),
                                                      "kv_tokens_per_gpu": m.kv_tokens_per_gpu}
                                             for p, m in zip(pools, mems, strict=True)}},
        "capacity": {"kv_tokens_per_gpu": mem.kv_tokens_per_gpu,
                     "max_concurrency": mem.max_concurrency * dis.decode.workers,
                     "context_len": wl.context_len, "kv_bytes_per_token_per_gpu": mem.kv_bytes_per_token_per_gpu,
                     "kv_bytes_per_sequence_per_gpu": mem.kv_bytes_per_sequence_per_gpu,
                     "max_batch_per_gpu": mem.max_batch_per_gpu},
        "metrics": metrics, "bottleneck": bottleneck,
        "serving": {"mode": "disaggregated", "running_per_group": simulation and
                    simulation["summary"]["decode_running_per_worker"] / dec.parallelism.dp_attention},
        "throughput_curve": [], "simulation": simulation,
        **({"correction": correction} if correction else {}),
    }


def _plan(sc: Scenario) -> dict:
    par = sc.parallelism
    return {"tp": par.tp, "ep": par.ep, "pp": par.pp, "dp_attention": par.dp_attention, "replicas": par.replicas}


def _memory(m: MemoryReport) -> dict:
    return {"capacity_bytes_per_gpu": m.capacity_bytes, "weights_bytes_per_gpu": m.weights_bytes_per_gpu,
            "kv_cache_bytes_per_gpu": m.kv_cache_bytes_per_gpu, "activation_bytes_per_gpu": m.activation_bytes_per_gpu,
            "runtime_bytes_per_gpu": m.runtime_bytes_per_gpu, "free_bytes_per_gpu": m.free_bytes_per_gpu,
            "host_bytes": m.host_bytes, "weights_by_component_per_gpu": m.weights_by_component}


def _bottleneck(dis: Disaggregation, running_per_rank: float, kv_len: float) -> dict:
    """What bounds a prefill step of one token budget and a decode step at the simulated mean batch."""
    p: Pool = dis.prefill
    psc, dsc = p.scenario, dis.decode.scenario
    tokens = min(psc.engine.max_batched_tokens, psc.workload.input_len) or 1
    pre = prefill_step(psc, tokens / psc.parallelism.tp, tokens, 0.0).bottleneck
    dec = decode_step(dsc, max(1.0, running_per_rank) / dsc.parallelism.tp, kv_len).bottleneck
    return {"prefill": pre, "decode": dec}
