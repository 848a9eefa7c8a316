"""`python -m planner estimate`: memory fit and capacity of one scenario (CONTRACT.md §3).

Memory from planner.deploy.memory; speed from planner.serving.serve (op records -> roofline -> step times).
A scenario that does not fit reports its memory and reason with null metrics.
"""

from __future__ import annotations

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import Scenario
from planner.perf.steps import kernel_notes
from planner.serving.serve import serve_metrics
from planner.serving.unstated import resolve_unstated_plan

METRICS = ("prefill_tokens_per_s_per_gpu", "ttft_ms", "decode_tokens_per_s_per_gpu", "tpot_ms",
           "output_tokens_per_s_per_user", "system_output_tokens_per_s", "system_total_tokens_per_s",
           "e2e_latency_ms")


def estimate(sc: Scenario) -> dict:
    sc, assumptions = resolve_unstated_plan(sc)
    wl = sc.workload
    if wl.from_dataset:
        d = wl.dataset
        assumptions = [f"{', '.join(f'{k} {getattr(wl, k)}' for k in wl.from_dataset)} from dataset {d.name} "
                       f"(profiles/datasets/{d.name}.yaml: {d.description})", *assumptions]
    mem = memory_report(sc)
    par = sc.parallelism
    metrics, bottleneck, curve = dict.fromkeys(METRICS), {"prefill": None, "decode": None}, []
    serving: dict = {}
    if mem.fits:
        try:
            computed, bottleneck, curve = serve_metrics(sc, mem, info=serving)
            metrics.update(computed)
            assumptions = [*assumptions, *kernel_notes(sc)]
        except PlannerError as err:  # e.g. a GPU profile that publishes no tensor-core peaks: memory still answers
            assumptions = [*assumptions, f"speed not estimated: {err}"]
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
                         "output_len_dist": wl.output_len_dist, "dataset": wl.dataset.name if wl.dataset else None},
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
    }
