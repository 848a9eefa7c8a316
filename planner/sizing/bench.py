"""`planner size` speed: search time (wall and CPU, first call and warm) and plans per second for one workload,
bought and rented (issue 18's target: the Kimi K2.5 chat workload over the whole catalog).

    python -m planner.sizing.bench [WORKLOAD.yaml]
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from planner.sizing.search import size
from planner.sizing.workload import load_workload


def bench(path: str) -> int:
    """Search time (wall and CPU, first call and warm) and plans per second for one workload, bought and rented."""
    wl = load_workload(path)
    for purchase in ("buy", "rent"):
        w = replace(wl, purchase=purchase)
        t0 = time.perf_counter()
        size(w)  # first call: profiles read, caches filled
        first = time.perf_counter() - t0
        walls, cpus = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            doc = size(w)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        dt = min(walls)
        s = doc["summary"]
        best = doc["plans"][0]["hardware"]["label"] if doc["plans"] else "-"
        print(f"{wl.name} ({purchase}, {', '.join(w.classes)}): {s['candidates']:,} candidates "
              f"({s['passed_static_checks']:,} past static checks, {s['fit_memory']:,} fit memory, "
              f"{s['feasible']:,} meet the SLO, {s['exact_evaluated']} exact); best {best}")
        print(f"  {dt:.2f} s wall (best of 3; first call {first:.2f} s), this process {min(cpus):.2f} s CPU "
              f"+ one forked worker; {s['candidates'] / dt:,.0f} plans/s; load average {os.getloadavg()[0]:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--bench"]
    return bench(args[0] if args else "profiles/workloads/kimi-k2.5-chat.yaml")


if __name__ == "__main__":
    sys.exit(main())
