"""kernels_bench from the dashboard: `discover` and suite runs in a child process (`python -m kernels_bench ...`, so
torch never loads into the server), and its SQLite store (kernels_bench/store.py: tables `runs` and `cases`) read
back read-only, including the rows of a run still going.

A missing kernels_bench (issue 4 in progress) or a missing store means "not available yet", never an exception.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import ROOT

PROGRESS = re.compile(r"\] (\d+)/(\d+) ")  # kernels_bench.runner.Progress: "label[###   ] 3/22 ..."
RESULT_FIELDS = ("measured_over_predicted", "achieved_bytes_per_s", "achieved_flop_per_s", "mbu", "mfu", "bound")


def missing() -> str:
    """'' when kernels_bench can be run; else why not."""
    try:
        found = importlib.util.find_spec("kernels_bench.cli") is not None
    except (ImportError, ValueError) as err:
        return f"kernels_bench is not available yet ({err})"
    return "" if found else "kernels_bench is not available yet (no kernels_bench.cli module)"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kernels_bench", *args]


@st.cache_data(show_spinner="Asking kernels_bench what this machine has ...", max_entries=4)
def discover(nonce: int = 0) -> dict:
    """`python -m kernels_bench discover --json`; `nonce` forces a fresh look."""
    why = missing()
    if why:
        return {"error": why}
    try:
        done = subprocess.run(_command("discover", "--json"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": f"kernels_bench discover failed: {err}"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as err:
        return {"error": f"kernels_bench discover printed no JSON ({err})"}


class SuiteRun:
    """One `kernels_bench run --json` child: progress parsed from its stderr, its rows read from the store as each
    case finishes, its JSON document at the end."""

    def __init__(self, device: str, suite: str, store: Path, cases: str = ""):
        args = ["run", "--suite", suite, "--device", device, "--json", "--store", str(store)]
        if cases:
            args += ["--cases", cases]
        self.store, self.started = store, time.time()
        self.command = " ".join(["python -m kernels_bench", *args])
        self.proc = subprocess.Popen(_command(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.step, self.total = 0, 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip())

    def poll(self) -> bool:
        """Read what the child said; True while it runs."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            self.stderr.append(line)
            m = PROGRESS.search(line)
            if m:
                self.step, self.total = int(m.group(1)), int(m.group(2))
        return self.proc.poll() is None

    def rows(self) -> pd.DataFrame:
        """Finished cases of this run so far (the newest run in the store started after this one was)."""
        run = latest_run(self.store, self.started - 1)
        return cases(self.store, (run,)) if run is not None else pd.DataFrame()

    def result(self) -> tuple[dict | None, str]:
        """(the run's JSON document, "") once the child ended; (None, its last error line) when it failed."""
        out, err = self.proc.communicate()
        self.stderr += [line for line in err.splitlines() if line]
        if self.proc.returncode != 0:
            return None, (self.stderr or [f"exit code {self.proc.returncode}"])[-1]
        try:
            return json.loads(out), ""
        except json.JSONDecodeError as exc:
            return None, f"kernels_bench printed no JSON ({exc})"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _connect(store: Path) -> sqlite3.Connection | None:
    if not store.is_file():
        return None
    try:
        return sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None


def _query(store: Path, sql: str, args: tuple = ()) -> pd.DataFrame:
    con = _connect(store)
    if con is None:
        return pd.DataFrame()
    try:
        return pd.read_sql_query(sql, con, params=args)
    except (sqlite3.Error, pd.errors.DatabaseError):
        return pd.DataFrame()  # no such table yet, or a store of another schema
    finally:
        con.close()


def latest_run(store: Path, since: float) -> int | None:
    df = _query(store, "SELECT id FROM runs WHERE started >= ? ORDER BY id DESC LIMIT 1", (since,))
    return None if df.empty else int(df["id"].iloc[0])


def runs(store: Path) -> pd.DataFrame:
    """Stored runs, newest first, with how many cases each finished and how many are ok."""
    return _query(store, "SELECT r.id AS run, r.device, r.device_kind, r.suite, r.status, "
                         "datetime(r.started, 'unixepoch') AS started_utc, "
                         "SUM(c.finished IS NOT NULL) AS cases_finished, SUM(c.status = 'ok') AS cases_ok "
                         "FROM runs AS r LEFT JOIN cases AS c ON c.run_id = r.id "
                         "WHERE r.suite != 'ceilings' GROUP BY r.id ORDER BY r.id DESC")


def cases(store: Path, run_ids: tuple[int, ...]) -> pd.DataFrame:
    """Finished case rows of some runs: the CONTRACT.md §8 fields and kernels_bench's own derived numbers."""
    if not run_ids:
        return pd.DataFrame()
    marks = ",".join("?" * len(run_ids))
    df = _query(store, "SELECT c.run_id AS run, r.device, c.case_name AS \"case\", c.op, c.status, c.error, "
                       "c.measured_s, c.predicted_s, c.flop, c.bytes, c.alloc_bytes, c.predicted_alloc_bytes, "
                       "c.result_json FROM cases AS c JOIN runs AS r ON r.id = c.run_id "
                       f"WHERE c.run_id IN ({marks}) AND c.finished IS NOT NULL ORDER BY c.id", tuple(run_ids))
    if df.empty:
        return df
    results = [_result(text) for text in df.pop("result_json")]
    for key in RESULT_FIELDS:
        df[key] = [r.get(key) for r in results]
    return df


def _result(text) -> dict:
    """A case's result_json as a dict; {} for a row written by another version or damaged (never an exception)."""
    try:
        doc = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


@st.cache_data(show_spinner=False, max_entries=32)
def stored_runs(store: str, store_mtime: float) -> pd.DataFrame:
    return runs(Path(store))


@st.cache_data(show_spinner=False, max_entries=32)
def stored_cases(store: str, store_mtime: float, run_ids: tuple[int, ...]) -> pd.DataFrame:
    return cases(Path(store), run_ids)
