"""This machine page: what `kernels_bench discover` sees, and a suite run (the smoke suite by default) with a
progress bar and its rows shown as each case finishes. The run is a child process writing the results database;
leaving the page stops it, and the cases it finished stay stored. Below: an imported silicon calibration (GPU x engine)
with its fit errors, and the GPU suite's shapes timed on it beside the default table and any local run of the same
case on that GPU (kernels_bench.silicon_compare; torch-free, so it shows without the bench extra too), and its engine's
measured all-reduce beside the default table's link model."""

from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import bench, data, ui
from kernels_bench import plan, silicon_compare, silicon_table
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import efficiency_for

POLL_S = 0.5


def render(ref: str) -> None:
    st.title("This machine")
    why = bench.missing()
    found = None
    if why:
        st.info(f"Not available yet: {why}")
    else:
        found = discovered()
    store = data.bench_results_path()
    if found is not None:
        run_form(found)  # read the store after it: a run just finished is listed
    runs = bench.stored_runs(str(store), data.mtime(store))
    if found is not None and not runs.empty:
        ui.table(runs, "kernels-bench-runs-here", f"Runs stored in {store}")
    silicon_tables(found, runs, store)


def silicon_tables(found: dict | None, runs: pd.DataFrame, store) -> None:
    """An imported silicon calibration: its per-table fit errors, and the GPU suite's cases timed on it beside the
    default table and the newest local run of each case on that GPU."""
    st.header("Kernel tables measured on silicon")
    pairs = silicon_compare.calibrations()
    if not pairs:
        st.info("No silicon calibration is committed (python -m kernels_bench import-silicon writes them).")
        return
    labels = [f"{gpu} / {engine}" for gpu, engine in pairs]
    here = {g.get("profile") for g in (found or {}).get("gpus") or []}
    first = next((i for i, (gpu, _) in enumerate(pairs) if gpu in here), labels.index("h200-sxm / vllm")
                 if "h200-sxm / vllm" in labels else 0)
    pick = st.selectbox("Imported calibration (GPU / engine)", labels, index=first, key="machine.silicon")
    gpu, engine = pairs[labels.index(pick)]
    fit = pd.DataFrame([{"table.dtype": name, "rows fit": e.get("n_fit"), "held out": e.get("n_holdout"),
                         **{f"{what} median": e.get(f"{key}_median_abs_error") for key, what in FIT_COLUMNS},
                         **{f"{what} p90": e.get(f"{key}_p90_abs_error") for key, what in FIT_COLUMNS}}
                        for g, eng, name, e in silicon_table.rows() if (g, eng) == (gpu, engine)])
    ui.table(fit, "silicon-fit", f"profiles/calibration/silicon/{gpu}-{engine}.yaml: |error| (fraction) of the "
             "held-out rows (every 5th shape, never fitted) with the calibration and with the default table, and "
             "leave-model-shape-out cross-validation (docs/silicon.md)")
    ids = tuple(int(r) for r in runs.loc[runs["device"] == gpu, "run"]) if not runs.empty else ()
    local = bench.stored_cases(str(store), data.mtime(store), ids) if ids else pd.DataFrame()
    rows = pd.DataFrame(silicon_compare.side_by_side(gpu, engine, local.to_dict("records")))
    ui.table(rows, "silicon-vs-local", f"kernels_bench's GPU suite (full-size Kimi K2.5 layers on one {gpu}): one "
             f"layer's time in ms as `estimate` times {engine} there on the default table and on the imported one; "
             f"local_* from the newest finished run of the case on a {gpu} in {store} (kernels_bench run --device "
             "cuda --suite full), empty where none ran")
    n = int(rows["local_ms"].notna().sum())
    st.caption(f"{n} of {len(rows)} cases have a local run on a {gpu}." if n else
               f"No local run on a {gpu} is stored yet: the local columns fill in when kernels_bench runs on one.")
    allreduce_chart(gpu, engine)


def allreduce_chart(gpu: str, engine: str) -> None:
    """The calibration's measured all-reduce per GPU count (comm.allreduce_by_gpus) beside the default table's link
    model (planner.perf.roofline.comm_time) at the same message sizes."""
    eff = efficiency_for(gpu, engine, True)
    if not eff.allreduce:
        return
    acc, linked = load_accelerator(gpu), efficiency_for(gpu)
    fig = go.Figure()
    for t in eff.allreduce:
        sizes = [b for b, _ in t.points]
        model = plan.link_allreduce_seconds(acc, linked, t.gpus, sizes)
        fig.add_scatter(x=sizes, y=[s * 1e6 for _, s in t.points], name=f"{t.gpus} GPUs, {engine} measured",
                        mode="lines+markers")
        fig.add_scatter(x=sizes, y=[s * 1e6 for s in model], name=f"{t.gpus} GPUs, link model", line={"dash": "dot"})
    fig.update_layout(title=f"All-reduce on {gpu}: {engine}'s own (silicon table) against the default link model",
                      template="plotly_white", xaxis={"type": "log", "title": "message (bytes)"},
                      yaxis={"type": "log", "title": "time (us)"})
    ui.chart(fig, key="machine.allreduce")
    st.caption("Measured: the engine's CUDA-graph-replayed all-reduce (aiconfigurator-core "
               "comm/<engine>/<version>/custom_allreduce_perf), which scenarios on the silicon tables take for an "
               "all-reduce inside one node; link model: the default table's latency + 2 (g - 1) / g x bytes over "
               "the bus bandwidth (kernels_bench/silicon_comm.py, docs/silicon.md).")


FIT_COLUMNS = (("holdout", "held out"), ("default", "default table"), ("cv", "CV"))


def discovered() -> dict | None:
    st.header("Devices")
    nonce = st.session_state.setdefault("machine.nonce", 0)
    if st.button("Look again", key="machine.rediscover"):
        st.session_state["machine.nonce"] = nonce = nonce + 1
    found = bench.discover(nonce)
    if "error" in found:
        ui.error(f"kernels_bench discover: {found['error']}")
        return None
    cpu = found.get("cpu") or {}
    facts = [(k, ", ".join(v) if isinstance(v, list) else str(v)) for k, v in cpu.items()]
    left, right = st.columns(2)
    with left:
        ui.table(pd.DataFrame(facts, columns=["cpu", "value"]), "discover-cpu", "CPU (from /proc and torch)")
    with right:
        gpus = pd.DataFrame(found.get("gpus") or [])
        if gpus.empty:
            st.caption(f"No NVIDIA GPU seen: {found.get('gpu_note') or 'NVML lists none'}.")
        else:
            ui.table(gpus, "discover-gpus", "GPUs (NVML) and the accelerator profile each matches")
    st.caption(f"Runs go to `{found.get('default', 'cpu')}` by default.")
    return found


def run_form(found: dict) -> None:
    st.header("Run a suite")
    devices = ["cuda", "cpu"] if found.get("default") == "cuda" else ["cpu"]
    a, b, c = st.columns([1, 1, 2])
    device = a.selectbox("Device", devices, key="machine.device")
    suite = b.selectbox("Suite", ["smoke", "full"], key="machine.suite",
                        help="CPU smoke: 22 scaled-down Kimi K2.5 cases, about a minute")
    cases = c.text_input("Only cases matching (regular expression, optional)", key="machine.cases")
    store = data.bench_results_path()
    st.caption(f"`python -m kernels_bench run --suite {suite} --device {device}"
               f"{f' --cases {cases!r}' if cases else ''}` into {store}")
    if st.button("Run", type="primary", key="machine.run"):
        run(device, suite, cases, store)


def run(device: str, suite: str, cases: str, store) -> None:
    progress = st.progress(0.0, text="starting kernels_bench (ceilings first) ...")
    live = st.empty()
    job = bench.SuiteRun(device, suite, store, cases)
    try:
        while job.poll():
            if job.total:
                progress.progress((job.step - 1) / job.total, text=f"case {job.step} of {job.total}: "
                                  f"{job.stderr[-1][-80:] if job.stderr else ''}")
            rows = job.rows()
            if not rows.empty:
                live.dataframe(rows, hide_index=True)
            time.sleep(POLL_S)
        doc, err = job.result()
    finally:
        job.stop()
    if doc is None:
        progress.empty()
        ui.error(f"kernels_bench run: {err}")
        return
    done = pd.DataFrame(doc["runs"])
    progress.progress(1.0, text=f"run {doc['run_id']}: {len(done)} rows, "
                                f"{int((done['status'] == 'ok').sum()) if not done.empty else 0} ok")
    live.empty()
    keep = [c for c in ("case", "op", "status", "measured_s", "predicted_s", "measured_over_predicted",
                        "achieved_bytes_per_s", "achieved_flop_per_s", "bound", "error") if c in done.columns]
    ui.table(done[keep], "kernels-bench-run", f"Run {doc['run_id']} on {doc['device'].get('display_name', device)}")
    line = summary_line(doc)
    if line:
        st.markdown(line)


def summary_line(doc: dict) -> str:
    """The run's summary (kernels_bench.runner.summarize, as `kernels_bench run` prints it under its table): cases
    by status, median measured/predicted per op kind; '' for a document without one."""
    sm = doc.get("summary") or {}
    if not sm:
        return ""
    c = sm["cases"]
    ratios = ", ".join(f"{k} {v['median']:.2f} ({v['n']} cases)"
                       for k, v in sm.get("median_measured_over_predicted", {}).items())
    line = (f"**Summary:** {sum(c.values())} cases: {c['ok']} ok, {c['oom']} out of memory, {c['error']} error; "
            f"median measured/predicted per op kind: {ratios or 'none'}.")
    if sm.get("emulated"):
        line += (f" {len(sm['emulated'])} cases ran an emulated format on this device (weights dequantized before "
                 "the matmul): their ratio measures the emulation, not a planner error.")
    return line
