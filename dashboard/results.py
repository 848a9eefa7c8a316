"""The dashboard's "your own results": benchmark result files compared with the planner (`python -m planner compare`),
from the result store or uploaded on the Validation page, behind `st.cache_data` as dashboard/data.py's calls are."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import UPLOADS
from planner.base.errors import PlannerError

COMPARED_COLUMNS = ["tool", "model", "hardware", "metric", "measured", "predicted", "error", "label", "file",
                    "engine", "stored_utc"]


@st.cache_data(show_spinner=False, max_entries=8)
def compared_runs(path: str, path_mtime: float) -> pd.DataFrame:
    """`python -m planner compare` results kept in the result store (planner.base.store.compared_rows), newest
    first, one row per metric; an empty table when there are none or the store cannot be read."""
    from planner.base.store import compared_rows

    return pd.DataFrame(compared_rows(Path(path)), columns=COMPARED_COLUMNS)


def upload_result(filename: str, content: bytes) -> tuple[str | None, str]:
    """Keep an uploaded benchmark result file (size-limited as a config upload) where planner.compare can read it.
    Returns (path, "") or (None, why)."""
    from planner.base.yamlio import MAX_INPUT_BYTES

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name).lstrip(".")[:80] or "result.json"
    if len(content) > MAX_INPUT_BYTES:
        return None, f"{name}: file is {len(content):,} bytes, over the {MAX_INPUT_BYTES:,}-byte input limit"
    folder = UPLOADS / "results" / hashlib.sha256(content).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.is_file():
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        tmp.write_bytes(content)
        tmp.replace(path)
    return str(path), ""


@st.cache_data(show_spinner=False, max_entries=32)
def compare_result(path: str, gpu: str, gpus: int, engine: str | None, weights: str | None,
                   model: str | None) -> dict:
    """planner.compare of an uploaded result on `gpus` GPUs of one type (the planner picks the plan); engine,
    weights and model None: as the file states them. {"doc", "table"} or {"error"}."""
    from planner.compare.run import Deployment, compare

    try:
        doc = compare(path, Deployment(gpu=gpu, gpus=gpus, engine=engine, weights=weights, model=model))
    except PlannerError as err:
        return {"error": str(err).replace(str(Path(path).parent) + os.sep, "")}
    rows = [{"run": r["label"], "metric": m["metric"], "measured": m["measured"], "predicted": m["predicted"],
             "error": m["error"]} for r in doc["runs"] for m in r["metrics"]]
    return {"doc": doc, "table": pd.DataFrame(rows, columns=["run", "metric", "measured", "predicted", "error"])}
