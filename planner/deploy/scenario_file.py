"""Scenario files (CONTRACT.md §2): the YAML reader over planner.deploy.scenario.make_scenario.

`load_scenario(path)` reads one file; `scenario_from_mapping(doc, file)` reads one mapping (one case of a validate
file). This layer checks the document's shape (known keys, mappings where mappings belong, strings where names
belong) and the `measured` list; every value check is make_scenario's, shared with scenarios built in code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.limits import MAX_CONCURRENCY
from planner.base.yamlio import check_keys, get_number, get_str, load_document, require_mapping, sub_mapping
from planner.deploy.correction import load_correction
from planner.deploy.disaggregation import read_disaggregation
from planner.deploy.scenario import (
    ENGINE_OPTION_KEYS,
    PARALLEL_KEYS,
    SLO_KEYS,
    WORKLOAD_KEYS,
    Measured,
    Scenario,
    make_scenario,
)
from planner.model.weights_file import is_checkpoint_path

TOP_KEYS = ("name", "model", "weights", "kv_cache", "hardware", "parallelism", "offload", "engine", "engine_options",
            "speculative", "workload", "slo", "measured", "grade", "notes", "assumed", "correction",
            "disaggregation")
HARDWARE_KEYS = ("gpu", "gpus_per_node", "nodes", "host")
OFFLOAD_KEYS = ("expert_layers_on_cpu", "cpu_compute")
SPEC_KEYS = ("mtp_tokens", "acceptance")
MEASURED_KEYS = ("metric", "value", "source", "note", "unit")
METRIC_VOCABULARY = (  # CONTRACT.md §3: what `validate` can compare
    "prefill_tokens_per_s_per_gpu", "prefill_tokens_per_s_per_node", "decode_tokens_per_s_per_gpu",
    "decode_tokens_per_s_per_node", "output_tokens_per_s_per_user", "tpot_ms", "ttft_ms", "system_output_tokens_per_s",
    "system_total_tokens_per_s", "e2e_latency_ms", "weights_bytes_total", "kv_tokens_per_gpu")


def load_scenario(path: str | Path) -> Scenario:
    file = str(path)
    return scenario_from_mapping(load_document(path), file)


def scenario_from_mapping(doc: Any, file: str) -> Scenario:
    doc = require_mapping(doc, file)
    check_keys(doc, TOP_KEYS, file)
    model = get_str(doc, "model", file)
    weights = get_str(doc, "weights", file, default=None)
    if weights is not None and is_checkpoint_path(weights):  # a checkpoint path: relative to the file's folder
        weights = str(Path(file.split(": ", 1)[0]).parent / os.path.expanduser(weights))
    engine = get_str(doc, "engine", file, default="vllm")
    options = sub_mapping(doc.get("engine_options"), "engine_options", ENGINE_OPTION_KEYS, file)
    kv_cache = get_str(doc, "kv_cache", file, default="bf16")
    hw = sub_mapping(doc.get("hardware"), "hardware", HARDWARE_KEYS, file)
    gpu = get_str(hw, "gpu", file, prefix="hardware.", default=None)
    off = sub_mapping(doc.get("offload"), "offload", OFFLOAD_KEYS, file)
    spec_dec = sub_mapping(doc.get("speculative"), "speculative", SPEC_KEYS, file)
    workload = sub_mapping(doc.get("workload"), "workload", WORKLOAD_KEYS, file)
    # requests in flight, as a benchmark client runs them: a whole number (sizing builds scenarios in code with the
    # fractional load a replica carries; a file states what was run)
    get_number(workload, "concurrency", file, prefix="workload.", default=None, integer=True, minimum=1,
               maximum=MAX_CONCURRENCY)
    plan = sub_mapping(doc.get("parallelism"), "parallelism", PARALLEL_KEYS, file)
    split = doc.get("disaggregation") is not None  # the top-level plan and options are then the pools' defaults
    sc = make_scenario(
        model, weights=weights, kv_cache=kv_cache, gpu=gpu, gpus_per_node=hw.get("gpus_per_node"),
        nodes=hw.get("nodes"), host=hw.get("host"), parallelism=None if split else plan,
        expert_layers_on_cpu=off.get("expert_layers_on_cpu", 0), cpu_compute=off.get("cpu_compute"), engine=engine,
        engine_options=None if split else options, mtp_tokens=spec_dec.get("mtp_tokens"),
        acceptance=spec_dec.get("acceptance"),
        workload=workload, slo=sub_mapping(doc.get("slo"), "slo", SLO_KEYS, file),
        name=get_str(doc, "name", file, default=None) or Path(file).stem, file=file,
    )
    if split:  # planner.deploy.disaggregation: two pools, each checked as a scenario
        sc = replace(sc, disaggregation=read_disaggregation(doc["disaggregation"], sc, file, plan, options))
    measured = _measured(doc.get("measured"), file)
    if doc.get("correction") is not None:  # named, never implied (planner.deploy.correction)
        sc = replace(sc, correction=load_correction(doc["correction"], file))
    return replace(sc, measured=measured) if measured else sc


def _measured(items: Any, file: str) -> tuple:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise PlannerError("expected a list", file=file, field="measured")
    out = []
    for k, item in enumerate(items):
        item = require_mapping(item, file, f"measured[{k}]")
        check_keys(item, MEASURED_KEYS, file, f"measured[{k}].")
        metric = get_str(item, "metric", file, prefix=f"measured[{k}].")
        if metric not in METRIC_VOCABULARY:
            raise PlannerError(f"unknown metric {metric!r} (known: {', '.join(METRIC_VOCABULARY)})"[:600],
                               file=file, field=f"measured[{k}].metric")
        out.append(Measured(metric, get_number(item, "value", file, prefix=f"measured[{k}].", minimum=0),
                            get_str(item, "source", file, prefix=f"measured[{k}].", default="")))
    return tuple(out)
