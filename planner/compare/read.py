"""Which tool wrote a result file, by its content (never its name), and its runs.

The text is parsed as JSON, else as JSON lines, else as llama-batched-bench's Markdown table, else as CSV or YAML
(the plain fallback); each reader then says whether the document is its tool's (`recognise`) and reads it (`runs`).
A file no reader takes is refused with one line naming every format tried.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import file_problem, is_file, parse_text
from planner.compare import aiperf, batchedbench, llamabench, plain, sglang, vllm
from planner.compare.result import Run

READERS = (vllm, sglang, aiperf, llamabench, batchedbench, plain)
# vLLM --save-detailed results keep every generated text and inter-token gap: 1,000 requests of 1,000 tokens are
# ~30 MB; 256 MiB leaves room for ten times that and still fits in memory on a laptop
MAX_RESULT_BYTES = 256 * 1024 * 1024


def read_result(path: str | Path) -> tuple[str, list[Run]]:
    """(the format's name, its runs) of one result file."""
    name = str(path)
    doc = _parse(_text(path), name)
    for reader in READERS:
        if doc is not None and reader.recognise(doc):
            found = [r for r in reader.runs(doc) if r.measured]
            if not found:
                raise PlannerError(f"a {reader.NAME} file with no measured value", file=name)
            return reader.NAME, found
    tried = "; ".join(r.NAME for r in READERS)
    raise PlannerError(f"not a benchmark result this planner reads (tried: {tried})", file=name)


def _text(path: str | Path) -> str:
    name = str(path)
    if not is_file(path):
        raise PlannerError(file_problem(path), file=name)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_RESULT_BYTES + 1)
    except OSError as err:
        raise PlannerError(f"cannot read: {err.strerror or type(err).__name__}", file=name) from None
    if len(raw) > MAX_RESULT_BYTES:
        raise PlannerError(f"file is over the {MAX_RESULT_BYTES:,}-byte limit for result files", file=name)
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise PlannerError(f"not UTF-8 text (byte {err.start}): not a result file", file=name) from None


def _parse(text: str, name: str) -> Any:
    """JSON, JSON lines, CSV or YAML; None when none parses."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        docs = [json.loads(line) for line in lines]
        if docs and all(isinstance(d, dict) for d in docs):
            return docs
    except (ValueError, RecursionError):
        pass
    table = batchedbench.table_rows(text)  # llama-batched-bench's Markdown table
    if table:
        return table
    if lines and "," in lines[0] and ":" not in lines[0]:
        flat = plain.from_csv_rows(list(csv.reader(lines)))
        if flat is not None:
            return flat
    try:
        return parse_text(text, name)
    except PlannerError:
        return None
