"""Model page, the default view: what it takes to run the model (no input needed), then its parameters, MLA/MoE
architecture facts, KV cache and weights per format."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.data import DEFAULT_GPUS
from planner.report import figures as F

FAMILIES = {"all": lambda f: True, "safetensors": lambda f: not f.startswith("gguf-"),
            "GGUF (llama.cpp)": lambda f: f.startswith("gguf-")}


def render(ref: str) -> None:
    s = ui.model_summary(ref)
    if s is None:
        return
    st.title(f"{s['name']}: what it takes to run it")
    st.caption(f"{s['architecture']} ({s['model_type']}); source: {s['source']}")
    answer(ref, s)
    parameters(ref, s)
    architecture(ref, s)
    weights(ref, s)


def answer(ref: str, s: dict) -> None:
    p = s["params"]
    kv = s["kv_options"][0]  # bf16, or what vLLM runs for this model (DeepSeek-V4: fp8)
    k = data.model_summary(ref, kv)
    fixed = k["kv_cache_bytes_per_request_fixed"]
    cols = st.columns(5 if fixed else 4)
    cols[0].metric("Parameters (language model)", ui.si(p["total"]), help=f"{p['total']:,} exactly")
    cols[1].metric("Active per token", ui.si(p["active_per_token"]), help=f"{p['active_per_token']:,} exactly")
    cols[2].metric(f"Weights as shipped ({s['native_weights']})", ui.gbytes(s["weights_bytes"]),
                   help="stored bytes of the official checkpoint format, every part the format's files hold")
    cols[3].metric(f"KV cache per token of context ({kv}, all layers)",
                   ui.nbytes(k["kv_cache_bytes_per_token_past_window"]),
                   help="what one more token adds, past any sliding window (layers by kind under Architecture)")
    if fixed:  # hybrid: windows, linear-attention or compressor state, held whatever the request's length
        cols[4].metric(f"Held per request ({kv}, all layers)", ui.mbytes(fixed),
                       help="; ".join(f"{row['layers']} {row['attention_kind']} layers: {row['cached']}"
                                      for row in k["kv_cache_by_layer_kind"]))
    context = min(data.DEFAULT_CONTEXT, s["max_context"] or data.DEFAULT_CONTEXT)
    fits = data.smallest_fits(ref, s["native_weights"], DEFAULT_GPUS, context, kv)
    ok = fits[fits["fits"] == True]  # noqa: E712
    if ok.empty:
        st.warning(f"No GPU type here holds {s['name']} in {s['native_weights']} with up to "
                   f"{data.GPU_COUNTS[-1]} GPUs; see Fit and memory for other formats.")
    else:
        best = ok.sort_values(["gpus", "capacity_bytes_per_gpu"], kind="stable").iloc[0]
        st.success(f"**Smallest deployment in {s['native_weights']}:** {best['hardware']} ({best['parallelism']}), "
                   f"{ui.gbytes(best['free_bytes_per_gpu'])} free per GPU, "
                   f"{best['max_concurrency']:,.1f} requests of {context:,} tokens at once (vLLM, {kv} KV cache).")
    shown = fits.assign(fits=fits["fits"].map({True: "yes", False: "no"}).fillna("not a valid plan"))
    ui.table(shown[["hardware", "fits", "parallelism", "free_bytes_per_gpu", "kv_tokens_per_gpu", "max_concurrency",
                    "reason"]], "smallest-deployments",
             f"Fewest GPUs of each type that hold the {s['native_weights']} weights and one {context:,}-token request "
             f"(counts {', '.join(map(str, data.GPU_COUNTS))}; the planner picks TP/EP within a node, TP x PP across "
             "nodes of 8).")
    cheapest(ref, s)


def cheapest(ref: str, s: dict) -> None:
    wl = data.workload_for(ref, s["name"])
    if wl is None:
        st.info(f"Cheapest hardware: no {data.DEFAULT_WORKLOAD} workload preset in profiles/workloads.")
        return
    with st.spinner("Searching hardware plans ..."):
        doc = data.sizing(wl)
    if "error" in doc:
        st.info(ui.plain(f"Cheapest hardware: {doc['error']}"))
        return
    if not doc["plans"]:
        st.warning(f"No plan carries the {data.DEFAULT_WORKLOAD} workload within its SLO (see Sizing).")
        return
    p = doc["plans"][0]
    cost, m = p["cost"], p["metrics"]
    api = doc.get("api_break_even") or {}
    verdict = f" Against the {api['api']['name']} API: **{api['answer']}**." if api.get("available") else ""
    st.success(f"**Cheapest plan for the traffic and SLO of {data.DEFAULT_WORKLOAD}** ({wl.get('description', '')}): "
               f"{p['replicas']} x {p['hardware']['label']}, {p['weights']}, {p['engine']} "
               f"{p['parallelism'].get('plan', '')}: ${cost['usd_per_m_output_tokens']:,.2f} per million output "
               f"tokens ({cost['purchase']}), TTFT {m['ttft_ms']:,.0f} ms, TPOT {m['tpot_ms']:,.1f} ms.{verdict} "
               "Change the workload on the Sizing page.")


def parameters(ref: str, s: dict) -> None:
    st.header("Parameters")
    others = [m for m in data.catalog()["models"] if m != s["name"]]
    compare = st.multiselect("Compare active vs total with", others,
                             default=ui.options_with(["deepseek-v3"], others), key="model.compare")
    params, active = data.params_tables((ref, *compare))
    left, right = st.columns([3, 2])
    with left:
        ui.chart(F.params_treemap(params, s["name"]), "model.treemap")
    with right:
        ui.chart(F.active_vs_total(active), "model.active")
    ui.table(active, "params-active", "Total and active parameters per token")
    ui.table(params[params["model"] == s["name"]], "params-by-component", "Parameters by part and component")


def architecture(ref: str, s: dict) -> None:
    st.header("Architecture: attention and experts")
    kv_options = ["bf16", "fp8"] + (["fp8_ds_mla"] if s["attention"] == "mla" else [])
    kv = st.radio("KV cache dtype", kv_options, horizontal=True, key="model.kv")
    k = data.model_summary(ref, kv)
    if "error" in k:
        ui.error(k["error"])
        return
    facts = [(key, val) for key, val in k["architecture_facts"].items() if val is not None]
    facts += [(f"{part} layers by kind", ", ".join(f"{n} {kind}" for kind, n in counts.items()))
              for part, counts in k["layer_kinds"].items()]
    facts += [("max_context (tokens)", s["max_context"]),
              (f"KV bytes per token of context, past any window ({kv})",
               ui.nbytes(k["kv_cache_bytes_per_token_past_window"])),
              (f"bytes held per request whatever its length ({kv}: windows, linear / compressor state)",
               k["kv_cache_bytes_per_request_fixed"]),
              (f"KV bytes per token, all layers, windows uncapped ({kv})", k["kv_cache_bytes_per_token"]),
              (f"KV bytes per token per layer ({kv})", k["kv_cache_bytes_per_token_per_layer"]),
              (f"MHA-equivalent KV bytes per token ({kv}, every head's K and V)",
               k["kv_cache_mha_equivalent_bytes_per_token"])]
    if k["kv_cache_sliding_window"]:
        facts.append(("sliding-window layers / window (tokens)",
                      f"{k['kv_cache_sliding_layers']} / {k['kv_cache_sliding_window']:,}"))
    left, right = st.columns([2, 3])
    with left:
        ui.table(pd.DataFrame(facts, columns=["fact", "value"]).astype({"value": str}), "architecture-facts",
                 "MLA (latent KV) and MoE (routed experts) facts from the config")
    with right:
        kv_tab = data.kv_table(ref, tuple(kv_options), None)
        ui.chart(F.kv_lines(kv_tab), "model.kv_lines")
    ui.table(data.kv_kinds_table(ref, kv), "kv-by-layer-kind",
             "KV cache by attention kind: what one more token adds past any window, what a request holds whatever "
             "its length (one sequence of L tokens holds about L x the first + the second)")
    ui.table(kv_tab, "kv-vs-context", "KV cache of one sequence vs context (tokens' KV + what a request holds)",
             height=240)


def weights(ref: str, s: dict) -> None:
    st.header("Weights by format")
    family = st.segmented_control("Formats", list(FAMILIES), default="all", key="model.family") or "all"
    chosen = [f for f in data.catalog()["formats"] if FAMILIES[family](f)]
    by_comp, totals, skipped = data.weights_tables(ref, tuple(chosen))
    ui.chart(F.weights_bars(by_comp, s["name"]), "model.weights")
    for line in skipped:
        st.caption(f"not sized: {line}")
    ui.table(totals, "weights-total", "Stored weight bytes per format (GB = 1e9 B in charts; bytes in tables)")
    ui.table(by_comp, "weights-by-component", "Stored weight bytes per format and component", height=240)
