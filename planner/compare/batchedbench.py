"""llama.cpp `llama-batched-bench`: its JSON lines (`--output-format jsonl`; common/arg.cpp `{md,jsonl}`, default md)
or its Markdown table (the default).

Keys from ggml-org/llama.cpp `tools/batched-bench/batched-bench.cpp` (master as indexed 2026, commit
0a1f01792b770ef0f41729956665880e109b2660): each line is `n_kv_max, n_batch, n_ubatch, flash_attn, is_pp_shared,
n_gpu_layers, n_threads, n_threads_batch, pp, tg, pl, n_kv, t_pp, speed_pp, t_tg, speed_tg, t, speed`; the table
has the columns `PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s` (B = pl) under a line
`main: n_kv_max = ..., n_batch = ..., n_ubatch = ..., flash_attn = ..., is_pp_shared = ..., n_gpu_layers = ...,
n_threads = ..., n_threads_batch = ...`. Semantics (its main loop): pl sequences of pp prompt tokens are decoded in
batches of n_batch (with -pps, `is_pp_shared`, one prompt is decoded and its cache copied to the others), t_pp
seconds, speed_pp = pl x pp / t_pp (pp / t_pp when shared); then tg steps each decode one token of every sequence,
t_tg seconds, speed_tg = pl x tg / t_tg; n_kv = pl x (pp + tg) (pp + pl x tg when shared), speed = n_kv / (t_pp +
t_tg). One static batch in one llama_context: no server, no scheduler.

Each row is two runs, as SGLang's bench_one_batch: the prefill of the batch (`prefill_tokens_per_s` = speed_pp) and
its decode (`tpot_ms` = t_tg / tg, one step per generated token; `system_output_tokens_per_s` = speed_tg).
"""

from __future__ import annotations

import re
from typing import Any

from planner.compare.result import Run, is_record, metrics, number, whole

NAME = "llama-batched-bench JSONL/table"
COLUMNS = ("pp", "tg", "pl", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg", "t", "speed")  # the table's order
_HEADER = ("PP", "TG", "B", "N_KV")
_SETTING = re.compile(r"(\w+) = (-?\d+)")


def _row(doc: Any) -> bool:
    return is_record(doc, "pp", "tg", "pl", "speed_pp", "speed_tg")


def recognise(doc: Any) -> bool:
    rows = doc if isinstance(doc, list) else [doc]
    return bool(rows) and all(_row(r) for r in rows)


def table_rows(text: str) -> list[dict] | None:
    """The rows of the Markdown table (with the `main:` line's settings), or None when the text has no such table."""
    settings: dict[str, float] = {}
    rows: list[dict] = []
    seen_header = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("main:") and "n_kv_max" in line:
            settings = {k: float(v) for k, v in _SETTING.findall(line)}
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if tuple(cells[:4]) == _HEADER:
            seen_header = True
            continue
        values = [number(c) for c in cells]
        if seen_header and len(values) == len(COLUMNS) and all(v is not None for v in values):
            rows.append({**settings, **dict(zip(COLUMNS, values, strict=True))})
    return rows or None


def runs(doc: Any) -> list[Run]:
    found: list[Run] = []
    for k, r in enumerate(doc if isinstance(doc, list) else [doc]):
        found += _runs(r, k)
    return found


def _runs(r: dict, k: int) -> list[Run]:
    pp, tg, pl = (whole(number(r.get(key))) or 0 for key in ("pp", "tg", "pl"))
    shared = bool(number(r.get("is_pp_shared")))
    name = f"row {k + 1}: pp{pp} tg{tg} x{pl}"
    said = {key: whole(number(r.get(key))) for key in ("n_batch", "n_ubatch", "n_gpu_layers")}
    note = (f"llama-batched-bench: one static batch of {pl} sequence(s) (n_batch {said['n_batch']}, n_ubatch "
            f"{said['n_ubatch']}, n_gpu_layers {said['n_gpu_layers']}), prompts decoded together, then every "
            "sequence one token per step",)
    # a shared prompt (-pps) is prefilled once and its cache copied: one sequence's prefill
    prefill = Run(label=f"{name} prefill", phase="prefill", input_len=pp, output_len=0, concurrency=1 if shared else pl,
                  model=None, measured=metrics([("prefill_tokens_per_s", r.get("speed_pp"))]),
                  notes=note + (("is_pp_shared: one prompt prefilled, its cache copied to the others",) if shared
                                else ()), engine="llamacpp")
    found = [prefill] if pp else []
    t_tg = number(r.get("t_tg"))
    if tg and t_tg:
        found.append(Run(label=f"{name} decode", phase="decode", input_len=pp, output_len=tg, concurrency=pl,
                         model=None, measured=metrics([("tpot_ms", t_tg / tg * 1e3),
                                                       ("system_output_tokens_per_s", r.get("speed_tg"))]),
                         notes=note, engine="llamacpp"))
    return found
