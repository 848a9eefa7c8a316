"""Pareto fronts of the sizing search's feasible plans (cost vs throughput, cost vs latency), and the ranked plans
without KV-dtype twins."""

from __future__ import annotations

import math

import numpy as np

# the Pareto fronts: (cost, value, maximize value) as columns of `columns`
FRONTS = {"cost_vs_throughput": ("usd_per_hour_per_replica", "output_tokens_per_s_per_replica", True),
          "cost_vs_latency": ("usd_per_m_output_tokens", "tpot_ms", False)}


# the figures the fronts compare, as `columns` names them (read per row; a front never needs the hardware label)
_VALUE = {"usd_per_hour_per_replica": lambda r: r.cost.usd_per_hour,
          "output_tokens_per_s_per_replica": lambda r: r.cap.out_per_s,
          "usd_per_m_output_tokens": lambda r: r.usd_per_m_output, "tpot_ms": lambda r: r.tpot_op_s * 1e3}


def columns(r) -> dict:
    """One feasible plan as a table row (an estimate unless `exact`)."""
    return {"model": r.cand.model, "hardware": r.cand.hw.label(), "weights": r.cand.weights,
            "kv_cache": r.cand.kv_cache, "engine": r.cand.engine, "plan": r.cand.plan, "replicas": r.replicas,
            "usd_per_hour_per_replica": _VALUE["usd_per_hour_per_replica"](r),
            "output_tokens_per_s_per_replica": _VALUE["output_tokens_per_s_per_replica"](r),
            "usd_per_hour": r.usd_per_hour, "usd_per_m_output_tokens": _VALUE["usd_per_m_output_tokens"](r),
            "tpot_ms": _VALUE["tpot_ms"](r), "exact": r.cap.exact}


def front(rows, cost: str, value: str, maximize: bool) -> list[int]:
    """Pareto front: indices of the rows no other row beats on both `cost` (lower) and `value` (higher if
    `maximize`), by cost, then value best first. A search has thousands of rows and asks for its fronts once per
    simulation round: arrays, not a table."""
    if not rows:
        return []
    c = np.array([_VALUE[cost](r) for r in rows], dtype=float)
    v = np.array([_VALUE[value](r) for r in rows], dtype=float)
    keep, best = [], -math.inf if maximize else math.inf
    for i in np.lexsort((-v if maximize else v, c)).tolist():  # NaN last, never kept (a comparison with it fails)
        if (v[i] > best) if maximize else (v[i] < best):
            keep.append(i)
            best = v[i]
    return keep


def fronts(rows) -> dict[str, list[int]]:
    """Each front's row indices (FRONTS)."""
    return {name: front(rows, *spec) for name, spec in FRONTS.items()}


def pareto_rows(rows) -> list:
    """Rows on either front (by the screen), so that the reported fronts are re-evaluated exactly."""
    picked = set()
    for f in fronts(rows).values():
        picked.update(f)
    return [rows[i] for i in sorted(picked)]


def distinct(rows) -> list:
    """Ranked rows without plans that differ from a better one only in KV dtype."""
    seen, out = set(), []
    for r in rows:
        key = (r.cand.model, r.cand.hw.label(), r.cand.weights, r.cand.engine, r.cand.plan)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out
