"""SGLang benchmark results: `python -m sglang.bench_serving --output-file F.jsonl` and
`python -m sglang.bench_one_batch --result-filename F.jsonl` (both append one JSON object per run to a JSONL file).

bench_serving keys from sgl-project/sglang `python/sglang/bench_serving.py` (v0.4-v0.5, `benchmark()`'s `result`):
`backend, dataset_name, request_rate, max_concurrency, sharegpt_output_len, random_input_len, random_output_len,
random_range_ratio, duration, completed, total_input_tokens, total_output_tokens, total_output_tokens_retokenized,
request_throughput, input_throughput, output_throughput, mean/median/std/p99_e2e_latency_ms,
mean/median/std/p99_ttft_ms, mean/median/std/p99_tpot_ms, mean/median/std/p95/p99_itl_ms, concurrency` (mean
requests in flight: the sum of request latencies over the duration); with `--output-details` also the per-request
arrays `input_lens, output_lens,
ttfts, itls, generated_texts, errors`. TPOT, ITL and E2E mean what vLLM's do (the script derives from vLLM's).

bench_one_batch keys from `python/sglang/bench_one_batch.py` (`latency_test_run_once`'s `measurement_results`):
`run_name, batch_size, input_len, output_len, prefill_latency (s), prefill_throughput (batch x input_len / prefill
latency, tokens/s), median_decode_latency (s per step), median_decode_throughput (batch / step latency),
total_latency, overall_throughput`: one static batch on one engine, no server, no scheduler.
"""

from __future__ import annotations

from typing import Any

from planner.compare.result import Run, is_record, metrics, number, serving_latencies, serving_shape, whole

NAME = "SGLang bench_serving / bench_one_batch JSONL"
# bench_serving --backend -> the engine it measured (profiles/engines/); bench_one_batch runs SGLang's model runner
ENGINES = {"sglang": "sglang", "sglang-native": "sglang", "sglang-oai": "sglang", "sglang-oai-chat": "sglang",
           "vllm": "vllm", "vllm-chat": "vllm", "trt": "trtllm"}


def _serving(doc: Any) -> bool:
    return is_record(doc, "mean_ttft_ms", "output_throughput") and (
        "total_output_tokens_retokenized" in doc or "mean_e2e_latency_ms" in doc)


def _one_batch(doc: Any) -> bool:
    return is_record(doc, "batch_size", "input_len", "prefill_latency")


def recognise(doc: Any) -> bool:
    lines = doc if isinstance(doc, list) else [doc]
    return bool(lines) and all(_serving(d) or _one_batch(d) for d in lines)


def runs(doc: Any) -> list[Run]:
    out: list[Run] = []
    for k, line in enumerate(doc if isinstance(doc, list) else [doc]):
        out.extend(_serving_run(line, k) if _serving(line) else _batch_runs(line, k))
    return out


def _serving_run(d: dict, k: int) -> list[Run]:
    prompts = d.get("completed")
    input_len, output_len, concurrency, notes = serving_shape(
        input_lens=d.get("input_lens"), output_lens=d.get("output_lens"), total_input=d.get("total_input_tokens"),
        total_output=d.get("total_output_tokens"), completed=d.get("completed"),
        max_concurrency=d.get("max_concurrency"), request_rate=d.get("request_rate"), num_prompts=prompts,
        mean_e2e_ms=d.get("mean_e2e_latency_ms"), request_throughput=d.get("request_throughput"),
        measured_concurrency=d.get("concurrency"))
    measured = metrics([
        *serving_latencies(d, "e2e_latency"), ("system_output_tokens_per_s", d.get("output_throughput")),
        ("request_throughput_per_s", d.get("request_throughput")),
    ])
    tin, tout = number(d.get("input_throughput")), number(d.get("output_throughput"))
    if tin is not None and tout is not None:
        measured += (("system_total_tokens_per_s", tin + tout),)
    label = f"line {k + 1}: {d.get('dataset_name', 'bench_serving')}, rate {d.get('request_rate')}, " \
            f"max concurrency {d.get('max_concurrency')}"
    return [Run(label=label, phase="serve", input_len=input_len, output_len=output_len, concurrency=concurrency,
                model=d.get("model_id") or d.get("model"), measured=measured, notes=notes,
                engine=ENGINES.get(d.get("backend")) if isinstance(d.get("backend"), str) else None)]


def _batch_runs(d: dict, k: int) -> list[Run]:
    batch, inp, out = number(d.get("batch_size")), whole(number(d.get("input_len"))), whole(number(d.get("output_len")))
    name = f"line {k + 1}: {d.get('run_name', 'bench_one_batch')} batch {batch:g}" if batch else f"line {k + 1}"
    note = ("bench_one_batch: one static batch, every request prefilled in one step, then decoded together",)
    found = [Run(label=f"{name} prefill", phase="prefill", input_len=inp, output_len=0, concurrency=batch, model=None,
                 measured=metrics([("prefill_tokens_per_s", d.get("prefill_throughput"))]), notes=note,
                 engine="sglang")]
    step = number(d.get("median_decode_latency"))
    if step:
        found.append(Run(label=f"{name} decode", phase="decode", input_len=inp, output_len=out, concurrency=batch,
                         model=None, measured=metrics([("tpot_ms", step * 1e3), ("system_output_tokens_per_s",
                                                                                 d.get("median_decode_throughput"))]),
                         notes=note, engine="sglang"))
    return found
