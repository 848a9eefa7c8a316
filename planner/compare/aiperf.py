"""NVIDIA aiperf and genai-perf exports: the aggregated `profile_export_aiperf.json` (genai-perf:
`profile_export_genai_perf.json`) and aiperf's per-request `profile_export.jsonl`.

Keys from ai-dynamo/aiperf `docs/tutorials/working-with-profile-exports.md` (aiperf 0.3-0.5) and its metrics
reference (`docs/metrics_reference.md`): the aggregated file holds one object per metric, `{"unit": ..., "avg": ...,
"p50": ..., "p99": ..., ...}`, under `request_latency`, `time_to_first_token`, `inter_token_latency`,
`output_token_throughput`, `output_token_throughput_per_user`, `request_throughput`, `input_sequence_length`,
`output_sequence_length`, `request_count`, `benchmark_duration`, and the run's settings under `input_config`
(aiperf: `endpoint.model_names`, `loadgen.concurrency`, `loadgen.request_rate`; genai-perf 0.0.x: `model_names` or
`model`, `concurrency`, `request_rate`). The per-request JSONL has one record per line: `metadata`
(`request_start_ns`, `request_end_ns`, ...), `metrics` (`{"value": ..., "unit": ...}` per metric, same names),
`error`. Semantics: inter_token_latency = (request_latency - time_to_first_token) / (output_sequence_length - 1),
vLLM's TPOT; latencies in ms.
"""

from __future__ import annotations

from typing import Any

from planner.compare.result import Run, is_record, mean, metrics, number, serving_shape

NAME = "aiperf / genai-perf profile export"
_MEASURED = (("ttft_ms", "time_to_first_token", "avg"), ("ttft_median_ms", "time_to_first_token", "p50"),
             ("ttft_p99_ms", "time_to_first_token", "p99"), ("tpot_ms", "inter_token_latency", "avg"),
             ("tpot_median_ms", "inter_token_latency", "p50"), ("tpot_p99_ms", "inter_token_latency", "p99"),
             ("e2e_latency_ms", "request_latency", "avg"), ("e2e_latency_p99_ms", "request_latency", "p99"),
             ("output_tokens_per_s_per_user", "output_token_throughput_per_user", "avg"),
             ("system_output_tokens_per_s", "output_token_throughput", "avg"),
             ("request_throughput_per_s", "request_throughput", "avg"))


def _aggregated(doc: Any) -> bool:
    return is_record(doc, "time_to_first_token") and isinstance(doc["time_to_first_token"], dict) and \
        "avg" in doc["time_to_first_token"]


def _record(doc: Any) -> bool:
    return is_record(doc, "metadata", "metrics") and isinstance(doc["metrics"], dict)


def recognise(doc: Any) -> bool:
    return _aggregated(doc) or (isinstance(doc, list) and bool(doc) and all(_record(d) for d in doc))


def runs(doc: Any) -> list[Run]:
    return [_from_aggregated(doc)] if _aggregated(doc) else [_from_records(doc)]


def _stat(doc: dict, metric: str, stat: str) -> Any:
    entry = doc.get(metric)
    return entry.get(stat) if isinstance(entry, dict) else None


def _from_aggregated(doc: dict) -> Run:
    cfg = doc.get("input_config") if isinstance(doc.get("input_config"), dict) else {}
    load = cfg.get("loadgen") if isinstance(cfg.get("loadgen"), dict) else cfg
    endpoint = cfg.get("endpoint") if isinstance(cfg.get("endpoint"), dict) else cfg
    names = endpoint.get("model_names") or cfg.get("model")
    model = names[0] if isinstance(names, list) and names else names if isinstance(names, str) else None
    count = _stat(doc, "request_count", "avg")
    input_len, output_len, concurrency, notes = serving_shape(
        input_lens=None, output_lens=None, total_input=_stat(doc, "input_sequence_length", "avg"),
        total_output=_stat(doc, "output_sequence_length", "avg"), completed=1, max_concurrency=load.get("concurrency"),
        request_rate=load.get("request_rate"), num_prompts=count, mean_e2e_ms=_stat(doc, "request_latency", "avg"),
        request_throughput=_stat(doc, "request_throughput", "avg"))
    measured = metrics((name, _stat(doc, key, stat)) for name, key, stat in _MEASURED)
    label = f"concurrency {load.get('concurrency')}, rate {load.get('request_rate')}, {count} requests"
    return Run(label=label, phase="serve", input_len=input_len, output_len=output_len, concurrency=concurrency,
               model=model, measured=measured, notes=("lengths: the mean input/output sequence lengths", *notes))


def _value(rec: dict, metric: str) -> Any:
    entry = rec["metrics"].get(metric)
    return entry.get("value") if isinstance(entry, dict) else None


def _from_records(records: list) -> Run:
    ok = [r for r in records if not r.get("error") and number(_value(r, "request_latency"))]
    starts = [number(r["metadata"].get("request_start_ns")) for r in ok if isinstance(r["metadata"], dict)]
    ends = [number(r["metadata"].get("request_end_ns")) for r in ok if isinstance(r["metadata"], dict)]
    starts, ends = [s for s in starts if s], [e for e in ends if e]
    span_s = (max(ends) - min(starts)) / 1e9 if starts and ends and max(ends) > min(starts) else None
    latency_ms = [number(_value(r, "request_latency")) for r in ok]
    osl = [number(_value(r, "output_sequence_length")) or 0 for r in ok]
    isl = [number(_value(r, "input_sequence_length")) or 0 for r in ok]
    notes = [f"lengths: means over {len(ok)} successful records"]
    concurrency = None
    if span_s:
        concurrency = max(1, round(sum(latency_ms) / 1e3 / span_s))
        notes.append(f"concurrency {concurrency}: the mean in flight, sum of request latencies / "
                     f"{span_s:,.1f} s from first start to last end")
    measured = metrics([
        ("ttft_ms", mean(_value(r, "time_to_first_token") for r in ok)),
        ("tpot_ms", mean(_value(r, "inter_token_latency") for r in ok)),
        ("e2e_latency_ms", mean(latency_ms)),
        ("output_tokens_per_s_per_user", mean(_value(r, "output_token_throughput_per_user") for r in ok)),
        ("system_output_tokens_per_s", sum(osl) / span_s if span_s else None),
        ("system_total_tokens_per_s", (sum(osl) + sum(isl)) / span_s if span_s else None),
        ("request_throughput_per_s", len(ok) / span_s if span_s else None),
    ])
    return Run(label=f"{len(records)} request records ({len(records) - len(ok)} failed)", phase="serve",
               input_len=round(mean(isl) or 0) or None, output_len=round(mean(osl) or 0) or None,
               concurrency=concurrency, model=None, measured=measured, notes=tuple(notes))
