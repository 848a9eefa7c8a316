"""Validation page: the planner's predictions against published measurements (planner.serving.validate over the public
cases), against the user's own benchmark results (`python -m planner compare` runs kept in the result store, and a
result file uploaded here) and against stored kernels_bench runs (measured vs predicted seconds per case), each with
an error table."""

from __future__ import annotations

import streamlit as st

from dashboard import bench, data, results, ui
from dashboard import figures as D
from planner.report import figures as F


def render(ref: str) -> None:
    st.title("Validation: predicted vs measured")
    published()
    yours()
    upload()
    kernels()


def published() -> None:
    st.header("Published deployments")
    path = data.validation_cases_path()
    if not path.is_file():
        st.info(f"Not available: no public cases at {path}.")
        return
    val = data.validation(str(path), data.mtime(path))
    if "error" in val:
        ui.error(val["error"])
        return
    sm, table = val["summary"], val["table"]
    if sm["n"]:
        cols = st.columns(4)
        cols[0].metric("Comparisons", f"{sm['n']}")
        cols[1].metric("Median |error|", f"{sm['median_abs_error']:.0%}")
        cols[2].metric("p90 |error|", f"{sm['p90_abs_error']:.0%}")
        cols[3].metric("Within 20%", f"{sm['within_20pct']:.0%}")
    st.caption(f"{path}: error = predicted / measured - 1 (planner.serving.validate).")
    metrics = sorted(m for m in table["metric"].dropna().unique() if m)
    chosen = st.multiselect("Metrics", metrics, default=metrics, key="val.metrics")
    shown = table[table["metric"].isin(chosen) | (table["metric"] == "")]
    ui.chart(F.validation_scatter(shown), "val.published")
    ui.table(shown, "validation", "Predicted vs measured, per case (skipped cases last, with the reason)")


def yours() -> None:
    st.header("Your benchmark runs")
    store = data.bench_results_path()
    rows = results.compared_runs(str(store), data.mtime(store))
    if rows.empty:
        st.info(f"No compared runs kept in {store.name} yet: `python -m planner compare RESULT --gpu G --gpus N` keeps "
                "each result file's measured and predicted metrics there (or upload a result file below).")
        return
    ui.table(rows, "compared-runs", f"Measured vs predicted per metric of the result files compared "
                                    f"(python -m planner compare, kept in {store.name}); error = predicted / "
                                    "measured - 1", height=300)


def upload() -> None:
    st.subheader("Compare a result file")
    got = st.file_uploader("vLLM bench serve JSON, SGLang bench_serving JSONL, aiperf/genai-perf export, "
                           "llama-bench JSON/JSONL, or a CSV/YAML of metric names", key="val.result_upload",
                           type=["json", "jsonl", "csv", "yaml", "yml"])
    if got is None:
        return
    path, why = results.upload_result(got.name, got.getvalue())
    if path is None:
        ui.error(why)
        return
    cat = data.catalog()
    gpus, engines, formats, models = list(cat["gpus"]), cat["engines"], cat["formats"], cat["models"]
    a, b, c, d, e = st.columns(5)
    gpu = a.selectbox("GPU type", gpus, index=gpus.index("h200-sxm") if "h200-sxm" in gpus else 0,
                      format_func=data.gpu_label, key="val.up.gpu")
    n = b.selectbox("GPUs", data.GPU_COUNTS, index=data.GPU_COUNTS.index(8), key="val.up.gpus")
    engine = c.selectbox("Engine", ["from the file", *engines], key="val.up.engine")
    weights = d.selectbox("Weights", ["from the file", *formats], key="val.up.weights")
    model = e.selectbox("Model", ["from the file", *models], key="val.up.model")
    pick = {x: None if x == "from the file" else x for x in (engine, weights, model)}
    res = results.compare_result(path, gpu, int(n), pick[engine], pick[weights], pick[model])
    if "error" in res:
        ui.error(res["error"])
        return
    doc = res["doc"]
    st.caption(f"{got.name}: {doc['format']}; the planner picks the parallel plan for {n} x {data.gpu_label(gpu)}.")
    for r in doc["runs"]:
        if "error" in r:
            ui.error(f"{r['label']}: {r['error']}")
    ui.table(res["table"], "uploaded-result", "Measured vs predicted per metric (error = predicted / measured - 1)")
    if st.button("Keep it in the result store", key="val.up.keep"):
        from planner.base.errors import PlannerError
        from planner.compare.keep import keep

        try:
            kept = keep(doc, data.bench_results_path())
        except PlannerError as err:
            ui.error(str(err))
            return
        st.success(f"kept {kept['rows']} metric(s) in {data.bench_results_path().name}")


def kernels() -> None:
    st.header("kernels_bench runs")
    store = data.bench_results_path()
    runs = bench.stored_runs(str(store), data.mtime(store))
    if runs.empty:
        st.info(f"No kernels_bench runs stored in {store} yet: run the smoke suite on the This machine page "
                "(or `python -m kernels_bench run --suite smoke --device cpu`).")
        return
    labels = {int(r.run): f"run {r.run}: {r.suite} on {r.device}, {r.started_utc} UTC ({r.cases_ok} ok)"
              for r in runs.itertuples()}
    picked = st.multiselect("Runs", list(labels), default=list(labels)[:1], format_func=labels.get, key="val.runs")
    rows = bench.stored_cases(str(store), data.mtime(store), tuple(picked))
    if rows.empty:
        st.info("No finished cases in the chosen runs.")
        return
    ui.chart(D.bench_scatter(rows), "val.kernels")
    ui.table(rows, "kernels-bench-cases", "Measured vs predicted per case (measured_over_predicted from "
                                          "kernels_bench)", height=300)
    ui.table(runs, "kernels-bench-runs", f"Runs stored in {store.name}")
