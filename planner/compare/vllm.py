"""vLLM `vllm bench serve --save-result` JSON (and the older `benchmarks/benchmark_serving.py --save-result`).

Keys from vllm-project/vllm `vllm/benchmarks/serve.py` (v0.10-v0.11; `benchmarks/benchmark_serving.py` before it):
`benchmark()` returns `duration, completed, failed, total_input_tokens, total_output_tokens, request_throughput,
request_goodput, output_throughput, total_token_throughput, input_lens, output_lens, ttfts, itls, generated_texts,
errors, max_output_tokens_per_s, max_concurrent_requests` and, per metric in --percentile-metrics (ttft, tpot, itl,
e2el), `mean_/median_/std_<m>_ms` and `p<P>_<m>_ms`; `main()` adds `date, endpoint_type (backend), label, model_id,
tokenizer_id, num_prompts, request_rate ("inf" when infinite), burstiness, max_concurrency`. Without
`--save-detailed` the per-request arrays are dropped. Semantics (calculate_metrics): TPOT = (latency - ttft) /
(output_len - 1) per request, ITL = gaps between streamed chunks, E2EL = client-side request latency; throughputs
are over the whole benchmark duration.
"""

from __future__ import annotations

from typing import Any

from planner.compare.result import Run, is_record, metrics, serving_shape

NAME = "vLLM bench serve JSON"
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
        ("ttft_ms", doc.get("mean_ttft_ms")), ("ttft_median_ms", doc.get("median_ttft_ms")),
        ("ttft_p99_ms", doc.get("p99_ttft_ms")), ("tpot_ms", doc.get("mean_tpot_ms")),
        ("tpot_median_ms", doc.get("median_tpot_ms")), ("tpot_p99_ms", doc.get("p99_tpot_ms")),
        ("itl_ms", doc.get("mean_itl_ms")), ("e2e_latency_ms", doc.get("mean_e2el_ms")),
        ("e2e_latency_p99_ms", doc.get("p99_e2el_ms")), ("system_output_tokens_per_s", doc.get("output_throughput")),
        ("system_total_tokens_per_s", doc.get("total_token_throughput")),
        ("request_throughput_per_s", doc.get("request_throughput")),
    ])
    label = f"rate {doc.get('request_rate', 'inf')}, max concurrency {doc.get('max_concurrency')}, " \
            f"{doc.get('num_prompts', doc.get('completed'))} prompts"
    return [Run(label=label, phase="serve", input_len=input_len, output_len=output_len, concurrency=concurrency,
                model=doc.get("model_id"), measured=measured, notes=notes)]
