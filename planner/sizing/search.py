"""`python -m planner size WORKLOAD.yaml`: the cheapest hardware plans that carry a workload within its SLOs.

1. candidates (planner/sizing/candidates.py): hardware x format x KV dtype x engine x parallel plan, with the checks
   that
   need no model (engine support, total weights vs total memory, price, budget);
2. memory: the scalar memory model once per distinct plan (workstations: the fewest MoE layers in host RAM that
   let the GPU hold the rest, then the smallest host RAM size that holds it; CPU servers: the smallest RAM);
3. capacity at the SLO: vectorized screen for GPU plans (planner/sizing/capacity.py), the scalar serving model for
   host-bound plans and for every plan that is reported (the best by the screen and the Pareto points);
4. replicas for the traffic, cost, ranking by the objective, Pareto fronts (planner/sizing/answer.py).

    python -m planner.sizing.bench [WORKLOAD.yaml]   # search time and plans per second (make bench-planner)
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields, replace

import numpy as np

from planner.base import limits
from planner.base.errors import PlannerError
from planner.deploy.memory import MemoryReport, memory_report
from planner.deploy.scenario import Scenario
from planner.model.models import load_model
from planner.serving.point import Limits, replica_groups
from planner.serving.serve import serve_point
from planner.sizing.answer import document
from planner.sizing.by_type import closer, hw_type, missed_types
from planner.sizing.candidates import Candidate, acceptable_formats, enumerate_candidates
from planner.sizing.capacity import (
    SCREEN_BATCH,
    Capacity,
    capacities,
    exact_capacity,
    out_per_s,
    replicas_needed,
    running_for,
)
from planner.sizing.cost import UnitCost
from planner.sizing.fits import answer as fits_answer
from planner.sizing.fits import plan_fits
from planner.sizing.fitting import build, fit_group, memory_groups
from planner.sizing.pareto import pareto_rows
from planner.sizing.rejections import Rejections
from planner.sizing.simulated import simulate_reported
from planner.sizing.workload import SizingWorkload

EXACT_MIN = 12  # plans the scalar model re-evaluates at least (the best by the screen)
EXACT_PER_TOP = 3  # ... and at least this many per reported plan
PARALLEL_MIN_GROUPS = 64  # memory groups below which a second process is not worth its start
# `python -m planner size` answers within this many seconds by default: a one-model workload takes 2-5 s on a 2-core
# machine, the whole catalog at max_nodes 64 minutes; past it the answer is partial and says what it left out
DEFAULT_BUDGET_S = 15.0
Progress = Callable[[int, int], None]  # (candidate groups done, groups in all)


@dataclass
class Row:
    """One feasible plan: candidate, one replica's cost, its scenario and memory, capacity at the SLO."""

    cand: Candidate
    cost: UnitCost
    sc: Scenario | None  # None when a worker process evaluated the row (rebuilt by `ensure`)
    mem: MemoryReport | None
    cap: Capacity
    curve: tuple = ()  # vectorized screen: (running per group, TPOT s, output tokens/s per replica) arrays
    replicas: int = 0
    out_served: float = 0.0  # output tokens/s the whole deployment serves
    tpot_op_s: float = 0.0  # TPOT at the operating point (traffic / replicas)
    usd_per_hour: float = 0.0
    capex: float = 0.0
    extra: dict = field(default_factory=dict)

    def ensure(self, wl: SizingWorkload) -> Row:
        """Scenario and memory report, rebuilt when the row came from a worker process."""
        if self.sc is None:
            self.sc = build(self.cand, wl)
            self.mem = memory_report(self.sc)
        return self

    @property
    def usd_per_m_output(self) -> float:
        return self.usd_per_hour / (self.out_served * 3600) * 1e6 if self.out_served > 0 else float("inf")

    def key(self, objective: str) -> tuple:
        """Ranking: plans on a published checkpoint first (the others need the user's own quantization: work, and
        an accuracy nobody has measured), then the objective, then ties broken by cost, latency and size."""
        first = {"usd_per_m_tokens": self.usd_per_m_output, "usd_per_hour": self.usd_per_hour,
                 "capex": self.capex, "latency": self.tpot_op_s}[objective]
        return (not self.cand.published, first, self.usd_per_hour, self.tpot_op_s, self.cand.hw.gpus * self.replicas,
                self.cand.hw.label(), self.cand.weights, self.cand.kv_cache, self.cand.engine, self.cand.plan)


# what `settle` sets on a Row (refine copies them from a worker): every field but the plan, its scenario and capacity
_SETTLED = tuple(f.name for f in fields(Row) if f.name not in ("cand", "cost", "sc", "mem", "cap", "curve"))


def _slo_reject(cand: Candidate, cost: UnitCost, sc: Scenario, limits: Limits, rej: Rejections,
                tried: dict) -> None:
    """Count a plan that misses the SLO even with one request in flight, with the exact numbers at batch 1, and
    keep the closest miss of its hardware type in `tried`, with what it serves and costs there (by_type.best_effort)."""
    pt = serve_point(sc, 1.0, tails_too=False)  # the miss is reported at the means
    hw = cand.hw.label()
    if limits.tpot_s is not None and pt.tpot_s > limits.tpot_s:
        note = ""
        if pt.step.host_s > 0.5 * pt.step.seconds and sc.host is not None:
            other = pt.step.seconds - pt.step.host_s
            have = sc.host.memory_bandwidth_bytes_per_s
            if other < limits.tpot_s:
                need = have * pt.step.host_s / (limits.tpot_s - other)
                note = f"host experts need {need / 1e12:,.1f} TB/s, the host has {have / 1e9:,.0f} GB/s"
        rej.slo(hw, "TPOT", pt.tpot_s, limits.tpot_s, note)
        miss = ("TPOT", pt.tpot_s, limits.tpot_s)
    else:
        rej.slo(hw, "TTFT", pt.ttft_s, limits.ttft_s or 0.0)
        miss = ("TTFT", pt.ttft_s, limits.ttft_s or 0.0)
    closer(tried, hw_type(cand), {
        "metric": miss[0], "value": miss[1], "limit": miss[2], "hardware": hw, "weights": cand.weights,
        "engine": cand.engine, "plan": cand.plan, "ttft_s": pt.ttft_s, "tpot_s": pt.tpot_s,
        "groups": replica_groups(sc), "out_per_s": out_per_s(sc, 1.0, pt.step.seconds),
        "usd_per_hour": cost.usd_per_hour, "capex_usd": cost.capex_usd, "published": cand.published})


def settle(row: Row, wl: SizingWorkload) -> None:
    """Replicas for the traffic, traffic served, running batch and TPOT at the operating point (traffic spread over
    the replicas), cost of the deployment. Estimated rows read the screen's curve; exact rows the scalar model."""
    row.replicas = replicas_needed(wl.traffic.output_tokens_per_s, wl.traffic.concurrency, row.cap, row.sc)
    resettle(row, wl)


def resettle(row: Row, wl: SizingWorkload) -> None:
    """Cost, traffic served and TPOT at the operating point of `row.replicas` replicas."""
    out_needed, users = wl.traffic.output_tokens_per_s, wl.traffic.concurrency
    row.usd_per_hour = row.cost.usd_per_hour * row.replicas
    row.capex = row.cost.capex_usd * row.replicas
    per_group = None if users is None else users / (row.replicas * replica_groups(row.sc))
    if not row.cap.exact:
        running, tpot, out = row.curve
        if per_group is not None:
            row.tpot_op_s = float(np.interp(per_group, running, tpot))
            row.out_served = float(np.interp(per_group, running, out)) * row.replicas
        else:
            # TPOT where the curve serves the replica's share (between grid points, not the next one up)
            row.tpot_op_s = float(np.interp(out_needed / row.replicas, np.maximum.accumulate(out), tpot))
            row.out_served = out_needed
        return
    r = per_group if per_group is not None else running_for(row.sc, row.cap, out_needed / row.replicas)
    pt = serve_point(row.sc, r)
    row.extra["running_op"] = r
    row.tpot_op_s = pt.tpot_s
    row.out_served = out_per_s(row.sc, r, pt.step.seconds) * row.replicas if per_group is not None else out_needed


def _budget_reason(row: Row, wl: SizingWorkload) -> str:
    nodes = row.cand.hw.nodes * row.replicas
    if nodes > limits.MAX_GPUS:  # a scenario refuses more nodes (planner.base.limits): say why the plan is out
        return f"{row.replicas:,} replicas ({nodes:,} nodes) exceed the {limits.MAX_GPUS:,}-node limit"
    if wl.budget_capex_usd is not None and row.capex > wl.budget_capex_usd:
        return f"{row.replicas} replicas cost {row.capex:,.0f} USD, above the {wl.budget_capex_usd:,.0f} USD budget"
    if wl.budget_usd_per_hour is not None and row.usd_per_hour > wl.budget_usd_per_hour:
        return (f"{row.replicas} replicas cost {row.usd_per_hour:,.2f} USD/h, above the "
                f"{wl.budget_usd_per_hour:,.2f} USD/h budget")
    return ""


def _work(tasks: list, wl: SizingWorkload, keep: bool, deadline: float | None = None,
          progress: Progress | None = None) -> tuple[list[Row], Rejections, int, list, dict]:
    """Memory fit and capacity of some candidate groups: feasible rows (with their scenario and memory report when
    `keep`; a worker process returns them without), rejections, how many candidates fit memory, the groups left
    unsearched when the `deadline` (time.monotonic) passed, and the hardware types tried (by_type.closer)."""
    rej, tried = Rejections(), {}
    limits = Limits.of(dict(wl.slo))
    rows, n_fit, pending = [], 0, []

    def flush():  # the pending plans' capacities: the vectorized screen takes its plans SCREEN_BATCH at a time
        got = capacities([(sc, mem) for _, _, sc, mem in pending], limits)
        for (cand, cost, sc, mem), one in zip(pending, got, strict=True):
            if isinstance(one, PlannerError):  # a profile lacks a figure the speed model needs (e.g. a null peak)
                rej.add(f"{one.message}: the speed model cannot time this hardware", "hardware data")
                continue
            cap, curve = one
            if cap is None:
                _slo_reject(cand, cost, sc, limits, rej, tried)
                continue
            row = Row(cand, cost, sc, mem, cap, curve)
            settle(row, wl)
            reason = _budget_reason(row, wl)
            if reason:
                rej.add(reason, "budget")
                continue
            if not keep:
                row.sc = row.mem = None
            rows.append(row)
        pending.clear()

    for k, (kind, items) in enumerate(tasks):
        if deadline is not None and time.monotonic() > deadline:
            flush()
            return rows, rej, n_fit, tasks[k:], tried
        if progress is not None:
            progress(k, len(tasks))
        for cand, _ in items:
            closer(tried, hw_type(cand), None, (cand.hw.label(),))
        for fitted in fit_group(kind, items, wl, rej):
            n_fit += 1
            pending.append(fitted)
        if len(pending) >= SCREEN_BATCH:
            flush()
    flush()
    return rows, rej, n_fit, [], tried


def _fork_pool():
    """A one-worker process pool that inherits this process's warm caches (fork), or None where fork is missing
    or unsafe: forking a multi-threaded process (a Streamlit script thread, a server) can deadlock the child,
    so only the main thread forks."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_die_with_parent, initargs=(os.getpid(),))
    except (ImportError, ValueError, OSError):
        return None


def _die_with_parent(parent: int) -> None:
    """The forked worker ends when the process that forked it does (killed by `timeout`, a closed terminal), not
    after its current task: Linux's prctl(PR_SET_PDEATHSIG = 1, SIGTERM); elsewhere it finishes the task first."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(0)


def evaluate(wl: SizingWorkload, workers: int = 2, deadline: float | None = None,
             progress: Progress | None = None) -> tuple[list[Row], Rejections, dict]:
    """Every feasible plan (capacity estimated or exact), the rejections, and counters of the search (with
    `hardware_tried`, the hardware types that reached the memory check: their labels and closest SLO miss, which
    `size` takes out). With
    `workers` 2 and enough groups, a forked worker takes every other group while this process does the rest. Groups
    not reached by the `deadline` are listed in the counters (`not_searched`) instead."""
    rej = Rejections()
    static = defaultdict(int)
    pool = enumerate_candidates(wl, static)
    rej.merge(static)
    tasks = memory_groups(pool)
    executor = _fork_pool() if workers > 1 and len(tasks) >= PARALLEL_MIN_GROUPS else None
    if executor is None:
        parts = [_work(tasks, wl, True, deadline, progress)]
    else:
        with executor:
            future = executor.submit(_work, tasks[1::2], wl, False, deadline)
            parts = [_work(tasks[0::2], wl, True, deadline, _halved(progress)), future.result()]
    rows, n_fit, left, tried = [], 0, [], {}
    for part_rows, part_rej, part_fit, part_left, part_tried in parts:
        for kind, entry in part_tried.items():
            closer(tried, kind, entry["slo"], entry["labels"])
        rows += part_rows
        rej.absorb(part_rej)
        n_fit += part_fit
        left += part_left
    stats = {"candidates": len(pool) + sum(static.values()), "passed_static_checks": len(pool),
             "fit_memory": n_fit, "feasible": len(rows), "partial": bool(left), "not_searched": _unsearched(left)}
    stats["hardware_tried"] = tried
    return rows, rej, stats


def _halved(progress: Progress | None) -> Progress | None:
    """Progress of this process's half of the groups, reported as progress over all of them."""
    return None if progress is None else (lambda k, n: progress(2 * k, 2 * n))


def _unsearched(groups: list) -> list[str]:
    """What a search stopped by its time budget left out: candidate plans per model and hardware, most first."""
    count: dict[str, int] = defaultdict(int)
    for _, items in groups:
        for cand, _ in items:
            count[f"{cand.model} on {cand.hw.label()}"] += 1
    return [f"{where}: {n:,} candidate plan(s)" for where, n in sorted(count.items(), key=lambda kv: -kv[1])]


def _exact_settled(cand: Candidate, cost: UnitCost, sc: Scenario | None, mem: MemoryReport, wl: SizingWorkload,
                   hint: float) -> tuple[Capacity | None, tuple]:
    """Refine's work on one plan (`sc` None: built here, in a pool worker): its exact capacity from the screen's
    `hint` and, when it has one, the _SETTLED fields of the plan settled there."""
    sc = build(cand, wl) if sc is None else sc
    cap = exact_capacity(sc, mem, Limits.of(dict(wl.slo)), hint=hint)
    if cap is None:
        return None, ()
    done = Row(cand, cost, sc, mem, cap)
    settle(done, wl)
    return cap, tuple(getattr(done, name) for name in _SETTLED)


def refine(rows: list[Row], wl: SizingWorkload, rej: Rejections, extra: list[Row] = (),
           tried: dict | None = None, pool=None) -> list[Row]:
    """The best rows (and `extra`) re-evaluated by the scalar serving model (every other one in a `pool` worker)."""
    limits = Limits.of(dict(wl.slo))
    rows.sort(key=lambda r: r.key(wl.objective))
    chosen = rows[:max(EXACT_MIN, EXACT_PER_TOP * wl.top)]
    chosen += [r for r in extra if r not in chosen]
    need = [r for r in chosen if not r.ensure(wl).cap.exact]  # every chosen row gets its scenario here
    theirs = need[1::2] if pool is not None else []
    futures = {id(r): pool.submit(_exact_settled, r.cand, r.cost, None, r.mem, wl, r.cap.running) for r in theirs}
    done = {id(r): _exact_settled(r.cand, r.cost, r.sc, r.mem, wl, r.cap.running) for r in need if id(r) not in futures}
    done.update({key: f.result() for key, f in futures.items()})
    exact = []
    for row in chosen:
        if not row.cap.exact:
            cap, settled = done[id(row)]
            if cap is None:
                _slo_reject(row.cand, row.cost, row.sc, limits, rej, {} if tried is None else tried)
                rows.remove(row)
                continue
            row.cap = cap
            for name, value in zip(_SETTLED, settled, strict=True):
                setattr(row, name, value)
            reason = _budget_reason(row, wl)
            if reason:
                rej.add(reason, "budget")
                rows.remove(row)
                continue
        exact.append(row)
    exact.sort(key=lambda r: r.key(wl.objective))
    return exact


def size(wl: SizingWorkload, budget_s: float | None = None, progress: Progress | None = None) -> dict:
    """The `size --json` document (CONTRACT.md §7). With `budget_s`, the search stops taking new candidate groups
    when that many seconds have passed and answers with what it found: `summary.partial` is true and
    `summary.not_searched` lists the candidates it did not reach. `progress(done, total)` is called per group."""
    t0 = time.perf_counter()
    deadline = None if budget_s is None else time.monotonic() + budget_s
    rows, rej, stats = evaluate(wl, deadline=deadline, progress=progress)
    tried = stats.pop("hardware_tried")
    pool = _fork_pool()
    try:
        exact = refine(rows, wl, rej, pareto_rows(rows), tried, pool)
        stats["simulated"] = simulate_reported(rows, exact, wl, rej, lambda r: resettle(r, wl), pool)
    finally:
        if pool is not None:
            pool.shutdown()
    stats["exact_evaluated"] = len(exact)
    doc = document(wl, rows, exact, rej, stats, time.perf_counter() - t0,
                   missed_types(wl, rej, tried, stats["partial"]))
    if wl.purchase == "owned" and not any(p["checkpoint"]["published"] for p in doc["plans"]):
        # owned hardware with no plan, or plans only on checkpoints the user would quantize themselves: what fits
        # (with a published checkpoint, where plans on other formats exist)
        if not doc["plans"]:
            doc["fits"] = what_fits(wl, deadline)
        elif published := _published_formats(wl):
            doc["fits"] = {**what_fits(replace(wl, weights=published), deadline), "published_only": True,
                           "formats_searched": list(published)}
        doc["summary"]["seconds"] = time.perf_counter() - t0
    return doc


def _published_formats(wl: SizingWorkload) -> tuple[str, ...]:
    """The workload's acceptable formats someone publishes a checkpoint in, for any of its models."""
    models = [load_model(m) for m in wl.models]
    return tuple(f for f in acceptable_formats(wl) if any(m.checkpoint(f) for m in models))


def what_fits(wl: SizingWorkload, deadline: float | None = None) -> dict:
    """Owned hardware that carries no plan at the workload's context: the largest context and the formats that fit
    (planner.sizing.fits), and the best plan sized at that context (the same search, context_len lowered)."""
    pool = enumerate_candidates(wl, defaultdict(int))
    fits, left = plan_fits(pool, wl, deadline)
    out = fits_answer(fits, wl, left)
    top = out["largest_context"]
    if top >= wl.context_len:
        out["plan_note"] = (f"the memory holds {wl.context_len:,} tokens ({', '.join(out['formats_at_requested'])}) "
                            "but no plan meets the SLO there (rejections above)")
    elif top < out["request_tokens"]:
        out["plan_note"] = (f"not even one request of the workload ({out['request_tokens']:,} tokens) fits: "
                            "shorter requests, a smaller format or more memory")
    else:
        left_s = None if deadline is None else max(1.0, deadline - time.monotonic())
        there = size(replace(wl, context_len=top), budget_s=left_s)
        if there["plans"]:
            out["plan"] = there["plans"][0]
            if out["plan"]["replicas"] > 1:
                out["plan_note"] = (f"the traffic needs {out['plan']['replicas']} copies of this hardware at "
                                    f"{top:,} tokens")
        else:
            first = next(iter(there["rejected"]), "")
            out["plan_note"] = f"at {top:,} tokens no plan meets the SLO either" + (f" ({first})" if first else "")
    return out
