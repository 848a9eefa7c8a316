"""How much traffic one replica of a plan carries within the SLO: the largest running batch per engine group
whose TPOT and TTFT keep the SLO, and the output tokens per second it then serves.

Two paths over the same models:
- `screen`: vectorized. The mixed step (decode batch plus the prompt tokens chunked prefill mixes in) of every
  batch on a grid (planner.perf.step_sweep.StepSweep, numpy: the scalar model's steps to float precision), with
  the SLO boundary interpolated between grid points. An estimate, used to rank every candidate that fits.
- `exact_capacity`: the scalar serving model (planner.serving.serve.serve_point: one mixed step from op records),
  searched on the running batch (planner.serving.point.largest_within). Used for the plans that are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from planner.base.errors import PlannerError
from planner.base.roots import narrow
from planner.deploy.memory import MemoryReport
from planner.deploy.scenario import Scenario
from planner.perf.step_sweep import StepSweep, evaluate
from planner.perf.steps import tokens_per_step
from planner.serving.point import (
    REL_TOL,
    Limits,
    OperatingPoint,
    chunk_tokens,
    largest_within,
    replica_groups,
    steady_prompt_tokens,
)
from planner.serving.serve import max_running, serve_point, slo_excess

GRID = 32  # batch sizes per candidate in the vectorized screen
SCREEN_BATCH = 64  # plans whose steps one numpy pass times (memory: ~64 x 3 steps x 40 ops x 8 fields x 33 points)


@dataclass(frozen=True)
class Capacity:
    running: float  # sequences decoding together per engine group at the SLO limit
    out_per_s: float  # output tokens per second of one replica there
    tpot_s: float
    ttft_s: float
    exact: bool  # from the scalar serving model (False: vectorized estimate)


def out_per_s(sc: Scenario, running, step_s):
    """Output tokens/s of one replica with `running` sequences per group (planner.serving.point.OperatingPoint)."""
    return OperatingPoint(sc, running).output_tokens_per_s(step_s)


def screen(sc: Scenario, mem: MemoryReport, limits: Limits) -> tuple[Capacity | None, np.ndarray, np.ndarray]:
    """Vectorized estimate: (capacity at the SLO or None, running grid, TPOT per grid point).

    Every grid point's step is the mixed step of planner.perf.steps.mixed_step (the decode batch plus the prompt
    tokens per step of planner.serving.serve's steady state), evaluated over the whole grid at once by
    planner.perf.step_sweep.StepSweep; TTFT is the prompt alone (in engine-sized chunks) or its chunks, one per mixed
    step, whichever is longer."""
    got = screen_many([(sc, mem)], limits)[0]
    if isinstance(got, PlannerError):
        raise got
    return got


def screen_many(plans: list[tuple[Scenario, MemoryReport]], limits: Limits) -> list:
    """`screen` of many plans, their steps timed together (planner.perf.step_sweep.evaluate) SCREEN_BATCH plans at
    a time: one numpy pass per batch instead of a dozen per plan. A plan whose hardware lacks a figure the speed
    model needs gets its PlannerError in place of the result."""
    out: list = []
    for start in range(0, len(plans), SCREEN_BATCH):
        staged = []
        for sc, mem in plans[start:start + SCREEN_BATCH]:
            try:
                staged.append(_Staged(sc, mem))
            except PlannerError as err:
                staged.append(err)
        steps = evaluate([job for s in staged if not isinstance(s, PlannerError) for job in s.jobs])
        at = 0
        for s in staged:
            if isinstance(s, PlannerError):
                out.append(s)
                continue
            out.append(s.capacity(steps[at:at + len(s.jobs)], limits))
            at += len(s.jobs)
    return out


def capacities(plans: list[tuple[Scenario, MemoryReport]], limits: Limits) -> list:
    """Each plan's (capacity or None, curve): GPU plans without host-resident experts by the vectorized screen, with
    its curve (running grid, TPOT s, output tokens/s of one replica); the others by the scalar model, curve ().
    A plan whose hardware lacks a figure the speed model needs gets its PlannerError instead."""
    screened = iter(screen_many([(sc, mem) for sc, mem in plans if _screened(sc)], limits))
    out: list = []
    for sc, mem in plans:
        if not _screened(sc):
            try:
                out.append((exact_capacity(sc, mem, limits), ()))
            except PlannerError as err:
                out.append(err)
            continue
        got = next(screened)
        if isinstance(got, PlannerError) or got[0] is None:
            out.append(got if isinstance(got, PlannerError) else (None, ()))
            continue
        cap, running, tpot = got  # out_per_s takes the step: TPOT x tokens each step gives
        out.append((cap, (running, tpot, out_per_s(sc, running, tpot * tokens_per_step(sc)))))
    return out


def _screened(sc: Scenario) -> bool:
    return sc.gpu is not None and sc.expert_layers_on_cpu == 0


class _Staged:
    """One plan's screen: the running grid, and the step jobs that time it (the prompt chunk alone, the mixed step
    at every grid point)."""

    def __init__(self, sc: Scenario, mem: MemoryReport):
        wl, t = sc.workload, sc.parallelism.tp
        self.sc = sc
        cap = max_running(sc, mem)
        # [R] per engine group: GRID points evenly spaced in log from 1 to the cap (np.geomspace's, without its
        # argument handling: a search builds thousands)
        grid = np.exp(np.linspace(0.0, np.log(cap), GRID))
        grid[0], grid[-1] = 1.0, cap
        self.running = np.unique(grid)
        sweep = StepSweep(sc, wl.mean_kv_len, wl.input_len, wl.input_len - wl.new_prompt_len)
        self.chunk = chunk_tokens(sc)  # planner.serving.point.prompt_chunk, timed from the sweep's records
        self.mixed = steady_prompt_tokens(sc, self.running)  # [R] prompt tokens per step per GPU
        jobs, self.combine = sweep.mixed_jobs(self.running / t, self.mixed)
        self.jobs = [sweep.prefill_job(self.chunk / t)] + jobs

    def capacity(self, steps: list, limits: Limits) -> tuple[Capacity | None, np.ndarray, np.ndarray]:
        sc, running, mixed = self.sc, self.running, self.mixed
        new = sc.workload.new_prompt_len
        ttft_alone = float(steps[0][0]) * new / self.chunk
        step = self.combine(steps[1:])
        budget = np.maximum(1.0, sc.engine.max_batched_tokens - running)
        ttft = np.maximum(ttft_alone, np.where(mixed > 0, np.ceil(new / budget) * step, 0.0))
        tpot = step / tokens_per_step(sc)
        good = limits.ok(tpot, ttft)
        if not good.any():
            return None, running, tpot
        k = int(np.flatnonzero(good).max())
        r, s, tp, tf = running[k], step[k], tpot[k], ttft[k]
        if k + 1 < len(running):  # the SLO boundary lies between grid points k and k + 1: interpolate linearly
            over = limits.excess(tpot[k:k + 2], ttft[k:k + 2])  # <= 0 within the SLO
            f = float(np.clip(-over[0] / (over[1] - over[0]), 0.0, 1.0)) if over[1] > over[0] else 0.0
            r, s = r + f * (running[k + 1] - r), s + f * (step[k + 1] - s)
            tp, tf = tp + f * (tpot[k + 1] - tp), tf + f * (ttft[k + 1] - tf)
        return Capacity(float(r), float(out_per_s(sc, r, s)), float(tp), float(tf), False), running, tpot


def exact_capacity(sc: Scenario, mem: MemoryReport, limits: Limits, hint: float | None = None) -> Capacity | None:
    """Largest running batch per group (<= memory and engine limit) within the SLO, by the scalar model."""

    best = largest_within(lambda r: slo_excess(sc, limits, r), max_running(sc, mem), hint)
    if best is None:
        return None
    pt = serve_point(sc, best)
    return Capacity(best, out_per_s(sc, best, pt.step.seconds), pt.slo_tpot_s, pt.slo_ttft_s, True)


def running_for(sc: Scenario, capacity: Capacity, out_needed: float) -> float:
    """Running batch per group that serves `out_needed` output tokens/s on one replica (<= capacity.running)."""
    if out_needed >= capacity.out_per_s:
        return capacity.running

    def surplus(r: float) -> float:  # serve_point's mixed step, without its TTFT: output rate over the need, - 1
        op = OperatingPoint(sc, r)
        return op.output_tokens_per_s(op.mixed_step().seconds) / out_needed - 1

    # throughput grows with the batch, so the surplus does: its root by planner.base.roots.narrow, from a floor
    # (throughput grows slower than the batch) and the capacity (surplus > 0 there)
    lo, hi, s_lo, s_hi = 0.0, capacity.running, -1.0, capacity.out_per_s / out_needed - 1
    guess = capacity.running * out_needed / capacity.out_per_s
    s = surplus(guess)
    if s > 0:
        hi, s_hi = guess, s
    else:
        lo, s_lo = guess, s
    if hi - lo <= max(1e-3, REL_TOL * hi):
        return hi
    return narrow(surplus, lo, s_lo, hi, s_hi, REL_TOL)[1]


def replicas_needed(out_needed: float | None, users: float | None, capacity: Capacity, sc: Scenario) -> int:
    """Replicas for an output-token rate, or for a number of requests in flight (closed loop)."""
    return replicas_for(out_needed, users, capacity.running * replica_groups(sc), capacity.out_per_s)


def replicas_for(out_needed: float | None, users: float | None, in_flight: float, out_per_s: float) -> int:
    """Replicas for an output-token rate, or for `users` requests in flight, when one replica holds `in_flight`
    requests and serves `out_per_s` output tokens per second."""
    if users is not None:
        return max(1, ceil(users / in_flight - 1e-9))
    return max(1, ceil(out_needed / out_per_s - 1e-9))
