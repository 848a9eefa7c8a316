"""Sizing's reported plans re-run in the serving simulator (issue 18 item 2).

The search ranks thousands of plans with closed forms (the vectorized screen, then the scalar serving model for the
best and the Pareto points: planner.sizing.search). The plans it reports are then simulated at their operating
point (planner.serving.sim), and the SLO is judged on the simulation: a latency SLO at a percentile on that
percentile of the simulated requests, otherwise on their mean. A plan the simulation finds missing the SLO gets one
more replica at a time (its traffic spread over more copies) until it meets it, up to MAX_ADDED replicas; past that
it is dropped with the simulated miss as its reason.

One replica is simulated (replicas share traffic evenly and do not interact):
- traffic as a request rate: an open loop of Poisson arrivals at rate / replicas (production requests arrive
  independently), RATE_PROMPTS requests;
- traffic as users (concurrency): a closed loop of users / replicas requests in flight, PROMPTS_PER_USER requests
  per user. Production requests are not all the same length; with equal lengths a closed loop keeps its requests in
  step (planner.serving.sim), so lengths here vary uniformly by +-LENGTH_SPREAD around the workload's means.
  APPROXIMATE: the spread is an assumption, not read from the workload.
"""

from __future__ import annotations

from math import ceil, floor

import numpy as np

from planner.serving.client import Client, Lengths
from planner.serving.sim import simulate
from planner.sizing.fitting import build
from planner.sizing.pareto import distinct, pareto_rows
from planner.sizing.rejections import Rejections
from planner.sizing.workload import SizingWorkload

RATE_PROMPTS = 400  # requests per simulated open-loop run (a p99 rests on its 4 slowest: approximate)
PROMPTS_PER_USER = 6  # closed loop: requests per user (the first, sent together, are 1/6 of the run)
MAX_PROMPTS = 3000  # a simulated run's request cap (large fleets: the per-replica share is what is simulated)
LENGTH_SPREAD = 0.1  # closed loop: lengths uniform in [mean (1 - s), mean (1 + s)]
MAX_ADDED = 4  # replicas the simulation may add to a plan before it is dropped
LATENCY_KEYS = ("ttft_ms", "tpot_ms")
SIM_ROUNDS = 8  # simulate-and-re-rank rounds (re-ranking can bring plans not yet simulated to the top)


def client(wl: SizingWorkload, replicas: int) -> Client:
    """One replica's share of the workload's traffic as a benchmark client (module docstring)."""
    t = wl.traffic
    if t.concurrency is not None:
        users = max(1, ceil(t.concurrency / replicas - 1e-9))
        spread = lambda mean: Lengths(mean, "uniform", range_ratio=LENGTH_SPREAD)  # noqa: E731
        return Client(min(MAX_PROMPTS, PROMPTS_PER_USER * users), spread(t.input_len), spread(t.output_len),
                      concurrency=users)
    return Client(RATE_PROMPTS, Lengths(t.input_len), Lengths(t.output_len), rate=t.request_rate / replicas)


def give_up(wl: SizingWorkload, requests: int):
    """The simulator's give_up for a TTFT SLO over `requests` requests (None without one): True once enough
    requests have waited past the limit that the SLO is missed whatever the rest do. At percentile p, numpy's
    percentile (linear) exceeds the limit once the n - floor((n - 1) p / 100) largest do; a mean, once the waits so
    far sum past n x limit. An overloaded plan's queue grows without end, and simulating all of it would take minutes
    (the long-document preset: 200K-token prompts on a plan whose prefill cannot keep up)."""
    limit = dict(wl.slo).get("ttft_ms")
    if not limit:
        return None
    limit_s, pct = limit / 1e3, wl.slo_value("percentile")
    if pct is not None:
        need = requests - floor((requests - 1) * pct / 100)
        return lambda ttft: int(np.sum(ttft > limit_s)) >= need
    return lambda ttft: float(np.nansum(ttft)) > requests * limit_s


def judge(wl: SizingWorkload, res) -> dict:
    """The SLO on a simulated run: per key its limit, the simulated value (at the SLO's percentile for latencies)
    and whether it is met."""
    pct = wl.slo_value("percentile")
    out = {}
    for key, limit in wl.slo:
        if key == "percentile":
            continue
        if key in LATENCY_KEYS:
            x = res.ttft_s if key == "ttft_ms" else res.tpot_s
            if not len(x):
                continue
            value = 1e3 * float(np.percentile(x, pct) if pct is not None else np.mean(x))
            met = value <= limit
            if key == "ttft_ms" and res.stopped_s is not None:  # given up: TTFT is missed, value a floor
                value, met = max(value, limit), False
        else:  # output_tokens_per_s_per_user: the mean user's speed
            if not len(res.tpot_s):
                continue
            value = 1.0 / float(np.mean(res.tpot_s))
            met = value >= limit
        out[key] = {"limit": limit, "value": value, "met": bool(met),
                    **({"percentile": pct} if pct is not None and key in LATENCY_KEYS else {})}
    return out


def run(cand, mem, wl: SizingWorkload, replicas: int) -> dict:
    """Simulate one replica of a plan at `replicas` replicas' share of the traffic: the `simulation` block."""
    cl = client(wl, replicas)
    sc = build(cand, wl, concurrency=cl.concurrency)
    res = simulate(sc, mem, cl, give_up(wl, cl.num_prompts))
    m = res.metrics()
    slo = judge(wl, res)
    return {"replicas": replicas, "client": {"concurrency": cl.concurrency, "request_rate": cl.rate,
                                             "num_prompts": cl.num_prompts},
            "metrics": {k: m.get(k) for k in ("ttft_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_ms",
                                              "tpot_p50_ms", "tpot_p90_ms", "tpot_p99_ms",
                                              "system_output_tokens_per_s")},
            "summary_line": res.summary_line(), "slo": slo, "meets_slo": all(v["met"] for v in slo.values()),
            "stopped_s": res.stopped_s}


def replicas_simulated(cand, mem, wl: SizingWorkload, start: int) -> tuple[int, dict]:
    """The replicas at which the simulation meets the SLO (from `start`, one more at a time, at most MAX_ADDED
    more) and the last simulation."""
    n = start
    block = run(cand, mem, wl, n)
    while not block["meets_slo"] and n < start + MAX_ADDED:
        n += 1
        block = run(cand, mem, wl, n)
    block["added_replicas"] = n - start
    return n, block


def verify(rows: list, wl: SizingWorkload, resettle, pool=None) -> list:
    """Simulate each row at its replicas; add replicas while the simulation misses the SLO (re-costed by
    `resettle(row)`). With a process `pool` (planner.sizing.search._fork_pool) it takes every other row. Returns
    the rows dropped (their simulation says why); the others carry row.extra["simulation"]."""
    theirs = rows[1::2] if pool is not None else []
    futures = [pool.submit(replicas_simulated, r.cand, r.mem, wl, r.replicas) for r in theirs]
    done = {id(r): replicas_simulated(r.cand, r.mem, wl, r.replicas) for r in (rows[::2] if theirs else rows)}
    done.update({id(r): f.result() for r, f in zip(theirs, futures, strict=True)})
    dropped = []
    for row in rows:
        n, block = done[id(row)]
        if n != row.replicas:
            row.replicas = n
            resettle(row)
        row.extra["simulation"] = block
        if not block["meets_slo"]:
            dropped.append(row)
    return dropped


def missed(block: dict) -> str:
    """One line: what the simulation found missed."""
    parts = [f"{k} {v['value']:,.1f} vs {v['limit']:,.1f}" + (f" (p{v['percentile']:g})" if "percentile" in v else "")
             for k, v in block["slo"].items() if not v["met"]]
    stopped = " (the run was stopped once that was settled)" if block.get("stopped_s") is not None else ""
    return f"simulated with {block['replicas']} replicas: " + ", ".join(parts) + stopped


def simulate_reported(rows: list, exact: list, wl: SizingWorkload, rej: Rejections, resettle, pool=None) -> int:
    """Run the reported plans (the top ones and the Pareto points among the exact rows) in the simulator: replicas
    added where it misses the SLO, plans dropped past that (counted as SLO rejections with the simulated miss);
    until the top plans are all simulated. Returns how many plans were simulated."""
    done: set[int] = set()
    for _ in range(SIM_ROUNDS):
        front = {id(r) for r in pareto_rows(rows)}
        todo = {id(r): r for r in distinct(exact)[:wl.top] + [r for r in exact if id(r) in front]
                if id(r) not in done}
        if not todo:
            break
        done.update(todo)
        for row in verify(list(todo.values()), wl, resettle, pool):
            rej.add(f"{row.cand.hw.label()}, {row.cand.weights}, {row.cand.engine}, {row.cand.plan}: SLO missed in "
                    f"the serving simulator ({missed(row.extra['simulation'])})", "slo")
            exact.remove(row)
            rows.remove(row)
        exact.sort(key=lambda r: r.key(wl.objective))
    return len(done)
