"""index.html in a real browser: Debian's chromium, headless and offline, through Playwright (the Python
package only; its own browser downloads are never used). Every plotly figure must render, nothing may be
fetched from the network, and text from YAML must show as typed. Saves screenshots under the test's tmp dir.

Skips with the reason when playwright or chromium is missing (CI installs Debian's `chromium`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.report.build import build_report
from tests.browser import chromium_context
from tests.test_report import HOSTILE, KIMI, hostile_report

ALL_RENDERED = """() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  return divs.length === Number(document.body.dataset.figures)
      && divs.every(d => d._fullLayout && d.querySelector('svg.main-svg'));
}"""


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with chromium_context(profile, offline=True, viewport={"width": 1280, "height": 900}) as ctx:
        yield ctx


def open_report(ctx, index: Path):
    page = ctx.new_page()
    requests, errors, dialogs = [], [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(index.as_uri())
    page.wait_for_function(ALL_RENDERED, timeout=60_000)
    return page, requests, errors, dialogs


def test_default_report_renders_offline_in_chromium(browser_context, tmp_path):
    out = tmp_path / "kimi-k2.5"
    summary = build_report(KIMI, out, png=False)
    page, requests, errors, _ = open_report(browser_context, out / "index.html")
    n = page.evaluate("document.querySelectorAll('.plotly-graph-div .main-svg').length")
    assert n >= summary["figures"] > 0
    assert [u for u in requests if not u.startswith("file:")] == []  # offline: nothing from the network
    assert errors == []
    assert page.locator("#claims-audit tbody tr").count() == 19
    shot = tmp_path / "kimi-k2.5.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_hostile_text_shows_as_text(browser_context, tmp_path):
    out = tmp_path / "hostile"
    build_report(hostile_report(tmp_path), out, png=False)
    page, _, errors, dialogs = open_report(browser_context, out / "index.html")
    assert dialogs == [] and errors == []  # no script from YAML ran
    assert page.title() == HOSTILE and page.locator("h1").inner_text() == HOSTILE
    # the plan name labels the memory chart's bar; the model (a folder name) titles the treemap and bars
    assert page.locator(".plotly-graph-div", has_text="<img src=x onerror=alert(3)>").count() >= 1
    assert page.locator(".plotly-graph-div", has_text=HOSTILE.replace("/", "")).count() >= 3
    page.screenshot(path=str(tmp_path / "hostile.png"))
    page.close()
