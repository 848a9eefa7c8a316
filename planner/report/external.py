"""Inputs that may not exist yet: sizing (planner.sizing.search, `python -m planner size`) and kernels_bench results.

Both are read through their contracts (CONTRACT.md §7 JSON of `size --json`; the §8 run fields in
bench_results/results.sqlite), so the report keeps working while those modules change. When either is
missing, the caller gets `None` and a one-line reason to print instead of the section's content.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

RUN_FIELDS = ("case", "op", "status", "measured_s", "flop", "bytes")  # CONTRACT.md §8


def search_module_found() -> bool:
    try:
        return importlib.util.find_spec("planner.sizing.search") is not None
    except (ImportError, ValueError):
        return False


def sizing(workload: Any, scratch: Path) -> tuple[dict | None, str]:
    """CONTRACT.md §7 output of `planner size` for a workload file path or an inline mapping."""
    if not search_module_found():
        return None, "sizing (planner.sizing.search) is not available yet"
    try:
        from planner.cli import main
        from planner.sizing import search as search  # noqa: F401  (guarded: issue 5 is being written)
    except Exception as err:  # noqa: BLE001  any failure of a module in progress means "not available"
        return None, f"sizing is not available yet ({type(err).__name__}: {err})"[:300]
    if isinstance(workload, Mapping):
        path = Path(tempfile.mkstemp(suffix=".yaml", prefix="sizing-", dir=scratch)[1])
        path.write_text(yaml.safe_dump(dict(workload), sort_keys=False))
    else:
        from planner.report.spec import resolve_path

        path = resolve_path(str(workload))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["size", str(path), "--json"])
        doc = json.loads(out.getvalue()) if rc == 0 else None
    except Exception as exc:  # noqa: BLE001
        return None, f"sizing failed: {type(exc).__name__}: {exc}"[:300]
    if not isinstance(doc, dict) or "plans" not in doc:
        why = err.getvalue().strip() or "no plans in its output"
        if "invalid choice" in why:
            why = "`python -m planner size` is not registered yet"
        return None, f"sizing is not available yet ({why})"[:300]
    return doc, ""


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
