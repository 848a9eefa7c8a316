"""The dashboard's own figures, pure like planner/report/figures.py (whose layout and escaping they reuse): one table
in, one plotly figure out. Only views the reports do not have live here: the fits grid, concurrency vs context,
TTFT/TPOT per plan, kernels_bench measured vs predicted, and the serving simulator's run (timeline, latency
percentiles and distributions)."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from planner.base.units import gb
from planner.report import figures as F
from planner.serving.simstats import PERCENTILES

FITS, NO_FIT, INVALID = 1.0, 0.0, 0.5
GRID_COLORS = [[0.0, "#f4a6a6"], [0.5, "#d9d9d9"], [1.0, "#8fd19e"]]


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    """The reports' look (planner/report/figures.py template, margins, legend)."""
    fig.update_layout(title=F.t(title), template=F.TEMPLATE, height=kw.pop("height", F.HEIGHT),
                      margin={"l": 60, "r": 20, "t": 60, "b": 60}, legend={"font": {"size": 11}}, **kw)
    return fig


def _hover(row) -> str:
    if row.fits is None or pd.isna(row.fits):
        return F.t(f"not a valid plan: {row.reason}")
    if not row.fits:
        return F.t(f"does not fit ({row.parallelism}): {row.reason}")
    return F.t(f"fits ({row.parallelism}): weights {gb(row.weights_bytes_per_gpu)}, KV pool "
               f"{gb(row.kv_cache_bytes_per_gpu)}, free {gb(row.free_bytes_per_gpu)} per GPU; "
               f"{row.kv_tokens_per_gpu:,.0f} KV tokens per GPU, {row.max_concurrency:,.1f} requests of "
               f"{row.context_len:,} tokens at once")


def fit_grid(cells: pd.DataFrame) -> go.Figure:
    """One panel per weight format: GPU type (rows) x GPU count (columns); green fits, red does not, grey is not a
    valid plan. The planner's reason, or what is left, on hover."""
    formats = list(dict.fromkeys(cells["weights"]))
    gpus = list(dict.fromkeys(cells["gpu_label"]))
    counts = sorted(dict.fromkeys(cells["gpus"]))
    per_row = min(len(formats), 4)
    n_rows = math.ceil(len(formats) / per_row)
    fig = make_subplots(rows=n_rows, cols=per_row, subplot_titles=[F.t(f) for f in formats], shared_yaxes=True,
                        horizontal_spacing=0.02, vertical_spacing=0.12 if n_rows > 1 else 0.0)
    for k, fmt in enumerate(formats):
        z = [[None] * len(counts) for _ in gpus]
        text = [[""] * len(counts) for _ in gpus]
        hover = [[""] * len(counts) for _ in gpus]
        for r in cells[cells["weights"] == fmt].itertuples():
            i, j = gpus.index(r.gpu_label), counts.index(r.gpus)
            valid = r.fits is not None and not pd.isna(r.fits)
            z[i][j] = (FITS if r.fits else NO_FIT) if valid else INVALID
            text[i][j] = ("fits" if r.fits else "no") if valid else "n/a"
            hover[i][j] = f"<b>{F.t(fmt)} on {F.t(r.hardware)}</b><br>{_wrap(_hover(r))}"
        fig.add_trace(go.Heatmap(z=z, x=[f"{c}x" for c in counts], y=[F.t(g) for g in gpus], text=text,
                                 texttemplate="%{text}", hovertext=hover, hoverinfo="text", zmin=0, zmax=1,
                                 colorscale=GRID_COLORS, showscale=False, xgap=2, ygap=2),
                      row=k // per_row + 1, col=k % per_row + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(type="category", title_text="GPUs")
    return _layout(fig, "Does it fit? GPU type x count, per weight format (hover for the planner's reason)",
                   height=max(260, n_rows * (110 + 34 * len(gpus))))


def _wrap(text: str, width: int = 90) -> str:
    """Break a long hover line at spaces (plotly does not wrap hover text)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join(lines + [line])


def concurrency_vs_context(cap: pd.DataFrame) -> go.Figure:
    """Requests of a given length a deployment holds at once, vs that length (one line per plan)."""
    fig = go.Figure()
    for plan, grp in cap[cap["fits"] == True].groupby("plan", sort=False):  # noqa: E712
        fig.add_scatter(name=F.t(plan), x=grp["context_tokens"], y=grp["max_concurrency"], mode="lines+markers",
                        text=[f"{k:,.0f} KV tokens per GPU" for k in grp["kv_tokens_per_gpu"]],
                        hovertemplate="%{x:,} tokens: %{y:,.1f} requests at once<br>%{text}<extra></extra>")
    return _layout(fig, "Max concurrency vs request length (KV cache pool of the deployment)",
                     xaxis={"title": "tokens per request (context)", "type": "log"},
                     yaxis={"title": "requests held at once", "type": "log"})


def latency_bars(metrics: pd.DataFrame) -> go.Figure:
    """TTFT and TPOT of each plan at its workload (plans that do not fit have none)."""
    df = metrics[metrics["fits"] == True]  # noqa: E712
    fig = go.Figure()
    names = [F.t(p) for p in df["plan"]]
    fig.add_bar(name="TTFT (ms)", x=names, y=df["ttft_ms"], hovertemplate="%{x}: TTFT %{y:,.0f} ms<extra></extra>")
    fig.add_bar(name="TPOT (ms)", x=names, y=df["tpot_ms"], hovertemplate="%{x}: TPOT %{y:,.1f} ms<extra></extra>")
    return _layout(fig, "Time to first token and time per output token", barmode="group",
                     yaxis={"title": "ms", "type": "log"}, height=380)


def bench_scatter(rows: pd.DataFrame) -> go.Figure:
    """kernels_bench: measured vs the planner's predicted seconds per case, with y = x and +-20% lines."""
    df = rows[rows["status"] == "ok"].rename(columns={"measured_s": "measured", "predicted_s": "predicted"})
    df = df.assign(metric=df["device"].astype(str) + " " + df["op"].astype(str))
    fig = F.validation_scatter(df[["case", "metric", "measured", "predicted"]])
    fig.update_layout(title=F.t("kernels_bench: predicted vs measured seconds per case"),
                      xaxis_title="measured (s)", yaxis_title="predicted (s)")
    return fig


# ------------------------------------------------------------------------------------------------ simulated run
# (the `simulation` block and percentile metrics of `estimate`, planner/serving/estimate.py and simstats.py)

LATENCIES = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2e_latency", "E2E latency"))
TIMELINE = (("running", "running in the engine"), ("queued", "queued (engine and API server)"),
            ("in_flight", "in flight at the client"))


def timeline_table(simulation: dict) -> pd.DataFrame:
    """The simulated run's sampled timeline: t_s, running, queued, in_flight (requests), kv_used (pool fraction)."""
    tl = simulation["timeline"]
    return pd.DataFrame({k: tl[k] for k in ("t_s", "running", "queued", "in_flight", "kv_used")})


def percentile_table(metrics: dict) -> pd.DataFrame:
    """Mean, p50, p90 and p99 (ms) of each latency the simulated run reports (a latency without percentiles, such as
    a TPOT kept from the closed forms, has no row)."""
    cols = ["latency", "mean_ms", *(f"p{q}_ms" for q in PERCENTILES)]
    rows = [[label, metrics.get(f"{key}_ms"), *(metrics[f"{key}_p{q}_ms"] for q in PERCENTILES)]
            for key, label in LATENCIES if all(metrics.get(f"{key}_p{q}_ms") is not None for q in PERCENTILES)]
    return pd.DataFrame(rows, columns=cols)


def distribution_table(simulation: dict) -> pd.DataFrame:
    """Each latency's distribution, long: latency, percentile, ms (empty when the block has none)."""
    dist = simulation.get("distributions") or {}
    rows = [{"latency": label, "percentile": q, "ms": v} for key, label in LATENCIES
            for q, v in zip(dist.get("q", []), dist.get(f"{key}_ms") or [], strict=False)]
    return pd.DataFrame(rows, columns=["latency", "percentile", "ms"])


def sim_timeline(tl: pd.DataFrame) -> go.Figure:
    """Requests running, queued and in flight over the simulated run (steps: each value holds until the next
    sample), KV pool use on the right axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for key, label in TIMELINE:
        fig.add_scatter(name=label, x=tl["t_s"], y=tl[key], mode="lines", line_shape="hv",
                        hovertemplate=f"%{{x:,.1f}} s: %{{y:,.0f}} {label}<extra></extra>", secondary_y=False)
    fig.add_scatter(name="KV pool used", x=tl["t_s"], y=tl["kv_used"], mode="lines", line_shape="hv",
                    line={"dash": "dot", "color": "#7f7f7f"}, secondary_y=True,
                    hovertemplate="%{x:,.1f} s: KV pool %{y:.1%} used<extra></extra>")
    fig.update_xaxes(title_text="time since the first request (s)")
    fig.update_yaxes(title_text="requests", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="KV pool used", tickformat=".0%", rangemode="tozero", showgrid=False,
                     secondary_y=True)
    return _layout(fig, "Simulated run: requests running, queued and in flight; KV pool use", height=400)


def latency_cdf(dist: pd.DataFrame) -> go.Figure:
    """Cumulative distribution of each latency of the simulated run: TTFT and E2E (left), TPOT and ITL (right)."""
    panels = (("TTFT", "E2E latency"), ("TPOT", "ITL"))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("per request: first token, whole answer",
                                                        "per output token"), horizontal_spacing=0.08)
    for col, names in enumerate(panels, start=1):
        for name in names:
            d = dist[dist["latency"] == name]
            if d.empty:
                continue
            fig.add_scatter(name=name, x=d["ms"], y=d["percentile"], mode="lines+markers", row=1, col=col,
                            hovertemplate=f"{name}: p%{{y:g}} = %{{x:,.1f}} ms<extra></extra>")
    fig.update_xaxes(title_text="ms", type="log")
    fig.update_yaxes(title_text="percentile of requests (ITL: of tokens)", range=[0, 100], col=1)
    fig.update_yaxes(range=[0, 100], col=2)
    return _layout(fig, "Latency distributions of the simulated run", height=380)
