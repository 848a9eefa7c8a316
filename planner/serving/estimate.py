"""`python -m planner estimate`: memory fit and capacity of one scenario (CONTRACT.md §3).

Memory from planner.deploy.memory; speed from planner.serving.serve (op records -> roofline -> step times).
A scenario that does not fit reports its memory and reason with null metrics.
A served workload with a `concurrency` or a `request_rate` (phase serve, no batch_per_gpu) is run through the serving
simulator (planner.serving.sim: a client as `vllm bench serve --max-concurrency / --request-rate`,
planner.serving.client.client_for):
its means replace the closed-form ones, its percentiles are added (ttft_p50_ms ... itl_p99_ms) and `simulation` holds
the run's summary, a sampled timeline and each latency's distribution (SimResult.distributions). Bottlenecks and
the throughput curve stay the closed forms'.
Where the API server's intake holds the tokens for a large share of the requests' life (HELD_SHARE_CLOSED_FORM: a
burst of hundreds of requests at `request_ingest_s` each), the simulator's TPOT is the engine's pace only: the
single API process then also streams the held tokens of every request, a per-token cost not modelled, and the
engine, fed one request per ingest time, runs small batches. Measured (GPUStack ShareGPT, 1,000 requests at once,
vLLM and TRT-LLM): TPOT 221-227 ms; simulated -78% and -62%, closed-form waves -33% (they decode the whole burst as one
batch after its prefill, which stands in for that cost by chance). There the closed-form TPOT (and per-user rate)
is kept, its percentiles dropped, and an assumption says so.
"""

from __future__ import annotations

from planner.base.errors import PlannerError
from planner.deploy.correction import apply_correction
from planner.deploy.memory import grace_tier, memory_report
from planner.deploy.scenario import Scenario, plan_label
from planner.perf.steps import kernel_notes
from planner.serving.client import client_for
from planner.serving.disagg_estimate import estimate_disaggregated
from planner.serving.serve import serve_metrics
from planner.serving.sim import simulate
from planner.serving.unstated import resolve_unstated_plan

HELD_SHARE_CLOSED_FORM = 0.1  # above this share of held time (SimResult.held_share) TPOT stays the closed form's
METRICS = ("prefill_tokens_per_s_per_gpu", "ttft_ms", "decode_tokens_per_s_per_gpu", "tpot_ms",
           "output_tokens_per_s_per_user", "system_output_tokens_per_s", "system_total_tokens_per_s",
           "e2e_latency_ms")


def estimate(sc: Scenario, metrics_only: bool = False) -> dict:
    """The `estimate --json` document of a scenario (CONTRACT.md). `metrics_only`, for a caller that reads the metrics
    alone (the silicon validation's thousands of runs): no throughput curve, and where the simulator runs, the closed
    forms (`serving`, `bottleneck` and the metrics the simulation does not give) only where it hands TPOT back to
    them (HELD_SHARE_CLOSED_FORM); its TTFT and TPOT are those of the full document."""
    if sc.disaggregation is not None:  # prefill and decode pools (planner.serving.disagg_estimate)
        return estimate_disaggregated(sc)
    sc, assumptions = resolve_unstated_plan(sc)
    sc, grace = grace_tier(sc)  # superchips: Grace memory holds the experts HBM cannot
    assumptions = [*assumptions, *grace]
    wl = sc.workload
    if wl.from_dataset:
        d = wl.dataset
        assumptions = [f"{', '.join(f'{k} {getattr(wl, k)}' for k in wl.from_dataset)} from dataset {d.name} "
                       f"(profiles/datasets/{d.name}.yaml: {d.description})", *assumptions]
    mem = memory_report(sc)
    assumptions = [*assumptions, *mem.notes]  # vLLM's hybrid KV pages (planner.deploy.hybrid_pages)
    par = sc.parallelism
    metrics, bottleneck, curve = dict.fromkeys(METRICS), {"prefill": None, "decode": None}, []
    serving: dict = {}
    simulation = None
    if mem.fits:
        try:
            lean = metrics_only and simulated(sc)  # the closed forms only if the simulation hands TPOT back
            if not lean:
                computed, bottleneck, curve = serve_metrics(sc, mem, info=serving, curve=not metrics_only)
                metrics.update(computed)
            if simulated(sc):
                assumptions = list(assumptions)
                simulation = _simulate(sc, mem, metrics, assumptions, closed=(
                    lambda: serve_metrics(sc, mem, info=serving, curve=False)[0]) if lean else None)
            assumptions = [*assumptions, *kernel_notes(sc)]
        except PlannerError as err:  # e.g. a GPU profile that publishes no tensor-core peaks: memory still answers
            assumptions = [*assumptions, f"speed not estimated: {err}"]
    correction = None
    if sc.correction is not None:  # only when the scenario names one (`correction: NAME`), said in the assumptions
        line, moved = apply_correction(sc.correction, metrics, {
            "model": sc.model.name, "weights": sc.weights.name, "gpu": sc.gpu, "gpus": sc.total_gpus,
            "engine": sc.engine.name, "plan": plan_label(par.tp, par.ep, par.pp, par.dp_attention)})
        assumptions, correction = [*assumptions, line], {"name": sc.correction.name, "moved": moved}
    return {
        "fits": mem.fits,
        "reason": mem.reason,
        "assumptions": assumptions,
        "scenario": {
            "name": sc.name, "model": sc.model.name, "weights": sc.weights.name, "kv_cache": sc.kv_cache,
            "gpu": sc.gpu, "gpus": sc.total_gpus, "engine": sc.engine.name,
            "parallelism": {"tp": par.tp, "ep": par.ep, "pp": par.pp, "dp_attention": par.dp_attention,
                            "replicas": par.replicas},
            "workload": {"phase": wl.phase, "input_len": wl.input_len, "output_len": wl.output_len,
                         "output_len_dist": wl.output_len_dist, "dataset": wl.dataset.name if wl.dataset else None,
                         **({"random_range_ratio": wl.random_range_ratio, "range_ratio_form": wl.range_ratio_form}
                            if wl.random_range_ratio is not None else {})},
        },
        "memory": {
            "capacity_bytes_per_gpu": mem.capacity_bytes,
            "weights_bytes_per_gpu": mem.weights_bytes_per_gpu,
            "kv_cache_bytes_per_gpu": mem.kv_cache_bytes_per_gpu,
            "activation_bytes_per_gpu": mem.activation_bytes_per_gpu,
            "runtime_bytes_per_gpu": mem.runtime_bytes_per_gpu,
            "free_bytes_per_gpu": mem.free_bytes_per_gpu,
            "host_bytes": mem.host_bytes,
            "weights_by_component_per_gpu": mem.weights_by_component,
        },
        "capacity": {
            "kv_tokens_per_gpu": mem.kv_tokens_per_gpu,
            "max_concurrency": mem.max_concurrency,
            "context_len": sc.workload.context_len,
            "kv_bytes_per_token_per_gpu": mem.kv_bytes_per_token_per_gpu,
            "kv_bytes_per_sequence_per_gpu": mem.kv_bytes_per_sequence_per_gpu,
            "max_batch_per_gpu": mem.max_batch_per_gpu,
        },
        "metrics": metrics,
        "bottleneck": bottleneck,
        # how the load was served: mode prefill | decode | steady (mixed chunked-prefill steps) | waves (a stated
        # concurrency as a benchmark client runs it), sequences per engine group, and for waves their timing
        "serving": serving,
        "throughput_curve": curve,
        "simulation": simulation,
        **({"correction": correction} if correction else {}),  # only with a named correction
    }


def simulated(sc: Scenario) -> bool:
    """Whether `estimate` runs the serving simulator: a served workload with a concurrency or a request rate."""
    wl = sc.workload
    return wl.phase == "serve" and (bool(wl.concurrency) or wl.request_rate is not None) and not wl.batch_per_gpu


def _simulate(sc: Scenario, mem, metrics: dict, assumptions: list, closed=None) -> dict:
    """Simulate the scenario's benchmark client; update `metrics` with the run's; the `simulation` block. `closed`:
    the closed-form metrics when `metrics` does not hold them yet (estimate's metrics_only), asked for only where
    the run hands TPOT back to them."""
    client = client_for(sc)
    res = simulate(sc, mem, client)
    sim, dist = res.metrics(), res.distributions()
    if res.held_share > HELD_SHARE_CLOSED_FORM:
        if closed is not None:
            metrics.update(closed())
        sim = {k: v for k, v in sim.items() if not k.startswith(("tpot_", "itl_", "output_tokens_per_s_per_user"))}
        dist = {k: v for k, v in dist.items() if not k.startswith(("tpot_", "itl_"))}
        assumptions.append(f"the API server's intake held first tokens for {res.held_share:.0%} of the requests' "
                           f"life: TPOT from the closed-form waves (the streaming of held tokens is not simulated)")
    eng = sc.engine
    if eng.request_ingest_s:
        servers = eng.api_servers(sc.parallelism.dp_attention)
        assumptions.append(f"the API server takes requests in at {1e3 * eng.request_ingest_s:.1f} ms each, "
                           f"{servers} server process(es) side by side"
                           + (" (one per DP rank, the engine's default; engine_options.api_server_count)"
                              if eng.api_server_count is None and servers > 1 else ""))
    if eng.cuda_graph_sizes:
        assumptions.append("decode batches run padded to the engine's next captured CUDA-graph size (profile "
                           "cuda_graph_sizes): layers at that size, attention over the real requests")
    metrics.update(sim)
    per_node = sc.gpus_per_node or 1
    metrics["decode_tokens_per_s_per_node"] = metrics["decode_tokens_per_s_per_gpu"] * per_node
    if metrics.get("prefill_tokens_per_s_per_gpu") is not None:
        metrics["prefill_tokens_per_s_per_node"] = metrics["prefill_tokens_per_s_per_gpu"] * per_node
    return {"client": {"concurrency": client.concurrency, "num_prompts": client.num_prompts,
                       "request_rate": client.rate, "arrival": client.arrival if client.rate else None,
                       "input_len": client.input.dist, "output_len": client.output.dist,
                       "input_len_mean": client.input.mean, "output_len_mean": client.output.mean},
            "summary": res.summary(), "summary_line": res.summary_line(), "timeline": res.timeline(),
            "distributions": dist}
