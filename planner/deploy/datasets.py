"""Benchmark datasets (`profiles/datasets/<name>.yaml`): the mean prompt and answer lengths of the request sets
that published serving benchmarks draw from (MLPerf, ShareGPT), each with its source.

A scenario names one with `workload.dataset`; it supplies `input_len`, `output_len` and `output_len_dist`
where the scenario leaves them out (a value the scenario states wins). File shape:

    description: "..."
    tokenizer: Llama 2                      # lengths are counted in this model family's tokens
    input_len: {mean: 294, source: "..."}   # mean prompt tokens; optional quantiles: {0: 48, 50: 152, 100: 1021}
                                            # (percent: tokens) give the spread planner.serving.arrivals needs
    output_len: {mean: 294, source: "..."}  # mean generated tokens
    output_len_dist: fixed                  # fixed | exponential (planner.serving.serve: how answers vary)
    benchmark: {suite: mlperf-inference, model: llama-2-70b}   # optional: the suite's set for this model
    names: [ShareGPT]                       # optional: how benchmark write-ups name this set
    source: "..."                           # the benchmark's definition of the set
    notes: "..."

Lengths are means because the planner's serving picture (planner.serving.serve) works on means; `output_len_dist`
says whether answers all stop together (a benchmark's capped lengths) or vary like chat traffic.

A published result of a benchmark suite ran that suite's request set: `suite_dataset(sources, model)` finds the
dataset for a measurement whose citation is a suite's results repository (MLPerf Inference results live in
mlcommons/inference_results_v<round> and its mirrors), so `validate` fills what such a case leaves unstated.
Likewise a case whose name or notes name a set (`names`, matched as a whole word, any case) ran that set:
`named_dataset(texts)` finds it, and what the case leaves unstated (often the shape of the answer lengths, since
write-ups print only run totals) comes from the set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from planner.base import limits
from planner.base.errors import PlannerError
from planner.base.yamlio import (
    PROFILES,
    check_keys,
    get_choice,
    get_number,
    get_str,
    load_document,
    profile_names,
    profile_path,
    require_mapping,
)

DATASETS_DIR = PROFILES / "datasets"
OUTPUT_LEN_DISTS = ("fixed", "exponential")
# benchmark suites whose published results name their request sets: the text a citation of a result contains
SUITES = {"mlperf-inference": re.compile(r"inference_results_v\d")}
MAX_TOKENS = limits.MAX_TOKENS  # lengths and quantiles: planner.base.limits


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
    suite: str | None = None  # benchmark suite whose request set this is for `model` (SUITES)
    model: str | None = None
    names: tuple[str, ...] = ()  # how benchmark write-ups name this set ("ShareGPT")
    input_quantiles: tuple[tuple[float, float], ...] = ()  # (percent, tokens): the prompt-length distribution
    output_quantiles: tuple[tuple[float, float], ...] = ()  # (percent, tokens): the answer-length distribution


def list_datasets() -> list[str]:
    return profile_names(DATASETS_DIR)


def _length(doc: Mapping, key: str, file: str) -> tuple[int, str, tuple[tuple[float, float], ...]]:
    entry = require_mapping(doc.get(key), file, key)
    check_keys(entry, ("mean", "median", "max", "quantiles", "source", "note"), file, f"{key}.")
    mean = get_number(entry, "mean", file, prefix=f"{key}.", minimum=1, maximum=MAX_TOKENS)
    return max(1, round(mean)), get_str(entry, "source", file, prefix=f"{key}."), _quantiles(entry, key, file)


def _quantiles(entry: Mapping, key: str, file: str) -> tuple[tuple[float, float], ...]:
    """`quantiles: {percent: tokens}` (0 = shortest, 100 = longest), non-decreasing, from 0 to 100."""
    q = entry.get("quantiles")
    if q is None:
        return ()
    field = f"{key}.quantiles"
    q = require_mapping(q, file, field)
    pairs = []
    for pct in q:
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
            raise PlannerError(f"expected percents from 0 to 100 as keys, got {pct!r}", file=file, field=field)
        pairs.append((float(pct), get_number(q, pct, file, prefix=f"{field}.", minimum=0, maximum=MAX_TOKENS)))
    pairs.sort()
    if pairs[0][0] != 0 or pairs[-1][0] != 100:
        raise PlannerError("expected the shortest (0) and longest (100) lengths", file=file, field=field)
    if any(b[1] < a[1] for a, b in zip(pairs, pairs[1:], strict=False)):
        raise PlannerError("expected lengths that grow with the percent", file=file, field=field)
    return tuple(pairs)


@lru_cache(maxsize=32)
def load_dataset(name: str) -> Dataset:
    file = str(profile_path(DATASETS_DIR, name, "dataset", "dataset"))
    doc = require_mapping(load_document(file), file)
    check_keys(doc, ("description", "tokenizer", "input_len", "output_len", "output_len_dist", "benchmark", "names",
                     "source", "notes"), file)
    input_len, input_source, input_quantiles = _length(doc, "input_len", file)
    output_len, output_source, output_quantiles = _length(doc, "output_len", file)
    suite = model = None
    if doc.get("benchmark") is not None:
        bench = require_mapping(doc["benchmark"], file, "benchmark")
        check_keys(bench, ("suite", "model"), file, "benchmark.")
        suite = get_choice(bench, "suite", tuple(SUITES), file, prefix="benchmark.")
        model = get_str(bench, "model", file, prefix="benchmark.")
    names = doc.get("names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise PlannerError("expected a list of names", file=file, field="names")
    return Dataset(name=name, description=get_str(doc, "description", file, default=""),
                   tokenizer=get_str(doc, "tokenizer", file, default=""), input_len=input_len,
                   output_len=output_len,
                   output_len_dist=get_choice(doc, "output_len_dist", OUTPUT_LEN_DISTS, file, default="fixed"),
                   input_source=input_source, output_source=output_source, source=get_str(doc, "source", file),
                   suite=suite, model=model, names=tuple(n.strip() for n in names),
                   input_quantiles=input_quantiles, output_quantiles=output_quantiles)


def suite_dataset(sources: Iterable[str], model: str) -> Dataset | None:
    """The request set a published result ran: the dataset of the suite whose results repository a citation in
    `sources` names, for `model` (None when no citation names a suite or the suite has no set for the model)."""
    suites = {name for name, pattern in SUITES.items() for text in sources if text and pattern.search(text)}
    for name in list_datasets():
        d = load_dataset(name)
        if d.suite in suites and d.model == model:
            return d
    return None


def named_dataset(texts: Iterable[str]) -> Dataset | None:
    """The request set a benchmark description names (a dataset's `names`, as a whole word, any case), or None
    when it names none or more than one."""
    text = " ".join(t for t in texts if isinstance(t, str))
    found = [d for d in map(load_dataset, list_datasets())
             if any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text, re.IGNORECASE) for n in d.names)]
    return found[0] if len(found) == 1 else None
