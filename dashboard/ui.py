"""Widgets every page shares: tables with their CSV download, charts, planner errors, the page and model pickers,
and number labels (SI units inside, labels here: planner.base.units)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, index_upload
from planner.base.escape import csv_frame
from planner.base.units import GB, gb, mb

CHART_CONFIG = {"displaylogo": False}
MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def table(df: pd.DataFrame, name: str, caption: str = "", height: int | str = "auto") -> None:
    """A table and its CSV download (built only when clicked; no rerun; cells a spreadsheet would evaluate are
    neutralised, planner.base.escape.csv_frame). The CSV keeps SI units (bytes); on screen
    byte columns of GB size are shown in GB and counts with thousands separators."""
    if caption:
        st.caption(caption)
    view, config = display(df)
    st.dataframe(view, hide_index=True, height=height, column_config=config)
    st.download_button(f"Download {name}.csv", data=lambda: csv_frame(df).to_csv(index=False), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv.{name}", on_click="ignore", icon=":material/download:")


def display(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Labels at the edge: byte columns reaching 1 GB become GB (1e9 B), other numbers get separators."""
    view, config = df, {}
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            continue
        if "bytes" in str(col) and df[col].abs().max() >= GB:
            view = view.assign(**{col: df[col] / GB})
            config[col] = st.column_config.NumberColumn(f"{col} (GB)", format="%.1f")
        elif pd.api.types.is_integer_dtype(df[col]) or df[col].abs().max() >= 1e4:
            config[col] = st.column_config.NumberColumn(format="localized")
    return view, config


def chart(fig: go.Figure, key: str) -> None:
    """A plotly figure in the reports' own look (plotly_white, not the Streamlit theme)."""
    st.plotly_chart(fig, key=key, config=CHART_CONFIG, theme=None)


def plain(text: str) -> str:
    """Text from files and uploads shown as typed: Markdown punctuation escaped (Streamlit already refuses HTML)."""
    return MARKDOWN.sub(r"\\\1", str(text))


def model_summary(ref: str) -> dict | None:
    """The model's summary for a page, or None after showing why the model could not be loaded."""
    summary = data.model_summary(ref)
    if "error" in summary:
        error(summary["error"])
        return None
    return summary


def error(message: str) -> None:
    """A planner error (file: field: what) as one line."""
    st.error(plain(message), icon=":material/error:")


def si(n: float | None) -> str:
    """A count in words' units: 1.0264e12 -> '1.03 T', 3.29e10 -> '32.9 B' (bytes use gbytes())."""
    if n is None or pd.isna(n):
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:,.3g} {prefix}"
    return f"{n:,.3g}"


def gbytes(n: float | None) -> str:
    return "-" if n is None or pd.isna(n) else gb(n)


def nbytes(n: float) -> str:
    """'24,576 B', '3,850.25 B' (DeepSeek-V4's compressed entries average fractions of a byte per token)."""
    return f"{n:,.0f} B" if float(n).is_integer() else f"{n:,.2f} B"


def mbytes(n: float | None) -> str:
    return "-" if n is None or pd.isna(n) else mb(n)


def page_picker(pages: dict[str, tuple[str, Callable]]) -> str:
    """The page radio in the sidebar, kept in the URL (?page=fit) so a page can be linked to."""
    titles = list(pages)
    slugs = {slug: title for title, (slug, _) in pages.items()}
    wanted = slugs.get(str(st.query_params.get("page", "")), titles[0])
    if "page" not in st.session_state:
        st.session_state["page"] = wanted
    title = st.sidebar.radio("Page", titles, key="page")
    st.query_params["page"] = pages[title][0]
    return title


@st.cache_data(show_spinner=False, max_entries=32)
def _uploaded(filename: str, content: bytes) -> tuple[str | None, str]:
    return data.upload_model(filename, content)


def model_picker() -> str:
    """The model every page shows: a profile, or an uploaded config.json once it passes the planner's checks; an
    uploaded model.safetensors.index.json is compared with the model's recipes (dashboard/index_upload.py)."""
    from planner.base.yamlio import MAX_INPUT_BYTES
    from planner.model.models import load_model

    name = _profile_picker()
    upload = st.sidebar.file_uploader(
        "or upload a Hugging Face config.json", type=["json"], key="config_upload",
        max_upload_size=max(1, MAX_INPUT_BYTES // 2**20),
        help=f"Read with the planner's own checks: at most {MAX_INPUT_BYTES // 2**20} MiB, JSON, a supported "
             "model_type. Nothing is downloaded.")
    ref = name
    if upload is not None:
        got, why = _uploaded(upload.name, upload.getvalue())
        if got is None:
            st.sidebar.error(plain(f"config.json not used: {why}"))
            st.sidebar.caption(f"Showing the {name} profile instead.")
        else:
            st.sidebar.success(plain(f"Using the uploaded {load_model(got).name}"))
            ref = got
    index = st.sidebar.file_uploader(
        "and its model.safetensors.index.json", type=["json"], key="index_upload",
        max_upload_size=max(1, MAX_INPUT_BYTES // 2**20),
        help="The checkpoint's exact total bytes (metadata.total_size) beside the planner's recipes for this model. "
             "The index only: weight files are never uploaded.")
    if index is not None:
        doc, why = index_upload.summary(index.name, index.getvalue(), ref)
        if doc is None:
            st.sidebar.error(plain(f"index not used: {why}"))
        else:
            for line in index_upload.lines(doc):
                st.sidebar.caption(plain(line))
    if st.session_state.get("shown_model") != ref:  # another model: its pages start from its own defaults
        for key in [k for k in st.session_state if str(k).startswith(MODEL_BOUND)]:
            del st.session_state[key]
        st.session_state["shown_model"] = ref
    return ref


ALL_FAMILIES = "All families"
MODEL_BOUND = ("model.", "fit.", "perf.")  # widget keys whose choices belong to the model shown (formats, GPUs)


def _profile_picker() -> str:
    """A model profile picked by family (planner.model.families.family_name of its config's model_type): the family
    narrows the list; "All families" lists every profile grouped by family, each labelled with its family."""
    families = data.catalog()["families"]
    family_of = {m: f for f, models in families.items() for m in models}
    family = st.sidebar.selectbox("Model family", [ALL_FAMILIES, *families], key="family",
                                  format_func=lambda f: f if f == ALL_FAMILIES else f"{f} ({len(families[f])})")
    models = [m for f, ms in families.items() if family in (ALL_FAMILIES, f) for m in ms]
    current = st.session_state.get("model", data.DEFAULT_MODEL)
    keep = current if current in models else data.DEFAULT_MODEL if data.DEFAULT_MODEL in models else models[0]
    if st.session_state.get("model") not in models:  # another family was picked: its first model (or the default)
        st.session_state["model"] = keep
    return st.sidebar.selectbox("Model", models, key="model",
                                format_func=lambda m: f"{family_of[m]} · {m}" if family == ALL_FAMILIES else m)


def options_with(default: list[str], options: list[str]) -> list[str]:
    """The defaults that exist among the options, in order, once each."""
    return [o for o in dict.fromkeys(default) if o in options]
