"""Benchmark datasets (`profiles/datasets/<name>.yaml`): the mean prompt and answer lengths of the request sets
that published serving benchmarks draw from (MLPerf, ShareGPT), each with its source.

A scenario names one with `workload.dataset`; it supplies `input_len`, `output_len` and `output_len_dist`
where the scenario leaves them out (a value the scenario states wins). File shape:

    description: "..."
    tokenizer: Llama 2                      # lengths are counted in this model family's tokens
    input_len: {mean: 294, source: "..."}   # mean prompt tokens
    output_len: {mean: 294, source: "..."}  # mean generated tokens
    output_len_dist: fixed                  # fixed | exponential (planner.serving: how answers vary)
    source: "..."                           # the benchmark's definition of the set
    notes: "..."

Lengths are means because the planner's serving picture (planner.serving) works on means; `output_len_dist`
says whether answers all stop together (a benchmark's capped lengths) or vary like chat traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from planner.quant import PROFILES
from planner.yamlio import check_keys, get_choice, get_number, get_str, load_document, profile_path, require_mapping

DATASETS_DIR = PROFILES / "datasets"
OUTPUT_LEN_DISTS = ("fixed", "exponential")
MAX_TOKENS = 10**8


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    tokenizer: str
    input_len: int  # mean prompt tokens
    output_len: int  # mean generated tokens
    output_len_dist: str  # fixed | exponential
    input_source: str
    output_source: str
    source: str


def list_datasets() -> list[str]:
    return sorted(p.stem for p in DATASETS_DIR.glob("*.yaml"))


def _length(doc: Mapping, key: str, file: str) -> tuple[int, str]:
    entry = require_mapping(doc.get(key), file, key)
    check_keys(entry, ("mean", "median", "max", "source", "note"), file, f"{key}.")
    mean = get_number(entry, "mean", file, prefix=f"{key}.", minimum=1, maximum=MAX_TOKENS)
    return max(1, round(mean)), get_str(entry, "source", file, prefix=f"{key}.")


@lru_cache(maxsize=32)
def load_dataset(name: str) -> Dataset:
    file = str(profile_path(DATASETS_DIR, name, "dataset", "dataset"))
    doc = require_mapping(load_document(file), file)
    check_keys(doc, ("description", "tokenizer", "input_len", "output_len", "output_len_dist", "source", "notes"),
               file)
    input_len, input_source = _length(doc, "input_len", file)
    output_len, output_source = _length(doc, "output_len", file)
    return Dataset(name=name, description=get_str(doc, "description", file, default=""),
                   tokenizer=get_str(doc, "tokenizer", file, default=""), input_len=input_len,
                   output_len=output_len,
                   output_len_dist=get_choice(doc, "output_len_dist", OUTPUT_LEN_DISTS, file, default="fixed"),
                   input_source=input_source, output_source=output_source, source=get_str(doc, "source", file))
