"""The fallback: a plain CSV or YAML of CONTRACT.md §3 metric names (and the workload the run had).

One flat mapping, as YAML (`ttft_ms: 850`) or CSV (two columns `metric,value`, one row per name; or one header row
of names over one row of values). Names: the metric vocabulary of CONTRACT.md §3 and planner.compare.result's
extensions; workload fields `phase, input_len, output_len, concurrency`; `model` (a profile name or HF id).
"""

from __future__ import annotations

from typing import Any

from planner.compare.result import Run, metrics, number, whole
from planner.deploy.scenario_file import METRIC_VOCABULARY

NAME = "plain CSV/YAML of metric names"
EXTRA_METRICS = ("ttft_median_ms", "ttft_p99_ms", "tpot_median_ms", "tpot_p99_ms", "itl_ms", "e2e_latency_p99_ms",
                 "prefill_tokens_per_s", "request_throughput_per_s")
METRICS = (*METRIC_VOCABULARY, *EXTRA_METRICS)
WORKLOAD = ("phase", "input_len", "output_len", "concurrency", "model")


def from_csv_rows(rows: list[list[str]]) -> dict | None:
    """The flat mapping of a CSV: `metric,value` rows (a header row naming the columns is skipped), or a header of
    names over one row of values. None when neither shape fits."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) >= 1 and all(len(r) == 2 for r in rows):
        body = rows[1:] if rows[0][0].strip().lower() in ("metric", "key", "name") else rows
        return {k.strip(): v.strip() for k, v in body}
    if len(rows) == 2 and len(rows[0]) == len(rows[1]):
        return {k.strip(): v.strip() for k, v in zip(rows[0], rows[1], strict=True)}
    return None


def recognise(doc: Any) -> bool:
    return isinstance(doc, dict) and bool(doc) and all(isinstance(k, str) and k in (*METRICS, *WORKLOAD)
                                                       for k in doc) and any(k in METRICS for k in doc)


def runs(doc: dict) -> list[Run]:
    phase = doc.get("phase") if doc.get("phase") in ("serve", "prefill", "decode") else "serve"
    model = doc.get("model")
    return [Run(label="measured values", phase=phase, input_len=whole(number(doc.get("input_len"))),
                output_len=whole(number(doc.get("output_len"))), concurrency=number(doc.get("concurrency")),
                model=str(model) if model is not None else None,
                measured=metrics((k, v) for k, v in doc.items() if k in METRICS))]
