"""Results store: one SQLite file (default bench_results/results.sqlite), written as a run goes.

Tables:
  runs   one invocation: device (name, kind, discovery record), versions, suite, argv, ceilings, status
         (running -> done | interrupted; a killed process leaves `running`)
  cases  one row per timed case or component: status ok | oom | error, all samples, median/p10/p90, the planner's
         op records and prediction, FLOP and bytes, allocated vs predicted bytes, peak memory, reference error.
A case row is inserted as `error` ("did not finish") before it runs and updated when it ends, each in its own
commit: an interrupted or killed run keeps every finished case, and a case that took the process down is on record.
A store that is not SQLite, damaged, of another schema, or locked by another writer for LOCK_TIMEOUT_S is a
PlannerError naming the file (`--store`); rows already committed stay as they are.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from planner.base.errors import PlannerError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "bench_results" / "results.sqlite"
LOCK_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before the run stops with an error

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, started REAL, finished REAL, status TEXT, device TEXT, device_kind TEXT,
  device_json TEXT, versions_json TEXT, suite TEXT, argv TEXT, ceilings_json TEXT);
CREATE TABLE IF NOT EXISTS cases (
  id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), case_name TEXT, op TEXT, status TEXT, error TEXT,
  started REAL, finished REAL, cv_group TEXT, path TEXT, params_json TEXT,
  measured_s REAL, p10_s REAL, p90_s REAL, samples_json TEXT, predicted_s REAL, flop REAL, bytes REAL, ops_json TEXT,
  alloc_bytes INTEGER, predicted_alloc_bytes INTEGER, peak_bytes INTEGER, ref_error REAL, result_json TEXT);
CREATE INDEX IF NOT EXISTS cases_run ON cases(run_id);
"""
COLUMNS = ("status", "error", "path", "measured_s", "p10_s", "p90_s", "samples_json", "predicted_s", "flop", "bytes",
           "ops_json", "alloc_bytes", "predicted_alloc_bytes", "peak_bytes", "ref_error", "result_json")


def versions() -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "git": rev, "platform": platform.platform()}


@contextmanager
def _named(path: Path):
    """sqlite3 errors (not a database, malformed image, missing column, locked) as one line naming the file."""
    try:
        yield
    except sqlite3.Error as err:
        what = str(err) or type(err).__name__
        if "locked" in what or "busy" in what:
            what += f" (another process holds the store; waited {LOCK_TIMEOUT_S:g} s)"
        raise PlannerError(f"results store: {what}", file=str(path), field="--store") from None


class Store:
    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.path = Path(path)
        with _named(self.path):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise sqlite3.OperationalError(f"cannot create its folder ({err.strerror})") from None
            if self.path.is_dir():
                raise sqlite3.OperationalError("is a folder, not a file")
            self.db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
            self.db.row_factory = sqlite3.Row
            self.db.executescript(SCHEMA)
            self.db.commit()

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, args: tuple) -> sqlite3.Cursor:
        with _named(self.path):
            cur = self.db.execute(sql, args)
            self.db.commit()
            return cur

    def _read(self, sql: str, args: tuple) -> list[sqlite3.Row]:
        with _named(self.path):
            return self.db.execute(sql, args).fetchall()

    def start_run(self, device: dict, suite: str, ceilings: dict | None = None) -> int:
        cur = self._write(
            "INSERT INTO runs (started, status, device, device_kind, device_json, versions_json, suite, argv, "
            "ceilings_json) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), device["name"], device["kind"], json.dumps(device), json.dumps(versions()), suite,
             " ".join(sys.argv), json.dumps(ceilings) if ceilings else None))
        return cur.lastrowid

    def set_ceilings(self, run_id: int, ceilings: dict) -> None:
        self._write("UPDATE runs SET ceilings_json = ? WHERE id = ?", (json.dumps(ceilings), run_id))

    def finish_run(self, run_id: int, status: str = "done") -> None:
        self._write("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def start_case(self, run_id: int, name: str, op: str, group: str, params: dict) -> int:
        cur = self._write(
            "INSERT INTO cases (run_id, case_name, op, status, error, started, cv_group, params_json) "
            "VALUES (?, ?, ?, 'error', 'did not finish (process interrupted or killed)', ?, ?, ?)",
            (run_id, name, op, time.time(), group, json.dumps(params)))
        return cur.lastrowid

    def finish_case(self, case_id: int, **values) -> None:
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown case columns: {sorted(unknown)}")
        values = {k: json.dumps(v) if k.endswith("_json") and not isinstance(v, str) and v is not None else v
                  for k, v in values.items()}
        cols = ", ".join(f"{k} = ?" for k in values)
        self._write(f"UPDATE cases SET {cols}, finished = ? WHERE id = ?", (*values.values(), time.time(), case_id))

    # ---------------------------------------------------------------- reading

    def runs(self, device: str | None = None) -> list[sqlite3.Row]:
        q, args = "SELECT * FROM runs", ()
        if device:
            q, args = q + " WHERE device = ?", (device,)
        return self._read(q + " ORDER BY id", args)

    def cases(self, run_ids: list[int], status: str | None = None) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(run_ids))
        q = f"SELECT * FROM cases WHERE run_id IN ({marks})"
        args: tuple = tuple(run_ids)
        if status:
            q, args = q + " AND status = ?", (*args, status)
        return self._read(q + " ORDER BY id", args)
