"""Sizing page: a workload form (traffic, lengths, SLOs, buy or rent, API price) -> `planner.sizing.search.size`: ranked
plans, the cost-latency Pareto chart, engine flags to copy, the API break-even and why other plans were rejected.
Says "not available yet" while planner.sizing.search (issue 5) is missing or failing."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from planner.report import figures as F

TRAFFIC = {"requests_per_s": "requests per second", "tokens_per_day": "tokens per day (input + output)",
           "concurrency": "users in flight (closed loop)"}
SLO = (("ttft_ms", "TTFT limit (ms)"), ("tpot_ms", "TPOT limit (ms)"),
       ("output_tokens_per_s_per_user", "Output tokens/s per user, at least"))
NO_API, CUSTOM_API = "none", "custom prices"


def render(ref: str) -> None:
    s = ui.model_summary(ref)
    if s is None:
        return
    st.title(f"Sizing: {s['name']}")
    presets = data.workload_presets()
    if not presets:
        st.info("Not available yet: no workload presets in profiles/workloads.")
        return
    names = list(presets)
    preset = st.selectbox("Start from the workload preset", names, key="sizing.preset",
                          index=names.index(data.DEFAULT_WORKLOAD) if data.DEFAULT_WORKLOAD in names else 0,
                          format_func=lambda n: f"{n}: {presets[n].get('description', '')}")
    base = data.workload_for(ref, s["name"], preset)
    workload = form(base, preset, s)
    with st.spinner("Searching hardware plans ..."):
        doc = data.sizing(workload)
    if "error" in doc:
        ui.error(doc["error"])
        return
    results(doc)


def form(base: dict, preset: str, s: dict) -> dict:
    """The workload mapping (CONTRACT.md §7) the form describes, starting from the preset."""
    from planner.sizing.api import list_apis
    from planner.sizing.workload import CLASSES, OBJECTIVES

    cat = data.catalog()
    traffic, slo = dict(base.get("traffic") or {}), dict(base.get("slo") or {})
    k = f"sizing.{preset}."
    with st.form(f"sizing.form.{preset}"):
        a, b, c = st.columns(3)
        kinds = list(TRAFFIC)
        kind = a.radio("Traffic given as", kinds, format_func=TRAFFIC.get, key=k + "kind",
                       index=next((i for i, t in enumerate(kinds) if traffic.get(t) is not None), 0))
        amount = a.number_input("Amount", min_value=0.0, value=float(traffic.get(kind) or 1.0), key=k + "amount",
                                help="in the unit chosen above")
        input_len = b.number_input("Prompt tokens", 1, 10**8, int(traffic.get("input_len", 4000)), key=k + "in")
        output_len = b.number_input("Output tokens", 1, 10**8, int(traffic.get("output_len", 1000)), key=k + "out")
        hit = b.number_input("Prefix cache hit (fraction of prompt)", 0.0, 1.0,
                             float(traffic.get("prefix_cache_hit", 0.0)), key=k + "hit")
        context = b.number_input("Longest request that must fit (tokens)", 1, s["max_context"] or 10**8,
                                 int(min(base.get("context_len") or data.DEFAULT_CONTEXT, s["max_context"] or 10**8)),
                                 key=k + "context")
        limits = {key: c.number_input(f"{label} (0: none)", 0.0, 1e9, float(slo.get(key) or 0), key=k + key)
                  for key, label in SLO}
        a, b, c = st.columns(3)
        purchase = a.radio("Hardware is", ["buy", "rent"], index=["buy", "rent"].index(base.get("purchase", "buy")),
                           horizontal=True, key=k + "purchase")
        objective = a.selectbox("Rank by", OBJECTIVES, key=k + "objective",
                                index=OBJECTIVES.index(base.get("objective", OBJECTIVES[0])))
        top = a.number_input("Plans to show", 1, 100, int(base.get("top", 5)), key=k + "top")
        weights = b.multiselect("Weight formats (none: every format an engine loads)", cat["formats"],
                                default=ui.options_with(list(base.get("weights") or []), cat["formats"]),
                                key=k + "weights")
        kv = b.multiselect("KV cache dtypes", cat["kv"], default=ui.options_with(list(base.get("kv_cache") or
                                                                                     ["bf16", "fp8"]), cat["kv"]),
                           key=k + "kv")
        classes = b.multiselect("Hardware classes", CLASSES, key=k + "classes",
                                default=list((base.get("search") or {}).get("classes") or CLASSES))
        apis = [NO_API, *list_apis(), CUSTOM_API]
        given = base.get("api")
        api = c.selectbox("Compare with an API", apis, key=k + "api",
                          index=apis.index(given) if isinstance(given, str) and given in apis else
                          apis.index(CUSTOM_API) if isinstance(given, dict) else 0)
        custom = given if isinstance(given, dict) else {}
        price_in = c.number_input("Custom API: USD per M input tokens", 0.0, 1e4,
                                  float(custom.get("input_per_m_usd", 0.6)), key=k + "api_in")
        price_out = c.number_input("Custom API: USD per M output tokens", 0.0, 1e4,
                                   float(custom.get("output_per_m_usd", 3.0)), key=k + "api_out")
        local = c.checkbox("Data must stay on own hardware (rules the API out)", bool(base.get("data_local")),
                           key=k + "local")
        silicon = c.checkbox("Engines' kernel tables measured on silicon, where imported (docs/silicon.md)",
                             base.get("kernel_tables") != "default", key=k + "silicon")
        st.form_submit_button("Size it", type="primary")
    out = {**base, "context_len": int(context), "purchase": purchase, "objective": objective, "top": int(top),
           "data_local": local,
           "traffic": {kind: amount, "input_len": int(input_len), "output_len": int(output_len),
                       "prefix_cache_hit": hit},
           "slo": {**{key: v for key, v in limits.items() if v > 0},
                   **({"percentile": slo["percentile"]} if "percentile" in slo else {})} or None,
           "kv_cache": kv or None, "weights": weights or None,
           "search": {**(base.get("search") or {}), "classes": classes or list(CLASSES)}}
    out["kernel_tables"] = "auto" if silicon else "default"
    out.pop("api", None)
    if api == CUSTOM_API:
        out["api"] = {"input_per_m_usd": price_in, "output_per_m_usd": price_out}
    elif api != NO_API:
        out["api"] = api
    return out


def results(doc: dict) -> None:
    sm = doc.get("summary") or {}
    tables = ("; plans on the default kernel table alone"
              if (doc.get("workload") or {}).get("kernel_tables") == "default"
              else "; plans on the engines' silicon kernel tables where imported")
    st.caption(f"{sm.get('candidates', 0):,} candidate plans, {sm.get('fit_memory', 0):,} fit memory, "
               f"{sm.get('feasible', 0):,} meet the SLO; searched in {sm.get('seconds', 0):.2f} s{tables}.")
    if sm.get("partial"):
        left = sm.get("not_searched") or []
        st.warning(ui.plain(f"Partial answer: the search's time budget ran out before {len(left):,} model/hardware "
                            "combinations were searched (narrow the hardware classes or nodes): "
                            + "; ".join(left[:5]) + (" ..." if len(left) > 5 else "")))
    plans = doc.get("plans") or []
    if not plans:
        st.warning("No plan carries this workload within its SLO and budget; the rejections below say why.")
    else:
        table = data.sizing_table(doc)
        table.insert(1, "hardware", [p["hardware"]["label"] for p in plans])
        table.insert(5, "engine", [p["engine"] for p in plans])
        best = plans[0]
        st.success(f"**Best plan:** {best['replicas']} x {best['hardware']['label']}, {best['weights']}, KV "
                   f"{best['kv_cache']}, {best['engine']} {best['parallelism'].get('plan', '')}: "
                   f"${best['cost']['usd_per_m_output_tokens']:,.2f} per million output tokens, "
                   f"${best['cost']['usd_per_hour']:,.2f} per hour ({best['cost']['purchase']}).")
        left, right = st.columns([3, 2])
        with left:
            ui.table(table, "sizing-plans", "Ranked plans, best first")
        with right:
            ui.chart(F.sizing_pareto(table), "sizing.pareto")
        for front, rows in (doc.get("pareto") or {}).items():
            if rows:
                ui.table(pd.DataFrame(rows), f"pareto-{front}", f"Pareto front: {front.replace('_', ' ')}")
        flags(plans)
    from planner.report.external import hardware_types_table  # as data.sizing_table: loaded on first use

    types = hardware_types_table(doc)
    if not types.empty:
        ui.table(types, "sizing-hardware-types", "Best plan per hardware type: ranked where one meets the workload; "
                 "else why not, and its closest plan priced as a best effort (TTFT and TPOT at one request in "
                 "flight) for a buyer who accepts the missed SLO")
    api_break_even(doc.get("api_break_even") or {})
    rejected = pd.DataFrame([{"reason": r, "plans": n} for r, n in (doc.get("rejected") or {}).items()])
    if not rejected.empty:
        ui.table(rejected.sort_values("plans", ascending=False, kind="stable"), "sizing-rejected",
                 "Rejected plans by reason", height=260)
    for note in doc.get("notes") or []:
        st.caption(note)


def flags(plans: list[dict]) -> None:
    st.header("Engine flags")
    ranks = {f"#{p['rank']}: {p['replicas']} x {p['hardware']['label']}, {p['weights']}, {p['engine']}": p
             for p in plans}
    pick = st.selectbox("Plan", list(ranks), key="sizing.flags")
    shown = False
    for engine, command in (ranks[pick].get("flags") or {}).items():
        if command:
            st.caption(engine)
            st.code(command, language="bash", wrap_lines=True)
            shown = True
    if not shown:
        st.caption("The planner has no launch command for this plan's engines.")


def api_break_even(api: dict) -> None:
    st.header("API break-even")
    if not api:
        st.caption("The sizing result has no API comparison.")
        return
    st.markdown(f"Cheaper for this workload: **{api.get('answer') or '-'}**"
                + ("" if api.get("available") else " (the API was not considered)"))
    if api.get("reason"):
        st.caption(api["reason"])
    rows = [{"quantity": key, "value": str(value)} for key, value in api.items() if not isinstance(value, dict | list)]
    rows += [{"quantity": f"api.{key}", "value": str(value)} for key, value in (api.get("api") or {}).items()]
    ui.table(pd.DataFrame(rows), "sizing-api-break-even", "API vs the best plan")
