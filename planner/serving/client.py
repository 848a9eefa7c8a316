"""The benchmark client of the serving simulator (planner.serving.sim): when requests are sent and how long they are.

Arrivals (as the public benchmark clients send them):
- closed loop: `concurrency` N and `num_prompts` M as `vllm bench serve --max-concurrency N --num-prompts M`
  (vllm benchmarks/serve.py: every request waits on an asyncio.Semaphore(N); with the default --request-rate inf
  all M are ready at once, so N start at t = 0 and each completion releases the next), SGLang bench_serving
  --max-concurrency the same;
- open loop: `rate` requests/s, Poisson (exponential gaps; vLLM's default --burstiness 1) or constant gaps;
- burst: all M sent at t = 0 (open loop at rate inf, no concurrency limit).

Lengths: fixed; uniform with a range ratio r around the mean (`dist: uniform`: [mean (1 - r), mean (1 + r)]), which
also holds both forms of the clients' --random-range-ratio r for a stated length L (Lengths.random): "around",
integers uniform in [L (1 - r), L (1 + r)] (vllm bench serve >= 0.10, vllm/benchmarks/datasets.py RandomDataset), and
"below", integers in [L r, L] (np.random.randint(max(int(L r), 1), L + 1): SGLang python/sglang/bench_serving.py
sample_random_requests, vLLM's benchmarks/benchmark_serving.py before 0.10, and InferenceMAX's bench_serving, which
runs r = 0.8); exponential
(1 + Exp(mean - 1), chat answers as in planner.deploy.scenario.Workload.output_len_dist); or a dataset's quantiles
(planner.deploy.datasets, interpolated linearly between the published quantiles, rescaled to the stated mean).
Lengths are stratified (Lengths.draw) and Poisson gaps drawn from numpy's default_rng(seed): a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.deploy.scenario import Scenario

DEFAULT_NUM_PROMPTS = 1000  # vllm bench serve --num-prompts default (vllm/benchmarks/serve.py); the --bench run
LENGTH_DISTS = ("fixed", "uniform", "exponential", "quantiles")


@dataclass(frozen=True)
class Lengths:
    """How one length (prompt or answer) varies over requests."""

    mean: float
    dist: str = "fixed"  # LENGTH_DISTS
    range_ratio: float = 0.0  # uniform: spread r, lengths in [mean (1 - r), mean (1 + r)]
    quantiles: tuple[tuple[float, float], ...] = ()  # quantiles: (percent, tokens), 0 to 100

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n integer lengths (at least 1): the distribution's quantiles at (k + 0.5) / n, rescaled to the mean
        exactly and shuffled (stratified sampling: the run's lengths have the stated mean and shape without
        sampling noise, and one request is the mean request, as the closed forms of planner.serving.serve take it)."""
        q = rng.permutation((np.arange(n) + 0.5) / n)
        if self.dist == "uniform" and self.range_ratio > 0:
            x = 1 - self.range_ratio + 2 * self.range_ratio * q
        elif self.dist == "exponential" and self.mean > 1:
            x = -np.log1p(-q)
            x = 1 + x * ((self.mean - 1) / x.mean())
        elif self.dist == "quantiles" and self.quantiles:
            pct, tokens = zip(*sorted(self.quantiles), strict=True)
            x = np.interp(q * 100, pct, tokens)
        else:
            x = np.ones(n)
        if self.dist != "exponential":
            x = x * (self.mean / x.mean())
        return np.maximum(1, np.round(x)).astype(np.int64)


    @classmethod
    def random(cls, length: float, ratio: float | None = None, form: str = "below") -> Lengths:
        """A client's random lengths for --random-input-len / --random-output-len L and --random-range-ratio r:
        "below" [L r, L] is uniform around L (1 + r) / 2 with half-width L (1 - r) / 2 (r = 0 is SGLang's own
        default, [1, L]); "around" is [L (1 - r), L (1 + r)]; None (not stated), r = 0 "around" and r = 1 "below"
        are fixed at L."""
        if ratio is None or (form == "below" and ratio >= 1) or (form != "below" and ratio <= 0):
            return cls(length)
        if form == "below":
            return cls(length * (1 + ratio) / 2, "uniform", range_ratio=(1 - ratio) / (1 + ratio))
        return cls(length, "uniform", range_ratio=ratio)


@dataclass(frozen=True)
class Client:
    """A benchmark run: how many requests, how they are sent, how long they are."""

    num_prompts: int
    input: Lengths
    output: Lengths
    concurrency: int | None = None  # closed loop: at most this many in flight (None: no limit)
    rate: float | None = None  # open loop requests/s (None: all at t = 0, a burst when concurrency is None)
    arrival: str = "poisson"  # poisson | constant gaps at `rate`
    seed: int = 0

    def send_times(self, rng: np.random.Generator) -> np.ndarray:
        """Earliest send time of each request (the concurrency limit may hold them back further)."""
        n = self.num_prompts
        if not self.rate:
            return np.zeros(n)
        gaps = rng.exponential(1 / self.rate, size=n) if self.arrival == "poisson" else np.full(n, 1 / self.rate)
        return np.concatenate(([0.0], np.cumsum(gaps[:-1])))


def client_for(sc: Scenario, num_prompts: int | None = None) -> Client:
    """The client of a scenario. With `request_rate` R: open loop at R requests/s (Poisson or constant gaps as
    `arrival` says; inf: every prompt at t = 0, a burst) of `num_prompts` prompts (default 1,000, vllm bench serve's),
    at most `concurrency` in flight when one is stated. Otherwise, with a `concurrency` C: closed loop with
    `num_prompts` prompts, by default C (one request per slot, all sent at t = 0: what the published cases ran
    where they say, e.g. GPUStack's 100 x 32k and 1,000 ShareGPT requests at rate inf, and what the closed-form
    waves of planner.serving.serve assume; a scenario states another count as workload.num_prompts); lengths from
    the workload (output lengths exponential when `output_len_dist` says so, a dataset's quantiles when the workload
    took its lengths from a dataset that publishes them, the client's random range when `random_range_ratio` is
    stated: Lengths.random)."""
    wl = sc.workload
    c = max(1, round(wl.concurrency or 1))
    d = wl.dataset
    if d is not None and d.input_quantiles and "input_len" in wl.from_dataset:
        inp = Lengths(wl.input_len, "quantiles", quantiles=d.input_quantiles)
    else:
        inp = Lengths.random(wl.input_len, wl.random_range_ratio, wl.range_ratio_form)
    if d is not None and d.output_quantiles and "output_len" in wl.from_dataset:
        out = Lengths(wl.output_len, "quantiles", quantiles=d.output_quantiles)
    elif wl.output_len_dist == "exponential":
        out = Lengths(wl.output_len, "exponential")
    else:
        out = Lengths.random(wl.output_len, wl.random_range_ratio, wl.range_ratio_form)
    rate = wl.request_rate
    if rate is None:  # closed loop
        return Client(num_prompts or wl.num_prompts or c, inp, out, concurrency=c)
    cap = max(1, round(wl.concurrency)) if wl.concurrency else None  # --max-concurrency with a rate
    return Client(num_prompts or wl.num_prompts or DEFAULT_NUM_PROMPTS, inp, out, concurrency=cap,
                  rate=None if math.isinf(rate) else rate, arrival=wl.arrival)
