"""kernels_bench from the dashboard: `discover` and suite runs in a child process (`python -m kernels_bench ...`, so
torch never loads into the server), and its SQLite store read back read-only through the store's owner
(planner/base/store.py, which imports without torch), including the rows of a run still going.

The child's stdout and stderr are drained by threads as it runs (a run's JSON document is 100-300 KB, more than a
pipe holds: read only at exit, the child would block forever). One run at a time per store: a store another run is
writing is refused before a child starts, and the child itself refuses it too (planner.base.store.run_lock).
Without torch (the planner-only install) the page says how to get it; a missing store reads as no runs.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import ROOT
from planner.base import store as results

PROGRESS = re.compile(r"\] (\d+)/(\d+) ")  # kernels_bench.runner.Progress: "label[###   ] 3/22 ..."
RESULT_FIELDS = ("measured_over_predicted", "achieved_bytes_per_s", "achieved_flop_per_s", "mbu", "mfu", "bound")


def missing() -> str:
    """'' when kernels_bench can run here; else why not (torch is an optional extra of the planner install)."""
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    return "" if found else "kernels_bench needs torch, which is not installed (pip install -e '.[bench]')"


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


class Drain:
    """A child's stdout collected and its stderr lines queued by two threads while it runs, so neither pipe fills."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self._out: list[str] = []
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_out(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read(65536), ""):
            self._out.append(chunk)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip())

    def new_lines(self) -> list[str]:
        """stderr lines said since the last call."""
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def finish(self, timeout: float | None = None) -> tuple[int, str, list[str]]:
        """Wait for the child and both readers: (exit code, all of stdout, stderr lines not yet taken)."""
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout)
        return code, "".join(self._out), self.new_lines()


class SuiteRun:
    """One `kernels_bench run --json` child: progress parsed from its stderr, its rows read from the store as each
    case finishes, its JSON document at the end. Nothing starts when another run is writing the store."""

    def __init__(self, device: str, suite: str, store: Path, cases: str = ""):
        args = ["run", "--suite", suite, "--device", device, "--json", "--store", str(store)]
        if cases:
            args += ["--cases", cases]
        self.store, self.started = store, time.time()
        self.command = " ".join(["python -m kernels_bench", *args])
        self.stderr: list[str] = []
        self.step, self.total = 0, 0
        self.proc: subprocess.Popen | None = None
        holder = results.run_holder(store)
        if holder is not None:
            self.refused = (f"{store}: --store: another kernels_bench run (pid {holder}) is writing this store; "
                            "one run at a time")
            return
        self.refused = ""
        self.proc = subprocess.Popen(_command(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.drain = Drain(self.proc)

    def poll(self) -> bool:
        """Read what the child said; True while it runs."""
        if self.proc is None:
            return False
        for line in self.drain.new_lines():
            self.stderr.append(line)
            m = PROGRESS.search(line)
            if m:
                self.step, self.total = int(m.group(1)), int(m.group(2))
        return self.proc.poll() is None

    def rows(self) -> pd.DataFrame:
        """Finished cases of this run so far (the newest run in the store started after this one was)."""
        run = results.latest_run_id(self.store, self.started - 1)
        return cases(self.store, (run,)) if run is not None else pd.DataFrame()

    def result(self) -> tuple[dict | None, str]:
        """(the run's JSON document, "") once the child ended; (None, its last error line) when it failed."""
        if self.proc is None:
            return None, self.refused
        code, out, err = self.drain.finish()
        self.stderr += [line for line in err if line]
        if code != 0:
            return None, (self.stderr or [f"exit code {code}"])[-1]
        try:
            return json.loads(out), ""
        except json.JSONDecodeError as exc:
            return None, f"kernels_bench printed no JSON ({exc})"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def runs(store: Path) -> pd.DataFrame:
    """Stored runs, newest first, with how many cases each finished and how many are ok."""
    return pd.DataFrame(results.run_summaries(store))


def cases(store: Path, run_ids: tuple[int, ...]) -> pd.DataFrame:
    """Finished case rows of some runs: the CONTRACT.md §8 fields and kernels_bench's own derived numbers."""
    df = pd.DataFrame(results.finished_cases(store, tuple(run_ids)))
    if df.empty:
        return df
    parsed = [_result(text) for text in df.pop("result_json")]
    for key in RESULT_FIELDS:
        df[key] = [r.get(key) for r in parsed]
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
