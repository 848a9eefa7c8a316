"""What a report takes from the other parts of the project: the sizing search's answer for a workload
(planner.sizing.search.size, the CONTRACT.md §7 document) and kernels_bench results (the results store, read through
its owner planner.base.store). A workload the search refuses, or a results file that is missing or unreadable, gives
the caller `None` and a one-line reason to print instead of the section's content.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from planner.base.errors import PlannerError
from planner.base.store import measured_points
from planner.base.yamlio import load_document
from planner.deploy.scenario import plan_label
from planner.report.spec import resolve_path
from planner.sizing.search import size
from planner.sizing.workload import load_workload, workload_from_mapping


def sizing(workload: Any, where: str) -> tuple[dict | None, str]:
    """CONTRACT.md §7 output of `planner size` for a workload file path or an inline mapping (`where` names it in
    error messages: the report file and field)."""
    try:
        if isinstance(workload, Mapping):
            wl = workload_from_mapping(dict(workload), where)
        else:
            wl = load_workload(resolve_path(str(workload)))
        return size(wl), ""
    except PlannerError as err:
        return None, f"sizing refused the workload: {err}"[:300]


def sizing_range(workload: Any, rates: list[float] | None, where: str) -> list[tuple[float | None, dict | None, str]]:
    """`sizing` of a workload at each request rate in `rates` ((rate, document or None, why) each; one run at the
    workload's own traffic when `rates` is empty). A workload file is read once and its traffic replaced."""
    if not rates:
        doc, why = sizing(workload, where)
        return [(None, doc, why)]
    try:
        base = dict(workload) if isinstance(workload, Mapping) else load_document(resolve_path(str(workload)))
    except PlannerError as err:
        return [(rate, None, f"sizing refused the workload: {err}"[:300]) for rate in rates]
    out = []
    for rate in rates:
        traffic = {k: v for k, v in dict(base.get("traffic") or {}).items()
                   if k not in ("requests_per_s", "tokens_per_day", "concurrency")}
        out.append((rate, *sizing({**base, "traffic": {**traffic, "requests_per_s": rate}}, where)))
    return out


def sizing_table(doc: dict) -> pd.DataFrame:
    """One row per ranked plan: hardware, format, parallelism, the main metrics and the cost."""
    rows = []
    for rank, p in enumerate(doc.get("plans") or [], 1):
        hw = p.get("hardware") or {}
        par = p.get("parallelism") or {}
        m = p.get("metrics") or {}
        c = p.get("cost") or {}
        gpus = (hw.get("gpus_per_node") or 0) * (hw.get("nodes") or 1)
        rows.append({"rank": rank, "gpu": hw.get("gpu"), "gpus": gpus,
                     "weights": p.get("weights"), "kv_cache": p.get("kv_cache"),
                     "parallelism": _plan_label(par),
                     "replicas": p.get("replicas"), "tpot_ms": m.get("tpot_ms"), "ttft_ms": m.get("ttft_ms"),
                     "system_output_tokens_per_s": m.get("system_output_tokens_per_s"),
                     "usd_per_hour": c.get("usd_per_hour"), "usd_per_m_output_tokens": c.get("usd_per_m_output_tokens"),
                     "capex_usd": c.get("capex_usd")})
    return pd.DataFrame(rows)


def hardware_types_table(doc: dict) -> pd.DataFrame:
    """One row per priced hardware type of a `size` answer (its by_hardware): the best plan where one meets the
    workload; else why none does and, where its closest miss is priced, that plan as a best effort (one request in
    flight per engine group, planner.sizing.by_type.best_effort)."""
    rows = []
    for h in doc.get("by_hardware") or []:
        e = h.get("best_effort") or {}
        plan = h if h.get("meets_slo") else e
        rows.append({"rank": h.get("rank"), "best_effort_rank": h.get("best_effort_rank"),
                     "hardware_type": h.get("hardware_type"), "vendor": h.get("vendor"),
                     "meets_slo": bool(h.get("meets_slo")), "hardware": plan.get("hardware") or h.get("hardware"),
                     "weights": plan.get("weights"), "engine": plan.get("engine"), "plan": plan.get("plan"),
                     "replicas": plan.get("replicas"), "usd_per_hour": plan.get("usd_per_hour"),
                     "usd_per_m_output_tokens": plan.get("usd_per_m_output_tokens"), "tpot_ms": plan.get("tpot_ms"),
                     "ttft_ms": e.get("ttft_ms"), "why_not": h.get("reason") or ""})
    return pd.DataFrame(rows)


def _plan_label(par: dict) -> str:
    """The plan's label as sizing wrote it, else the one label of its degrees (planner.deploy.scenario.plan_label)."""
    if isinstance(par.get("plan"), str):
        return par["plan"]
    num = lambda key: int(par.get(key) or 1)  # noqa: E731
    return plan_label(num("tp"), num("ep"), num("pp"), num("dp_attention"), int(par.get("expert_layers_on_cpu") or 0))


def bench_points(path: Path) -> tuple[pd.DataFrame | None, str]:
    """Measured kernel runs (case, op, device, measured seconds, FLOP, bytes, intensity, FLOP/s) from the kernels_bench
    results store, read through its owner (planner.base.store.measured_points). None and why when there are none."""
    if not path.is_file():
        return None, f"no kernels_bench results ({path.name} not found): planner points only"
    rows = measured_points(path)
    if not rows:
        return None, f"no successful kernels_bench runs readable in {path.name}: planner points only"
    return pd.DataFrame(rows), ""
