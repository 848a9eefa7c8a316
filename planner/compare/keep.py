"""What `compare` keeps: its runs in the result store (planner.base.store, tables compared / compared_metrics; the
dashboard's validation page reads them) and, with `--calibrate NAME`, a per-deployment correction
(planner.deploy.correction): measured / predicted per metric, written to profiles/calibration/user/NAME.yaml and
applied only to scenarios that name it (`correction: NAME`).

Metric names map onto estimate's: `itl_ms` -> `tpot_ms` (only where the run has no `tpot_ms` of its own),
`prefill_tokens_per_s` -> `prefill_tokens_per_s_per_gpu` and `request_throughput_per_s` ->
`system_output_tokens_per_s` (only where the run has no such rate of its own); the predictions compare makes of them
are those metrics times a constant (planner.compare.run), so the ratio carries over. `kv_tokens_per_gpu` (memory) is
never corrected. Over several runs of one file a metric's ratio is the geometric mean.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import yaml

from planner.base.errors import PlannerError
from planner.base.escape import terminal
from planner.base.outputs import write_file
from planner.base.store import Store
from planner.deploy.correction import HEAD, correction_path
from planner.deploy.scenario import plan_label

AS = {"itl_ms": "tpot_ms", "prefill_tokens_per_s": "prefill_tokens_per_s_per_gpu",
      "request_throughput_per_s": "system_output_tokens_per_s"}
NEVER = ("kv_tokens_per_gpu",)


def _plan(s: dict) -> str:
    p = s["parallelism"]
    return plan_label(p["tp"], p["ep"], p["pp"], p["dp_attention"])


def keep(doc: dict, path: Path) -> dict:
    """Write the estimated runs of a compare document into the store at `path`; {store, rows}."""
    runs = []
    for r in doc["runs"]:
        if "error" in r:
            continue
        s = r["scenario"]
        runs.append({"label": r["label"], "model": s["model"], "engine": s["engine"], "scenario": r["input"],
                     "hardware": f"{s['gpus']} x {s['gpu'] or 'CPU'} ({_plan(s)})", "metrics": r["metrics"]})
    with Store(path) as store:
        n = store.add_compared(doc["format"], Path(doc["file"]).name, runs)
    return {"store": str(path), "rows": n}


def _key(metric: str, own: set[str]) -> str | None:
    if metric in NEVER:
        return None
    key = AS.get(metric, metric)
    return None if key != metric and key in own else key


def calibrate(name: str, doc: dict) -> dict:
    """Fit measured / predicted per metric over the document's runs, write the correction file, and say how it
    moves each prediction: {name, file, ratios {metric: {ratio, runs}}, moved [{label, metric, predicted,
    corrected, error, error_corrected}]}."""
    path = correction_path(name, doc["file"], "--calibrate")
    logs: dict[str, list[float]] = {}
    per: dict[str, list[dict]] = {}
    for r in doc["runs"]:
        own = {row["metric"] for row in r.get("metrics", [])}
        for row in r.get("metrics", []):
            key = _key(row["metric"], own)
            if key and row["predicted"] and row["measured"] and row["predicted"] > 0 and row["measured"] > 0:
                logs.setdefault(key, []).append(math.log(row["measured"] / row["predicted"]))
                per.setdefault(key, []).append({"run": r["label"], "measured": row["measured"],
                                                "predicted": row["predicted"]})
    if not logs:
        raise PlannerError("no metric has both a measured and a predicted value: nothing to calibrate",
                           file=doc["file"], field="--calibrate")
    ratios = {k: math.exp(sum(v) / len(v)) for k, v in logs.items()}
    first = next(r for r in doc["runs"] if "error" not in r)
    s = first["scenario"]
    body = {
        "name": name, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"file": Path(doc["file"]).name, "tool": doc["format"],
                   "runs": [r["label"] for r in doc["runs"] if "error" not in r]},
        "deployment": {"model": s["model"], "weights": s["weights"], "gpu": s["gpu"], "gpus": s["gpus"],
                       "engine": s["engine"], "plan": _plan(s)},
        "ratios": {k: {"ratio": round(ratios[k], 6), "runs": len(per[k]), "points": per[k]} for k in ratios},
    }
    text = (f"{HEAD}: written by `python -m planner compare {Path(doc['file']).name} --calibrate {name}`; applied "
            f"only to a scenario with `correction: {name}`\n" + yaml.safe_dump(body, sort_keys=False))
    write_file(path, text, field="--calibrate", inputs=[doc["file"]], ours=lambda head: head.startswith(HEAD.encode()))
    moved = []
    for r in doc["runs"]:
        for row in r.get("metrics", []):
            key = AS.get(row["metric"], row["metric"])  # itl_ms moves with tpot_ms's ratio, as estimate applies it
            if row["predicted"] is None or row["metric"] in NEVER or key not in ratios:
                continue
            corrected = row["predicted"] * ratios[key]
            moved.append({"label": r["label"], "metric": row["metric"], "predicted": row["predicted"],
                          "corrected": corrected, "ratio": ratios[key], "error": row["error"],
                          "error_corrected": corrected / row["measured"] - 1 if row["measured"] else None})
    return {"name": name, "file": str(path), "ratios": {k: {"ratio": v, "runs": len(per[k])} for k, v in
                                                         ratios.items()}, "moved": moved}


def lines(doc: dict) -> list[str]:
    """The text lines for the store and calibration parts of a compare document."""
    out = []
    if doc.get("stored"):
        out.append(f"kept {doc['stored']['rows']} metric(s) in the result store {terminal(doc['stored']['store'])} "
                   "(dashboard: Validation page; --no-store to skip)")
    cal = doc.get("calibration")
    if cal:
        out.append(f"correction {cal['name']} written to {terminal(cal['file'])}: applied only to a scenario with "
                   f"`correction: {cal['name']}`; it moves the predictions:")
        for m in cal["moved"]:
            err = "" if m["error_corrected"] is None else f" (error {m['error']:+.0%} -> {m['error_corrected']:+.0%})"
            out.append(f"    {terminal(m['label'][:28]):28s} {m['metric']:30s} x{m['ratio']:.3g}: "
                       f"{m['predicted']:,.2f} -> {m['corrected']:,.2f}{err}")
    return out
