"""Benchmark metrics of a simulated run (planner.serving.sim), computed the way vLLM's client computes them
(vllm benchmarks/serve.py calculate_metrics, v0.11):

- TTFT: first token received - request sent (client side, queueing in the client's semaphore excluded: a request
  is "sent" when it gets a concurrency slot);
- TPOT: per request (e2e - ttft) / (output_len - 1), requests with a single output token left out;
- ITL: every gap between successive streamed tokens of a request (a step giving several MTP tokens is one chunk,
  one gap);
- E2E: last token received - request sent;
- mean, median, p90, p99 with numpy.percentile (linear interpolation), as vLLM's --metric-percentiles; ITL's from
  the weighted gaps (inverse of their cumulative distribution);
- throughput: output tokens / benchmark duration (first send to last token received), total = (prompt + output)
  tokens / duration; per GPU over the deployment's GPUs; per user = 1 / mean TPOT (the contract's
  output_tokens_per_s_per_user, as planner.serving.serve reports it).
The timeline (running requests, queued ones (engine queue and API-server intake), KV pool use, requests in flight at
the client) is sampled on an even grid of the run for the JSON output, and each latency's distribution at
DISTRIBUTION_QUANTILES (for a CDF plot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.deploy.scenario import Scenario
from planner.serving.point import deployment_gpus, replica_gpus

PERCENTILES = (50, 90, 99)
TIMELINE_POINTS = 120  # samples of the timeline in --json
DISTRIBUTION_QUANTILES = (0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100)  # percent, for a CDF in --json


@dataclass(frozen=True)
class Run:
    """One replica's simulated run: per-request times (seconds) and lengths, ITL gaps, engine timeline."""

    sent: np.ndarray
    first: np.ndarray  # first token received
    last: np.ndarray  # last token received
    inp: np.ndarray
    out: np.ndarray
    itl_gap: np.ndarray
    itl_n: np.ndarray  # tokens with each gap
    timeline: np.ndarray  # [steps, 4]: t, running, queued, KV used fraction
    prefill_tokens: float
    prefill_busy_s: float  # time of the steps that prefilled
    held: np.ndarray  # per request: first token held by the API server's intake, seconds
    stopped_s: float | None = None  # the run was given up at this time (sim.simulate's give_up)


def ttft_floor(rep, t: float) -> np.ndarray:
    """Each request's TTFT, or for a request sent and still without its first token at time t the time it has
    waited (a floor); NaN for requests not sent yet. `rep`: a sim.Replica or its Run (sent and first arrays)."""
    return np.where(np.isnan(rep.first), t - rep.sent, rep.first - rep.sent)


def _hold(t: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Step-wise value (the latest sample at or before each `at`; 0 before the first)."""
    k = np.searchsorted(t, at, side="right") - 1
    return np.where(k >= 0, values[np.maximum(k, 0)], 0.0)


def in_flight_mean(sent: np.ndarray, last: np.ndarray, duration: float) -> float:
    """Time-weighted mean of requests in flight (sent, last token not received) over [0, duration]."""
    return float(np.sum(np.minimum(last, duration) - np.maximum(sent, 0.0))) / duration


def _weighted_percentile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(len(x) - 1, int(np.searchsorted(cw, q / 100 * cw[-1])))])


@dataclass(frozen=True)
class SimResult:
    ttft_s: np.ndarray  # per request
    tpot_s: np.ndarray  # per request with more than one output token
    e2e_s: np.ndarray
    itl_gap_s: np.ndarray
    itl_n: np.ndarray
    duration_s: float
    output_tokens: float
    input_tokens: float
    gpus: int
    prefill_tokens_per_s_per_gpu: float | None
    in_flight_mean: float  # time-weighted, client side
    grid_s: np.ndarray  # timeline sample times
    running: np.ndarray  # requests running in the engines (all replicas)
    queued: np.ndarray  # requests waiting (engine queues and API-server intake)
    kv_used: np.ndarray  # fraction of the KV pools in use
    in_flight: np.ndarray  # requests sent and not finished
    held_s: np.ndarray  # per request: how long the API server's intake held its first token
    stopped_s: float | None = None  # a run was given up then (sim.simulate's give_up): the latencies are of the
    # requests finished by then, TTFT of every request sent by then (a floor for those still waiting)

    @property
    def held_share(self) -> float:
        """Share of the requests' life their tokens spent held by the API server's intake (0: none held)."""
        life = float(np.sum(self.e2e_s))
        return float(np.sum(self.held_s)) / life if life > 0 else 0.0

    @property
    def requests(self) -> int:
        return len(self.e2e_s)

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.duration_s

    def stats(self, name: str, x: np.ndarray) -> dict:
        """mean and percentiles of a latency in ms, named as CONTRACT metrics (ttft_ms, ttft_p99_ms)."""
        if not len(x):
            return {}
        out = {f"{name}_ms": 1e3 * float(np.mean(x))}
        out |= {f"{name}_p{q}_ms": 1e3 * float(np.percentile(x, q)) for q in PERCENTILES}
        return out

    def metrics(self) -> dict:
        """CONTRACT.md §3 metrics and percentile fields."""
        tpot = float(np.mean(self.tpot_s)) if len(self.tpot_s) else None
        out_gpu = self.output_tokens_per_s / self.gpus
        m = {
            "ttft_ms": 1e3 * float(np.mean(self.ttft_s)), "tpot_ms": 1e3 * tpot if tpot else None,
            "decode_tokens_per_s_per_gpu": out_gpu, "output_tokens_per_s_per_user": 1 / tpot if tpot else None,
            "system_output_tokens_per_s": self.output_tokens_per_s,
            "system_total_tokens_per_s": (self.output_tokens + self.input_tokens) / self.duration_s,
        }
        if len(self.e2e_s):  # a run given up may have finished none
            m["e2e_latency_ms"] = 1e3 * float(np.mean(self.e2e_s))
        if self.prefill_tokens_per_s_per_gpu:
            m["prefill_tokens_per_s_per_gpu"] = self.prefill_tokens_per_s_per_gpu
        for name, x in (("ttft", self.ttft_s), ("tpot", self.tpot_s), ("e2e_latency", self.e2e_s)):
            m |= {k: v for k, v in self.stats(name, x).items() if k != f"{name}_ms"}
        if len(self.itl_gap_s):
            m["itl_ms"] = 1e3 * float(np.sum(self.itl_gap_s * self.itl_n) / np.sum(self.itl_n))
            m |= {f"itl_p{q}_ms": 1e3 * _weighted_percentile(self.itl_gap_s, self.itl_n, q) for q in PERCENTILES}
        return m

    def distributions(self) -> dict:
        """Each latency (ms) at DISTRIBUTION_QUANTILES (percent; `q`), as `metrics` computes its percentiles (ITL
        weighted by the tokens of each gap); a latency with no sample (TPOT when every answer is one token) is
        left out."""
        out: dict = {"q": list(DISTRIBUTION_QUANTILES)}
        for name, x in (("ttft", self.ttft_s), ("tpot", self.tpot_s), ("e2e_latency", self.e2e_s)):
            if len(x):
                out[f"{name}_ms"] = (1e3 * np.percentile(x, DISTRIBUTION_QUANTILES)).tolist()
        if len(self.itl_gap_s):
            out["itl_ms"] = [1e3 * _weighted_percentile(self.itl_gap_s, self.itl_n, q) for q in DISTRIBUTION_QUANTILES]
        return out

    def summary(self) -> dict:
        return {"requests": self.requests, "duration_s": self.duration_s, "output_tokens": self.output_tokens,
                "mean_in_flight": self.in_flight_mean, "mean_running": float(np.mean(self.running)),
                "peak_running": float(np.max(self.running)), "mean_queued": float(np.mean(self.queued)),
                "peak_queued": float(np.max(self.queued)), "peak_kv_used": float(np.max(self.kv_used)),
                "held_share": self.held_share}

    def timeline(self) -> dict:
        return {"t_s": self.grid_s.tolist(), "running": self.running.tolist(), "queued": self.queued.tolist(),
                "kv_used": self.kv_used.tolist(), "in_flight": self.in_flight.tolist()}

    def summary_line(self) -> str:
        s = self.summary()
        stop = "" if self.stopped_s is None else f"stopped at {self.stopped_s:,.1f} s, the SLO already missed; "
        return (stop + f"simulated {s['requests']:,} requests in {s['duration_s']:,.1f} s: running "
                f"{s['mean_running']:,.1f} mean (peak {s['peak_running']:,.0f}), queued {s['mean_queued']:,.1f} "
                f"mean (peak {s['peak_queued']:,.0f}), KV pool peak {s['peak_kv_used']:.0%}")


def combine(sc: Scenario, runs: list[tuple[Run, int]]) -> SimResult:
    """One result from the replicas' runs (`count` replicas ran each)."""
    cat = lambda f: np.concatenate([np.tile(f(r), c) for r, c in runs])  # noqa: E731
    sent, first, last, out = cat(lambda r: r.sent), cat(lambda r: r.first), cat(lambda r: r.last), cat(lambda r: r.out)
    inp, held = cat(lambda r: r.inp), cat(lambda r: r.held)
    ttft, e2e = first - sent, last - sent
    stops = [r.stopped_s for r, _ in runs if r.stopped_s is not None]
    if stops:  # given up: TTFT (or time waited) of the requests sent, the rest of those finished (SimResult)
        floor = cat(lambda r: ttft_floor(r, r.stopped_s if r.stopped_s is not None else np.inf))[~np.isnan(sent)]
        done = ~np.isnan(last)
        sent, first, last, out, inp, held, ttft, e2e = (x[done] for x in (sent, first, last, out, inp, held, ttft,
                                                                           e2e))
    multi = out > 1
    tpot = (e2e[multi] - ttft[multi]) / (out[multi] - 1)
    if stops:
        ttft = floor
    duration = float(max(np.max(last, initial=0.0), max(stops, default=0.0)) - np.min(sent, initial=0.0))
    grid = np.linspace(0.0, duration, TIMELINE_POINTS)
    running, queued, kv, flight = (np.zeros(TIMELINE_POINTS) for _ in range(4))
    for r, c in runs:
        tl = r.timeline
        if len(tl):
            running += c * _hold(tl[:, 0], tl[:, 1], grid)
            queued += c * _hold(tl[:, 0], tl[:, 2], grid)
            kv += c * _hold(tl[:, 0], tl[:, 3], grid)
        flight += c * np.array([np.sum((r.sent <= g) & (r.last > g)) for g in grid])
    reps = sum(c for _, c in runs)
    busy = sum(c * r.prefill_busy_s for r, c in runs)
    prefill = float(sum(c * r.prefill_tokens for r, c in runs) / busy / replica_gpus(sc)) if busy else None
    return SimResult(ttft, tpot, e2e, cat(lambda r: r.itl_gap), cat(lambda r: r.itl_n), duration, float(np.sum(out)),
                     float(np.sum(inp)), deployment_gpus(sc), prefill, in_flight_mean(sent, last, duration), grid,
                     running, queued, kv / max(reps, 1), flight, held, max(stops) if stops else None)
