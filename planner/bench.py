"""Planner speed benchmark: one `estimate` after import (target < 50 ms), run by `make bench-planner`.

    python -m planner.bench [SCENARIO.yaml]
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    from planner.deploy.scenario_file import load_scenario
    from planner.serving.estimate import estimate

    imported = time.perf_counter() - t0
    path = (argv or sys.argv[1:] or ["profiles/scenarios/kimi-k2.5-int4-8xh200.yaml"])[0]
    t0 = time.perf_counter()
    estimate(load_scenario(path))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        estimate(load_scenario(path))
        runs.append(time.perf_counter() - t0)
    runs.sort()
    print(f"estimate {path}: import {imported * 1e3:.0f} ms, first call {first * 1e3:.1f} ms (profiles read), "
          f"then median {runs[len(runs) // 2] * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
