"""vLLM `vllm bench serve --save-result` JSON (and the older `benchmarks/benchmark_serving.py --save-result`).

Keys from vllm-project/vllm `vllm/benchmarks/serve.py` (v0.10-v0.11; `benchmarks/benchmark_serving.py` before it):
`benchmark()` returns `duration, completed, failed, total_input_tokens, total_output_tokens, request_throughput,
request_goodput, output_throughput, total_token_throughput, input_lens, output_lens, ttfts, itls, generated_texts,
errors, max_output_tokens_per_s, max_concurrent_requests` and, per metric in --percentile-metrics (ttft, tpot, itl,
e2el), `mean_/median_/std_<m>_ms` and `p<P>_<m>_ms`; `main()` adds `date, endpoint_type (backend), label, model_id,
tokenizer_id, num_prompts, request_rate ("inf" when infinite), burstiness, max_concurrency`. Without
`--save-detailed` the per-request arrays `input_lens, output_lens, start_times, ttfts, itls, generated_texts, errors`
are dropped (`latencies` and `queue_times` stay, in master as indexed 2026, commit 009e6d4a1cd6); with it,
`per_request` adds the latency percentiles the summary leaves out. Semantics (calculate_metrics): TPOT = (latency -
ttft) / (output_len - 1) per request, ITL = gaps between streamed chunks, E2EL = client-side request latency;
throughputs are over the whole benchmark duration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.compare.result import Run, is_record, metrics, number, serving_latencies, serving_shape

NAME = "vLLM bench serve JSON"
PERCENTILES = (50, 90, 99)  # the ones planner.serving.simstats reports
_SGLANG_ONLY = ("total_output_tokens_retokenized", "mean_e2e_latency_ms")


def recognise(doc: Any) -> bool:
    return (is_record(doc, "mean_ttft_ms", "output_throughput") and not any(k in doc for k in _SGLANG_ONLY)
            and any(k in doc for k in ("num_prompts", "model_id", "mean_e2el_ms", "endpoint_type", "backend")))


def runs(doc: dict) -> list[Run]:
    input_len, output_len, concurrency, notes = serving_shape(
        input_lens=doc.get("input_lens"), output_lens=doc.get("output_lens"),
        total_input=doc.get("total_input_tokens"), total_output=doc.get("total_output_tokens"),
        completed=doc.get("completed"), max_concurrency=doc.get("max_concurrency"),
        request_rate=doc.get("request_rate"), num_prompts=doc.get("num_prompts", doc.get("completed")),
        mean_e2e_ms=doc.get("mean_e2el_ms"), request_throughput=doc.get("request_throughput"))
    measured = metrics([
        *serving_latencies(doc, "e2el"), ("system_output_tokens_per_s", doc.get("output_throughput")),
        ("system_total_tokens_per_s", doc.get("total_token_throughput")),
        ("request_throughput_per_s", doc.get("request_throughput")),
    ])
    detailed, more_notes = per_request(doc)
    stated = {name for name, _ in measured}
    measured += tuple((name, value) for name, value in detailed if name not in stated)
    notes += more_notes
    label = f"rate {doc.get('request_rate', 'inf')}, max concurrency {doc.get('max_concurrency')}, " \
            f"{doc.get('num_prompts', doc.get('completed'))} prompts"
    return [Run(label=label, phase="serve", input_len=input_len, output_len=output_len, concurrency=concurrency,
                model=doc.get("model_id"), measured=measured, notes=notes)]


def per_request(doc: dict) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
    """Latency statistics of a `--save-detailed` file from its per-request arrays, as calculate_metrics computes
    them: the requests with output (failed ones have output length 0 and an error), TTFT = ttfts[i], E2E =
    latencies[i] (older files: ttfts[i] + sum(itls[i]), as serve.py's timeline plot rebuilds it), TPOT = (E2E - TTFT)
    / (output_len - 1) where output_len > 1, ITL = every gap of every request; mean and the p50/p90/p99 that the
    planner's simulator predicts (numpy.percentile, linear, as --metric-percentiles). The summary's own values stay
    first; these only add what it leaves out (p50 and p90 by default, E2E without --percentile-metrics e2el)."""
    ttfts, itls, outs = doc.get("ttfts"), doc.get("itls"), doc.get("output_lens")
    if not (isinstance(ttfts, list) and isinstance(itls, list) and isinstance(outs, list)) \
            or not len(ttfts) == len(itls) == len(outs):
        return (), ()
    lat = doc.get("latencies") if isinstance(doc.get("latencies"), list) and len(doc["latencies"]) == len(outs) \
        else None
    errors = doc.get("errors") if isinstance(doc.get("errors"), list) and len(doc["errors"]) == len(outs) else None
    ttft, e2e, tpot, gaps = [], [], [], []
    for k, out in enumerate(outs):
        n, t = number(out), number(ttfts[k])
        gap = [x for x in (number(g) for g in itls[k]) if x is not None] if isinstance(itls[k], list) else []
        if not n or t is None or (errors and errors[k]):
            continue
        total = number(lat[k]) if lat else t + sum(gap)
        ttft.append(t)
        gaps += gap
        if total is not None:
            e2e.append(total)
            if n > 1:
                tpot.append((total - t) / (n - 1))
    if not ttft:
        return (), ()
    found: list[tuple[str, float]] = []
    for name, values in (("ttft", ttft), ("tpot", tpot), ("itl", gaps), ("e2e_latency", e2e)):
        if values:
            x = 1e3 * np.asarray(values)
            found += [(f"{name}_ms", float(x.mean()))] + [(f"{name}_p{q}_ms", float(np.percentile(x, q)))
                                                         for q in PERCENTILES]
    return tuple(found), (f"latency percentiles: from the {len(ttft)} per-request entries with output "
                          "(--save-detailed)",)
