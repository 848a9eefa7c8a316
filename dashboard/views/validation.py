"""Validation page: the planner's predictions against published measurements (planner.serving.validate over the public
cases) and against stored kernels_bench runs (measured vs predicted seconds per case), each as a scatter with the
y = x line and an error table."""

from __future__ import annotations

import streamlit as st

from dashboard import bench, data, ui
from dashboard import figures as D
from planner.report import figures as F


def render(ref: str) -> None:
    st.title("Validation: predicted vs measured")
    published()
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
