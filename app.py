"""MoE capacity planner dashboard: explore fit, speed, sizing and measured-vs-predicted interactively.

    make app                                   # a free local port, printed on start
    .venv/bin/streamlit run app.py             # the same by hand

A thin cached view (STYLE.md habit 14): each page is a function in dashboard/views, every number comes from a
planner call through st.cache_data (dashboard/data.py), figures come from planner/report/figures.py (and the few in
dashboard/figures.py). It opens on Kimi K2.5 and answers "what does it take to run it" with no input.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.views import fit, machine, model, performance, sizing, validation

PAGES = {  # title: (URL slug, page function)
    "Model": ("model", model.render),
    "Fit and memory": ("fit", fit.render),
    "Performance": ("performance", performance.render),
    "Sizing": ("sizing", sizing.render),
    "Validation": ("validation", validation.render),
    "This machine": ("machine", machine.render),
}


def main() -> None:
    st.set_page_config(page_title="MoE capacity planner", layout="wide")  # no page_icon: it would load from Google
    title = ui.page_picker(PAGES)
    ref = ui.model_picker()
    st.sidebar.caption("Numbers from the planner (planner/); GB = 1e9 B, GiB = 2^30 B. Bad input is answered with "
                       "the planner's one-line error.")
    PAGES[title][1](ref)


main()
