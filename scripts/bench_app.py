"""Server-side re-render time of the dashboard after a widget change, per page.

    .venv/bin/python scripts/bench_app.py [--repeat 10]

Runs app.py in Streamlit's own script runner (streamlit.testing.v1.AppTest: the code path `streamlit run` uses,
minus the websocket), opens each page, then flips one widget between two values `--repeat` times and times each
rerun: the first flip computes (cold), the rest are what a user gets once the planner results are cached. AppTest
also parses the page into its element tree, so the numbers are an upper bound on the script run. Target: < 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.300
# page slug: (widget kind, key, value A, value B)
FLIPS = {
    "model": ("multiselect", "model.compare", ["deepseek-v3"], ["deepseek-v3", "qwen3-235b-a22b"]),
    "fit": ("selectbox", "fit.kv", "bf16", "fp8"),
    "performance": ("selectbox", "perf.gpu", "h200-sxm", "b200"),
    "sizing": ("radio", "sizing.kimi-k2.5-chat.purchase", "buy", "rent"),
    "validation": ("multiselect", "val.metrics", None, ["tpot_ms"]),
    "machine": ("selectbox", "machine.suite", "smoke", "full"),
}


def flip(at, page: str, value) -> float:
    kind, key, *_ = FLIPS[page]
    widget = getattr(at, kind)(key=key)
    widget.set_value(value)
    if page == "sizing":  # a form: the change takes effect on submit
        next(b for b in at.button if b.label == "Size it").click()
    t0 = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"{page}: {at.exception[0].value}")
    return dt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from streamlit.testing.v1 import AppTest

    worst = 0.0
    print(f"{'page':12} {'open':>8} {'1st change':>11} {'median':>8} {'p90':>8}  (seconds; cached reruns)")
    for page, (_, _, a, b) in FLIPS.items():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.query_params["page"] = page
        t0 = time.perf_counter()
        at.run()
        opened = time.perf_counter() - t0
        if a is None:  # start from what the page shows
            a = getattr(at, FLIPS[page][0])(key=FLIPS[page][1]).value
        first = flip(at, page, b)
        times = [flip(at, page, a if i % 2 == 0 else b) for i in range(args.repeat)]
        med = statistics.median(times)
        p90 = sorted(times)[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
        worst = max(worst, med)
        print(f"{page:12} {opened:8.3f} {first:11.3f} {med:8.3f} {p90:8.3f}")
    print(f"slowest page median {worst * 1e3:.0f} ms (target {TARGET_S * 1e3:.0f} ms): "
          f"{'OK' if worst < TARGET_S else 'OVER'}; load average {os.getloadavg()[0]:.1f}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
