"""Latency percentiles of the steady serving picture when requests arrive at random (a Poisson stream: MLPerf
Server's LoadGen, production traffic). Used when the scenario's SLO names a percentile (`slo.percentile`).

planner.serving.serve.serve_point gives the mean step of a running batch r that turns over steadily: lambda requests
per second per engine group arrive, lambda = prompt tokens per step / (mean prompt x step time), and each step mixes
their prompt tokens into the decodes. Random arrivals make two things vary from request to request:

TTFT: prompts queue for the engine's prefill capacity. While prompts wait the engine spends each step's token
budget on them (chunked prefill: max_batched_tokens minus the running decodes, in one mixed step; engines that
do not mix run prefill batches of max_batched_tokens alone), so it clears R prompt tokens per second. That is an
M/G/1 queue with work L/R per request (L from the request set's prompt-length distribution): utilization
rho = lambda E[L] / R, mean wait W = lambda E[L^2] / (2 R^2 (1 - rho)) (Pollaczek-Khinchine). The wait's tail
is taken as exponential with an atom at zero, P(wait > t) = rho exp(-t rho / W) (exact for exponential work,
the usual heavy-traffic form otherwise). TTFT = wait + the mean picture's own prefill time, split into a fixed
part (step granularity) and L/R.

TPOT: a request's TPOT is the mean of the steps it lives through, k = (n - 1) / tokens-per-step steps for n
output tokens. Its steps carry the prompt tokens of whoever arrives meanwhile: a compound Poisson sum, so the
added time over its life has variance c^2 lambda k s E[L^2] (c: seconds per mixed prompt token, s: mean step)
and the per-token mean a standard deviation c sqrt(lambda s E[L^2] / k). The running batch itself is Poisson
(M/G/infinity) with mean r; its mean over a window of w request lifetimes T has variance r (1 - w/3) for w <= 1
and r (1/w)(1 - 1/(3w)) above (M/D/infinity), times the decode step's slope in r (a secant over r +- sqrt(r)).
Each request's TPOT is taken as normal with that spread; the percentile is over requests, whose output lengths come
from the request set.
Short answers see few arrivals and vary most, so they set the tail.

Lengths: a dataset profile's `quantiles` (planner.deploy.datasets) interpolated piecewise-linearly and scaled to the
workload's mean; exponential answers (chat) by their exact quantiles; otherwise every request has the mean.
Approximate: the normal and exponential tail forms, FCFS prefill, and batch fluctuation from an uncapped
M/G/infinity (a full engine queues instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erfc, inf, sqrt

import numpy as np

from planner.base.roots import narrow
from planner.deploy.scenario import Scenario
from planner.perf.steps import decode_step, mixed_step, prefill_step, tokens_per_step

NODES = 64  # quantile nodes of each length distribution


@dataclass(frozen=True)
class Tails:
    percentile: float
    arrivals_per_s: float  # requests per second per engine group
    prefill_load: float  # rho: share of the engine's prefill capacity the arriving prompts use
    wait_s: float  # mean queueing before a prompt's prefill starts
    ttft_mean_s: float  # wait + the mean picture's TTFT
    ttft_s: float  # at `percentile`
    tpot_s: float  # at `percentile`


def percentile_metric(metric: str, percentile: float) -> str:
    """The metric name of a latency at a percentile: ttft_ms at 99 -> ttft_p99_ms."""
    return metric.replace("_ms", f"_p{percentile:g}_ms")


def length_nodes(mean: float, quantiles: tuple[tuple[float, float], ...] = (), dist: str = "fixed",
                 n: int = NODES) -> np.ndarray:
    """n request lengths at evenly spaced quantiles (midpoints), with mean `mean`."""
    q = (np.arange(n) + 0.5) / n
    if quantiles:
        pct, tokens = zip(*sorted(quantiles), strict=True)
        x = np.interp(q * 100, pct, tokens)
    elif dist == "exponential":
        x = -np.log1p(-q)
    else:
        return np.full(n, float(mean))
    return x * (mean / x.mean())


def _survival(z: np.ndarray) -> np.ndarray:
    """Standard normal survival function (math.erfc on Python floats: numpy has no erfc, and numpy scalars in the
    loop cost several times more)."""
    root2 = sqrt(2)
    return np.array([0.5 * erfc(v / root2) for v in np.ravel(z).tolist()]).reshape(np.shape(z))


def _quantile(survival, lo: float, hi: float, target: float) -> float:
    """x in [lo, hi] with survival(x) = target (survival decreasing), to 1e-9 of x (planner.base.roots.narrow on
    target - survival). Returns the upper end of the final bracket (survival <= target there)."""
    f_hi = survival(hi) - target
    if f_hi >= 0:
        return hi
    f_lo = survival(lo) - target
    if f_lo <= 0:
        return lo
    return narrow(lambda x: target - survival(x), lo, -f_lo, hi, -f_hi, 1e-9)[1]


def prefill_rate(sc: Scenario, running: float) -> float:
    """Prompt tokens per second per engine group while prompts wait (the step budget spent on them)."""
    wl, t = sc.workload, sc.parallelism.tp
    new = wl.new_prompt_len
    cached = wl.input_len - new
    if sc.engine.mixed_chunk:
        budget = max(1.0, sc.engine.max_batched_tokens - running * tokens_per_step(sc))
        step = mixed_step(sc, running / t, wl.mean_kv_len, budget / t, wl.input_len, cached)
    else:
        budget = float(max(1, sc.engine.max_batched_tokens))
        step = prefill_step(sc, budget / t, wl.input_len, cached)
    return budget / step.seconds


def tails(sc: Scenario, running: float, step_s: float, prompt_tokens_per_step: float, ttft_s: float,
          percentile: float) -> Tails:
    """TTFT and TPOT at `percentile` for `running` sequences per engine group whose mean (mixed) step takes
    `step_s` and carries `prompt_tokens_per_step` prompt tokens (per group); `ttft_s`: the mean picture's TTFT
    without queueing."""
    wl, t = sc.workload, sc.parallelism.tp
    tps = tokens_per_step(sc)
    target = 1 - percentile / 100
    d = wl.dataset
    new = wl.new_prompt_len
    prompts = length_nodes(new, d.input_quantiles if d else ())
    answers = length_nodes(max(wl.output_len, 1), d.output_quantiles if d else (), wl.output_len_dist)
    l2 = float(np.mean(prompts ** 2))
    lam = prompt_tokens_per_step / (new * step_s) if prompt_tokens_per_step > 0 else 0.0
    rate = prefill_rate(sc, running)
    rho = lam * new / rate
    if rho >= 1:
        return Tails(percentile, lam, rho, inf, inf, inf, inf)
    wait = lam * l2 / (2 * rate ** 2 * (1 - rho))
    fixed = max(0.0, ttft_s - new / rate)  # step granularity: the part of the TTFT that does not scale with L

    def ttft_survival(x: float) -> float:
        slack = x - fixed - prompts / rate
        tail = np.where(slack < 0, 1.0, rho * np.exp(-np.maximum(slack, 0) * rho / wait) if wait > 0 else 0.0)
        return float(np.mean(tail))

    ttft_q = _quantile(ttft_survival, 0.0, fixed + float(prompts.max()) / rate + 50 * max(wait / max(rho, 1e-9),
                                                                                           step_s), target)
    # TPOT: prompt-arrival and running-batch fluctuation over each request's life
    decode = decode_step(sc, running / t, wl.mean_kv_len).seconds
    per_prompt_token = max(0.0, step_s - decode) / prompt_tokens_per_step if prompt_tokens_per_step > 0 else 0.0
    # the decode step's slope in r as a secant across the batch's own spread, r -/+ sqrt(r) (its Poisson standard
    # deviation): a local difference reads a kink of the efficiency tables (a curve knot, a surface cell) as the
    # slope over the whole fluctuation
    spread = sqrt(running)
    lo, hi = max(running - spread, min(running, 1.0)), running + spread
    slope = max(0.0, (decode_step(sc, hi / t, wl.mean_kv_len).seconds
                      - (decode if lo == running else decode_step(sc, lo / t, wl.mean_kv_len).seconds)) / (hi - lo))
    steps = np.maximum(1.0, (answers - 1) / tps)
    w = steps / float(np.mean(steps))
    batch_var = running * np.where(w <= 1, 1 - w / 3, (1 / w) * (1 - 1 / (3 * w)))
    sd = np.sqrt(per_prompt_token ** 2 * lam * step_s * l2 / steps + slope ** 2 * batch_var) / tps
    mean = step_s / tps
    if float(sd.max()) > 0:
        tpot_q = _quantile(lambda x: float(np.mean(_survival((x - mean) / sd))), mean, mean + 10 * float(sd.max()),
                           target)
    else:
        tpot_q = mean
    return Tails(percentile, lam, rho, wait, wait + ttft_s, ttft_q, tpot_q)

