"""Robustness 3/4: benchmark faults. An out-of-memory case, a missing GPU, a run killed by SIGINT or SIGTERM
mid-suite (and SIGKILL, under -m slow), a locked store (before and during a run), a damaged store read by the
dashboard and the report: each is recorded where it can be, reported in one line, and earlier results stay intact.

Runs use kernels_bench's real CLI, runner and store on the CPU, with the ceilings measurement (seconds of copies
and GEMMs that say nothing about faults) replaced by fixed numbers.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import kernels_bench.ceilings as ceilings
import kernels_bench.runner as runner
import planner.base.store as store_mod
from kernels_bench import cli as kb_cli
from planner.base.store import Store

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
CEILINGS = {"copy_bytes_per_s": 10e9, "gemm_flops_per_s": {"bf16": 5e11, "fp32": 1e11, "fp8": 2e11, "int4": 2e11},
            "gemm_paths": {"bf16": "native", "fp32": "native", "fp8": "dequant", "int4": "dequant"},
            "copy_bytes": 0, "gemm_n": 0, "threads": 1}
TINY = "14,1,24,16"  # --scale: Kimi K2.5 MoE layer with hidden 512, 16 experts of width 128
MOE_BF16 = r"moe-decode-t\d+-bf16"  # 5 smoke cases


@pytest.fixture
def fixed_ceilings(monkeypatch):
    monkeypatch.setattr(ceilings, "measure_ceilings", lambda *a, **k: dict(CEILINGS))


def earlier_run(path: Path) -> list[tuple]:
    """A finished run already in the store (what a fault must not touch); returns its rows."""
    s = Store(path)
    rid = s.start_run({"name": "cpu-earlier", "kind": "cpu"}, "smoke", CEILINGS)
    for k in range(3):
        cid = s.start_case(rid, f"earlier-{k}", "moe", "g", {})
        s.finish_case(cid, status="ok", measured_s=1e-3 * (k + 1), result_json={"k": k})
    s.finish_run(rid)
    s.close()
    return rows(path, rid)


def rows(path: Path, run_id: int) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        run = con.execute("SELECT id, status, device, suite FROM runs WHERE id = ?", (run_id,)).fetchall()
        cases = con.execute("SELECT case_name, status, error, measured_s FROM cases WHERE run_id = ? ORDER BY id",
                            (run_id,)).fetchall()
        return run + cases
    finally:
        con.close()


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert err.rstrip().splitlines()[-1] == lines[0]
    return lines[0]


# ---------------------------------------------------------------- out of memory in one case

def test_out_of_memory_in_one_case_is_recorded_and_the_run_goes_on(tmp_path, capsys, monkeypatch, fixed_ceilings):
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    real = runner.measure

    def measure(fn, device, **kw):
        if "t4-" in measure.case:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
        return real(fn, device, **kw)

    real_step = runner.Progress.step

    def step(self, what):
        measure.case = what
        return real_step(self, what)

    measure.case = ""
    monkeypatch.setattr(runner, "measure", measure)
    monkeypatch.setattr(runner.Progress, "step", step)
    code = kb_cli.main(["run", "--suite", "smoke", "--device", "cpu", "--cases", MOE_BF16, "--scale", TINY,
                        "--rounds", "1", "--iters", "2", "--no-components", "--store", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    doc = json.loads(out.out)
    status = {r["case"]: r["status"] for r in doc["runs"]}
    assert status == {"moe-decode-t1-bf16": "ok", "moe-decode-t4-bf16": "oom", "moe-decode-t16-bf16": "ok",
                      "moe-decode-t64-bf16": "ok", "moe-decode-t256-bf16": "ok"}
    oom = next(r for r in doc["runs"] if r["status"] == "oom")
    assert "out of memory" in oom["error"] and oom["measured_s"] is None
    stored = rows(path, doc["run_id"])
    assert stored[0][1] == "done"
    assert [(c[0], c[1]) for c in stored[1:]] == list(status.items())
    assert rows(path, 1) == before


# ---------------------------------------------------------------- no GPU

def test_missing_gpu_is_one_line_and_the_store_is_untouched(tmp_path, capsys, monkeypatch, fixed_ceilings):
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    data = path.read_bytes()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command in ("run", "calibrate", "ceilings"):
        code = kb_cli.main([command, "--device", "cuda", "--store", str(path), "--json"])
        out = capsys.readouterr()
        line = one_error_line(out.err)
        assert code == 2 and out.out == "" and "--device cuda" in line and "no CUDA GPU" in line
    assert path.read_bytes() == data and rows(path, 1) == before


def test_discover_without_nvml_or_gpu_answers_for_the_cpu(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = kb_cli.main(["discover", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["gpus"] == [] and doc["default"] == "cpu" and "pynvml" in doc["gpu_note"]


def test_a_gpu_lost_mid_suite_fails_its_cases_not_the_run(tmp_path, capsys, monkeypatch, fixed_ceilings):
    """A device error (driver reset, Xid) in the middle of a suite: each failing case is an `error` row."""
    path = tmp_path / "results.sqlite"
    real = runner.measure
    calls = []

    def measure(fn, device, **kw):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        return real(fn, device, **kw)

    monkeypatch.setattr(runner, "measure", measure)
    code = kb_cli.main(["run", "--suite", "smoke", "--device", "cpu", "--cases", MOE_BF16, "--scale", TINY,
                        "--rounds", "1", "--iters", "2", "--no-components", "--store", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    doc = json.loads(out.out)
    assert [r["status"] for r in doc["runs"]] == ["ok", "ok", "error", "error", "error"]
    assert all("illegal memory access" in r["error"] for r in doc["runs"][2:])


# ---------------------------------------------------------------- killed mid-suite

RUNNER = """
import sys
import kernels_bench.ceilings as c
c.measure_ceilings = lambda *a, **k: {ceilings!r}
from kernels_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _ok_cases(path: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM cases WHERE status = 'ok' AND run_id > 1").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _killed_run(tmp_path: Path, sig: int) -> tuple[subprocess.CompletedProcess, Path, list]:
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    script = tmp_path / "run.py"
    script.write_text(RUNNER.format(ceilings=CEILINGS))
    proc = subprocess.Popen([sys.executable, str(script), "run", "--suite", "smoke", "--device", "cpu", "--cases",
                             MOE_BF16, "--rounds", "1", "--no-components", "--store", str(path), "--json"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _ok_cases(path) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the suite finished before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), path, before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_is_recorded_and_keeps_finished_cases(tmp_path, sig):
    done, path, before = _killed_run(tmp_path, sig)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and done.stdout == ""
    assert "interrupted" in line and "finished cases of run 2 are kept in" in line and str(path) in line
    if sig == signal.SIGTERM:
        assert "SIGTERM" in line
    run = rows(path, 2)
    assert run[0][1] == "interrupted"
    finished = [c for c in run[1:] if c[1] == "ok"]
    assert len(finished) >= 2 and all(c[3] > 0 for c in finished)
    unfinished = [c for c in run[1:] if c[1] != "ok"]
    assert all(c[1] == "error" and "did not finish" in c[2] for c in unfinished)
    assert rows(path, 1) == before


@pytest.mark.slow
def test_sigkill_leaves_finished_cases_and_a_running_marker(tmp_path):
    """SIGKILL cannot be handled: the run stays `running`, the case in flight `error: did not finish`, every
    finished case is intact, and the next run of the same store works."""
    done, path, before = _killed_run(tmp_path, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    run = rows(path, 2)
    assert run[0][1] == "running"
    assert sum(c[1] == "ok" for c in run[1:]) >= 2
    assert all(c[1] == "ok" or "did not finish" in c[2] for c in run[1:])
    assert rows(path, 1) == before
    s = Store(path)
    assert [r["id"] for r in s.runs()] == [1, 2]
    s.close()


# ---------------------------------------------------------------- locked store

def test_store_locked_before_the_run(tmp_path, capsys, monkeypatch, fixed_ceilings):
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    monkeypatch.setattr(store_mod, "LOCK_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code = kb_cli.main(["run", "--suite", "smoke", "--device", "cpu", "--cases", MOE_BF16, "--scale", TINY,
                            "--store", str(path), "--json"])
        out = capsys.readouterr()
    finally:
        holder.rollback()
        holder.close()
    line = one_error_line(out.err)
    assert code == 2 and out.out == "" and str(path) in line and "--store" in line and "locked" in line
    assert rows(path, 1) == before
    assert [r["id"] for r in Store(path).runs()] == [1]


def test_store_locked_mid_run(tmp_path, capsys, monkeypatch, fixed_ceilings):
    """Another process takes the store while case 2 runs: the run stops with one line naming the store; case 1
    and the earlier run stay as they were, case 2 stays `did not finish`."""
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    monkeypatch.setattr(store_mod, "LOCK_TIMEOUT_S", 0.2)
    real = runner.measure
    holder = []

    def measure(fn, device, **kw):
        if len(holder) == 0 and measure.calls == 1:
            con = sqlite3.connect(path, timeout=0)
            con.execute("BEGIN EXCLUSIVE")
            holder.append(con)
        measure.calls += 1
        return real(fn, device, **kw)

    measure.calls = 0
    monkeypatch.setattr(runner, "measure", measure)
    try:
        code = kb_cli.main(["run", "--suite", "smoke", "--device", "cpu", "--cases", MOE_BF16, "--scale", TINY,
                            "--rounds", "1", "--iters", "2", "--no-components", "--store", str(path), "--json"])
        out = capsys.readouterr()
    finally:
        for con in holder:
            con.rollback()
            con.close()
    line = one_error_line(out.err)
    assert code == 2 and out.out == "" and str(path) in line and "locked" in line
    run = rows(path, 2)
    assert run[0][1] == "running"  # the lock kept even the final status out; nothing was lost
    assert run[1][:2] == ("moe-decode-t1-bf16", "ok") and run[1][3] > 0
    assert run[2][:2] == ("moe-decode-t4-bf16", "error") and "did not finish" in run[2][2]
    assert rows(path, 1) == before


# ---------------------------------------------------------------- damaged stores where results are shown

def _store_with_bad_rows(path: Path) -> None:
    s = Store(path)
    rid = s.start_run({"name": "cpu-x", "kind": "cpu"}, "smoke", CEILINGS)
    for k, result in enumerate(['{"mbu": 0.5, "bound": "memory"}', "{broken", "[1, 2]", "null"]):
        cid = s.start_case(rid, f"case-{k}", "moe", "g", {})
        s.finish_case(cid, status="ok", measured_s=1e-3, flop=1e9, bytes=1e8, result_json=result)
    s.finish_run(rid)
    s.close()


def test_dashboard_reads_a_store_with_damaged_rows(tmp_path):
    from dashboard import bench

    path = tmp_path / "results.sqlite"
    _store_with_bad_rows(path)
    df = bench.cases(path, (1,))
    assert list(df["case"]) == ["case-0", "case-1", "case-2", "case-3"]
    assert df["mbu"].tolist()[0] == 0.5 and df["mbu"].isna().tolist()[1:] == [True, True, True]
    assert bench.runs(path)["cases_ok"].tolist() == [4]


@pytest.mark.parametrize("content", [b"not a database at all", b"SQLite format 3\x00" + b"\xff" * 200, b""])
def test_dashboard_and_report_read_a_damaged_store_as_no_results(tmp_path, content):
    from dashboard import bench
    from planner.report.external import bench_points

    path = tmp_path / "results.sqlite"
    path.write_bytes(content)
    assert bench.runs(path).empty and bench.cases(path, (1,)).empty
    points, why = bench_points(path)
    assert points is None and why
