"""Robustness 2/4: the fuzz corpus (tests/fuzz_corpus/corpus.py) through every command.

Each malformed input must give exit code 2, nothing on stdout, and exactly one line `error: ...` on stderr that
names the file (and the field, where one field is at fault) - never a traceback:
- `python -m planner inspect|estimate|validate|size|report`: the whole corpus in-process (`planner.cli.main`, the
  same code the module runs) in `make test`; under `-m slow` every entry again as a real `python -m` process;
- `validate` with one malformed case among good ones: exit 0, the case reported as skipped with that one line,
  the good case estimated (validate never stops on a case);
- `python -m kernels_bench run|calibrate`: every corpus file given as `--store` (none is SQLite), plus damaged
  SQLite files; `discover` (and the others) with malformed arguments;
- generated mutations (hypothesis): any base document with any field replaced by any JSON value is either
  accepted or refused with a PlannerError naming the file - no other exception.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels_bench import cli as kb_cli
from planner import cli as planner_cli
from planner.base.errors import PlannerError
from tests.fuzz_corpus import corpus

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ENTRIES = corpus.planner_entries()
FILE_LEVEL = [e for e in ENTRIES if not e.case_level]
CASE_LEVEL = [e for e in ENTRIES if e.case_level]


def params(entries, every: int = 1, known_bugs: bool = True):
    out = []
    for k, e in enumerate(entries):
        if k % every:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=e.xfail)] if e.xfail and known_bugs else []
        out.append(pytest.param(e, id=e.id, marks=marks))
    return out


def argv(entry: corpus.Entry, path: Path, tmp: Path) -> list[str]:
    if entry.command == "report":
        return ["report", str(path), "--out", str(tmp / "out"), "--no-png", "--json"]
    return [entry.command, str(path), "--json"]


def named(entry: corpus.Entry, path: Path) -> str:
    """What the error line must show of the file: the config's folder (inspect), else the file name."""
    return entry.id if path.name == "config.json" else path.name


def check_line(code: int, stdout: str, stderr: str, file: str, field: str | None) -> str:
    assert "Traceback" not in stderr, stderr[-2000:]
    assert code == 2, (code, stderr[-600:])
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-600:]
    assert file in lines[0], lines[0][:600]
    rest = lines[0].split(file, 1)[1]  # the field must be named after the file (whose name may contain it too)
    if field:
        assert field in rest or field.replace(".", ": ") in rest, (field, lines[0][:600])
    return lines[0]


# ---------------------------------------------------------------- planner commands

@pytest.mark.parametrize("entry", params(FILE_LEVEL))
def test_planner_command_rejects_malformed_input(entry, tmp_path, capsys):
    path = corpus.write(entry, tmp_path)
    code = planner_cli.main(argv(entry, path, tmp_path))
    out = capsys.readouterr()
    check_line(code, out.out, out.err, named(entry, path), entry.field)
    assert not (tmp_path / "out").exists()  # a refused report writes nothing


@pytest.mark.parametrize("entry", params(CASE_LEVEL))
def test_validate_reports_a_malformed_case_and_goes_on(entry, tmp_path, capsys):
    path = corpus.write(entry, tmp_path)
    code = planner_cli.main(["validate", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0 and out.err == "", out.err[-600:]
    report = json.loads(out.out)
    assert [c["name"] for c in report["cases"]] == ["good"]
    assert [s["name"] for s in report["skipped"]] == ["malformed"]
    reason = report["skipped"][0]["reason"]
    assert "\n" not in reason and path.name in reason and "cases[0]" in reason, reason
    rest = reason.split("cases[0]", 1)[1]
    assert entry.field in rest or entry.field.replace(".", ": ") in rest, (entry.field, reason)


def test_corpus_size():
    """At least 200 malformed inputs reach every planner command (docs/robustness.md lists the counts)."""
    per_command = {c: sum(e.command == c for e in ENTRIES) for c in corpus.COMMANDS}
    assert min(per_command.values()) >= 200, per_command


@pytest.mark.slow
@pytest.mark.parametrize("entry", params(FILE_LEVEL))
def test_planner_process_rejects_malformed_input(entry, tmp_path):
    """The same corpus through `python -m planner` as a process: exit status, streams, no traceback."""
    path = corpus.write(entry, tmp_path)
    done = subprocess.run([sys.executable, "-m", "planner", *argv(entry, path, tmp_path)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    check_line(done.returncode, done.stdout, done.stderr, named(entry, path), entry.field)


@pytest.mark.parametrize("entry", params(FILE_LEVEL, every=40))
def test_planner_process_rejects_malformed_input_sample(entry, tmp_path):
    path = corpus.write(entry, tmp_path)
    done = subprocess.run([sys.executable, "-m", "planner", *argv(entry, path, tmp_path)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    check_line(done.returncode, done.stdout, done.stderr, named(entry, path), entry.field)


def _planner_bad_args(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, text the error line must hold): arguments, and output places that cannot be written."""
    (tmp / "plain").write_text("x")
    cases = tmp / "cases.yaml"
    cases.write_bytes(corpus._dump(corpus.CASES, ".yaml"))
    report = str(ROOT / "profiles" / "reports" / "dsv3-vs-kimi-h200-h100-mi300x.yaml")
    return [
        ([], "required"), (["frobnicate"], "invalid choice"), (["inspect"], "required"),
        (["inspect", "kimi-k2.5", "--weights", "int3"], "weights"), (["inspect", "kimi-k2.5", "--kv-cache", "fp4"],
                                                                    "kv_cache"),
        (["inspect", "kimi-k2.5", "--weights", "a" * 5000], "weights"), (["inspect", "x" * 5000], "model"),
        (["inspect", ""], "model"), (["inspect", "kimi\x00"], "model"), (["estimate"], "required"),
        (["estimate", "a.yaml", "b.yaml"], "unrecognized"), (["size", "--top", "3"], "unrecognized"),
        (["report", report], "--out"), (["validate", str(cases), "--markdown"], "--markdown"),
        (["report", report, "--out", str(tmp / "plain"), "--no-png"], "plain"),
        (["report", report, "--out", str(tmp / "plain" / "sub"), "--no-png"], "--out"),
        (["report", report, "--out", "/proc/no-such/report", "--no-png"], "--out"),
        (["validate", str(cases), "--markdown", str(tmp / "plain" / "v.md")], "--markdown"),
        (["validate", str(cases), "--markdown", "/proc/no-such/v.md"], "--markdown"),
    ]


@pytest.mark.parametrize("k", range(19))
def test_planner_bad_arguments_and_outputs_one_line(k, tmp_path, capsys):
    args, expect = _planner_bad_args(tmp_path)[k]
    code = planner_cli.main(args)
    out = capsys.readouterr()
    assert code == 2 and out.out == "" and "Traceback" not in out.err, (code, out.err[-600:])
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], out.err[-600:]


# ---------------------------------------------------------------- kernels_bench: corpus files as --store

STORE_ENTRIES = [e for e in ENTRIES if e.data and e.special is None and len(e.data) < 2**20]


def _no_measurements(monkeypatch):
    import kernels_bench.ceilings as ceilings

    def refuse(*args, **kwargs):
        raise AssertionError("the store was accepted")

    monkeypatch.setattr(ceilings, "measure_ceilings", refuse)


def bench_argv(command: str, store: Path) -> list[str]:
    if command == "run":
        return ["run", "--suite", "smoke", "--device", "cpu", "--cases", "moe-decode", "--store", str(store), "--json"]
    return ["calibrate", "--device", "cpu", "--store", str(store), "--out", str(store.parent / "cal"), "--json"]


def _refused(command: str, store: Path, capsys) -> None:
    """kernels_bench `command` on `store` answers one error line naming the store and --store."""
    code = kb_cli.main(bench_argv(command, store))
    out = capsys.readouterr()
    check_line(code, out.out, out.err, store.name, "--store")


def _bench_rejects(command, entry, tmp_path, capsys, monkeypatch):
    _no_measurements(monkeypatch)
    store = tmp_path / f"{entry.id}.sqlite"
    store.write_bytes(entry.data)
    _refused(command, store, capsys)
    assert store.read_bytes() == entry.data  # refused, not rewritten
    assert not (tmp_path / "cal").exists()


@pytest.mark.parametrize("command", ["run", "calibrate"])
@pytest.mark.parametrize("entry", params(STORE_ENTRIES, every=8, known_bugs=False))
def test_bench_rejects_a_store_that_is_not_sqlite(command, entry, tmp_path, capsys, monkeypatch):
    _bench_rejects(command, entry, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "calibrate"])
@pytest.mark.parametrize("entry", params(STORE_ENTRIES, known_bugs=False))
def test_bench_rejects_a_store_that_is_not_sqlite_all(command, entry, tmp_path, capsys, monkeypatch):
    _bench_rejects(command, entry, tmp_path, capsys, monkeypatch)


def _real_store(path: Path) -> bytes:
    from planner.base.store import Store

    s = Store(path)
    rid = s.start_run({"name": "cpu-x", "kind": "cpu"}, "smoke", {"copy_bytes_per_s": 1e10})
    for k in range(40):
        cid = s.start_case(rid, f"case-{k}", "moe", "g", {"k": k, "pad": "x" * 500})
        s.finish_case(cid, status="ok", measured_s=1e-3, result_json={"k": k})
    s.finish_run(rid)
    s.close()
    return path.read_bytes()


def _damaged(kind: str, data: bytes) -> bytes:
    if kind == "truncated-header":
        return data[:50]
    if kind == "truncated-half":
        return data[: len(data) // 2]
    if kind == "bad-magic":
        return b"SQLite format 2\x00" + data[16:]
    if kind == "bad-page-size":
        return data[:16] + b"\x00\x03" + data[18:]
    if kind == "zeroed-schema-page":
        return data[:100] + b"\x00" * 3996 + data[4096:]
    if kind == "garbage-pages":
        return data[:4096] + bytes((i * 7 + 3) % 256 for i in range(len(data) - 4096))
    raise ValueError(kind)


DAMAGE = ["truncated-header", "truncated-half", "bad-magic", "bad-page-size", "zeroed-schema-page", "garbage-pages"]


@pytest.mark.parametrize("command", ["run", "calibrate"])
@pytest.mark.parametrize("kind", DAMAGE)
def test_bench_rejects_a_damaged_sqlite_store(command, kind, tmp_path, capsys, monkeypatch):
    _no_measurements(monkeypatch)
    store = tmp_path / "results.sqlite"
    data = _damaged(kind, _real_store(store))
    store.write_bytes(data)
    _refused(command, store, capsys)


@pytest.mark.parametrize("command", ["run", "calibrate"])
def test_bench_rejects_a_store_of_another_schema(command, tmp_path, capsys, monkeypatch):
    _no_measurements(monkeypatch)
    store = tmp_path / "results.sqlite"
    con = sqlite3.connect(store)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)")
    con.execute("CREATE TABLE cases (x TEXT)")
    con.commit()
    con.close()
    _refused(command, store, capsys)


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_bench_store_path_that_cannot_be_a_file(where, tmp_path, capsys, monkeypatch):
    _no_measurements(monkeypatch)
    store = tmp_path / "results.sqlite"
    if where == "folder":
        store.mkdir()
    else:
        (tmp_path / "plain").write_text("x")
        store = tmp_path / "plain" / "results.sqlite"
    _refused("run", store, capsys)


BAD_ARGS = [
    ["discover", "--bogus"], ["discover", "extra"], ["discover", "--json=yes"], ["frobnicate"], [],
    ["run", "--suite"], ["run", "--suite", "nope", "--device", "cpu"], ["run", "--device", "tpu"],
    ["run", "--device", "cpu", "--threads", "0"], ["run", "--device", "cpu", "--threads", "many"],
    ["run", "--device", "cpu", "--threads", "-3"], ["run", "--device", "cpu", "--iters", "0"],
    ["run", "--device", "cpu", "--iters", "1e9x"], ["run", "--device", "cpu", "--rounds", "-1"],
    ["run", "--device", "cpu", "--cases", "("], ["run", "--device", "cpu", "--cases", "no-such-case"],
    ["run", "--device", "cpu", "--scale", "0,1,1,1"], ["run", "--device", "cpu", "--scale", "a,b"],
    ["run", "--device", "cpu", "--scale", "1,1,1"], ["run", "--device", "cpu", "--cases", "\udcff"],
    ["calibrate", "--device", "cpu", "--run", "x"], ["calibrate", "--device", "cpu", "--folds", "many"],
    ["calibrate", "--device", "cuda"], ["run", "--device", "cuda"], ["ceilings", "--size", "huge"],
    ["comm", "--nproc", "x"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=[" ".join(a) or "(none)" for a in BAD_ARGS])
def test_bench_bad_arguments_one_line(args, tmp_path, capsys, monkeypatch):
    _no_measurements(monkeypatch)
    code = kb_cli.main([*args, "--store", str(tmp_path / "r.sqlite")] if args[:1] in (["run"], ["calibrate"])
                       else args)
    out = capsys.readouterr()
    assert code == 2 and out.out == "" and "Traceback" not in out.err
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    assert not (tmp_path / "r.sqlite").exists() or args[0] == "calibrate"


def test_bench_unreadable_rows_name_the_store(tmp_path, capsys, monkeypatch):
    """A store whose rows are not what kernels_bench writes (edited, another version): calibrate names the store."""
    _no_measurements(monkeypatch)
    from kernels_bench.devices import select_device
    from planner.base.store import Store

    store = tmp_path / "results.sqlite"
    s = Store(store)
    dev = select_device("cpu", 1)
    rid = s.start_run(dev.as_json(), "smoke", {"copy_bytes_per_s": 1e10})
    cid = s.start_case(rid, "moe-decode-t1", "moe", "g", {})
    s.finish_case(cid, status="ok", measured_s=1e-3, ops_json="{not json")
    s.db.execute("UPDATE runs SET device_json = '{broken' WHERE id = ?", (rid,))
    s.db.commit()
    s.close()
    code = kb_cli.main(["calibrate", "--device", "cpu", "--store", str(store), "--json"])
    out = capsys.readouterr()
    check_line(code, out.out, out.err, store.name, "--store")


# ---------------------------------------------------------------- generated mutations of the base documents

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=8)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            yield from _paths(v, (*prefix, k))


def _loaders():
    from planner.deploy.scenario_file import scenario_from_mapping
    from planner.model.spec import model_spec_from_config
    from planner.report.spec import load_report_spec
    from planner.sizing.workload import workload_from_mapping

    def report(doc):
        import tempfile

        import yaml
        with tempfile.NamedTemporaryFile("w", prefix="mutated-", suffix=".yaml", delete=False) as fh:
            yaml.safe_dump(doc, fh)
        try:
            load_report_spec(fh.name)
        finally:
            os.unlink(fh.name)

    return {"scenario": (corpus.SCENARIO, lambda d: scenario_from_mapping(d, "mutated.yaml")),
            "workload": (corpus.WORKLOAD, lambda d: workload_from_mapping(d, "mutated.yaml")),
            "config": (corpus.KIMI_CONFIG, lambda d: model_spec_from_config(d, name="m", file="mutated.json")),
            "gpt-oss": (corpus.GPT_OSS_CONFIG, lambda d: model_spec_from_config(d, name="m", file="mutated.json")),
            "report": (corpus.REPORT, report)}


LOADERS = _loaders()


@st.composite
def mutations(d):
    kind = d(st.sampled_from(sorted(LOADERS)))
    base, _ = LOADERS[kind]
    paths = [p for p in _paths(base) if p]
    path = d(st.sampled_from(paths))
    value = d(JSON_VALUES)
    return kind, path, value


def _mutation_is_accepted_or_named(m):
    kind, path, value = m
    base, load = LOADERS[kind]
    doc = json.loads(json.dumps(base))
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    try:
        load(doc)
    except PlannerError as err:
        assert "mutated" in str(err) and "\n" not in str(err), str(err)


test_generated_mutations = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))(
    given(mutations())(_mutation_is_accepted_or_named))
test_generated_mutations_slow = pytest.mark.slow(settings(max_examples=4000, deadline=None,
                                                          suppress_health_check=list(HealthCheck))(
    given(mutations())(_mutation_is_accepted_or_named)))


# ---------------------------------------------------------------- known bugs in modules issue 8 does not change

@pytest.mark.parametrize("points", [[["a", 0.5]], [[1, [2]]]], ids=["text", "list"])
def test_calibration_file_with_non_numeric_points_is_a_planner_error(points, tmp_path):
    import yaml

    from planner.hardware.efficiency import _read, efficiency_for

    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump({"device": "x", "ops": {"gemm": {"compute": points}}}))
    with pytest.raises(PlannerError, match="ops.gemm.compute"):
        _read(path, efficiency_for(None))
