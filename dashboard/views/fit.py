"""Fit and memory page: a fits/does-not-fit grid of weight formats x GPU types and counts (the planner's reason on
hover), the per-GPU memory of chosen deployments, and their KV capacity (max concurrency) vs request length."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui
from dashboard import figures as D
from dashboard.data import DEFAULT_GPUS, GPU_COUNTS
from planner.report import figures as F

DEFAULT_FORMATS = ("int4-g32", "fp8-block128", "bf16", "gguf-ud-q2_k_xl")
MAX_PLANS = 5


def kv_options(s: dict) -> list[str]:
    """bf16, fp8 (and fp8_ds_mla for MLA models), those vLLM runs for this model first (DeepSeek-V4: fp8)."""
    return s["kv_options"]


def render(ref: str) -> None:
    s = ui.model_summary(ref)
    if s is None:
        return
    cat = data.catalog()
    st.title(f"Fit and memory: {s['name']}")
    top = s["max_context"] or 10**7
    a, b, c = st.columns(3)
    formats = a.multiselect("Weight formats", cat["formats"], key="fit.formats",
                            default=ui.options_with([s["native_weights"], *DEFAULT_FORMATS], cat["formats"])[:4])
    gpus = b.multiselect("GPU types", list(cat["gpus"]), default=ui.options_with(list(DEFAULT_GPUS), list(cat["gpus"])),
                         format_func=data.gpu_label, key="fit.gpus")
    counts = c.multiselect("GPU counts", GPU_COUNTS, default=[1, 2, 4, 8, 16], key="fit.counts")
    a, b, c, d = st.columns(4)
    kv = a.selectbox("KV cache dtype", kv_options(s), key="fit.kv")
    engine = b.selectbox("Engine", cat["engines"], index=cat["engines"].index("vllm"), key="fit.engine")
    context = c.number_input("Longest request (tokens)", min_value=min(1024, top), max_value=top, step=1024,
                             value=min(data.DEFAULT_CONTEXT, top), key="fit.context")
    per_node = d.number_input("GPUs per node", min_value=1, max_value=72, value=data.GPUS_PER_NODE, key="fit.node")
    if not (formats and gpus and counts):
        st.info("Pick at least one format, GPU type and count.")
        return
    opts = {"kv": kv, "engine": engine, "per_node": int(per_node), "context": int(context)}
    grid = data.fit_grid(ref, tuple(formats), tuple(gpus), tuple(sorted(counts)), **opts)
    ui.chart(D.fit_grid(grid), "fit.grid")
    st.caption(f"Up to {per_node} GPUs the planner picks TP/EP within the node; more GPUs run TP {per_node} per node "
               f"x PP over whole nodes. Prompt {data.DEFAULT_INPUT_LEN:,} + output {data.DEFAULT_OUTPUT_LEN:,} tokens; "
               f"one request of {int(context):,} tokens must fit.")
    ui.table(grid.drop(columns=["gpu", "gpu_label"]), "fit-grid", "Every cell of the grid")
    memory(ref, s, grid, opts)


def _default_plans(grid) -> list[str]:
    """Per GPU type, the fewest GPUs that fit in the first format (or its largest count, to show why not)."""
    first = grid[grid["weights"] == grid["weights"].iloc[0]]
    out = []
    for _, g in first.groupby("gpu", sort=False):
        fit = g[g["fits"] == True]  # noqa: E712
        out.append((fit.iloc[0] if not fit.empty else g.iloc[-1])["plan"])
    return out[:MAX_PLANS]


def memory(ref: str, s: dict, grid, opts: dict) -> None:
    st.header("Memory per GPU")
    valid = grid[grid["fits"].notna()]
    if valid.empty:
        st.info("No valid plan in the grid.")
        return
    names = list(valid["plan"])
    chosen = st.multiselect("Deployments", names, default=ui.options_with(_default_plans(valid), names),
                            max_selections=8, key=f"fit.plans.{hash(tuple(names))}")
    if not chosen:
        st.info("Pick a deployment from the grid.")
        return
    by_name = valid.set_index("plan")
    docs = tuple(data.deployment(ref, by_name.loc[n, "weights"], by_name.loc[n, "gpu"], int(by_name.loc[n, "gpus"]),
                                 **opts) for n in chosen)
    res = data.plans(docs)
    for line in res["errors"]:
        ui.error(line)
    mem = res["memory"]
    if mem.empty:
        return
    ui.chart(F.memory_bars(mem), "fit.memory")
    for row in mem[~mem["fits"]].itertuples():
        st.caption(f"{row.plan} does not fit: {row.reason}")
    ui.table(mem, "memory-per-gpu", "Fullest GPU of each deployment (bytes)")
    st.header("KV cache and max concurrency vs request length")
    top = s["max_context"] or opts["context"]
    contexts = tuple(sorted({*(2**k for k in range(13, 31) if 2**k < top), top}))
    fitting = tuple(d for d in docs if bool(mem.set_index("plan").loc[d["name"], "fits"]))
    if not fitting:
        st.info("None of the chosen deployments fits: no KV capacity to show.")
        return
    cap = data.capacity_vs_context(fitting, contexts)
    ui.chart(D.concurrency_vs_context(cap), "fit.capacity")
    ui.table(cap, "capacity-vs-context", "KV tokens per GPU and requests held at once, per request length")
