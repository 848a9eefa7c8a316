"""What `kernels_bench calibrate` refuses, so that an absurd fit never replaces the published defaults.

A calibration file overlays every estimate on its device (planner.hardware.efficiency.efficiency_for), so each
refusal below ends the command with exit 2 and one line naming the store and the run(s), and leaves the previous
file as it was:
- a timing that is not a finite positive number of seconds (negative, zero, infinite, NaN read back as NULL);
- a fit whose held-out median error exceeds MAX_HOLDOUT_MEDIAN_ABS_ERROR, or that could not be held out at all;
- a fitted fraction of a peak outside (0, 1], or a launch floor that is not a finite positive time;
- a target file that is a symbolic link, a folder, or a file calibrate did not write (planner.base.outputs).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.outputs import write_file
from planner.hardware.efficiency import Efficiency, _read, efficiency_for

# A calibration replaces the published defaults in every estimate on its device, so a poor fit does harm. The shipped
# CPU calibration holds its whole-layer runs out at a median 11.7% (p90 34%), a synthetic store with 5% noise at
# under 15%. A median over 50% means the fit misses half of a typical held-out layer's time: the timings and the
# planner's op records disagree (wrong units, a broken timer, a device under other load; timings x1e30 give 100%,
# x1e-30 give 1.6e29), and such a file would move every estimate of the device by more than it knows.
MAX_HOLDOUT_MEDIAN_ABS_ERROR = 0.5
HEADER = "# Written by `python -m kernels_bench"  # how calibrate and import-silicon recognise a file they wrote


def timing(store, row) -> float:
    """The row's measured seconds; anything but a finite positive number is refused, naming the store and run."""
    t = row["measured_s"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise PlannerError(f"run {row['run_id']}, case {row['case_name']!r}: measured_s {t!r} is not a finite "
                           "positive time; refusing to calibrate from it", file=str(store.path), field="--store")
    return float(t)


def check_fit(eff: Efficiency, kinds: list[str], holdout_median: float, which: str, store) -> None:
    """Refuse a fit that should not replace the defaults: held out too poorly (or not at all), or a fraction
    outside (0, 1] / a floor that is not a finite positive time."""
    def refuse(why: str) -> PlannerError:
        return PlannerError(f"{which}: {why}; nothing written", file=str(store.path), field="--run")

    if not math.isfinite(holdout_median):
        raise refuse("no whole-layer run could be held out (one shape group?), so the fit cannot be checked")
    if holdout_median > MAX_HOLDOUT_MEDIAN_ABS_ERROR:
        raise refuse(f"held-out median error {holdout_median:.3g} exceeds {MAX_HOLDOUT_MEDIAN_ABS_ERROR:g} "
                     "(kernels_bench/calibration_guard.py MAX_HOLDOUT_MEDIAN_ABS_ERROR): the timings and the "
                     "planner's op records disagree")
    for kind in kinds:
        e = eff.ops[kind]
        for part, curve in (("compute", e.compute), ("memory", e.memory)):
            bad = [f for _, f in curve.points if not (math.isfinite(f) and 0 < f <= 1)]
            if bad:
                raise refuse(f"fitted {kind} {part} fraction {bad[0]:.3g} is outside (0, 1]")
        if not (math.isfinite(e.floor_s) and e.floor_s > 0):
            raise refuse(f"fitted {kind} floor {e.floor_s!r} s is not a finite positive time")


def write_calibration(path: Path, text: str) -> None:
    """Check that the planner loads `text` (from a scratch copy), then write it with planner.base.outputs.write_file
    (a temporary sibling renamed over the target; never through a link, never over a file calibrate did not
    write): a refused, failed or killed calibration leaves the previous file as it was."""
    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / path.name
        trial.write_text(text)
        _read(trial, efficiency_for(None))  # raises PlannerError when the planner would not load it
    write_file(path, text, field="--out", ours=lambda head: head.startswith(HEADER.encode()))
