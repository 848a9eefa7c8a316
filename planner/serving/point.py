"""A deployment at one operating point, and the SLO it is held to: the small vocabulary that serving (`estimate`),
random arrivals, sizing capacity and the plan answer share, each rule written once.

- Engine groups: a replica runs `dp_attention` independent batches (one per attention-DP rank; one TP group
  each), so a deployment runs dp_attention x replicas of them; `concurrency` spreads over all of them.
- GPUs in use: tp x dp_attention x pp per replica (at least one; a CPU-only deployment counts as one).
- Steady state (requests come and go at random times): with R sequences decoding per engine group, each step of
  `tps` tokens per sequence finishes R x tps / output_len of them on average, and as many new prompts replace them,
  so a step carries R x tps x new_prompt_len / output_len prompt tokens (per group; divide by tp per GPU). A lone
  sequence has no one to mix with: the factor (R - 1) / R takes that share away at R = 1. APPROXIMATE: the share
  taken away (one request's prompt per step at R >= 1) is prefilled alone, and its time is counted nowhere, so the
  output rate R x tps / step overstates a replica when prompts are long beside answers (200K in / 2K out: by half a
  step). Counting it made sizing over-provision, since simulated verification only adds replicas (issue 18 note,
  session 19).
- The SLO limit: the largest running batch (<= the memory / scheduler cap) whose TPOT and TTFT keep the SLO, by
  regula falsi on the SLO excess (the step time grows with R, and so do TPOT and TTFT; largest_within).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.base.roots import narrow
from planner.deploy.scenario import Scenario
from planner.perf.steps import Step, decode_step, mixed_step, prefill_step, tokens_per_step

REL_TOL = 0.01  # the sizing search's capacity searches stop when the bracket is within 1%


def replica_groups(sc: Scenario) -> int:
    """Engine groups (independent running batches) of one replica."""
    return sc.parallelism.dp_attention


def engine_groups(sc: Scenario) -> int:
    """Engine groups of the whole deployment (every replica)."""
    return sc.parallelism.dp_attention * sc.parallelism.replicas


def replica_gpus(sc: Scenario) -> int:
    """GPUs of one replica (1 for a CPU-only deployment)."""
    return max(1, sc.parallelism.gpus_per_replica) if sc.gpu else 1


def deployment_gpus(sc: Scenario) -> int:
    """GPUs of the whole deployment (1 for a CPU-only deployment)."""
    return max(1, sc.parallelism.gpus_per_replica * sc.parallelism.replicas) if sc.gpu else 1


def steady_prompt_tokens(sc: Scenario, running):
    """Prompt tokens per GPU per step in the steady state with `running` sequences per engine group (a number or
    a numpy array of them): running / tp x tps x new_prompt_len / output_len x (running - 1) / running."""
    wl = sc.workload
    share = np.maximum(0.0, (running - 1) / np.maximum(running, 1e-300))
    return running / sc.parallelism.tp * tokens_per_step(sc) * wl.new_prompt_len / max(wl.output_len, 1) * share


@dataclass(frozen=True)
class OperatingPoint:
    """This deployment with `running` sequences decoding together per engine group, in the steady state."""

    sc: Scenario
    running: float  # sequences per engine group

    @property
    def batch_per_gpu(self) -> float:
        return self.running / self.sc.parallelism.tp

    @property
    def prompt_tokens_per_gpu(self) -> float:
        """Prompt tokens each step prefills per GPU (steady_prompt_tokens)."""
        return float(steady_prompt_tokens(self.sc, self.running)) if self.running > 0 else 0.0

    @property
    def kv_len(self) -> float:
        return self.sc.workload.mean_kv_len

    def mixed_step(self) -> Step:
        """One decode step of the running batch with its share of new prompts mixed in (chunked prefill)."""
        wl = self.sc.workload
        return mixed_step(self.sc, self.batch_per_gpu, self.kv_len, self.prompt_tokens_per_gpu, wl.input_len,
                          wl.input_len - wl.new_prompt_len)

    def decode_step(self) -> Step:
        """One decode step of the running batch alone."""
        return decode_step(self.sc, self.batch_per_gpu, self.kv_len)

    def output_tokens_per_s(self, step_s) -> float:
        """Output tokens per second of one replica when a step takes `step_s` (a number or an array)."""
        return self.batch_per_gpu * tokens_per_step(self.sc) / step_s * replica_gpus(self.sc)


def chunk_tokens(sc: Scenario) -> float:
    """Tokens of one engine-sized chunk of a request's prompt (its new tokens, at most a step's token budget)."""
    return min(sc.workload.new_prompt_len, sc.engine.max_batched_tokens)


def prompt_chunk(sc: Scenario) -> tuple[float, Step]:
    """One engine-sized chunk of a request's prompt on its TP group: (chunk tokens, its prefill step)."""
    wl, t = sc.workload, sc.parallelism.tp
    chunk = chunk_tokens(sc)
    return chunk, prefill_step(sc, chunk / t, wl.input_len, wl.input_len - wl.new_prompt_len)


def prefill_alone(sc: Scenario) -> tuple[Step, float]:
    """One request's prompt alone on its TP group, in engine-sized chunks: (step of one chunk, TTFT seconds)."""
    chunk, step = prompt_chunk(sc)
    return step, step.seconds * sc.workload.new_prompt_len / chunk


@dataclass(frozen=True)
class Limits:
    """The SLO as limits in seconds."""

    tpot_s: float | None  # slo.tpot_ms and 1 / slo.output_tokens_per_s_per_user, whichever is tighter
    ttft_s: float | None

    @classmethod
    def of(cls, slo: dict) -> Limits:
        tpot = [slo[k] / 1e3 for k in ("tpot_ms",) if slo.get(k)]
        if slo.get("output_tokens_per_s_per_user"):
            tpot.append(1 / slo["output_tokens_per_s_per_user"])
        return cls(min(tpot) if tpot else None, slo["ttft_ms"] / 1e3 if slo.get("ttft_ms") else None)

    @property
    def any(self) -> bool:
        return self.tpot_s is not None or self.ttft_s is not None

    def excess(self, tpot_s, ttft_s) -> np.ndarray:
        """Largest relative overshoot of a limit (value / limit - 1); <= 0 where the SLO holds."""
        out = np.full(np.shape(tpot_s), -1.0)
        if self.tpot_s is not None:
            out = np.maximum(out, np.asarray(tpot_s) / self.tpot_s - 1)
        if self.ttft_s is not None:
            out = np.maximum(out, np.asarray(ttft_s) / self.ttft_s - 1)
        return out

    def ok(self, tpot_s, ttft_s):
        good = np.ones_like(np.asarray(tpot_s, dtype=float), dtype=bool)
        if self.tpot_s is not None:
            good &= np.asarray(tpot_s) <= self.tpot_s
        if self.ttft_s is not None:
            good &= np.asarray(ttft_s) <= self.ttft_s
        return good


def largest_within(excess: Callable[[float], float], cap: float, hint: float | None = None,
                   rel_tol: float = REL_TOL) -> float | None:
    """Largest running batch r in [1, cap] whose SLO `excess(r)` (Limits.excess: <= 0 where the SLO holds, growing
    with r) is <= 0, to `rel_tol` of r; None when not even r = 1 holds it. `hint` (an estimate) is tried first.

    The bracket [lo, hi] (excess(lo) <= 0 < excess(hi)) is narrowed by regula falsi (planner.base.roots.narrow;
    an end whose excess is not finite, a TTFT unbounded past the prefill's capacity, takes bisection steps). TPOT
    grows about linearly with the batch: a handful of evaluations where bisection in log r took ten to twelve.

    Where the excess is not monotone (a p99 TPOT can fall as the batch grows: prompt arrivals disturb a small batch
    more, planner.serving.arrivals.tails), the boundary returned is one inside the bracket, found from the hint."""
    lo, hi, f_lo, f_hi = 1.0, cap, None, None
    if hint and 1.0 < hint < cap:
        f = excess(hint)
        if f <= 0:
            lo, f_lo = hint, f
        else:
            hi, f_hi = hint, f
    if f_hi is None:
        f_hi = excess(cap)
        if f_hi <= 0:
            return cap
    if f_lo is None:
        f_lo = excess(1.0)
        if f_lo > 0:
            return None
    return narrow(excess, lo, f_lo, hi, f_hi, rel_tol)[0]
