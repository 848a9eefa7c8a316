"""Measured beside predicted: each run of a result file becomes a scenario (hardware, plan, engine and weights from
flags or a scenario file; model from a flag, the scenario, or the name the file gives: a profile, else a Hugging
Face id; workload from the file), planner.serving.estimate predicts it, and every measured metric gets its
prediction and error = predicted / measured - 1 (CONTRACT.md §4).

Predictions for the names that are not in estimate's `metrics` (planner.compare.result):
- `itl_ms`: the decode step, estimate's `tpot_ms` (a streamed token per step);
- `prefill_tokens_per_s`: `prefill_tokens_per_s_per_gpu` x the GPUs of one replica (1 on a CPU-only host);
- `request_throughput_per_s`: `system_output_tokens_per_s` / output_len;
- medians (`*_median_ms`): not predicted (shown measured only); percentiles `<m>_p50_ms`, `<m>_p90_ms`,
  `<m>_p99_ms` (ttft, tpot, itl, e2e_latency) where the estimate has them (the serving simulator of a stated
  concurrency; a scenario with `slo.percentile: 99`).
"""

from __future__ import annotations

import copy
import os
import statistics
from dataclasses import dataclass

from planner.base.errors import PlannerError
from planner.base.escape import terminal
from planner.base.yamlio import load_document, require_mapping
from planner.compare.read import read_result
from planner.compare.result import Run, model_profile
from planner.deploy.scenario_file import scenario_from_mapping
from planner.model.hub import is_model_id
from planner.model.weights_file import add_sources, is_checkpoint_path
from planner.serving.estimate import estimate


@dataclass(frozen=True)
class Deployment:
    """What the result file cannot know, from flags (None = not given) and/or a scenario file."""
    scenario: str | None = None  # scenario YAML path: its hardware, plan, engine, weights, model
    model: str | None = None
    weights: str | None = None
    engine: str | None = None
    gpu: str | None = None
    gpus: int | None = None  # GPUs per node
    host: str | None = None
    tp: int | None = None
    ep: int | None = None
    calibrate: str | None = None  # `--calibrate NAME`: predict without any correction the scenario file names


def compare(path: str, dep: Deployment) -> dict:
    fmt, runs = read_result(path)
    base = _base(dep)
    out, first_error = [], None
    for run in runs:
        try:
            out.append(_compare_run(run, base, dep, path))
        except PlannerError as err:
            first_error = first_error or err
            out.append({"label": run.label, "error": str(err), "metrics": []})
    if first_error and all("error" in r for r in out):
        raise first_error
    errors = [abs(row["error"]) for r in out for row in r["metrics"] if row["error"] is not None]
    return {"file": path, "format": fmt, "runs": out,
            "summary": {"n": len(errors), "median_abs_error": statistics.median(errors) if errors else None}}


def _base(dep: Deployment) -> dict:
    """The scenario mapping the flags and scenario file give, before the result's workload."""
    doc: dict = {}
    if dep.scenario:
        doc = copy.deepcopy(require_mapping(load_document(dep.scenario), dep.scenario))
        doc.pop("measured", None)
        if dep.calibrate:
            doc.pop("correction", None)  # a correction is fitted on the model's own predictions
    hw = dict(doc.get("hardware") or {})
    for key, value in (("gpu", dep.gpu), ("gpus_per_node", dep.gpus), ("host", dep.host)):
        if value is not None:
            hw[key] = value
    if not hw.get("gpu") and not hw.get("host"):
        raise PlannerError("the result does not say which hardware ran it: give --gpu G --gpus N (or --host H for a "
                           "CPU-only run) or --scenario S.yaml", field="--gpu")
    doc["hardware"] = hw
    for key, value in (("model", dep.model), ("weights", dep.weights), ("engine", dep.engine)):
        if value is not None:  # a checkpoint path given as a flag is relative to the working folder
            doc[key] = os.path.abspath(value) if key == "weights" and is_checkpoint_path(value) else value
    if dep.tp is not None or dep.ep is not None:
        doc["parallelism"] = {k: v for k, v in (("tp", dep.tp), ("ep", dep.ep)) if v is not None}
    elif "parallelism" not in doc:
        doc["parallelism"] = {"tp": None}  # not stated: estimate picks the plan and says so
    return doc


def _compare_run(run: Run, base: dict, dep: Deployment, path: str) -> dict:
    doc = copy.deepcopy(base)
    notes = list(run.notes)
    if "model" not in doc:
        model = model_profile(run.model)
        if model is None and run.model and is_model_id(run.model):  # a Hub id (vLLM's model_id): its config.json
            model = run.model
        if model is None:
            raise PlannerError(f"the file names the model {run.model!r}, which matches no profile: give --model"
                               if run.model else "the file names no model: give --model", file=path, field="--model")
        doc["model"] = model
        notes.append(f"model {model}: from the file's {run.model!r}")
    if "weights" not in doc and run.weights:
        doc["weights"] = run.weights
        notes.append(f"weights {run.weights}: from the file")
    if "engine" not in doc:
        doc["engine"] = run.engine or "vllm"
        notes.append(f"engine {doc['engine']}: " + ("implied by the tool" if run.engine else "not stated, assumed"))
    if run.expert_layers_on_cpu and not (doc.get("offload") or {}).get("expert_layers_on_cpu"):
        doc["offload"] = {**(doc.get("offload") or {}), "expert_layers_on_cpu": run.expert_layers_on_cpu}
    wl = dict(doc.get("workload") or {})
    wl.update({k: v for k, v in (("phase", run.phase), ("input_len", run.input_len), ("output_len", run.output_len),
                                 ("concurrency", run.concurrency)) if v is not None})
    for key in ("batch_per_gpu", "kv_len", "dataset"):
        wl.pop(key, None)  # the result's own workload replaces the scenario's
    if run.prefix_tokens and run.input_len:
        wl["prefix_cache_hit"] = run.prefix_tokens / run.input_len
    doc["workload"] = wl
    doc["name"] = run.label
    sc = scenario_from_mapping(doc, dep.scenario or f"{path}: {run.label}")
    result = add_sources(estimate(sc), sc.model, sc.weights)  # a Hub id's revision, a checkpoint's exact bytes
    gpus = max(1, sc.total_gpus // max(1, sc.parallelism.replicas))
    rows = []
    for metric, value in run.measured:
        predicted = _predicted(result, metric, gpus, sc.workload.output_len)
        rows.append({"metric": metric, "measured": value, "predicted": predicted,
                     "error": predicted / value - 1 if predicted is not None and value else None})
    return {"label": run.label, "scenario": result["scenario"], "workload": {
                "phase": sc.workload.phase, "input_len": sc.workload.input_len, "output_len": sc.workload.output_len,
                "concurrency": sc.workload.concurrency},
            "fits": result["fits"], "reason": result["reason"], "bottleneck": result["bottleneck"],
            "from_file": notes, "assumptions": result["assumptions"], "metrics": rows,
            "input": doc}  # the scenario mapping predicted (kept in the result store)


def _predicted(result: dict, metric: str, gpus: int, output_len: int) -> float | None:
    m = result["metrics"]
    if metric == "itl_ms":
        return m.get("tpot_ms")
    if metric == "prefill_tokens_per_s":
        return m["prefill_tokens_per_s_per_gpu"] * gpus if m.get("prefill_tokens_per_s_per_gpu") else None
    if metric == "request_throughput_per_s":
        out = m.get("system_output_tokens_per_s")
        return out / output_len if out and output_len else None
    if metric == "kv_tokens_per_gpu":
        return result["capacity"]["kv_tokens_per_gpu"]
    return m.get(metric)


def table(doc: dict) -> str:
    lines = [f"{terminal(doc['file'])}: {doc['format']}"]
    for r in doc["runs"]:
        if "error" in r:
            lines.append(f"  {terminal(r['label'])}: not estimated - {terminal(r['error'])}")
            continue
        s, w = r["scenario"], r["workload"]
        lines.append(f"  {terminal(r['label'])}: {terminal(s['model'])} {terminal(s['weights'])} on {s['gpus']} x "
                     f"{terminal(s['gpu'] or 'CPU')} ({terminal(s['engine'])}, TP{s['parallelism']['tp']}"
                     f"{'+EP' + str(s['parallelism']['ep']) if s['parallelism']['ep'] > 1 else ''}); {w['phase']}, "
                     f"input {w['input_len']:,}, output {w['output_len']:,}, concurrency {w['concurrency']}")
        if not r["fits"]:
            lines.append(f"    DOES NOT FIT - {terminal(r['reason'])}")
        lines.append(f"    {'metric':30s} {'measured':>12s} {'predicted':>12s} {'error':>8s}")
        for row in r["metrics"]:
            pred = "-" if row["predicted"] is None else f"{row['predicted']:,.2f}"
            err = "-" if row["error"] is None else f"{row['error']:+.0%}"
            lines.append(f"    {row['metric']:30s} {row['measured']:>12,.2f} {pred:>12s} {err:>8s}")
        bott = ", ".join(f"{k} {v}" for k, v in (r["bottleneck"] or {}).items() if v)
        if bott:
            lines.append(f"    bottleneck: {terminal(bott)}")
        lines.extend(f"    from the file: {terminal(n)}" for n in r["from_file"])
        lines.extend(f"    assumed: {terminal(n)}" for n in r["assumptions"])
    n, med = doc["summary"]["n"], doc["summary"]["median_abs_error"]
    lines.append(f"{n} predicted metric(s)" + (f", median |error| {med:.0%}" if med is not None else ""))
    return "\n".join(lines)
