"""Figure builders: one table in, one plotly figure out. Pure (no planner calls, no I/O), so the report,
the dashboard and tests share them.

Every string that reaches a figure goes through `t()`: plotly.js renders a subset of HTML tags in text, so
names from YAML or config files are entity-escaped and show as typed (a model named `<script>` stays text).
Axes carry their units: GB = 1e9 B.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from planner.base.units import GB

TEMPLATE = "plotly_white"
HEIGHT = 460


def t(text: object) -> str:
    """Text for a figure: HTML-escaped so plotly.js shows it literally."""
    return html.escape(str(text), quote=False)


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    fig.update_layout(title=t(title), template=TEMPLATE, height=kw.pop("height", HEIGHT),
                      margin={"l": 60, "r": 20, "t": 60, "b": 60}, legend={"font": {"size": 11}}, **kw)
    return fig


def params_treemap(params: pd.DataFrame, model: str) -> go.Figure:
    """Parameters of one model: part -> (routed experts | what every token runs) -> component, areas
    proportional to counts. Click a box to zoom into it."""
    df = params[(params["model"] == model) & (params["params"] > 0)]
    root = t(model)
    ids, labels, parents, values = [root], [root], [""], [int(df["params"].sum())]

    def add(node_id: str, label: str, parent: str, value: int) -> None:
        ids.append(node_id), labels.append(label), parents.append(parent), values.append(value)

    for part, grp in df.groupby("part", sort=False):
        pid = f"{root}/{t(part)}"
        add(pid, t(part), root, int(grp["params"].sum()))
        dense = grp[~grp["component"].isin([part, "routed_experts"])]
        for row in grp[grp["component"] == "routed_experts"].itertuples():
            add(f"{pid}/routed_experts", "routed_experts", pid, int(row.params))
        if not dense.empty:
            did = f"{pid}/every token"
            add(did, "run by every token", pid, int(dense["params"].sum()))
            for row in dense.itertuples():
                add(f"{did}/{t(row.component)}", t(row.component), did, int(row.params))
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                               texttemplate="%{label}<br>%{value:.4s}<br>%{percentRoot:.2%}",
                               hovertemplate="%{label}: %{value:,} parameters<extra></extra>", maxdepth=4))
    return _layout(fig, f"{model}: parameters by component (click a box to zoom)")


def active_vs_total(active: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    names = [t(m) for m in active["model"]]
    fig.add_bar(name="total (language model)", x=names, y=active["total_params"] / 1e9)
    fig.add_bar(name="active per token", x=names, y=active["active_params_per_token"] / 1e9,
                text=[f"{f:.1%}" for f in active["active_fraction"]], textposition="outside")
    return _layout(fig, "Parameters: total vs active per token", barmode="group",
                   yaxis={"title": "parameters (billions)", "type": "log"})


def weights_bars(weights: pd.DataFrame, model: str) -> go.Figure:
    """Stored bytes of one model per format, stacked by component, formats sorted by size."""
    df = weights[weights["model"] == model]
    order = df.groupby("format", sort=False)["bytes"].sum().sort_values().index
    fig = go.Figure()
    for comp, grp in df.groupby("component", sort=False):
        by_fmt = grp.set_index("format")["bytes"].reindex(order).fillna(0)
        fig.add_bar(name=t(comp), x=[t(f) for f in order], y=by_fmt.values / GB,
                    hovertemplate="%{x}: %{y:,.1f} GB<extra>" + t(comp) + "</extra>")
    return _layout(fig, f"{model}: weight bytes by format and component", barmode="stack",
                   yaxis={"title": "stored bytes (GB = 1e9 B)"}, xaxis={"tickangle": -45}, height=520)


MEMORY_PARTS = (("weights_bytes_per_gpu", "weights"), ("kv_cache_bytes_per_gpu", "KV cache"),
                ("activation_bytes_per_gpu", "activations"), ("runtime_bytes_per_gpu", "runtime"),
                ("free_bytes_per_gpu", "free"))


def memory_bars(memory: pd.DataFrame) -> go.Figure:
    """Per-GPU memory of each plan (fullest GPU), stacked, with the GPU's capacity marked."""
    names = [t(p) + ("" if fits else " (does not fit)") for p, fits in zip(memory["plan"], memory["fits"], strict=True)]
    fig = go.Figure()
    for col, label in MEMORY_PARTS:
        fig.add_bar(name=label, y=names, x=memory[col].clip(lower=0) / GB, orientation="h",
                    hovertemplate="%{y}: %{x:,.1f} GB<extra>" + label + "</extra>")
    fig.add_scatter(name="GPU capacity", y=names, x=memory["capacity_bytes_per_gpu"] / GB, mode="markers",
                    marker={"symbol": "line-ns-open", "size": 22, "color": "black", "line": {"width": 3}})
    return _layout(fig, "Memory per GPU (fullest GPU of each plan)", barmode="stack",
                   xaxis={"title": "GB (1e9 B) per GPU"}, height=max(300, 60 + 45 * len(names)))


def kv_lines(kv: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (model, layout), grp in kv.groupby(["model", "layout"], sort=False):
        dash = "dot" if layout.startswith("MHA") else "solid"
        label = f"{model}: {layout}" if kv["model"].nunique() > 1 else layout
        fig.add_scatter(name=t(label), x=grp["context_tokens"], y=grp["bytes_per_sequence"] / GB, mode="lines",
                        line={"dash": dash})
    return _layout(fig, "KV cache of one sequence vs context (all layers)",
                   xaxis={"title": "context (tokens)", "type": "log"},
                   yaxis={"title": "KV cache (GB = 1e9 B)", "type": "log"})


def throughput_latency(curves: pd.DataFrame) -> go.Figure:
    """Decode throughput per GPU vs speed per user, one line per plan (batch grows along the line)."""
    fig = go.Figure()
    for plan, grp in curves.groupby("plan", sort=False):
        fig.add_scatter(name=t(plan), x=grp["output_tokens_per_s_per_user"], y=grp["decode_tokens_per_s_per_gpu"],
                        mode="lines+markers", text=[f"{r:g} running" for r in grp["running_per_group"]],
                        hovertemplate="%{text}<br>%{x:.1f} tok/s per user<br>%{y:,.0f} tok/s per GPU<extra></extra>")
    return _layout(fig, "Throughput vs latency (decode)", xaxis={"title": "output tokens/s per user", "type": "log"},
                   yaxis={"title": "decode tokens/s per GPU", "type": "log"})


def roofline(points: pd.DataFrame, ceilings: pd.DataFrame, measured: pd.DataFrame | None) -> go.Figure:
    """Attained FLOP/s vs arithmetic intensity: the GPU's ceilings, the planner's ops and measured runs."""
    fig = go.Figure()
    xs = list(points["intensity_flop_per_byte"]) + (list(measured["intensity_flop_per_byte"])
                                                    if measured is not None else [])
    lo, hi = min(xs + [0.5]) / 2, max(xs + [2000.0]) * 2
    bw = ceilings.loc[ceilings["ceiling"] == "memory", "value"].iloc[0]
    for row in ceilings[ceilings["ceiling"] == "compute"].itertuples():
        ridge = row.value / bw
        x = [lo, ridge, hi] if lo < ridge < hi else [lo, hi]
        fig.add_scatter(name=t(f"{row.gpu} {row.dtype} roof"), x=x, y=[min(v * bw, row.value) for v in x],
                        mode="lines", line={"width": 1.5}, hoverinfo="name")
    for (batch, bound), grp in points.groupby(["batch_per_gpu", "bound"], sort=False):
        fig.add_scatter(name=t(f"planner: batch {batch:.3g}/GPU, {bound}-bound"), x=grp["intensity_flop_per_byte"],
                        y=grp["flop_per_s"], mode="markers", text=[t(o) for o in grp["op"]],
                        marker={"symbol": "circle" if bound == "memory" else "diamond", "size": 9},
                        hovertemplate="%{text}<br>%{x:.1f} FLOP/B<br>%{y:.3s}FLOP/s<extra></extra>")
    if measured is not None:
        for dev, grp in measured.groupby("device", sort=False):
            fig.add_scatter(name=t(f"measured ({dev})"), x=grp["intensity_flop_per_byte"], y=grp["flop_per_s"],
                            mode="markers", text=[t(c) for c in grp["case"]], marker={"symbol": "x", "size": 10},
                            hovertemplate="%{text}<br>%{x:.1f} FLOP/B<br>%{y:.3s}FLOP/s<extra></extra>")
    return _layout(fig, "Roofline: one decode step, op by op",
                   xaxis={"title": "arithmetic intensity (FLOP per byte)", "type": "log"},
                   yaxis={"title": "attained FLOP/s", "type": "log"}, height=520)


def daily_cost(curve: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for option, grp in curve.groupby("option", sort=False):
        fig.add_scatter(name=t(option), x=grp["output_tokens_per_day"], y=grp["usd_per_day"], mode="lines",
                        line={"shape": "linear" if option.startswith("API") else "hv",
                              "dash": "dash" if option.startswith("API") else "solid"})
    return _layout(fig, "API vs renting: dollars per day", xaxis={"title": "output tokens per day", "type": "log"},
                   yaxis={"title": "USD per day", "type": "log"})


def sizing_pareto(sizing: pd.DataFrame) -> go.Figure:
    """Cost vs latency of the ranked plans, one series per traffic rate when the table has several."""
    df = sizing.dropna(subset=["usd_per_m_output_tokens", "tpot_ms"])
    groups = df.groupby("requests_per_s", sort=True) if "requests_per_s" in df.columns else [(None, df)]
    fig = go.Figure()
    for rate, g in groups:
        fig.add_scatter(
            name="plans" if rate is None else f"{rate:g} requests/s", x=g["tpot_ms"], y=g["usd_per_m_output_tokens"],
            mode="markers", marker={"size": 9},
            text=[t(f"#{r.rank} {r.gpus}x {r.gpu} {r.weights} x{r.replicas}") for r in g.itertuples()],
            hovertemplate="%{text}<br>TPOT %{x:.1f} ms<br>$%{y:.2f} per M output tokens<extra></extra>")
    return _layout(fig, "Sizing: cost vs latency of the ranked plans", xaxis={"title": "TPOT (ms)"},
                   yaxis={"title": "USD per million output tokens", "type": "log"})


def validation_scatter(val: pd.DataFrame) -> go.Figure:
    """Predicted vs measured for every published case, with the y = x line and +-20% bands."""
    df = val.dropna(subset=["measured", "predicted"])
    df = df[(df["measured"] > 0) & (df["predicted"] > 0)]
    fig = go.Figure()
    if not df.empty:
        lo, hi = float(min(df["measured"].min(), df["predicted"].min())) / 2, float(
            max(df["measured"].max(), df["predicted"].max())) * 2
        for k, name in ((1.0, "predicted = measured"), (1.2, "+20%"), (1 / 1.2, "-20%")):
            fig.add_scatter(name=name, x=[lo, hi], y=[lo * k, hi * k], mode="lines",
                            line={"dash": "solid" if k == 1 else "dot", "color": "gray", "width": 1})
    for metric, grp in df.groupby("metric", sort=False):
        fig.add_scatter(name=t(metric), x=grp["measured"], y=grp["predicted"], mode="markers",
                        text=[t(c) for c in grp["case"]],
                        hovertemplate="%{text}<br>measured %{x:.4g}<br>predicted %{y:.4g}<extra></extra>")
    return _layout(fig, "Validation: predicted vs published measurements",
                   xaxis={"title": "measured", "type": "log"}, yaxis={"title": "predicted", "type": "log"}, height=520)
