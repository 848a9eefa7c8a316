"""Per-deployment corrections (issue 22): measured / predicted ratios per metric, written by `python -m planner
compare RESULT --calibrate NAME` to profiles/calibration/user/NAME.yaml ($PLANNER_USER_CALIBRATION overrides the
folder), and applied only to a scenario that names one (`correction: NAME`, planner.deploy.scenario_file). Never
applied silently: planner.serving.estimate multiplies the reported metrics that have a ratio (and the per-node
twin of a per-GPU rate) and adds an assumption line saying which correction, from what, and how much each metric
moved. Bottlenecks, the throughput curve, the simulation block and memory stay the model's own.

File (YAML; the first line marks it as the planner's, so `--calibrate` replaces only its own files):
  name, created_utc, source {file, tool, runs}, deployment {model, weights, gpu, gpus, engine, plan},
  ratios {metric: {ratio, runs, measured, predicted}}: ratio = geometric mean of measured / predicted over the
  runs that had both.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, is_file, load_document, require_mapping

HEAD = "# planner correction"  # first line of every file `compare --calibrate` writes
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEPLOYMENT_KEYS = ("model", "weights", "gpu", "gpus", "engine", "plan")
# a ratio also moves the metrics estimate derives from its metric, unless the correction has their own ratio:
# (metric, power of the ratio): a per-GPU rate's per-node twin, and per-user speed = 1 / TPOT (and back)
TWINS = {"prefill_tokens_per_s_per_gpu": (("prefill_tokens_per_s_per_node", 1),),
         "decode_tokens_per_s_per_gpu": (("decode_tokens_per_s_per_node", 1),),
         "tpot_ms": (("output_tokens_per_s_per_user", -1),), "output_tokens_per_s_per_user": (("tpot_ms", -1),)}


@dataclass(frozen=True)
class Correction:
    name: str
    ratios: tuple[tuple[str, float], ...]  # (estimate metric, measured / predicted)
    source: str  # the result file and tool it was fitted on
    deployment: tuple[tuple[str, str], ...]  # what it was measured on (DEPLOYMENT_KEYS)


def user_dir() -> Path:
    return Path(os.environ.get("PLANNER_USER_CALIBRATION") or PROFILES / "calibration" / "user")


def correction_path(name: object, file: str, field: str) -> Path:
    """profiles/calibration/user/<name>.yaml; a name that is not a plain file stem is refused."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise PlannerError(f"{name!r} is not a correction name (letters, digits, '.', '_', '-'; up to 64, not "
                           "starting with '.' or '-')", file=file, field=field)
    return user_dir() / f"{name}.yaml"


def load_correction(name: object, file: str, field: str = "correction") -> Correction:
    path = correction_path(name, file, field)
    if not is_file(path):
        known = sorted(p.stem for p in user_dir().glob("*.yaml")) if user_dir().is_dir() else []
        raise PlannerError(f"no correction {name!r} in {user_dir().name}/ (write one with `python -m planner compare "
                           f"RESULT --calibrate {name}`; known: {', '.join(known) or 'none'})"[:600],
                           file=file, field=field)
    doc = require_mapping(load_document(path), str(path))
    ratios = require_mapping(doc.get("ratios"), str(path), "ratios")
    out = []
    for metric, entry in ratios.items():
        ratio = require_mapping(entry, str(path), f"ratios.{metric}").get("ratio")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or ratio <= 0:
            raise PlannerError(f"expected a positive number, got {ratio!r}", file=str(path),
                               field=f"ratios.{metric}.ratio")
        out.append((str(metric), float(ratio)))
    if not out:
        raise PlannerError("no ratios", file=str(path), field="ratios")
    src = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    dep = doc.get("deployment") if isinstance(doc.get("deployment"), dict) else {}
    return Correction(name=str(name), ratios=tuple(out),
                      source=f"{src.get('tool', '?')} result {src.get('file', '?')}",
                      deployment=tuple((k, str(dep[k])) for k in DEPLOYMENT_KEYS if dep.get(k) is not None))


def apply_correction(corr: Correction, metrics: dict, here: dict | None = None) -> tuple[str, dict]:
    """Multiply `metrics` (in place) by the correction's ratios. Returns (assumption line, {metric: {before,
    after, ratio}}); `here`: this scenario's DEPLOYMENT_KEYS, to say where it differs from the calibrated one."""
    ratios = dict(corr.ratios)
    moved = {}
    for metric, ratio in corr.ratios:
        for key, power in ((metric, 1), *TWINS.get(metric, ())):
            if (key == metric or key not in ratios) and metrics.get(key) is not None:
                before = metrics[key]
                metrics[key] = before * ratio ** power
                moved[key] = {"before": before, "after": metrics[key], "ratio": ratio ** power}
    what = "; ".join(f"{k} x{m['ratio']:.3g} ({m['before']:,.4g} -> {m['after']:,.4g})" for k, m in moved.items())
    line = (f"correction {corr.name} (calibration/user/{corr.name}.yaml, measured/predicted on {corr.source}) "
            f"applied to the reported metrics: {what or 'none of its metrics were predicted here'}; bottlenecks, "
            "the throughput curve and the simulation block are uncorrected")
    differs = [f"{k} {v} (this scenario: {here.get(k)})" for k, v in corr.deployment
               if here is not None and k in here and str(here[k]) != v]
    if differs:
        line += f"; it was calibrated on another deployment: {', '.join(differs)}"
    return line, moved
