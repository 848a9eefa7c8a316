"""This machine page: what `kernels_bench discover` sees, and a suite run (the smoke suite by default) with a
progress bar and its rows shown as each case finishes. The run is a child process writing the results database;
leaving the page stops it, and the cases it finished stay stored."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import bench, data, ui

POLL_S = 0.5


def render(ref: str) -> None:
    st.title("This machine")
    why = bench.missing()
    if why:
        st.info(f"Not available yet: {why}")
        return
    found = discovered()
    if found is None:
        return
    run_form(found)
    store = data.bench_results_path()
    runs = bench.stored_runs(str(store), data.mtime(store))
    if not runs.empty:
        ui.table(runs, "kernels-bench-runs-here", f"Runs stored in {store}")


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
