"""Robustness 4/4: reports and the dashboard.

- uploads: every config.json of the fuzz corpus (and files over the 16 MiB limit, hostile file names and
  `_name_or_path` values) goes through the dashboard's upload check; a bad one is refused with one line naming the
  file (and field) and leaves nothing on disk, a good one is stored under the upload folder and nowhere else;
- escaping: any text (hypothesis) in a report title, paragraph, note, table caption or cell reaches index.html
  as text (the only tags are the writer's own) and report.md without raw HTML or table-breaking pipes;
- atomic writes: a report build killed with SIGKILL at any moment leaves the previous report complete (or the new
  one complete), and the next build clears the leftovers; two builds into the same folder at once end with one
  complete report and no leftovers (builds into different folders: tests/test_report.py).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.base.yamlio import MAX_INPUT_BYTES
from planner.report import render
from planner.report.sections import Section
from planner.report.spec import ReportSpec
from tests.fuzz_corpus import corpus
from tests.markdown_util import live_pipes

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
SECOND = ROOT / "profiles" / "reports" / "dsv3-vs-kimi-h200-h100-mi300x.yaml"
CONFIGS = ROOT / "tests" / "data" / "hf-configs"
UPLOAD_ENTRIES = [e for e in corpus.planner_entries() if e.command == "inspect" and e.suffix == ".json" and e.data]


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    from dashboard import data

    folder = tmp_path / "uploads"
    monkeypatch.setattr(data, "UPLOADS", folder)
    return folder


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------- uploads

@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id) for e in UPLOAD_ENTRIES])
def test_upload_refuses_malformed_config(entry, uploads):
    from dashboard.data import upload_model

    ref, why = upload_model("config.json", entry.data)
    assert ref is None and why, why
    assert "\n" not in why and why.startswith("config.json") and "Traceback" not in why
    if entry.field:
        assert entry.field in why or entry.field.replace(".", ": ") in why, (entry.field, why)
    assert files_under(uploads) == []


def test_upload_over_the_size_limit_is_refused_before_parsing(uploads):
    from dashboard.data import upload_model

    with mock.patch("planner.base.yamlio.parse_text", side_effect=AssertionError("parsed")):
        ref, why = upload_model("config.json", b"{" + b" " * MAX_INPUT_BYTES + b"}")
    assert ref is None and "over the 16,777,216-byte input limit" in why and files_under(uploads) == []


HOSTILE_NAMES = ["../../etc/passwd", "..", ".", "a/b/../../c.json", "<script>alert(1)</script>.json",
                 "x\x00y.json", "con.json", "\u202egnp.json", "🦙" * 200, "a" * 5000, ""]


@pytest.mark.parametrize("filename", HOSTILE_NAMES, ids=[f"name{k}" for k in range(len(HOSTILE_NAMES))])
def test_upload_stays_in_the_upload_folder_whatever_its_name(filename, uploads):
    from dashboard.data import upload_model
    from planner.model.models import load_model

    config = json.loads((CONFIGS / "Qwen__Qwen3-30B-A3B.json").read_text())
    config["_name_or_path"] = "../../../../tmp/<img src=x onerror=alert(1)>/" + filename
    ref, why = upload_model(filename, json.dumps(config).encode())
    assert ref is not None, why
    path = Path(ref).resolve()
    assert path.is_relative_to(uploads.resolve()) and path.name == "config.json"
    assert [p.resolve() for p in files_under(uploads)] == [path]
    assert re.fullmatch(r"[A-Za-z0-9._-]+", path.parent.name) and load_model(ref).spec.num_layers == 48


@pytest.mark.slow
def test_upload_widget_refuses_every_malformed_config(tmp_path, monkeypatch):
    """The corpus through the sidebar uploader itself (Streamlit AppTest): an error box, never an exception."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PLANNER_BENCH_RESULTS", str(tmp_path / "results.sqlite"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for entry in UPLOAD_ENTRIES[::3]:
        at.sidebar.file_uploader(key="config_upload").set_value(("config.json", entry.data, "application/json"))
        at.run()
        assert not at.exception, (entry.id, [e.value for e in at.exception])
        assert at.sidebar.error and "config.json" in at.sidebar.error[0].value.replace("\\", ""), entry.id
        assert at.title[0].value == "kimi-k2.5: what it takes to run it"


# ---------------------------------------------------------------- escaping

class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.tags.append("!--")

    def handle_decl(self, decl):
        self.tags.append("!decl")

    def unknown_decl(self, data):
        self.tags.append("!decl")

    def handle_pi(self, data):
        self.tags.append("?pi")


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60) | st.sampled_from([
    "<script>alert(1)</script>", "</table><img src=x onerror=alert(2)>", "\"><svg onload=alert(3)>", "a|b||c",
    "a\\|b", "\\", "<!-- x -->", "<![CDATA[x]]>", "&amp;lt;", "javascript:alert(4)", "`code` **bold** [l](http://x)",
    "\u202e"])
PAGE_TAGS = {"html", "head", "meta", "title", "style", "script", "body", "main", "h1", "h2", "p", "code", "nav", "ol",
             "li", "a", "section", "div", "table", "caption", "thead", "tr", "th", "tbody", "td"}


def _escaped_everywhere(title, description, paragraph, note, caption, cell, column):
    spec = ReportSpec(file="r.yaml", name="r", title=title, description=description, source="", models=(),
                      formats=(), kv_dtypes=(), hardware=(), workloads={}, plans=(), sections=())
    df = pd.DataFrame({column or "c": [cell, 1.5], "value_bytes": [1e9, 2e9]})
    sec = Section("s", title, paragraphs=[paragraph], notes=[note], tables=[("t", caption, df, True)])
    with mock.patch("plotly.offline.get_plotlyjs", return_value=""):
        page = render.html_report(spec, [sec], {"t": "s--t.csv"}, f"python -m planner report {title}")
    parser = Tags()
    parser.feed(page)
    parser.close()
    assert set(parser.tags) <= PAGE_TAGS | {"!decl"}, set(parser.tags) - PAGE_TAGS
    # the doctype, plotly's (here empty) script slot and the one table are the writer's own
    assert parser.tags.count("!decl") == 1 and parser.tags.count("script") == 1 and parser.tags.count("table") == 1
    text = "".join(parser.text)
    for s in (title, description, paragraph, note, caption, str(cell)):
        if s.strip():
            assert s.strip() in text or s.replace("\r", "\n").strip() in text
    md = render.markdown_report(spec, [sec], {"t": "s--t.csv"}, {}, note, "cmd")
    for s in (title, description, paragraph, note, caption, str(cell), column):
        raw = s.replace("\n", " ")
        if "<" in raw:
            assert raw not in md
    table_lines = [ln for ln in re.split(r"\r\n|[\r\n]", md) if ln.startswith("| ")]  # CommonMark line ends
    assert len({live_pipes(ln) for ln in table_lines}) == 1  # no cell breaks the table


test_report_text_is_escaped = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))(
    given(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)(_escaped_everywhere))
test_report_text_is_escaped_slow = pytest.mark.slow(settings(max_examples=1500, deadline=None,
                                                             suppress_health_check=list(HealthCheck))(
    given(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)(_escaped_everywhere)))


def _plain_escapes_markdown(text):
    from dashboard.ui import plain

    shown = plain(text)
    assert re.sub(r"\\(.)", r"\1", shown) == text  # the text as typed, nothing lost
    assert not re.search(r"(?<!\\)[<>\[\]`*_|]", shown)  # no live Markdown or HTML punctuation


test_dashboard_text_is_plain = settings(max_examples=100, deadline=None)(given(TEXT)(_plain_escapes_markdown))
test_dashboard_text_is_plain_slow = pytest.mark.slow(settings(max_examples=3000, deadline=None)(
    given(TEXT)(_plain_escapes_markdown)))


# ---------------------------------------------------------------- atomic writes

def complete(out: Path) -> str:
    """The report's title when `out` holds a whole report (index.html, report.md and every CSV they name)."""
    html = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    for name in set(re.findall(r'href="([^"#]+\.csv)"', html)) | set(re.findall(r"\]\(([^)]+\.csv)\)", md)):
        assert (out / name).is_file(), name
    assert html.rstrip().endswith("</html>")
    return re.search(r"<h1>(.*?)</h1>", html).group(1)


def build(report: Path, out: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "planner", "report", str(report), "--out", str(out), "--no-png",
                             "--json"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


def _killed_builds(tmp_path: Path, kills: int) -> None:
    out = tmp_path / "r"
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({**yaml.safe_load(SECOND.read_text()), "title": "NEW <title>"}))
    p = build(SECOND, out)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    old_files = {f.name: f.read_bytes() for f in out.iterdir()}
    rng = random.Random(8)
    seen = set()
    for _ in range(kills):
        p = build(new, out)
        time.sleep(rng.uniform(0.2, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        title = complete(out)  # whole, whichever it is
        assert title in ("DeepSeek-V3 vs Kimi K2.5 on H200, H100 and MI300X", "NEW &lt;title&gt;")
        seen.add(title)
        if title.startswith("DeepSeek"):
            assert {f.name: f.read_bytes() for f in out.iterdir()} == old_files
        else:
            break
    p = build(SECOND, out)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    assert complete(out).startswith("DeepSeek")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["new.yaml", "r"]  # leftovers of killed builds removed


def test_killed_report_build_leaves_a_whole_report(tmp_path):
    _killed_builds(tmp_path, 2)


@pytest.mark.slow
def test_killed_report_build_leaves_a_whole_report_many_times(tmp_path):
    _killed_builds(tmp_path, 12)


def test_two_builds_into_the_same_folder(tmp_path):
    out = tmp_path / "r"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**yaml.safe_load(SECOND.read_text()), "title": "other"}))
    procs = [build(SECOND, out), build(other, out)]
    codes = [p.wait(timeout=180) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert codes.count(0) >= 1, errors
    for code, err in zip(codes, errors, strict=True):
        assert code == 0 or (code == 2 and len(err.splitlines()) == 1 and "could not replace" in err), err
    assert complete(out) in ("DeepSeek-V3 vs Kimi K2.5 on H200, H100 and MI300X", "other")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["other.yaml", "r"]
