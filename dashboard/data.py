"""Every number the dashboard shows, from planner calls behind `st.cache_data`.

Arguments are plain values (names, numbers, tuples, scenario mappings), so a rerun after a widget change is a cache
lookup and only inputs not seen before reach the planner. Results are pandas tables and JSON-like dicts. A
PlannerError comes back as {"error": "<file>: <field>: <what>"}: cache_data does not keep exceptions, and a bad
input must not cost a planner call on every rerun. Deployments are scenario mappings (CONTRACT.md §2).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from planner.base.errors import PlannerError
from planner.deploy.engine_model import kv_dtypes_for
from planner.model.models import list_models, load_model
from planner.model.quant import list_formats, load_format
from planner.report import tables as T
from planner.report.external import bench_points

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "dashboard"  # the "file" named in planner error messages about dashboard inputs
DEFAULT_MODEL = "kimi-k2.5"
# The chat workload of profiles/reports/kimi-k2.5.yaml and profiles/workloads/kimi-k2.5-chat.yaml: 4,000 prompt +
# 1,000 output tokens, and a 131,072-token request that must fit (capped at the model's own limit).
DEFAULT_INPUT_LEN, DEFAULT_OUTPUT_LEN, DEFAULT_CONTEXT = 4000, 1000, 131072
DEFAULT_GPUS = ("h200-sxm", "b200", "h100-sxm", "mi300x", "a100-sxm-80gb")  # as profiles/reports/kimi-k2.5.yaml
GPU_COUNTS = (1, 2, 4, 8, 16, 32)
GPUS_PER_NODE = 8  # HGX/DGX-class servers; more GPUs than this are whole nodes (a form field, not a hardware fact)
UPLOADS = Path(tempfile.gettempdir()) / "moe-planner-dashboard"
UNSTATED_PLAN = dict.fromkeys(("tp", "ep", "pp", "dp_attention", "replicas"))  # the planner picks (estimate.py)


def bench_results_path() -> Path:
    """kernels_bench results database: $PLANNER_BENCH_RESULTS, else bench_results/results.sqlite."""
    return Path(os.environ.get("PLANNER_BENCH_RESULTS") or ROOT / "bench_results" / "results.sqlite")


def validation_cases_path() -> Path:
    """Published cases: $PLANNER_VALIDATION_CASES, else ../shared/validation/public_cases.yaml."""
    return Path(os.environ.get("PLANNER_VALIDATION_CASES") or ROOT.parent / "shared" / "validation"
                / "public_cases.yaml")


def mtime(path: Path) -> float:
    """Part of a cache key: results are read again when the file changes."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# ------------------------------------------------------------------------------------------------ catalog, models


@st.cache_data(show_spinner=False)
def catalog() -> dict:
    from planner.deploy.engines import list_engines
    from planner.hardware.accelerators import list_accelerators, load_accelerator
    from planner.model.kv import KV_DTYPES

    gpus = {}
    for name in list_accelerators():
        try:
            gpus[name] = load_accelerator(name).display_name
        except PlannerError:
            continue
    return {"models": list_models(), "families": families(), "formats": list_formats(), "gpus": gpus,
            "engines": list_engines(), "kv": list(KV_DTYPES), "datasets": datasets()}


def families() -> dict[str, list[str]]:
    """Model profiles by family (planner.model.families.family_name of each config's model_type), families in
    FAMILY_NAMES order, models by name within each."""
    from planner.model.families import FAMILY_NAMES, OTHER_FAMILY, family_name

    by: dict[str, list[str]] = {}
    for name in list_models():
        try:
            by.setdefault(family_name(load_model(name).spec.model_type), []).append(name)
        except PlannerError:
            continue
    order = [f for _, f in FAMILY_NAMES] + [OTHER_FAMILY]
    return {f: by[f] for f in sorted(by, key=lambda f: (order.index(f) if f in order else len(order), f))}


def datasets() -> dict:
    """Benchmark request sets (profiles/datasets/): name -> (mean prompt, mean answer, answer shape, description)."""
    from planner.deploy.datasets import list_datasets, load_dataset

    out = {}
    for name in list_datasets():
        try:
            d = load_dataset(name)
        except PlannerError:
            continue
        out[name] = (d.input_len, d.output_len, d.output_len_dist, d.description)
    return out


def upload_model(filename: str, content: bytes) -> tuple[str | None, str]:
    """Check an uploaded config.json with the planner's own reader (size limit, JSON, supported architecture) and
    store it where `load_model` can read it. Returns (model reference, "") or (None, why)."""
    from dashboard.index_upload import upload_json
    from planner.model.spec import model_spec_from_config

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name)[:80] or "config.json"
    try:
        config = upload_json(name, content)
        label = _upload_label(config, name)
        model_spec_from_config(config, name=label, file=name)
    except PlannerError as err:
        return None, str(err)
    folder = UPLOADS / hashlib.sha256(content).hexdigest()[:16] / label
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    if not path.is_file():
        tmp = folder / f".config.json.tmp-{os.getpid()}"
        tmp.write_bytes(content)
        tmp.replace(path)  # whole or not at all: another session may read it at once
    try:
        load_model(str(path))
    except PlannerError as err:  # refused after all (e.g. its quantization_config): leave nothing behind
        path.unlink(missing_ok=True)
        for d in (folder, folder.parent):
            try:
                d.rmdir()
            except OSError:
                pass
        return None, str(err).replace(str(path), name)
    return str(path), ""


def _upload_label(config: dict, filename: str) -> str:
    """The uploaded model's name: the last part of `_name_or_path`, else the file name, as a safe folder name."""
    raw = str(config.get("_name_or_path") or "").rstrip("/").split("/")[-1] or Path(filename).stem
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.")[:60]
    return label if label and label.lower() != "config" else "uploaded-model"


@st.cache_data(show_spinner=False)
def model_summary(ref: str, kv: str = "bf16") -> dict:
    """`inspect_model` in the native format plus what the pages need to default their widgets."""
    from planner.model.inspect import inspect_model

    try:
        m = load_model(ref)
        doc = inspect_model(m, load_format(m.native_weights), kv)
    except PlannerError as err:
        return {"error": str(err)}
    spec = m.spec
    offered = ("bf16", "fp8") + (("fp8_ds_mla",) if spec.attention == "mla" else ())
    runs = kv_dtypes_for("vllm", m, offered)  # DeepSeek-V4: fp8 only (planner.deploy.engine_model)
    return {**doc, "name": m.name, "max_context": spec.max_context, "is_moe": spec.is_moe,
            "attention": spec.attention, "kv_options": [*runs, *(d for d in offered if d not in runs)]}


@st.cache_data(show_spinner=False)
def params_tables(refs: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    models = [load_model(r) for r in refs]
    return T.params_table(models), T.active_table(models)


@st.cache_data(show_spinner=False)
def weights_tables(ref: str, formats: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    weights, skipped = T.weights_table([load_model(ref)], list(formats))
    return weights, T.weights_totals(weights), skipped


@st.cache_data(show_spinner=False)
def kv_table(ref: str, dtypes: tuple[str, ...], max_context: int | None) -> pd.DataFrame:
    return T.kv_table([load_model(ref)], list(dtypes), max_context)


@st.cache_data(show_spinner=False)
def kv_kinds_table(ref: str, dtype: str) -> pd.DataFrame:
    return T.kv_kinds_table([load_model(ref)], dtype)


# ------------------------------------------------------------------------------------------------ deployments


def deployment(ref: str, weights: str, gpu: str, gpus: int, kv: str = "bf16", engine: str = "vllm",
               per_node: int = GPUS_PER_NODE, input_len: int = DEFAULT_INPUT_LEN,
               output_len: int = DEFAULT_OUTPUT_LEN, context: int | None = None,
               concurrency: float | None = None, output_len_dist: str = "fixed",
               kernel_tables: str = "auto") -> dict:
    """The scenario mapping of `gpus` GPUs of one type. Up to one node the parallel plan is left unstated and the
    planner picks TP/EP (planner.serving.unstated.resolve_unstated_plan);
    beyond, whole nodes run TP per node x PP over nodes. `kernel_tables` "auto" (or "silicon"): the engine's silicon
    kernel tables where they were imported for this GPU (engine_options.kernel_tables), else the default table;
    "default": the default table alone.
    A count that is not whole nodes is left for the planner to reject (hardware.nodes)."""
    name = f"{weights} {gpus}x {gpu_label(gpu)}"  # engine and KV dtype are the same for every plan a page shows
    if gpus <= per_node:
        hw, par = {"gpu": gpu, "gpus_per_node": gpus, "nodes": 1}, dict(UNSTATED_PLAN)
    else:  # nodes is not an integer when gpus are not whole nodes: the planner rejects it by name
        nodes = gpus // per_node if gpus % per_node == 0 else gpus / per_node
        hw, par = {"gpu": gpu, "gpus_per_node": per_node, "nodes": nodes}, {"tp": per_node, "pp": nodes}
    wl: dict[str, Any] = {"phase": "serve", "input_len": input_len, "output_len": output_len}
    if context:
        wl["context_len"] = context
    if concurrency:
        wl["concurrency"] = concurrency
        wl["output_len_dist"] = output_len_dist
    return {"name": name, "model": ref, "weights": weights, "kv_cache": kv, "hardware": hw, "parallelism": par,
            "engine": engine, "workload": wl, "kernel_tables": kernel_tables}


def gpu_label(gpu: str) -> str:
    return catalog()["gpus"].get(gpu, gpu)


def _scenario(doc: dict):
    """(scenario with the parallel plan resolved, assumptions); raises PlannerError. `doc` is a deployment()
    description (a plain mapping, so Streamlit's caches can key on it), built straight into a checked scenario."""
    from planner.deploy.scenario import make_scenario
    from planner.perf.steps import with_kernel_tables
    from planner.serving.unstated import resolve_unstated_plan

    hw = doc["hardware"]
    sc = make_scenario(doc["model"], weights=doc["weights"], kv_cache=doc["kv_cache"], gpu=hw["gpu"],
                       gpus_per_node=hw["gpus_per_node"], nodes=hw["nodes"], parallelism=doc["parallelism"],
                       engine=doc["engine"], workload=doc["workload"], name=doc["name"], file=SOURCE)
    return resolve_unstated_plan(with_kernel_tables(sc, doc.get("kernel_tables")))


def plan_label(par) -> str:
    """The plan's one label (planner.deploy.scenario.Parallelism.label) and its replicas."""
    return par.label + (f" x{par.replicas} replicas" if par.replicas > 1 else "")


@st.cache_data(show_spinner=False, max_entries=50_000)
def fit_cell(doc: dict) -> dict:
    """Memory fit of one deployment (planner.deploy.memory.memory_report), flattened for the grid."""
    from planner.deploy.memory import memory_report

    base = {"plan": doc["name"], "weights": doc["weights"], "gpu": doc["hardware"]["gpu"]}
    try:
        sc, _ = _scenario(doc)
        mem = memory_report(sc)
    except PlannerError as err:
        return {**base, "fits": None, "parallelism": "", "reason": str(err)}
    return {**base, "fits": mem.fits, "parallelism": plan_label(sc.parallelism), "reason": mem.reason,
            "capacity_bytes_per_gpu": mem.capacity_bytes, "weights_bytes_per_gpu": mem.weights_bytes_per_gpu,
            "kv_cache_bytes_per_gpu": mem.kv_cache_bytes_per_gpu, "free_bytes_per_gpu": mem.free_bytes_per_gpu,
            "host_bytes": mem.host_bytes, "kv_tokens_per_gpu": mem.kv_tokens_per_gpu,
            "max_concurrency": mem.max_concurrency, "context_len": sc.workload.context_len}


@st.cache_data(show_spinner=False, max_entries=2000)
def fit_grid(ref: str, formats: tuple[str, ...], gpus: tuple[str, ...], counts: tuple[int, ...], **options) -> \
        pd.DataFrame:
    """One row per (format, GPU type, count): fits, the plan the planner chose, memory, or the reason it does not."""
    rows = []
    for weights in formats:
        for gpu in gpus:
            for n in counts:
                cell = fit_cell(deployment(ref, weights, gpu, n, **options))
                rows.append({**cell, "gpus": n, "gpu_label": gpu_label(gpu), "hardware": f"{n}x {gpu_label(gpu)}"})
    return pd.DataFrame(rows)


def smallest_fits(ref: str, weights: str, gpus: tuple[str, ...], context: int, kv: str = "bf16",
                  engine: str = "vllm", per_node: int = GPUS_PER_NODE) -> pd.DataFrame:
    """Per GPU type, the fewest GPUs (of GPU_COUNTS) whose deployment fits, or the reason the largest does not."""
    grid = fit_grid(ref, (weights,), gpus, GPU_COUNTS, kv=kv, engine=engine, per_node=per_node, context=context)
    return pd.concat([g[g["fits"] == True].head(1) if g["fits"].any() else g.tail(1)  # noqa: E712
                      for _, g in grid.groupby("gpu", sort=False)], ignore_index=True)


def _plan(doc: dict):
    from planner.report.plans import Plan
    from planner.serving.estimate import estimate

    sc, assumptions = _scenario(doc)
    result = estimate(sc)
    result["assumptions"] = assumptions + result["assumptions"]
    return Plan(doc["name"], sc, result)


@st.cache_data(show_spinner=False, max_entries=2000)
def plans(docs: tuple[dict, ...]) -> dict:
    """`estimate` of each deployment: memory, serving metrics and throughput-latency tables, raw results, errors."""
    ok, errors = [], []
    for d in docs:
        try:
            ok.append(_plan(d))
        except PlannerError as err:
            errors.append(f"{d['name']}: {err}")
    fitting = [p for p in ok if p.fits]
    return {"memory": T.memory_table(ok), "metrics": T.plan_metrics_table(ok), "curves": T.curve_table(fitting),
            "results": {p.name: p.result for p in ok}, "errors": errors}


@st.cache_data(show_spinner=False, max_entries=2000)
def capacity_vs_context(docs: tuple[dict, ...], contexts: tuple[int, ...]) -> pd.DataFrame:
    """KV tokens per GPU and the largest concurrency at each context (memory_report of the same deployment with
    `workload.context_len` set)."""
    rows = []
    for d in docs:
        for ctx in contexts:
            cell = fit_cell({**d, "workload": {**d["workload"], "context_len": ctx}})
            rows.append({"plan": d["name"], "context_tokens": ctx, "fits": cell["fits"],
                         "kv_tokens_per_gpu": cell.get("kv_tokens_per_gpu"),
                         "max_concurrency": cell.get("max_concurrency"), "parallelism": cell["parallelism"],
                         "reason": cell["reason"]})
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False, max_entries=500)
def roofline(doc: dict, batches: tuple[float, ...], results: str, results_mtime: float) -> dict:
    """Roofline tables of one deployment's decode step (planner.report.tables) and measured kernels_bench points."""
    try:
        plan = _plan(doc)
    except PlannerError as err:
        return {"error": str(err)}
    if not plan.fits:
        return {"error": f"{plan.name} does not fit: {plan.result['reason']}"}
    measured, note = bench_points(Path(results))
    return {"points": T.roofline_points(plan, list(batches)), "ceilings": T.roofline_ceilings(plan.scenario.gpu),
            "measured": measured, "note": note}


# ------------------------------------------------------------------------------------------------ validation


@st.cache_data(show_spinner=False, max_entries=8)
def validation(path: str, path_mtime: float) -> dict:
    from planner.serving.validate import validate

    try:
        report = validate(path)
    except PlannerError as err:
        return {"error": str(err)}
    table = T.validation_table(report)  # the cases first, then the skipped ones
    pad = [None] * (len(table) - len(report["cases"]))
    table["model"] = [r["model"] for r in report["cases"]] + pad
    table["decode_bottleneck"] = [r["bottleneck"].get("decode") for r in report["cases"]] + pad
    return {"table": table, "summary": report["summary"]}


# ------------------------------------------------------------------------------------------------ sizing


@st.cache_data(show_spinner=False)
def workload_presets() -> dict[str, dict]:
    """profiles/workloads/*.yaml by name (read with the planner's safe loader; checked when sized)."""
    from planner.base.yamlio import load_document

    out = {}
    for path in sorted((ROOT / "profiles" / "workloads").glob("*.yaml")):
        try:
            doc = load_document(path)
        except PlannerError:
            continue
        if isinstance(doc, dict):
            out[path.stem] = doc
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def sizing(workload: dict) -> dict:
    """`planner.sizing.search.size` of one workload mapping (CONTRACT.md §7 document), or {"error": ...}. The page
    waits at most the CLI's default time budget: past it the answer is partial and says what it left out."""
    from planner.sizing.search import DEFAULT_BUDGET_S, size
    from planner.sizing.workload import workload_from_mapping

    try:
        return size(workload_from_mapping(workload, SOURCE), budget_s=DEFAULT_BUDGET_S)
    except PlannerError as err:
        return {"error": str(err)}


def sizing_table(doc: dict) -> pd.DataFrame:
    from planner.report.external import sizing_table as table

    return table(doc)


DEFAULT_WORKLOAD = "kimi-k2.5-chat"


def workload_for(ref: str, model_name: str, preset: str = DEFAULT_WORKLOAD) -> dict | None:
    """A preset workload sized for this model. A preset written for another model keeps its traffic and SLO but
    drops its API price (that price is the other model's)."""
    doc = workload_presets().get(preset)
    if doc is None:
        return None
    out = {k: v for k, v in doc.items() if k not in ("model", "models")}
    if doc.get("model") != model_name:
        out.pop("api", None)
    return {**out, "model": ref}
