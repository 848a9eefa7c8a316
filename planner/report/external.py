"""What a report takes from the other parts of the project: the sizing search's answer for a workload
(planner.sizing.search.size, the CONTRACT.md §7 document) and kernels_bench results (the CONTRACT.md §8 run fields in
bench_results/results.sqlite). A workload the search refuses, or a results file that is missing or unreadable, gives
the caller `None` and a one-line reason to print instead of the section's content.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from planner.base.errors import PlannerError
from planner.report.spec import resolve_path
from planner.sizing.search import size
from planner.sizing.workload import load_workload, workload_from_mapping

RUN_FIELDS = ("case", "op", "status", "measured_s", "flop", "bytes")  # CONTRACT.md §8


def sizing(workload: Any, where: str) -> tuple[dict | None, str]:
    """CONTRACT.md §7 output of `planner size` for a workload file path or an inline mapping (`where` names it in
    error messages: the report file and field)."""
    try:
        if isinstance(workload, Mapping):
            wl = workload_from_mapping(dict(workload), where)
        else:
            wl = load_workload(resolve_path(str(workload)))
        return size(wl), ""
    except PlannerError as err:
        return None, f"sizing refused the workload: {err}"[:300]


def sizing_table(doc: dict) -> pd.DataFrame:
    """One row per ranked plan: hardware, format, parallelism, the main metrics and the cost."""
    rows = []
    for rank, p in enumerate(doc.get("plans") or [], 1):
        hw = p.get("hardware") or {}
        par = p.get("parallelism") or {}
        m = p.get("metrics") or {}
        c = p.get("cost") or {}
        gpus = (hw.get("gpus_per_node") or 0) * (hw.get("nodes") or 1)
        rows.append({"rank": rank, "gpu": hw.get("gpu"), "gpus": gpus,
                     "weights": p.get("weights"), "kv_cache": p.get("kv_cache"),
                     "parallelism": _plan_label(par),
                     "replicas": p.get("replicas"), "tpot_ms": m.get("tpot_ms"), "ttft_ms": m.get("ttft_ms"),
                     "system_output_tokens_per_s": m.get("system_output_tokens_per_s"),
                     "usd_per_hour": c.get("usd_per_hour"), "usd_per_m_output_tokens": c.get("usd_per_m_output_tokens"),
                     "capex_usd": c.get("capex_usd")})
    return pd.DataFrame(rows)


def _plan_label(par: dict) -> str:
    """A plan's own label when it has one ("DP8-attn+EP8"), else its degrees above 1 ("tp8 ep8")."""
    labels = [v for v in par.values() if isinstance(v, str)]
    return labels[0] if labels else " ".join(f"{k}{v}" for k, v in par.items()
                                             if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 1)


def _bench_query(con: sqlite3.Connection, table: str, tables: set[str]) -> str | None:
    """SELECT of (case, op, device, measured_s, flop, bytes) from one table holding runs, or None."""
    cols = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
    case = next((c for c in ("case", "case_name") if c in cols), None)
    if case is None or not set(RUN_FIELDS[1:]) <= cols:
        return None
    t, join, device = f'"{table}"', "", "'measured'"
    if "device" in cols:
        device = f"{t}.device"
    elif "run_id" in cols and "runs" in tables and "device" in {r[1] for r in con.execute("PRAGMA table_info(runs)")}:
        join, device = f"LEFT JOIN runs AS r ON r.id = {t}.run_id", "r.device"  # kernels_bench store: runs + cases
    return (f'SELECT {t}."{case}" AS "case", {t}.op AS op, {device} AS device, {t}.measured_s AS measured_s, '
            f"{t}.flop AS flop, {t}.bytes AS bytes FROM {t} {join} "
            f"WHERE {t}.status = 'ok' AND {t}.measured_s > 0 AND {t}.flop > 0 AND {t}.bytes > 0")


def bench_points(path: Path) -> tuple[pd.DataFrame | None, str]:
    """Measured kernel runs (flop, bytes, measured seconds) from the results database: any table with the
    CONTRACT.md §8 run fields (`case` or kernels_bench's `case_name`; the device from the row or its run).
    None and why when there are none."""
    if not path.is_file():
        return None, f"no kernels_bench results ({path.name} not found): planner points only"
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        return None, f"kernels_bench results unreadable: {err}"
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        queries = [q for q in (_bench_query(con, t, tables) for t in sorted(tables)) if q]
        frames = [pd.read_sql_query(q, con) for q in queries]
    except (sqlite3.Error, pd.errors.DatabaseError) as err:
        return None, f"kernels_bench results unreadable: {err}"
    finally:
        con.close()
    frames = [f for f in frames if not f.empty]
    if not frames:
        return None, "no successful kernels_bench runs in the results database: planner points only"
    df = pd.concat(frames, ignore_index=True)
    df["device"] = df["device"].fillna("measured")
    df["intensity_flop_per_byte"] = df["flop"] / df["bytes"]
    df["flop_per_s"] = df["flop"] / df["measured_s"]
    return df, ""
