"""`python -m planner validate CASES.yaml`: estimate every case and compare with what was measured
(CONTRACT.md §4). error = predicted / measured - 1. A case that cannot be estimated (bad input, does
not fit) is reported with its reason and no prediction; it never stops the run.

A case citing a benchmark suite's published results (MLPerf Inference) ran the suite's request set for its
model: prompt and answer lengths the case leaves unstated come from that dataset (planner.deploy.datasets), and the
row says so (`dataset`). A case whose name or notes name a request set with a profile (ShareGPT) ran that set: what
it leaves unstated, usually the shape of the answer lengths, comes from the set."""

from __future__ import annotations

import statistics
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.escape import md_code, md_text, terminal
from planner.base.limits import MAX_VALIDATE_CASES
from planner.base.yamlio import check_keys, load_document, require_mapping
from planner.deploy.datasets import named_dataset, suite_dataset
from planner.deploy.scenario_file import scenario_from_mapping
from planner.hardware.efficiency import calibration_files, silicon_fit_tables
from planner.perf.steps import uses_silicon_tables, with_kernel_tables
from planner.serving.estimate import estimate

PER_NODE = {"prefill_tokens_per_s_per_node", "decode_tokens_per_s_per_node"}


def validate(path: str | Path, kernel_tables: str | None = None) -> dict:
    """Every case estimated and compared. `kernel_tables` (planner.perf.steps.with_kernel_tables): None, each case on
    the tables it states (by default its engine's silicon tables where imported for its GPU, else the default
    table); "silicon" names them; "default": every case on the default table alone."""
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, ("schema_version", "cases"), file)
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise PlannerError("expected a list of scenarios", file=file, field="cases")
    if len(cases) > MAX_VALIDATE_CASES:  # each case is estimated: time grows with the count (planner.base.limits)
        raise PlannerError(f"{len(cases):,} cases, over the planner's limit of {MAX_VALIDATE_CASES:,} per file; "
                           "split the file", file=file, field="cases")
    rows, skipped = [], []
    for k, case in enumerate(cases):
        name = _case_name(case, k)
        try:
            case = _with_dataset(case)
            sc = scenario_from_mapping(case, f"{file}: cases[{k}]")
            sc = with_kernel_tables(sc, kernel_tables)
            result = estimate(sc)
        except PlannerError as err:
            skipped.append({"name": name, "reason": str(err)})
            continue
        for m in sc.measured:
            predicted = _lookup(result, m.metric)
            row = {"name": name, "metric": m.metric, "measured": m.value, "predicted": predicted,
                   "error": (predicted / m.value - 1) if predicted is not None and m.value else None,
                   "fits": result["fits"], "reason": result["reason"],
                   "bottleneck": result["bottleneck"], "source": m.source, "engine": sc.engine.name,
                   "gpu": sc.gpu, "model": sc.model.name, "kernel_table": kernel_table(sc),
                   "dataset": sc.workload.dataset.name if sc.workload.from_dataset else None}
            rows.append(row)
    errors = [abs(r["error"]) for r in rows if r["error"] is not None]
    return {"cases": rows, "skipped": skipped, "summary": _summary(errors, len(rows))}


def kernel_table(sc) -> str:
    """The efficiency tables a scenario runs on, as the row names them: default.yaml (published kernel tables), then
    each overlay by file name (a GPU's committed curves; the engine's silicon tables where the scenario runs on
    them)."""
    silicon = uses_silicon_tables(sc)
    files = calibration_files(sc.gpu, sc.engine.name, silicon, sc.engine.kernel_tables_version if silicon else None)
    return " + ".join(["default", *(f"{p.parent.name}/{p.stem}" if p.parent.name == "silicon" else p.stem
                                    for p in files)])


def _case_name(case, k: int) -> str:
    """The case's name for its rows: its `name` when that is text (a name that is not is refused with the case)."""
    name = case.get("name") if isinstance(case, dict) else None
    return name if isinstance(name, str) and name else f"cases[{k}]"


def _with_dataset(case):
    """The case with `workload.dataset` set to the request set it ran, when it names no dataset and leaves something
    a dataset supplies unstated (the case itself is not changed):
    - a case citing a benchmark suite's results, with a length unstated: the suite's set for its model;
    - a case whose name or notes name a set (planner.deploy.datasets.named_dataset): that set (its answer-length
      shape, when
      the case states only mean lengths)."""
    if not isinstance(case, dict) or not isinstance(case.get("workload"), dict) or not isinstance(
            case.get("measured"), list) or not isinstance(case.get("model"), str):
        return case
    wl = case["workload"]
    if wl.get("dataset") is not None:
        return case
    d = None
    if any(wl.get(k) is None for k in ("input_len", "output_len")):
        sources = [m.get("source") for m in case["measured"]
                   if isinstance(m, dict) and isinstance(m.get("source"), str)]
        d = suite_dataset(sources, case["model"])
    if d is None and any(wl.get(k) is None for k in ("input_len", "output_len", "output_len_dist")):
        d = named_dataset([case.get("name"), case.get("notes")])
    return {**case, "workload": {**wl, "dataset": d.name}} if d else case


def _lookup(result: dict, metric: str) -> float | None:
    if metric in result["metrics"]:
        return result["metrics"][metric]
    if metric == "weights_bytes_total":
        return None
    if metric == "kv_tokens_per_gpu":
        return result["capacity"]["kv_tokens_per_gpu"]
    return None


def _summary(errors: list[float], n_rows: int) -> dict:
    if not errors:
        return {"n": 0, "n_rows": n_rows, "median_abs_error": None, "p90_abs_error": None}
    errors = sorted(errors)
    p90 = errors[min(len(errors) - 1, int(round(0.9 * (len(errors) - 1))))]
    return {"n": len(errors), "n_rows": n_rows, "median_abs_error": statistics.median(errors),
            "p90_abs_error": p90, "within_20pct": sum(e <= 0.2 for e in errors) / len(errors)}


MARKDOWN_TITLE = "# Validation against published measurements"


def markdown(report: dict, source: str, kernel_tables: str | None = None, default: dict | None = None) -> str:
    """The per-case table as Markdown (docs/validation.md), then (given `default`, the same cases' report on the
    default kernel table alone) the rows the silicon tables change. Case names, sources and reasons come from the
    cases file, so every one goes through planner.base.escape.md_text: it reads as text and never breaks its row."""
    s = report["summary"]
    flag = "" if kernel_tables is None else f" --kernel-tables {kernel_tables}"
    lines = [
        MARKDOWN_TITLE,
        "",
        f"Generated by {md_code(f'python -m planner validate {source}{flag} --markdown docs/validation.md')}; "
        "do not edit by hand.",
        "error = predicted / measured - 1. Cases are published end-to-end measurements in scenario form.",
        "",
        f"**{s['n']} comparisons: median |error| {_pct(s['median_abs_error'])}, p90 |error| "
        f"{_pct(s['p90_abs_error'])}**, {_pct(s.get('within_20pct'))} within 20% (target: median <= 20%, "
        "p90 <= 50%).",
        "",
        "Unstated prompt/answer lengths of a case that cites a benchmark suite's results come from the suite's "
        "request set for its model (`profiles/datasets/`, column 'lengths from').",
        "",
        "Column 'kernel table': the efficiency tables the case ran on (profiles/calibration/: default.yaml from "
        "published kernel results, then a GPU's committed overlay, then the engine's silicon tables where "
        "aiconfigurator-core's op tables were imported for its GPU: aggregated cases on NVIDIA GPUs). AMD, Apple "
        "and CPU cases run on the published curves: aiconfigurator-core has no silicon tables for them.",
        "",
        "| case | metric | measured | predicted | error | bottleneck (prefill / decode) | lengths from "
        "| kernel table |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in report["cases"]:
        b = r["bottleneck"]
        pred = "does not fit: " + md_text(r["reason"]) if not r["fits"] else _num(r["predicted"])
        lines.append(f"| {md_text(r['name'])} | {md_text(r['metric'])} | {_num(r['measured'])} | {pred} "
                     f"| {_pct(r['error'], True)} | {md_text(b.get('prefill') or '-')} / "
                     f"{md_text(b.get('decode') or '-')} | {md_text(r.get('dataset') or '-')} "
                     f"| {md_text(r.get('kernel_table') or '-')} |")
    for r in report["skipped"]:
        lines.append(f"| {md_text(r['name'])} | - | - | error: {md_text(r['reason'])} | - | - | - | - |")
    extra = default_table_section(report, default) if default is not None else []
    return "\n".join(lines + extra + silicon_kernel_section()) + "\n"


def default_table_section(report: dict, default: dict) -> list[str]:
    """Markdown lines: the cases the silicon tables change (`validate --kernel-tables default` runs them on the
    default table alone), each row's error on both, and the summaries on those rows and on every row."""
    on = {(r["name"], r["metric"]): r for r in default["cases"]}
    pairs = []
    for r in report["cases"]:
        x = on.get((r["name"], r["metric"]))
        if x and x["kernel_table"] != r["kernel_table"] and r["error"] is not None and x["error"] is not None:
            pairs.append((x, r))
    if not pairs:
        return []
    a = _summary([abs(x["error"]) for x, _ in pairs], len(pairs))
    b = _summary([abs(r["error"]) for _, r in pairs], len(pairs))
    every = default["summary"]
    lines = ["", "## The cases the silicon kernel tables change, on the default table alone", "",
             f"Generated with the table above: {md_code('--kernel-tables default')} runs every case on the default "
             f"table ({md_code('engine_options.kernel_tables: default')}), where the table above runs the aggregated "
             "cases whose GPU and engine have imported silicon tables (profiles/calibration/silicon/) on them. On "
             f"the {len(pairs)} comparisons they change: median |error| {_pct(a['median_abs_error'])} on the "
             f"default table -> {_pct(b['median_abs_error'])} on the silicon tables, p90 {_pct(a['p90_abs_error'])} "
             f"-> {_pct(b['p90_abs_error'])}; on all {every['n']} comparisons on the default table alone: median "
             f"{_pct(every['median_abs_error'])}, p90 {_pct(every['p90_abs_error'])} (docs/silicon.md).", "",
             "| case | metric | error, default table | error, silicon tables | silicon tables |",
             "|---|---|---:|---:|---|"]
    for x, r in pairs:
        lines.append(f"| {md_text(r['name'])} | {md_text(r['metric'])} | {_pct(x['error'], True)} "
                     f"| {_pct(r['error'], True)} | {md_text(r['kernel_table'])} |")
    return lines


def silicon_kernel_section() -> list[str]:
    """Markdown lines: the held-out error of every committed silicon calibration (profiles/calibration/silicon/, as
    `kernels_bench import-silicon` recorded it in each file's fit.tables) beside the default table's on the same rows,
    and leave-model-shape-out cross-validation; the serving runs are in docs/silicon_serving.md."""
    lines = ["", "## Kernels measured on silicon (aiconfigurator-core's op tables, issue 19)", "",
             "Held-out |error| (every 5th distinct shape per table and dtype, never fitted) of the imported silicon "
             "calibrations, median / p90, beside the default table's on the same rows and leave-model-shape-out "
             "cross-validation (docs/silicon.md says how they are fitted; "
             "the 3,000 serving runs of the same package are in docs/silicon_serving.md, nothing fitted on them).", "",
             "| calibration | table.dtype | rows fit / held out | held out | default table "
             "| CV leave-model-shape-out | held out above the host floor (eager-timed tables) |",
             "|---|---|---|---|---|---|---|"]
    pair = lambda e, k: "-" if e.get(f"{k}_median_abs_error") is None else (  # noqa: E731
        f"{e[f'{k}_median_abs_error']:.0%} / {e[f'{k}_p90_abs_error']:.0%}")
    for stem, name, e in silicon_fit_tables():
        lines.append(f"| {md_text(stem)} | {md_text(name.replace('_perf', ''))} | {e.get('n_fit')} / "
                     f"{e.get('n_holdout')} | {pair(e, 'holdout')} | {pair(e, 'default')} | {pair(e, 'cv')} | "
                     f"{pair(e, 'device_bound')} |")
    return lines


def is_markdown(head: bytes) -> bool:
    """Whether a file starting with `head` is one `markdown` wrote (so `validate --markdown` may replace it)."""
    return head.startswith(MARKDOWN_TITLE.encode() + b"\n")


def table(report: dict) -> str:
    """The per-case table for a terminal: names and reasons with control characters shown escaped."""
    out = [f"{'case':46s} {'metric':32s} {'measured':>12s} {'predicted':>12s} {'error':>8s}"]
    for r in report["cases"]:
        out.append(f"{terminal(r['name'])[:46]:46s} {terminal(r['metric'])[:32]:32s} {_num(r['measured']):>12s} "
                   f"{_num(r['predicted']):>12s} {_pct(r['error'], True):>8s}")
    s = report["summary"]
    out.append(f"n {s['n']}  median |error| {_pct(s['median_abs_error'])}  p90 |error| {_pct(s['p90_abs_error'])}"
               f"  within 20% {_pct(s.get('within_20pct'))}")
    for r in report["skipped"]:
        out.append(f"skipped {terminal(r['name'])}: {terminal(r['reason'])}")
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.4g}" if abs(x) < 100 else f"{x:,.0f}"


def _pct(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.0%}" if signed else f"{x:.0%}")
