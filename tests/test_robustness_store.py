"""Robustness of the benchmark store and calibration (issue 23, findings 3-7): nothing lost, nothing absurd applied,
nothing unbounded.

A write the store does not take (disk full) ends the run with exit 2 and the measurements kept beside the store; a
store with random bytes in its middle is refused before anything is written; calibrations from absurd or non-finite
timings are refused and leave the calibration file (and the planner's estimate) as they were; the dashboard drains
a child that prints more than a pipe holds; one run at a time per store; `comm --nproc` bounded; `--store ''`
refused; three quick SIGINTs end in one line, not a traceback; the store's module loads without torch.

CPU only, tiny scaled-down cases, the ceilings measurement replaced by fixed numbers.
"""

from __future__ import annotations

import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch

import kernels_bench.ceilings as ceilings
import planner.base.store as store_mod
from kernels_bench import cli as kb_cli
from kernels_bench import plan
from kernels_bench.devices import accelerator_for, select_device
from kernels_bench.suites import cases_for
from planner.base.store import Store
from planner.hardware.efficiency import efficiency_for, forget_tables
from tests.test_robustness_bench import CEILINGS, ENV, MOE_BF16, TINY, _ok_cases, earlier_run, one_error_line, rows

ROOT = Path(__file__).resolve().parent.parent
RUN = ["run", "--suite", "smoke", "--device", "cpu", "--cases", MOE_BF16, "--scale", TINY, "--rounds", "1",
       "--iters", "2", "--no-components", "--json"]
KIMI = ROOT / "profiles" / "scenarios" / "kimi-k2.5-int4-8xh200.yaml"


@pytest.fixture
def fixed_ceilings(monkeypatch):
    monkeypatch.setattr(ceilings, "measure_ceilings", lambda *a, **k: dict(CEILINGS))


@pytest.fixture
def no_measurements(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the store was accepted and measuring began")

    monkeypatch.setattr(ceilings, "measure_ceilings", refuse)


# ---------------------------------------------------------------- a write the store does not take

def _disk_full_after(monkeypatch, measured_ok: int) -> None:
    """The store's writes fail like a full disk from the (measured_ok + 1)-th stored measurement on."""
    real = Store._execute
    seen = []

    def execute(self, sql, args):
        if sql.startswith("UPDATE cases") and "measured_s" in sql:
            seen.append(1)
        if len(seen) > measured_ok:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, sql, args)

    monkeypatch.setattr(Store, "_execute", execute)


def test_disk_full_mid_run_exits_non_zero_with_the_measurements_kept_beside(tmp_path, capsys, monkeypatch,
                                                                              fixed_ceilings):
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    _disk_full_after(monkeypatch, 2)
    code = kb_cli.main([*RUN, "--store", str(path)])
    out = capsys.readouterr()
    line = one_error_line(out.err)
    aside = tmp_path / "results.sqlite.unsaved.jsonl"
    assert code == 2 and out.out == ""
    assert "database or disk is full" in line and str(aside) in line and str(path) in line and "run 2" in line
    kept = [json.loads(x) for x in aside.read_text().splitlines()]
    assert [k["case"] for k in kept] == ["moe-decode-t16-bf16"]  # the run stops at the first failed write
    values = kept[0]["values"]
    assert kept[0]["run_id"] == 2 and values["status"] == "ok" and values["measured_s"] > 0
    assert len(values["samples_json"]) == 2 and values["ops_json"]
    stored = rows(path, 2)
    assert [(c[0], c[1]) for c in stored[1:3]] == [("moe-decode-t1-bf16", "ok"), ("moe-decode-t4-bf16", "ok")]
    assert all(c[1] != "ok" or c[3] > 0 for c in stored[1:])
    assert rows(path, 1) == before


def test_a_real_sqlite_full_error_keeps_every_measurement(tmp_path, capsys, monkeypatch, fixed_ceilings):
    """SQLITE_FULL for real (`PRAGMA max_page_count` caps the file): no measured case is lost or stored as an error."""
    path = tmp_path / "results.sqlite"
    real_init = Store.__init__

    def init(self, p=store_mod.DEFAULT_PATH):
        real_init(self, p)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages + 3}")

    monkeypatch.setattr(Store, "__init__", init)
    code = kb_cli.main([*RUN, "--store", str(path)])
    out = capsys.readouterr()
    line = one_error_line(out.err)
    assert code == 2 and "full" in line and "kept in" in line
    aside = tmp_path / "results.sqlite.unsaved.jsonl"
    kept = {json.loads(x)["case"] for x in aside.read_text().splitlines()}
    stored = rows(path, 1)
    ok = {c[0] for c in stored[1:] if c[1] == "ok"}
    assert kept and not kept & ok
    assert not [c for c in stored[1:] if c[1] == "error" and "full" in (c[2] or "")]  # never a case error


# ---------------------------------------------------------------- a damaged store

def _big_store(path: Path) -> None:
    s = Store(path)
    s.db.execute("PRAGMA synchronous = OFF")  # 200 commits without a sync each: this file is thrown away
    rid = s.start_run({"name": "cpu-x", "kind": "cpu"}, "smoke", {"copy_bytes_per_s": 1e10})
    for k in range(200):
        cid = s.start_case(rid, f"case-{k}", "moe", "g", {"k": k, "pad": "x" * 500})
        s.finish_case(cid, status="ok", measured_s=1e-3, samples_json=[1e-3] * 50, result_json={"k": k})
    s.finish_run(rid)
    s.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_random_bytes_in_the_middle_of_the_store_are_refused_before_writing(tmp_path, capsys, no_measurements,
                                                                           seed):
    path = tmp_path / "results.sqlite"
    _big_store(path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8192] = random.Random(seed).randbytes(8192)
    path.write_bytes(bytes(data))
    for command in (RUN, ["calibrate", "--device", "cpu", "--json"]):
        code = kb_cli.main([*command, "--store", str(path)])
        out = capsys.readouterr()
        line = one_error_line(out.err)
        assert code == 2 and str(path) in line and "--store" in line and "damaged" in line
    assert path.read_bytes() == bytes(data)


# ---------------------------------------------------------------- calibration from absurd timings

def _timed_store(path: Path, factor: float = 1.0, bad: float | None = None) -> None:
    """Runs timed as the planner predicts them under the default table (x0.4 memory fractions, 5% noise), times
    `factor`; `bad` replaces one layer run's time."""
    dev = select_device("cpu", 1)
    acc = accelerator_for(dev, CEILINGS)
    base = efficiency_for(None)
    gen = torch.Generator().manual_seed(0)
    s = Store(path)
    rid = s.start_run(dev.as_json(), "smoke", CEILINGS)
    for i, case in enumerate(c for c in cases_for("smoke", "cpu") if c.weights == "bf16"):
        ops = plan.layer_ops(case)
        for name, op, sub in [(case.name, case.op, ops)] + [(f"{case.name}.{o.name}", o.name, [o]) for o in ops]:
            t = plan.predict(sub, plan.machine(acc, base))[0] * 2.5 * float(1 + 0.05 * torch.randn(1, generator=gen))
            t = bad if (bad is not None and i == 1 and name == case.name) else t * factor
            cid = s.start_case(rid, name, op, case.group, {})
            s.finish_case(cid, status="ok", path="grouped_mm+native", measured_s=t,
                          ops_json=[plan.op_record(o) for o in sub])
    s.finish_run(rid)
    s.close()


def _calibrate(tmp_path: Path, store: Path, name: str = "cpu-test"):
    from kernels_bench.calibrate import calibrate

    args = Namespace(store=str(store), run=None, suite="smoke", name=name, out=str(tmp_path / "cal"), folds=3,
                     include_dequant=False)
    return calibrate(args, select_device("cpu", 1), run_suite=None)


def test_calibration_from_sane_timings_is_written(tmp_path):
    _timed_store(tmp_path / "r.sqlite")
    doc = _calibrate(tmp_path, tmp_path / "r.sqlite")
    assert doc["holdout_median_abs_error"] < 0.15 and (tmp_path / "cal" / "cpu-test.yaml").is_file()


@pytest.mark.parametrize("factor, why", [(1e30, "held-out median error"), (1e-30, "held-out median error")])
def test_calibration_from_absurd_timings_is_refused_and_the_file_untouched(tmp_path, factor, why):
    from planner.base.errors import PlannerError

    store = tmp_path / "r.sqlite"
    _timed_store(store, factor)
    previous = tmp_path / "cal" / "cpu-test.yaml"
    previous.parent.mkdir()
    previous.write_text("# the previous calibration\n")
    with pytest.raises(PlannerError) as err:
        _calibrate(tmp_path, store)
    assert why in str(err.value) and str(store) in str(err.value) and "run(s) [1]" in str(err.value)
    assert previous.read_text() == "# the previous calibration\n"
    assert sorted(p.name for p in previous.parent.iterdir()) == ["cpu-test.yaml"]


@pytest.mark.parametrize("bad", [-1e-3, 0.0, math.inf, -math.inf, math.nan])
def test_calibration_refuses_a_timing_that_is_not_finite_and_positive(tmp_path, capsys, bad):
    store = tmp_path / "r.sqlite"
    _timed_store(store, bad=bad)
    code = kb_cli.main(["calibrate", "--device", "cpu", "--store", str(store), "--out", str(tmp_path / "cal"),
                        "--json"])
    out = capsys.readouterr()
    line = one_error_line(out.err)
    assert code == 2 and out.out == "" and str(store) in line and "run 1" in line and "finite positive" in line
    assert "math domain error" not in line and not (tmp_path / "cal").exists()


def test_refused_calibration_leaves_the_kimi_estimate_unchanged(tmp_path, capsys, monkeypatch):
    """Done-when of issue 23: `calibrate --name h200-sxm` from timings x1e30 is refused, and
    `planner estimate profiles/scenarios/kimi-k2.5-int4-8xh200.yaml --json` answers as before."""
    import shutil

    import kernels_bench.calibrate as cal
    import planner.hardware.efficiency as eff_mod
    from planner.cli import main as planner_main

    cal_dir = tmp_path / "calibration"
    shutil.copytree(eff_mod.CAL_DIR, cal_dir)
    monkeypatch.setattr(eff_mod, "CAL_DIR", cal_dir)
    monkeypatch.setattr(cal, "CAL_DIR", cal_dir)

    def estimate() -> str:
        forget_tables()
        assert planner_main(["estimate", str(KIMI), "--json"]) == 0
        return capsys.readouterr().out

    def files_now() -> dict:  # every file under the calibration folder (silicon/ holds the imported tables)
        return {str(p.relative_to(cal_dir)): p.read_bytes() for p in cal_dir.rglob("*") if p.is_file()}

    before, files = estimate(), files_now()
    store = tmp_path / "r.sqlite"
    _timed_store(store, 1e30)
    code = kb_cli.main(["calibrate", "--device", "cpu", "--store", str(store), "--name", "h200-sxm", "--folds", "3",
                        "--json"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "held-out median error" in line
    assert files_now() == files
    assert estimate() == before


def test_calibration_is_not_written_through_a_symlink(tmp_path):
    from planner.base.errors import PlannerError

    _timed_store(tmp_path / "r.sqlite")
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("mine\n")
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "cpu-test.yaml").symlink_to(elsewhere)
    with pytest.raises(PlannerError, match="symbolic link"):
        _calibrate(tmp_path, tmp_path / "r.sqlite")
    assert elsewhere.read_text() == "mine\n"


def test_calibration_replaces_only_a_file_calibrate_wrote(tmp_path):
    from planner.base.errors import PlannerError

    _timed_store(tmp_path / "r.sqlite")
    _calibrate(tmp_path, tmp_path / "r.sqlite")  # writes cal/cpu-test.yaml
    _calibrate(tmp_path, tmp_path / "r.sqlite")  # and replaces its own file
    mine = tmp_path / "cal" / "cpu-test.yaml"
    mine.write_text("# my hand-made table\ndevice: cpu-test\nops: {}\n")
    with pytest.raises(PlannerError, match="not written by"):
        _calibrate(tmp_path, tmp_path / "r.sqlite")
    assert mine.read_text().startswith("# my hand-made table")
    assert sorted(p.name for p in mine.parent.iterdir()) == ["cpu-test.yaml"]


# ---------------------------------------------------------------- the dashboard's children

CHATTY = "import json, sys; sys.stderr.write('kernels_bench [#  ] 1/1 x\\n'); print(json.dumps({'pad': 'x' * 300000}))"


def test_drain_reads_a_child_that_prints_more_than_a_pipe_holds():
    from dashboard.bench import Drain

    proc = subprocess.Popen([sys.executable, "-c", CHATTY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    code, out, err = Drain(proc).finish(timeout=30)
    assert code == 0 and len(json.loads(out)["pad"]) == 300000 and err == ["kernels_bench [#  ] 1/1 x"]


def test_suite_run_with_a_300_kb_document_finishes(tmp_path, monkeypatch):
    from dashboard import bench

    monkeypatch.setattr(bench, "_command", lambda *args: [sys.executable, "-c", CHATTY])
    job = bench.SuiteRun("cpu", "smoke", tmp_path / "results.sqlite")
    deadline = time.time() + 30
    try:
        while job.poll() and time.time() < deadline:
            time.sleep(0.05)
        assert time.time() < deadline, "the child never finished (its stdout pipe was not drained)"
        doc, err = job.result()
    finally:
        job.stop()
    assert err == "" and len(doc["pad"]) == 300000 and job.total == 1


# ---------------------------------------------------------------- one run at a time, bounds, names

def test_a_second_run_on_the_same_store_is_refused(tmp_path, capsys, monkeypatch, no_measurements):
    from dashboard import bench
    from planner.base.store import run_lock

    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    started = []
    monkeypatch.setattr(bench.subprocess, "Popen", lambda *a, **k: started.append(a))
    with run_lock(path):  # the first run, still going
        code = kb_cli.main([*RUN, "--store", str(path)])
        out = capsys.readouterr()
        job = bench.SuiteRun("cpu", "smoke", path)
        doc, why = job.result()
    line = one_error_line(out.err)
    assert code == 2 and "another kernels_bench run" in line and "one run at a time" in line and str(path) in line
    assert doc is None and "one run at a time" in why and not started
    assert rows(path, 1) == before and [r["id"] for r in Store(path).runs()] == [1]
    assert store_mod.run_holder(path) is None  # released with the first run


def test_comm_nproc_above_the_bound_is_refused(tmp_path, capsys, monkeypatch):
    import kernels_bench.comm as comm

    def no_torchrun(*args, **kwargs):
        raise AssertionError("torchrun was started")

    monkeypatch.setattr(comm.subprocess, "run", no_torchrun)
    code = kb_cli.main(["comm", "--device", "cpu", "--nproc", "64", "--store", str(tmp_path / "r.sqlite")])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--nproc" in line and "at most" in line and not (tmp_path / "r.sqlite").exists()


@pytest.mark.parametrize("name", ["", " ", "  ", " results.sqlite", "results.sqlite "])
@pytest.mark.parametrize("command", [["run", "--device", "cpu"], ["calibrate", "--device", "cpu"],
                                     ["ceilings", "--device", "cpu"], ["comm", "--device", "cpu"]])
def test_empty_or_blank_store_names_are_refused(tmp_path, capsys, monkeypatch, no_measurements, name, command):
    default = tmp_path / "default" / "results.sqlite"
    monkeypatch.setattr(store_mod, "DEFAULT_PATH", default)
    monkeypatch.chdir(tmp_path)
    code = kb_cli.main([*command, "--store", name])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--store" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file ' ', no default store


# ---------------------------------------------------------------- signals, imports

SCRIPT = """
import runpy, sys
import kernels_bench.ceilings as c
c.measure_ceilings = lambda *a, **k: {ceilings!r}
sys.argv = ["kernels_bench", *sys.argv[1:]]
runpy.run_module("kernels_bench", run_name="__main__")
"""


def test_three_quick_sigints_end_in_one_line(tmp_path):
    path = tmp_path / "results.sqlite"
    before = earlier_run(path)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(ceilings=CEILINGS))
    proc = subprocess.Popen([sys.executable, str(script), "run", "--suite", "smoke", "--device", "cpu", "--cases",
                             MOE_BF16, "--rounds", "1", "--no-components", "--store", str(path), "--json"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _ok_cases(path) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the suite finished before it could be interrupted"
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=60)
    line = one_error_line(stderr)
    assert proc.returncode == 2 and stdout == "" and "interrupted" in line
    assert rows(path, 2)[0][1] == "interrupted" and rows(path, 1) == before


def test_the_store_and_the_dashboard_reader_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import planner.base.store, dashboard.bench\n"
            "assert dashboard.bench.missing().startswith('kernels_bench needs torch')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
