"""Results store of kernels_bench: one SQLite file (default bench_results/results.sqlite), written as a run goes;
the one owner of its schema. Pure Python (no torch): kernels_bench writes through `Store`, and the dashboard and
the reports read through the functions at the end of this file. The writing process's versions (torch, CUDA) come
from kernels_bench.devices.versions, passed to `Store.start_run`.

Tables:
  runs   one invocation: device (name, kind, discovery record), versions, suite, argv, ceilings, status
         (running -> done | interrupted | failed; a killed process leaves `running`)
  cases  one row per timed case or component: status ok | oom | error, all samples, median/p10/p90, the planner's
         op records and prediction, FLOP and bytes, allocated vs predicted bytes, peak memory, reference error.
  compared, compared_metrics  `python -m planner compare` (planner.compare): one row per run of a benchmark
         result file (the tool, file name, model, hardware, engine, the scenario it was predicted with as JSON, a
         timestamp) and one per metric (measured, predicted, error = predicted / measured - 1); one commit each.
A case row is inserted as `error` ("did not finish") before it runs and updated when it ends, each in its own
commit: an interrupted or killed run keeps every finished case, and a case that took the process down is on record.

Failing loudly, never losing a measurement:
- an existing store passes `PRAGMA quick_check` before anything is written into it; a damaged one is refused;
- a store that is not SQLite, of another schema, or locked by another writer for LOCK_TIMEOUT_S is a PlannerError
  naming the file (`--store`); rows already committed stay as they are;
- a write that fails (disk full, I/O error, lock) is a StoreWriteError: from then on every measurement the run
  still hands over is appended as a JSON line to `<store>.unsaved.jsonl` (or, when that cannot be written either,
  to the system's temporary folder), and the run's one error line says where;
- one writing run per store at a time (`run_lock`: an flock on `<store>.lock`, released by the OS when the process
  ends, even on SIGKILL).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES

ROOT = PROFILES.parent  # the checkout
DEFAULT_PATH = ROOT / "bench_results" / "results.sqlite"
LOCK_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before the run stops with an error
READ_TIMEOUT_S = 5.0  # readers (dashboard, reports) wait this long for a writer's commit, then show nothing

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
CREATE TABLE IF NOT EXISTS compared (
  id INTEGER PRIMARY KEY, stored REAL, tool TEXT, file TEXT, label TEXT, model TEXT, hardware TEXT, engine TEXT,
  scenario_json TEXT);
CREATE TABLE IF NOT EXISTS compared_metrics (
  id INTEGER PRIMARY KEY, compared_id INTEGER REFERENCES compared(id), metric TEXT, measured REAL, predicted REAL,
  error REAL);
"""
COLUMNS = ("status", "error", "path", "measured_s", "p10_s", "p90_s", "samples_json", "predicted_s", "flop", "bytes",
           "ops_json", "alloc_bytes", "predicted_alloc_bytes", "peak_bytes", "ref_error", "result_json")


class StoreWriteError(PlannerError):
    """A write the store did not take (disk full, I/O error, lock held too long); the run must stop."""


def store_path(text: str | None) -> Path:
    """The store named by `--store` (None: the default). An empty or blank name, or one with spaces around it,
    is refused rather than read as the default or as a file called ' '."""
    if text is None:
        return DEFAULT_PATH
    if not text.strip() or text != text.strip() or Path(text).name.strip() in ("", ".", ".."):
        raise PlannerError(f"{text!r} is not a store file name (empty, blank, or spaces around it)", field="--store")
    return Path(text)


def _what(err: sqlite3.Error) -> str:
    what = str(err) or type(err).__name__
    if "locked" in what or "busy" in what:
        what += f" (another process holds the store; waited {LOCK_TIMEOUT_S:g} s)"
    return what


@contextmanager
def _named(path: Path):
    """sqlite3 errors (not a database, malformed image, missing column, locked) as one line naming the file."""
    try:
        yield
    except sqlite3.Error as err:
        raise PlannerError(f"results store: {_what(err)}", file=str(path), field="--store") from None


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold `<store>.lock` for one writing run; a second run on the same store is refused with one line."""
    lock = Path(path).with_name(Path(path).name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise PlannerError(f"cannot create the run lock {lock.name} ({err.strerror})", file=str(path),
                           field="--store") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise PlannerError(f"another kernels_bench run (pid {pid}) is writing this store; one run at a time",
                               file=str(path), field="--store") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def run_holder(path: Path) -> str | None:
    """The pid (as written) of the run holding the store's lock, or None when no run writes it now."""
    lock = Path(path).with_name(Path(path).name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)


class Store:
    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.path = Path(path)
        self.failed: str | None = None  # the first failed write's reason; later writes go aside
        self.aside: Path | None = None  # where measurements went when the store failed
        self.aside_error: str | None = None
        self.kept = 0  # measurements written aside
        self.run_id: int | None = None
        self._cases: dict[int, dict] = {}  # case id -> run, name, op, params (for rows written aside)
        with _named(self.path):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise sqlite3.OperationalError(f"cannot create its folder ({err.strerror})") from None
            if self.path.is_dir():
                raise sqlite3.OperationalError("is a folder, not a file")
            existing = self.path.is_file() and self.path.stat().st_size > 0
            self.db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
            self.db.row_factory = sqlite3.Row
            if existing:
                self._check()
            self.db.executescript(SCHEMA)
            self.db.commit()

    def _check(self) -> None:
        """`PRAGMA quick_check` (page and index structure, O(size)); a damaged store is refused before any write."""
        try:
            problems = [str(r[0]) for r in self.db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.OperationalError:
            raise  # locked or busy: said as such by _named
        except sqlite3.DatabaseError as err:
            problems = [str(err) or type(err).__name__]
        if problems != ["ok"]:
            self.db.close()
            raise sqlite3.DatabaseError(f"damaged ({problems[0][:120]}; PRAGMA quick_check found {len(problems)} "
                                        "problem(s)); nothing was written into it")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- writing

    def _write(self, sql: str, args: tuple, keep: dict | None = None) -> sqlite3.Cursor:
        """One statement in its own commit. After a failure nothing more goes into the store: `keep` (a record of
        a measurement) is appended beside it instead, and StoreWriteError says where."""
        if self.failed is None:
            try:
                return self._execute(sql, args)
            except sqlite3.Error as err:
                self.failed = _what(err)
                try:
                    self.db.rollback()
                except sqlite3.Error:
                    pass
        if keep is not None:
            self._keep(keep)
        raise StoreWriteError(self.failure(), file=str(self.path), field="--store")

    def _execute(self, sql: str, args: tuple) -> sqlite3.Cursor:
        cur = self.db.execute(sql, args)
        self.db.commit()
        return cur

    def mark(self, run_id: int, status: str) -> bool:
        """Best effort, even after a failed write: set a run's final status (True when the store took it)."""
        try:
            self._execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))
            return True
        except sqlite3.Error:
            return False

    def _keep(self, record: dict) -> None:
        line = json.dumps({"store": str(self.path), "kept_at": time.time(), **record}, default=str) + "\n"
        targets = [self.aside] if self.aside else [
            self.path.with_name(self.path.name + ".unsaved.jsonl"),
            Path(tempfile.gettempdir()) / f"kernels_bench-unsaved-{os.getpid()}-{int(time.time())}.jsonl"]
        for target in targets:
            try:
                fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as err:
                self.aside_error = f"{target}: {err.strerror}"
                continue
            self.aside, self.kept = target, self.kept + 1
            return

    def failure(self) -> str:
        """One line: why the store stopped taking writes, and where the measurements it did not take are."""
        run = f"run {self.run_id} stopped" if self.run_id is not None else "nothing was written"
        if self.kept:
            where = f"{self.kept} measurement(s) it did not take are kept in {self.aside} (JSON lines)"
        elif self.aside_error:
            where = f"measurements could not be kept aside either ({self.aside_error})"
        else:
            where = "no measurement was lost"
        return f"results store: write failed ({self.failed}); {run}; {where}"

    def start_run(self, device: dict, suite: str, ceilings: dict | None = None, environment: dict | None = None) -> int:
        """A new run on `device`; `environment`: versions of the writing process (kernels_bench.devices.versions)."""
        cur = self._write(
            "INSERT INTO runs (started, status, device, device_kind, device_json, versions_json, suite, argv, "
            "ceilings_json) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), device["name"], device["kind"], json.dumps(device), json.dumps(environment or {}), suite,
             " ".join(sys.argv), json.dumps(ceilings) if ceilings else None),
            keep={"table": "runs", "device": device, "suite": suite, "ceilings": ceilings} if ceilings else None)
        self.run_id = cur.lastrowid
        return cur.lastrowid

    def set_ceilings(self, run_id: int, ceilings: dict) -> None:
        self._write("UPDATE runs SET ceilings_json = ? WHERE id = ?", (json.dumps(ceilings), run_id),
                    keep={"table": "runs", "run_id": run_id, "ceilings": ceilings})

    def finish_run(self, run_id: int, status: str = "done") -> None:
        self._write("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def start_case(self, run_id: int, name: str, op: str, group: str, params: dict) -> int:
        cur = self._write(
            "INSERT INTO cases (run_id, case_name, op, status, error, started, cv_group, params_json) "
            "VALUES (?, ?, ?, 'error', 'did not finish (process interrupted or killed)', ?, ?, ?)",
            (run_id, name, op, time.time(), group, json.dumps(params)))
        self._cases[cur.lastrowid] = {"run_id": run_id, "case": name, "op": op, "cv_group": group, "params": params}
        return cur.lastrowid

    def finish_case(self, case_id: int, **values) -> None:
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown case columns: {sorted(unknown)}")
        keep = ({"table": "cases", "case_id": case_id, **self._cases.get(case_id, {}), "values": values}
                if values.get("measured_s") is not None else None)
        values = {k: json.dumps(v) if k.endswith("_json") and not isinstance(v, str) and v is not None else v
                  for k, v in values.items()}
        cols = ", ".join(f"{k} = ?" for k in values)
        self._write(f"UPDATE cases SET {cols}, finished = ? WHERE id = ?", (*values.values(), time.time(), case_id),
                    keep=keep)

    def add_compared(self, tool: str, file: str, runs: list[dict]) -> int:
        """Keep the runs of one `compare` (dicts: label, model, hardware, engine, scenario, metrics [{metric,
        measured, predicted, error}]) in one commit; returns the rows written. Failures are one-line PlannerErrors."""
        now, n = time.time(), 0
        with _named(self.path), self.db:
            for r in runs:
                cur = self.db.execute(
                    "INSERT INTO compared (stored, tool, file, label, model, hardware, engine, scenario_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (now, tool, file, r["label"], r.get("model"), r.get("hardware"),
                                                        r.get("engine"), json.dumps(r.get("scenario"), default=str)))
                rows = [(cur.lastrowid, m["metric"], m["measured"], m["predicted"], m["error"]) for m in r["metrics"]]
                self.db.executemany("INSERT INTO compared_metrics (compared_id, metric, measured, predicted, error) "
                                    "VALUES (?, ?, ?, ?, ?)", rows)
                n += len(rows)
        return n

    # ---------------------------------------------------------------- reading (a writer's own store)

    def _read(self, sql: str, args: tuple) -> list[sqlite3.Row]:
        with _named(self.path):
            return self.db.execute(sql, args).fetchall()

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


# ---------------------------------------------------------------- reading for views (dashboard, reports)
# Read-only, never an exception: a missing, damaged, locked or other-schema store reads as no rows.

def _query(path: Path, sql: str, args: tuple = ()) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=READ_TIMEOUT_S)
    except sqlite3.Error:
        return []
    try:
        cur = con.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except sqlite3.Error:
        return []
    finally:
        con.close()


def latest_run_id(path: Path, since: float) -> int | None:
    """The newest run started at or after `since` (a run a caller just started), or None."""
    rows = _query(path, "SELECT id FROM runs WHERE started >= ? ORDER BY id DESC LIMIT 1", (since,))
    return int(rows[0]["id"]) if rows else None


def run_summaries(path: Path) -> list[dict]:
    """Stored runs (ceilings-only runs left out), newest first, with how many cases each finished and how many
    are ok."""
    return _query(path, "SELECT r.id AS run, r.device, r.device_kind, r.suite, r.status, "
                        "datetime(r.started, 'unixepoch') AS started_utc, "
                        "SUM(c.finished IS NOT NULL) AS cases_finished, SUM(c.status = 'ok') AS cases_ok "
                        "FROM runs AS r LEFT JOIN cases AS c ON c.run_id = r.id "
                        "WHERE r.suite != 'ceilings' GROUP BY r.id ORDER BY r.id DESC")


def finished_cases(path: Path, run_ids: tuple[int, ...]) -> list[dict]:
    """Finished case rows of some runs: the CONTRACT.md §8 fields, the error, and the raw result_json."""
    if not run_ids:
        return []
    marks = ",".join("?" * len(run_ids))
    return _query(path, "SELECT c.run_id AS run, r.device, c.case_name AS \"case\", c.op, c.status, c.error, "
                        "c.measured_s, c.predicted_s, c.flop, c.bytes, c.alloc_bytes, c.predicted_alloc_bytes, "
                        "c.result_json FROM cases AS c JOIN runs AS r ON r.id = c.run_id "
                        f"WHERE c.run_id IN ({marks}) AND c.finished IS NOT NULL ORDER BY c.id", tuple(run_ids))


def measured_points(path: Path) -> list[dict]:
    """Roofline points of every ok case with positive time, FLOP and bytes: case, op, device, measured_s, flop,
    bytes, intensity_flop_per_byte (FLOP / byte) and flop_per_s (FLOP / measured second)."""
    return _query(path, "SELECT c.case_name AS \"case\", c.op, COALESCE(r.device, 'measured') AS device, "
                        "c.measured_s, c.flop, c.bytes, c.flop / c.bytes AS intensity_flop_per_byte, "
                        "c.flop / c.measured_s AS flop_per_s "
                        "FROM cases AS c LEFT JOIN runs AS r ON r.id = c.run_id WHERE c.status = 'ok' "
                        "AND c.measured_s > 0 AND c.flop > 0 AND c.bytes > 0 ORDER BY c.id")


def compared_rows(path: Path) -> list[dict]:
    """Kept `compare` results, newest first, one row per metric: stored_utc, tool, file, label, model, hardware,
    engine, metric, measured, predicted, error, scenario_json."""
    return _query(path, "SELECT datetime(c.stored, 'unixepoch') AS stored_utc, c.tool, c.file, c.label, c.model, "
                        "c.hardware, c.engine, m.metric, m.measured, m.predicted, m.error, c.scenario_json "
                        "FROM compared AS c JOIN compared_metrics AS m ON m.compared_id = c.id "
                        "ORDER BY c.id DESC, m.id")
