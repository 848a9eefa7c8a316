"""Performance page: one deployment's serving metrics (TTFT, TPOT, throughput), the bottleneck of each phase, the
throughput-latency curve beside other GPU types, for a stated concurrency the serving simulator's run (requests and KV
use over time, latency distributions and percentiles), and the roofline of its decode step with measured kernels_bench
points when the results database holds any."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui
from dashboard import figures as D
from dashboard.data import DEFAULT_GPUS, GPU_COUNTS
from dashboard.views.fit import kv_options
from planner.report import figures as F

METRICS = (("ttft_ms", "TTFT", "{:,.0f} ms"), ("tpot_ms", "TPOT", "{:,.1f} ms"),
           ("decode_tokens_per_s_per_gpu", "Decode tokens/s per GPU", "{:,.0f}"),
           ("output_tokens_per_s_per_user", "Output tokens/s per user", "{:,.1f}"),
           ("system_output_tokens_per_s", "Output tokens/s, whole deployment", "{:,.0f}"))


def _fitting(table) -> list[dict]:
    return table[table["fits"] == True].to_dict("records")  # noqa: E712


def render(ref: str) -> None:
    s = ui.model_summary(ref)
    if s is None:
        return
    cat = data.catalog()
    gpus, formats = list(cat["gpus"]), cat["formats"]
    st.title(f"Performance: {s['name']}")
    first = _fitting(data.smallest_fits(ref, s["native_weights"], DEFAULT_GPUS, None, kv_options(s)[0]))
    start = first[0] if first else {"gpu": DEFAULT_GPUS[0], "gpus": 8}
    a, b, c, d = st.columns(4)
    weights = a.selectbox("Weights", formats, index=formats.index(s["native_weights"]), key="perf.weights")
    gpu = b.selectbox("GPU type", gpus, index=gpus.index(start["gpu"]), format_func=data.gpu_label, key="perf.gpu")
    n = c.selectbox("GPUs", GPU_COUNTS, index=GPU_COUNTS.index(start["gpus"]), key="perf.gpus")
    engine = d.selectbox("Engine", cat["engines"], index=cat["engines"].index("vllm"), key="perf.engine")
    sets = cat["datasets"]
    a, b, c, d, e = st.columns(5)
    kv = a.selectbox("KV cache dtype", kv_options(s), key="perf.kv")
    top = s["max_context"] or 10**7
    # a benchmark dataset fills the lengths with its published means (the widgets' keys follow it, so picking
    # another one starts from its values; they stay editable)
    lengths = b.selectbox("Request lengths", ["typed", *sets], key="perf.dataset",
                          format_func=lambda k: "as typed" if k == "typed" else k,
                          help="a benchmark dataset (profiles/datasets/) sets the mean prompt and answer lengths: "
                               + "; ".join(f"{k}: {v[3]}" for k, v in sets.items()))
    preset = sets.get(lengths)
    in0, out0 = preset[:2] if preset else (data.DEFAULT_INPUT_LEN, data.DEFAULT_OUTPUT_LEN)
    input_len = c.number_input("Prompt tokens", 1, top, min(in0, top // 2), key=f"perf.in.{lengths}")
    output_len = d.number_input("Output tokens", 1, top, min(out0, top // 2), key=f"perf.out.{lengths}")
    concurrency = e.number_input("Requests in flight (0: as many as memory allows)", 0, 10**6, 0, key="perf.conc")
    dist = "fixed"
    if concurrency:
        shapes = ("fixed", "exponential")
        dist = st.radio("Output lengths of the requests in flight", shapes, horizontal=True,
                        index=shapes.index(preset[2]) if preset else 0,
                        help="fixed: every answer has the stated length (benchmark 'random' datasets); exponential: "
                             "chat traffic such as ShareGPT, the stated length is the mean", key=f"perf.dist.{lengths}")
    silicon = st.checkbox("The engine's kernel tables measured on silicon, where imported for the GPU "
                          "(docs/silicon.md; otherwise the default table)", value=True, key="perf.silicon")
    others = [g for g in gpus if g != gpu]
    compare = st.multiselect("Compare with (fewest GPUs of each type that fit, same weights)", others,
                             default=[r["gpu"] for r in first if r["gpu"] != gpu][:2], format_func=data.gpu_label,
                             key="perf.compare")
    opts = {"kv": kv, "engine": engine, "input_len": int(input_len), "output_len": int(output_len),
            "concurrency": concurrency or None, "output_len_dist": dist,
            "kernel_tables": "auto" if silicon else "default"}
    main = data.deployment(ref, weights, gpu, n, **opts)
    cmp_fits = _fitting(data.smallest_fits(ref, weights, tuple(compare), None, kv, engine)) if compare else []
    docs = (main, *(data.deployment(ref, weights, r["gpu"], r["gpus"], **opts) for r in cmp_fits))
    res = data.plans(docs)
    for line in res["errors"]:
        ui.error(line)
    result = res["results"].get(main["name"])
    if result is None:
        return
    headline(main["name"], result)
    if not res["curves"].empty:
        left, right = st.columns(2)
        with left:
            ui.chart(F.throughput_latency(res["curves"]), "perf.curve")
        with right:
            ui.chart(D.latency_bars(res["metrics"]), "perf.latency")
    if result.get("simulation"):
        simulated_run(result)
    ui.table(res["metrics"], "plan-metrics", "Serving metrics of each deployment at its workload")
    ui.table(res["curves"], "throughput-curves", "Throughput-latency points (running batch doubles along a line)",
             height=240)
    if result["fits"]:
        roofline(main, result)


def headline(name: str, result: dict) -> None:
    sc = result["scenario"]
    par = sc["parallelism"]
    st.subheader(name)
    if not result["fits"]:
        st.warning(f"Does not fit: {result['reason']}")
        return
    cols = st.columns(len(METRICS))
    for col, (key, label, fmt) in zip(cols, METRICS, strict=True):
        value = result["metrics"].get(key)
        col.metric(label, "-" if value is None else fmt.format(value))
    b = result["bottleneck"]
    st.markdown(f"**Bottleneck** — prefill: {b.get('prefill') or '-'}; decode: {b.get('decode') or '-'}. "
                f"Plan: TP {par['tp']}, EP {par['ep']}, PP {par['pp']}, DP-attention {par['dp_attention']}, "
                f"{par['replicas']} replica(s); engine {sc['engine']}, KV cache {sc['kv_cache']}.")
    for line in result.get("assumptions") or []:
        st.caption(f"assumed: {line}")


def simulated_run(result: dict) -> None:
    """The serving simulator's run of the chosen concurrency (estimate's `simulation` block, cached with the plan by
    data.plans): timeline, latency distributions and percentiles."""
    sim = result["simulation"]
    c = sim["client"]
    st.header("Simulated benchmark run")
    st.caption(f"{c['num_prompts']:,} requests, at most {c['concurrency']:,} in flight (a closed-loop client as "
               f"`vllm bench serve --max-concurrency`); prompt lengths {c['input_len']}, output lengths "
               f"{c['output_len']}. {ui.plain(sim['summary_line'])}.")
    ui.chart(D.sim_timeline(D.timeline_table(sim)), "perf.sim.timeline")
    dist = D.distribution_table(sim)
    left, right = st.columns([3, 2])
    if not dist.empty:
        with left:
            ui.chart(D.latency_cdf(dist), "perf.sim.cdf")
    with right:
        ui.table(D.percentile_table(result["metrics"]), "simulated-percentiles",
                 "Latency percentiles of the simulated run (ms; TPOT and ITL as vLLM's client counts them)")


def roofline(doc: dict, result: dict) -> None:
    st.header("Roofline of one decode step")
    top = max(1.0, float(result["capacity"]["max_batch_per_gpu"]))
    options = [float(2**k) for k in range(0, 24) if 2**k < top] + [round(top, 1)]
    lo, hi = st.select_slider("Sequences per GPU in the decode step", options, value=(options[0], options[-1]),
                              format_func=lambda b: f"{b:g}", key=f"perf.batch.{doc['name']}.{top}")
    store = data.bench_results_path()
    roof = data.roofline(doc, tuple(dict.fromkeys((lo, hi))), str(store), data.mtime(store))
    if "error" in roof:
        ui.error(roof["error"])
        return
    ui.chart(F.roofline(roof["points"], roof["ceilings"], roof["measured"]), "perf.roofline")
    if roof["note"]:
        st.caption(roof["note"])
    ui.table(roof["points"], "roofline-ops", "Decode ops on the roofline", height=240)
    ui.table(roof["ceilings"], "roofline-ceilings", "Ceilings (datasheet peaks)")
    if roof["measured"] is not None:
        ui.table(roof["measured"], "roofline-measured", f"kernels_bench runs in {store.name}", height=240)
