"""Issue 23, findings 1 and 2: nothing lost, nothing injected.

- `report --out` never deletes what it did not write: a folder with the user's files, a symbolic link (and what it
  points to), `.`, `..` and the folder holding the report YAML are refused with one line and left byte for byte as
  they were; a folder the planner made (its `.planner-output` marker) is replaced, as is an old report folder.
- `validate --markdown FILE` never writes through a link, over a folder, over the cases file or over a file it did
  not write.
- Hostile strings in every string field that reaches a CSV or Markdown (report title and description, plan names,
  a config folder name, API source, validation case names and sources) are neutralised: no CSV cell a spreadsheet
  would evaluate, no live link, image or HTML in report.md or the validation table, no injected table row.
- Terminal escapes in a scenario name are printed escaped by `python -m planner estimate`.

Three report builds in all (about a second each with --no-png); the refusals happen before any build.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planner.base import escape, outputs
from planner.base.errors import PlannerError
from planner.cli import main
from tests.markdown_util import live_pipes

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "profiles" / "reports" / "dsv3-vs-kimi-h200-h100-mi300x.yaml"
CONFIG = ROOT / "tests" / "data" / "hf-configs" / "Qwen__Qwen3-30B-A3B.json"
SCENARIO = ROOT / "profiles" / "scenarios" / "kimi-k2.5-int4-8xh200.yaml"

LINK = "[md](javascript:alert(3))"
IMAGE = "![t](http://evil.example/t.png)"
SCRIPT = "<script>alert(1)</script>"
ROWS = "a|b\nnew row"  # a pipe and a line end: would add a table cell and a table row
FORMULA = '=HYPERLINK("http://evil.example","x")'
CMD = "-1+cmd|' /C calc'!A0"
AT = "@SUM(1+1)*cmd|' /C calc'!A0"
FOLDER = '=HYPERLINK("http:evil.example")'  # a config folder: its name is the model's name
TERMINAL = "\x1b]0;pwned\x07\x1b[2J"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cli(args: list[str]) -> tuple[int, str, str]:
    """`python -m planner ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every path under `folder` (links not followed) with its bytes, or its link target."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "/"
    return found


def one_error_line(code: int, out: str, err: str, path: object, field: str) -> str:
    assert code == 2 and out == "" and "Traceback" not in err, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {field}: "), err
    return lines[0]


# ---------------------------------------------------------------- hostile inputs, one report built

def _hostile_inputs(tmp: Path) -> tuple[Path, Path]:
    folder = tmp / FOLDER
    folder.mkdir()
    config = json.loads(CONFIG.read_text())
    config["num_hidden_layers"] = 24  # not the shipped profile, so the folder name is the model's name
    (folder / "config.json").write_text(json.dumps(config))
    case = {"model": "qwen3-30b-a3b", "weights": "bf16", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1},
            "engine": "vllm", "workload": {"phase": "serve", "input_len": 1000, "output_len": 200, "concurrency": 8}}
    cases = tmp / "cases.yaml"
    cases.write_text(yaml.safe_dump({"cases": [
        {**case, "name": FORMULA, "measured": [{"metric": "tpot_ms", "value": 20, "source": f"{IMAGE} {AT}"}]},
        {**case, "name": f"{LINK} {SCRIPT} {ROWS}", "measured": [{"metric": "tpot_ms", "value": 20, "source": CMD}]},
        {"name": f"+bad {LINK} {ROWS}", "model": "no-such-model"}]}))  # skipped: its name and reason still shown
    plan = {"model": str(folder), "weights": "bf16", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 1},
            "engine": "vllm", "workload": {"phase": "serve", "input_len": 1000, "output_len": 200}}
    report = tmp / "hostile.yaml"
    report.write_text(yaml.safe_dump({
        "title": f"{LINK} {SCRIPT} | t", "description": f"{IMAGE} {SCRIPT} {ROWS}", "models": [str(folder)],
        "formats": ["bf16"], "kv_cache": ["bf16"],
        "plans": [{**plan, "name": FORMULA}, {**plan, "name": f"{LINK} {ROWS}"}],
        "sections": ["model_card", "memory_per_gpu", "throughput_latency",
                     {"api_break_even": {"api": {"input_per_m_usd": 0.6, "output_per_m_usd": 3.0, "source": AT}}},
                     {"validation": {"cases": str(cases)}}, "assumptions"]}))
    return report, cases


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("hostile")
    report, cases = _hostile_inputs(tmp)
    out = tmp / "out"
    code, stdout, err = cli(["report", report, "--out", out, "--no-png", "--json"])
    assert code == 0, err
    return {"tmp": tmp, "report": report, "cases": cases, "out": out, "summary": json.loads(stdout)}


def csv_cells(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


def test_no_csv_cell_is_a_formula(hostile):
    files = sorted(hostile["out"].glob("*.csv"))
    assert len(files) == hostile["summary"]["csv"] >= 8
    neutralised = set()
    for f in files:
        for cell in csv_cells(f):
            assert not (cell.startswith(TRIGGERS) and not NUMBER.fullmatch(cell)), (f.name, cell)
            if cell.startswith(("'=", "'+", "'-", "'@")):
                neutralised.add(f.name.split("--")[-1])
    # the hostile names reached each file the issue lists, and were neutralised there
    assert {"memory.csv", "plan-metrics.csv", "throughput-curves.csv", "api-break-even.csv", "sources.csv",
            "validation.csv", "params-by-component.csv"} <= neutralised
    by_name = {f.name.split("--")[-1]: csv_cells(f) for f in files}
    assert "'" + FORMULA in by_name["memory.csv"] and "'" + FOLDER in by_name["params-by-component.csv"]
    assert "'" + AT in by_name["sources.csv"] and "'" + CMD in by_name["validation.csv"]
    assert "'" + FORMULA in by_name["validation.csv"]


def _rendered(markdown_text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")  # installed with streamlit (rich)
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown_text)


def _tables_whole(text: str) -> None:
    """Every row of every Markdown table has as many live pipes as its header."""
    width = None
    for line in text.splitlines():
        if line.startswith("|"):
            width = width if width is not None else live_pipes(line)
            assert live_pipes(line) == width, line
        else:
            width = None


def test_report_markdown_has_no_live_link_image_or_html(hostile):
    out = hostile["out"]
    md = (out / "report.md").read_text()
    page = _rendered(md)
    hrefs = re.findall(r'<a href="([^"]*)"', page)
    assert hrefs and all((out / h).is_file() and h.endswith(".csv") for h in hrefs), hrefs  # only its own CSVs
    assert "<img" not in page and "<script" not in page and "javascript:" not in "".join(hrefs)
    assert "\nnew row" not in md
    _tables_whole(md)
    # the text is all there, shown as typed (line ends as spaces)
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title == f"{LINK} {SCRIPT} | t".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for text in (LINK, IMAGE, "a|b new row"):
        assert text in page.replace("&lt;", "<").replace("&gt;", ">")


def test_validate_markdown_escapes_case_names_and_reasons(hostile):
    target = hostile["tmp"] / "docs" / "validation.md"
    code, _out, err = cli(["validate", hostile["cases"], "--markdown", target])
    assert code == 0, err
    md = target.read_text()
    page = _rendered(md)
    assert "<a " not in page and "<img" not in page and "<script" not in page
    _tables_whole(md)
    cases = md.split("\n## ")[0]  # the per-case table (the silicon kernel section follows it)
    assert cases.count("\n| ") == 1 + 3  # header and one row per case (two estimated, one skipped)
    assert "new row" in md and "\nnew row" not in md
    # a second run replaces the file it wrote
    target.write_text(md + "stale line\n")
    assert cli(["validate", hostile["cases"], "--markdown", target])[0] == 0
    assert target.read_text() == md
    assert sorted(p.name for p in target.parent.iterdir()) == ["validation.md"]  # no temporary file left


def test_validate_table_on_the_terminal_shows_escapes(hostile, tmp_path):
    cases = tmp_path / "cases.yaml"
    doc = yaml.safe_load(hostile["cases"].read_text())
    doc["cases"][0]["name"] = TERMINAL
    doc["cases"][2]["name"] = TERMINAL + "bad"
    cases.write_text(yaml.safe_dump(doc))
    code, out, err = cli(["validate", cases])
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and out.count("\\x1b]0;pwned\\x07\\x1b[2J") == 2


# ---------------------------------------------------------------- report --out: what may be replaced

def test_rebuild_into_a_folder_the_planner_made(hostile):
    out = hostile["out"]
    marker = (out / outputs.MARKER).read_text().splitlines()
    assert marker[0] == outputs.MARKER_HEAD and "index.html" in marker and "report.md" in marker
    (out / "index.html").write_text("old")
    code, _stdout, err = cli(["report", hostile["report"], "--out", out, "--no-png"])
    assert code == 0, err
    assert (out / "index.html").read_text() != "old"
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []  # no leftovers


def test_old_report_folder_without_marker_is_replaced(hostile, tmp_path):
    """A report built before the marker existed (only index.html, report.md, CSVs) may still be rebuilt."""
    old = tmp_path / "old"
    shutil.copytree(hostile["out"], old)
    (old / outputs.MARKER).unlink()
    (old / "report.md").write_text("old")
    code, _stdout, err = cli(["report", hostile["report"], "--out", old, "--no-png"])
    assert code == 0, err
    assert (old / "report.md").read_text() != "old" and (old / outputs.MARKER).is_file()


def _foreign_folder(tmp: Path) -> Path:
    folder = tmp / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("years of work")
    (folder / "sub" / "thesis.tex").write_text("\\documentclass{article}")
    return folder


def _out_cases(tmp: Path, monkeypatch) -> dict[str, tuple[str, Path]]:
    """name -> (--out argument, folder whose files must all stay)."""
    report = tmp / "inputs" / "r.yaml"  # the folder holding the report YAML, with the reports beside it
    report.parent.mkdir()
    shutil.copy(SHIPPED, report)
    (report.parent / "other-report.yaml").write_text("title: x\n")
    foreign = _foreign_folder(tmp)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (tmp / "reports").mkdir()
    (tmp / "reports" / "link").symlink_to(elsewhere)
    empty = tmp / "empty-target"
    empty.mkdir()
    (tmp / "reports" / "empty-link").symlink_to(empty)
    work = tmp / "work"
    (work / "sub").mkdir(parents=True)
    (work / "main.py").write_text("print('source')")
    (work / "sub" / "notes.md").write_text("notes")
    owned = tmp / "owned"  # made by the planner, then the user added a file
    owned.mkdir()
    outputs.write_marker(owned, ["index.html"])
    (owned / "index.html").write_text("report")
    (owned / "mine.txt").write_text("added by hand")
    monkeypatch.chdir(work / "sub")
    return {"foreign": (str(foreign), foreign), "symlink": ("../../reports/link", elsewhere),
            "symlink-to-empty": (str(tmp / "reports" / "empty-link"), tmp),
            "dot": (".", work), "dotdot": ("..", work), "input-folder": (str(report.parent), report.parent),
            "owned-plus-user-file": (str(owned), owned)}


@pytest.mark.parametrize("case", ["foreign", "symlink", "symlink-to-empty", "dot", "dotdot", "input-folder",
                                  "owned-plus-user-file"])
def test_out_refuses_and_keeps_every_file(case, tmp_path, monkeypatch):
    places = _out_cases(tmp_path, monkeypatch)
    report = tmp_path / "inputs" / "r.yaml"
    arg, kept = places[case]
    before = tree(tmp_path)
    line = one_error_line(*cli(["report", report, "--out", arg, "--no-png"]), arg, "--out")
    assert tree(tmp_path) == before, line  # nothing added, removed or changed anywhere
    assert tree(kept) and Path.cwd() == tmp_path / "work" / "sub"


def test_out_file_and_subfolder_of_a_file_refused(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    one_error_line(*cli(["report", SHIPPED, "--out", plain, "--no-png"]), plain, "--out")
    one_error_line(*cli(["report", SHIPPED, "--out", plain / "sub", "--no-png"]), plain / "sub", "--out")
    assert plain.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_leftover_without_marker_is_not_removed(tmp_path):
    """A folder that merely looks like a killed run's leftover (no marker) is not the planner's to delete."""
    fake = tmp_path / f".r.tmp-{2**22 + 4321}-abc"
    fake.mkdir()
    (fake / "data.txt").write_text("user data")
    outputs.clean_leftovers(tmp_path / "r")
    assert (fake / "data.txt").read_text() == "user data"


# ---------------------------------------------------------------- validate --markdown FILE: what may be replaced

@pytest.mark.parametrize("case", ["foreign-file", "symlink", "folder", "cases-file"])
def test_markdown_refuses_and_keeps_the_file(case, hostile, tmp_path):
    cases = tmp_path / "cases.yaml"
    shutil.copy(hostile["cases"], cases)
    (tmp_path / "README.md").write_text("# my notes\n")
    (tmp_path / "target.md").write_text("keep me\n")
    (tmp_path / "link.md").symlink_to(tmp_path / "target.md")
    (tmp_path / "folder.md").mkdir()
    arg = {"foreign-file": tmp_path / "README.md", "symlink": tmp_path / "link.md", "folder": tmp_path / "folder.md",
           "cases-file": cases}[case]
    before = tree(tmp_path)
    one_error_line(*cli(["validate", cases, "--markdown", arg]), arg, "--markdown")
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- terminal

def test_estimate_prints_terminal_escapes_escaped(tmp_path):
    doc = yaml.safe_load(SCENARIO.read_text())
    doc["name"] = TERMINAL
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    done = subprocess.run([sys.executable, "-m", "planner", "estimate", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert done.stdout.startswith("\\x1b]0;pwned\\x07\\x1b[2J: FITS")


# ---------------------------------------------------------------- the escaping layer itself

@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+cmd", "'-1+cmd"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("-", "'-"), ("-1.5e3", "-1.5e3"), ("+2", "+2"), (-3, -3), (2.5, 2.5), (None, None),
    ("plain", "plain"), ("a=b", "a=b"), (True, True)])
def test_csv_cell(value, expected):
    assert escape.csv_cell(value) == expected


@pytest.mark.parametrize("text", [LINK, IMAGE, SCRIPT, ROWS, "[x]: javascript:alert(1)", "x\\](y)", "<http://x>",
                                  "[a][b]", "&#x6A;avascript:x", "`code` [l](u)"])
def test_markdown_text_is_never_live(text):
    page = _rendered(f"| a |\n|---|\n| {escape.md_text(text)} |\n\n"
                     f"{escape.md_text(text)}\n\n![{escape.md_link_text(text)}](own.png)\n")
    assert "<a " not in page and page.count("<img") == 1 and 'src="own.png"' in page and "<script" not in page
    assert page.count("<tr>") == 2  # the header and one row


def test_markdown_code_span_holds_backticks():
    page = _rendered("Generated by " + escape.md_code("a `b` `` c [l](javascript:x)") + ".")
    assert "<a " not in page and page.count("<code>") == 1


def test_report_summary_shows_controls_escaped():
    from planner.report.build import summary_text

    doc = {"title": TERMINAL, "seconds": 1.0, "sections": ["s"], "figures": 0, "png": 0, "csv": 1,
           "claims": {"confirmed\x07": 1}, "png_note": "note\x1b[2J", "notes": ["n\x9b"], "index": "/x\x1b/index.html"}
    text = summary_text(doc)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text) and text.startswith("\\x1b]0;pwned")


def test_terminal_shows_controls():
    assert escape.terminal(TERMINAL) == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert escape.terminal("a\u202eb\x9bc") == "a\\u202eb\\x9bc"
    assert escape.terminal_lines("a\nb\x1b") == "a\nb\\x1b"


def test_write_file_refuses_a_pipe_and_leaves_no_temporary(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PlannerError, match="not a regular file"):
        outputs.write_file(fifo, "x", field="--out")
    path = outputs.write_file(tmp_path / "a" / "b.yaml", "one\n", field="--out")
    os.chmod(path, 0o640)
    outputs.write_file(path, "two\n", field="--out")
    assert path.read_text() == "two\n" and (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.yaml"]


def test_dashboard_csv_download_is_neutralised(monkeypatch):
    """The dashboard's table downloads go through the same CSV rule as the report's files."""
    import pandas as pd

    import dashboard.ui as ui

    got = {}
    monkeypatch.setattr(ui.st, "caption", lambda *a, **k: None)
    monkeypatch.setattr(ui.st, "dataframe", lambda *a, **k: None)
    monkeypatch.setattr(ui.st, "download_button", lambda label, data, **k: got.setdefault("data", data))
    ui.table(pd.DataFrame({"plan": ["=HYPERLINK(\"http://evil.example\")", "+cmd", "ok"], "value": [-1.5, 2, 3]}), "t")
    rows = list(csv.reader(io.StringIO(got["data"]())))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://evil.example\")", "'+cmd", "ok"]
    assert rows[1][1] == "-1.5"  # numbers keep their sign
