"""app.py in a real browser: `streamlit run` on a free local port, Debian chromium driven headless by Playwright
(the Python package with executable_path; its own browser downloads are never used). Waits for the plotly charts,
changes the model in the sidebar, checks the charts changed, saves a screenshot under the test's tmp dir and stops
the server by its PID. Nothing may be fetched from outside the local server.

Skips with the reason when playwright or chromium is missing (.ci/run installs Debian's `chromium`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import chromium_context

ROOT = Path(__file__).resolve().parent.parent
TITLES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(d => d._fullLayout && d.querySelector('svg.main-svg') && !d.closest('[data-stale="true"]'))
  .map(d => (d._fullLayout.title || {}).text || '')"""
SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"  # no script run in progress


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bench_store(tmp_path_factory) -> Path:
    """The server's kernels_bench results store ($PLANNER_BENCH_RESULTS): a temporary file, never bench_results/."""
    return tmp_path_factory.mktemp("bench-store") / "results.sqlite"


@pytest.fixture(scope="module")
def server(tmp_path_factory, bench_store):
    """`streamlit run app.py` on a free port; stopped by its PID."""
    tmp = tmp_path_factory.mktemp("app-server")
    port = free_port()
    env = {**os.environ, "PLANNER_BENCH_RESULTS": str(bench_store)}
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}: {(tmp / 'streamlit.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("streamlit did not answer /_stcore/health within 60 s")
            time.sleep(0.25)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium_context(tmp_path_factory.mktemp("chromium-profile"), viewport={"width": 1400, "height": 1100}) as ctx:
        yield ctx


def titles_when(page, condition: str, timeout_ms: int = 90_000) -> list[str]:
    """Chart titles once `condition` (JS over `t`, the list of rendered chart titles) holds and the run settled."""
    page.wait_for_function(f"() => {{ const t = ({TITLES})(); return {condition}; }}", timeout=timeout_ms)
    page.wait_for_function(SETTLED, timeout=timeout_ms)
    return page.evaluate(TITLES)


def test_dashboard_in_chromium(server, browser, tmp_path):
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    before = titles_when(page, "t.length >= 4 && t.some(x => x.startsWith('kimi-k2.5: parameters'))")
    assert "Parameters: total vs active per token" in before
    assert page.get_by_text("kimi-k2.5: what it takes to run it").is_visible()
    page.screenshot(path=str(tmp_path / "model-kimi.png"))

    box = page.get_by_role("combobox", name="Model", exact=True)  # beside it: "Model family"
    box.click()
    box.fill("deepseek-v3")
    page.get_by_role("option", name="DeepSeek · deepseek-v3", exact=True).click()  # all families: labelled
    after = titles_when(page, "t.some(x => x.startsWith('deepseek-v3: parameters'))")
    assert after != before and not any(t.startswith("kimi-k2.5: parameters") for t in after)
    assert page.get_by_text("deepseek-v3: what it takes to run it").is_visible()
    shot = tmp_path / "model-deepseek-v3.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000

    page.get_by_text("Fit and memory", exact=True).click()
    titles_when(page, "t.some(x => x.startsWith('Does it fit?'))")
    assert page.url.endswith("?page=fit")
    page.screenshot(path=str(tmp_path / "fit.png"))
    assert errors == []
    assert [u for u in requests if not u.startswith((server, "data:", "blob:"))] == []  # nothing from outside
    page.close()


SMOKE_LIMIT_S = 180  # issue 21: the machine page's smoke suite runs to completion within 3 minutes


def test_machine_page_smoke_suite(server, browser, bench_store, tmp_path):
    """The machine page starts `kernels_bench run --suite smoke --device cpu` as a child (dashboard.bench.SuiteRun,
    its output drained as it runs), shows the run's table and summary within 3 minutes, with no error, and the run
    lands in the server's temporary store ($PLANNER_BENCH_RESULTS, set by the `server` fixture)."""
    pytest.importorskip("torch", reason="kernels_bench needs torch (pip install -e '.[bench]')")
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/?page=machine")
    run = page.get_by_role("button", name="Run", exact=True)
    run.wait_for(timeout=120_000)  # after `kernels_bench discover` (a child importing torch)
    assert page.get_by_text("--suite smoke --device cpu").first.is_visible()
    started = time.monotonic()
    run.click()
    page.get_by_text("Summary:").wait_for(timeout=SMOKE_LIMIT_S * 1000)
    took = time.monotonic() - started
    page.wait_for_function(SETTLED, timeout=30_000)
    print(f"machine page smoke suite: {took:.0f} s")
    assert took < SMOKE_LIMIT_S
    text = page.inner_text("body")
    assert re.search(r"run \d+: \d+ rows, \d+ ok", text), text[-2000:]
    assert re.search(r"Summary: (\d+) cases: \1 ok, 0 out of memory, 0 error", text), text[-2000:]
    assert re.search(r"Run \d+ on ", text)
    assert page.get_by_role("button", name="Download kernels-bench-run.csv").is_visible()
    assert f"Runs stored in {bench_store}" in text and bench_store.is_file()
    assert page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]').count() == 0, text[-2000:]
    page.screenshot(path=str(tmp_path / "machine-smoke.png"), full_page=True)
    assert errors == []
    page.close()
