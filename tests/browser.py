"""One way to start headless Debian chromium for the browser tests (Playwright drives the system chromium by
executable_path; never `playwright install`). Skips with the reason when playwright or chromium is missing."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from planner.report.build import chromium_path

# the closed network refuses chromium's background connections: keep it from trying
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_context(profile_dir: Path, **options):
    """A persistent headless chromium context on a fresh --user-data-dir; `options` go to Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    exe = chromium_path() or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).is_file():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile_dir), executable_path=exe, args=CHROMIUM_FLAGS,
                                                    headless=True, **options)
        try:
            yield ctx
        finally:
            ctx.close()
