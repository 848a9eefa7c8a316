"""Serving metrics of a scenario (CONTRACT.md §3 metric vocabulary) from step times.

Batch conventions: a decode `batch_per_gpu` B means the deployment runs B sequences per GPU, so one
attention TP group of t GPUs runs B x t; `concurrency` C spreads over dp_attention x replicas engine
groups. Without either, the batch is the largest that memory and the engine's max_num_seqs allow
and that keeps the SLO (MLPerf offline/server style).

Two serving pictures (phase `serve`):
- steady state (no `concurrency`; also the sizing search): requests come and go at random times, so every
  step mixes the running decodes with the prompt tokens of the requests that replace finished ones
  (`serve_point`).
- waves (`concurrency` C given): how a benchmark client with a concurrency limit behaves
  (`vllm bench serve --max-concurrency`, SGLang bench_serving, genai-perf). All C requests start at once;
  with one input and one output length they also finish together, so the next C start together: the
  run is a sequence of identical waves (`wave`). A wave prefills the C prompts in chunks of the
  engine's token budget (request i's first token comes with the chunk holding its last prompt token),
  then decodes the C sequences together. More requests than the engine runs at once (memory, the
  scheduler's cap) queue for whole waves.
  With `output_len_dist: exponential` (chat traffic) the wave's output lengths are 1 + Exp(output_len - 1)
  at evenly spaced quantiles: the running batch shrinks as short answers finish, the wave lasts until the
  longest one ends ((output_len - 1) x ln(2C) steps), and the mean TPOT is a mean of ratios, so short answers
  that waited for the rest of the wave's prefill weigh in (benchmark tools report it that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, floor, inf, isfinite

import numpy as np

from planner.deploy.memory import MemoryReport
from planner.deploy.scenario import Scenario
from planner.perf.steps import Step, decode_step, prefill_step, tokens_per_step
from planner.serving.arrivals import Tails, percentile_metric, tails
from planner.serving.point import (
    Limits,
    OperatingPoint,
    deployment_gpus,
    engine_groups,
    largest_within,
    prefill_alone,
)

ESTIMATE_REL_TOL = 1e-9  # `estimate` reports the SLO-limited batch to float precision, not the sizing search's 1%


@dataclass(frozen=True)
class ServePoint:
    running_per_group: float  # sequences decoding together in one engine group (TP group)
    step: Step  # one (mixed) decode step
    tpot_s: float
    ttft_s: float  # mean; with random arrivals (tails) the queueing for prefill included
    prefill: Step  # the isolated prefill of one request
    tails: Tails | None = None  # percentiles under random arrivals, when the SLO names a percentile

    @property
    def slo_tpot_s(self) -> float:
        """The TPOT an SLO is checked against: at its percentile when it names one, else the mean."""
        return self.tails.tpot_s if self.tails else self.tpot_s

    @property
    def slo_ttft_s(self) -> float:
        return self.tails.ttft_s if self.tails else self.ttft_s


def serve_point(sc: Scenario, running: float, tails_too: bool = True) -> ServePoint:
    """Steady state with `running` sequences decoding per engine group (closed loop); `tails_too` False: the means
    alone, without the percentile SLO's tails (their cost is most of a call)."""
    wl, t = sc.workload, sc.parallelism.tp
    op = OperatingPoint(sc, running)
    p = op.prompt_tokens_per_gpu
    step = op.mixed_step()
    pre, ttft = prefill_alone(sc)
    tps = tokens_per_step(sc)
    if p > 0:  # the prompt shares steps with the running batch: its chunks take mixed-step time
        budget = max(1.0, sc.engine.max_batched_tokens - running * tps)
        ttft = max(ttft, ceil(wl.new_prompt_len / budget) * step.seconds)
    ttft += sc.engine.first_token_path_s
    pct = sc.slo_value("percentile")
    if pct is None or not tails_too:
        return ServePoint(running, step, step.seconds / tps, ttft, pre)
    tl = tails(sc, running, step.seconds, p * t, ttft, pct)
    return ServePoint(running, step, step.seconds / tps, tl.ttft_mean_s, pre, tl)


@dataclass(frozen=True)
class Wave:
    size: float  # requests decoding together in one engine group
    prefill_s: float  # prefill of every prompt of the wave (all chunks)
    ttft_s: float  # mean over the wave's requests (queueing for earlier waves included)
    decode_step: Step  # one decode step of the full wave
    duration_s: float  # prefill + decode of one wave
    tpot_s: float  # mean (e2e - ttft) / (output_len - 1)
    chunk: Step  # the largest prefill chunk
    queue_s: float  # mean wait for earlier waves
    e2e_s: float  # mean request latency (queueing included)


def wave(sc: Scenario, mem: MemoryReport) -> Wave:
    """One wave of min(concurrency, what the engine runs at once) requests per engine group."""
    wl, t = sc.workload, sc.parallelism.tp
    demand = max(1.0, wl.concurrency / engine_groups(sc))
    size = min(demand, max_running(sc, mem))
    new = wl.new_prompt_len
    cached = wl.input_len - new
    tokens = size * new  # prompt tokens of the wave in one engine group
    budget = float(max(1, sc.engine.max_batched_tokens))
    full, rest = divmod(tokens, budget) if tokens > budget else (0, tokens)
    chunk = prefill_step(sc, min(tokens, budget) / t, wl.input_len, cached)
    prefill_s = full * chunk.seconds + (prefill_step(sc, rest / t, wl.input_len, cached).seconds if rest else 0.0)
    # request i (1..size) gets its first token with chunk ceil(i x new / budget): mean index a(size+1)/2 + 1/2
    chunks = full + (1 if rest else 0)
    mean_chunk = min(chunks, max(1.0, new / budget * (size + 1) / 2 + 0.5))
    ttft = min(prefill_s, mean_chunk * chunk.seconds)
    tps = tokens_per_step(sc)
    step = decode_step(sc, size / t, sc.workload.mean_kv_len)
    if wl.output_len_dist == "exponential" and wl.output_len > 1:
        decode_s, tpot = _varied_decode(sc, size, prefill_s - ttft)
        duration = prefill_s + float(decode_s[-1])
        mean_end = prefill_s + float(np.mean(decode_s))
    else:
        steps = max(wl.output_len - 1, 0) / tps
        duration = mean_end = prefill_s + steps * step.seconds
        tpot = (duration - ttft) / (wl.output_len - 1) if wl.output_len > 1 else step.seconds / tps
    # the API server takes the wave's requests in one at a time (all engine groups of a replica share it, or its
    # api_server_count processes do, side by side) and
    # streams nothing until it has: every first token waits for that, and the last prompt reaches the engine then,
    # so the wave ends that much later. TPOT stays the engine's schedule: the tokens held meanwhile reach the client
    # through the same single process afterwards, at a per-token cost that is not modelled (approximate)
    dp = sc.parallelism.dp_attention
    ingest = sc.engine.request_ingest_s * size * dp / sc.engine.api_servers(dp)  # over the replica's API servers
    late = max(0.0, ingest - prefill_s)
    ttft, prefill_s, duration, mean_end = max(ttft, ingest), prefill_s + late, duration + late, mean_end + late
    ttft += sc.engine.first_token_path_s  # the first token's way out of the server, outside the forward
    # requests beyond what runs at once wait for whole waves, in order: wave k (0-based) waits k durations; with
    # n = demand / size waves (the last one partial) the mean wait is (floor(n)(floor(n) - 1)/2 + frac x floor(n)) / n
    n = demand / size
    full_waves = floor(n)
    queue = duration * (full_waves * (full_waves - 1) / 2 + (n - full_waves) * full_waves) / n
    return Wave(size, prefill_s, ttft + queue, step, duration, tpot, chunk, queue, queue + mean_end)


def _varied_decode(sc: Scenario, size: float, wait_s: float) -> tuple[np.ndarray, float]:
    """Exponential output lengths in a wave of `size` requests: (each request's decode time after the wave's
    prefill, ascending; mean TPOT). `wait_s`: mean time from a request's first token to the prefill's end."""
    wl, t = sc.workload, sc.parallelism.tp
    tps = tokens_per_step(sc)
    n = max(1, round(size))
    q = (np.arange(n) + 0.5) / n
    gen = -np.log1p(-q)  # tokens after the first, ascending; scaled to the mean output_len - 1 exactly (a wave of
    gen *= (wl.output_len - 1) / gen.mean()  # one request is then the fixed case, not the median)
    steps = np.ceil(gen / tps).astype(int)  # decode steps each request needs
    running = n - np.searchsorted(steps, np.arange(steps[-1]), side="right")  # still decoding at step k
    # step time vs running batch: exact on a geometric grid, interpolated in log(batch) between
    grid = np.unique(np.geomspace(1, n, min(n, 12)).round())
    kv = sc.workload.mean_kv_len
    times = np.array([decode_step(sc, b / t, kv).seconds for b in grid])
    per_step = np.interp(np.log(np.maximum(running, 1)), np.log(grid), times)
    ends = np.concatenate(([0.0], np.cumsum(per_step)))[steps]  # decode time of each request
    has_decode = gen >= 1
    if not has_decode.any():
        return ends, float(times[0]) / tps
    tpot = float(np.mean((wait_s + ends[has_decode]) / gen[has_decode]))
    return ends, tpot


def max_running(sc: Scenario, mem: MemoryReport) -> float:
    """Sequences one engine group can run: memory (KV at the mean length) and the engine's scheduler cap."""
    by_memory = mem.max_batch_per_gpu * sc.parallelism.tp
    return max(1.0, min(by_memory, sc.engine.running_cap))


def serve_metrics(sc: Scenario, mem: MemoryReport, steady: bool = False,
                  info: dict | None = None, curve: bool = True) -> tuple[dict, dict, list]:
    """Metrics, bottlenecks and throughput curve; `steady` serves `concurrency` as steady state, not waves.
    `info`, when given, receives how the load was served (mode, sequences per engine group, waves, queueing).
    `curve` False leaves the throughput curve out (an empty list: a caller that reads the metrics alone, such as
    the silicon validation and sizing's plan lines, skips its dozen decode steps)."""
    info = {} if info is None else info
    wl, par = sc.workload, sc.parallelism
    tps = tokens_per_step(sc)
    gpus = deployment_gpus(sc)
    per_node = sc.gpus_per_node or 1
    metrics: dict = {}
    bottleneck = {"prefill": None, "decode": None}
    if wl.phase == "prefill":
        tokens = wl.batch_per_gpu or min(sc.engine.max_batched_tokens,
                                         wl.input_len * (wl.concurrency or inf) / engine_groups(sc)) / par.tp
        step = prefill_step(sc, tokens, wl.input_len, wl.input_len * wl.prefix_cache_hit)
        info.update(mode="prefill", tokens_per_gpu_per_step=tokens)
        rate = tokens / step.seconds
        _, ttft = prefill_alone(sc)
        metrics.update(prefill_tokens_per_s_per_gpu=rate, prefill_tokens_per_s_per_node=rate * per_node,
                       ttft_ms=1e3 * max(ttft, step.seconds))
        bottleneck["prefill"] = step.bottleneck
        return metrics, bottleneck, []
    curve = throughput_curve(sc, mem) if curve else []
    new_prompt = wl.new_prompt_len
    e2e = None  # mean request latency where the serving picture gives it directly
    if wl.phase == "decode":
        b = _decode_batch(sc, mem)
        info.update(mode="decode", running_per_group=b * par.tp)
        step = decode_step(sc, b, sc.workload.mean_kv_len)
        pre, ttft = prefill_alone(sc)
        tpot = step.seconds / tps
        out_gpu = b * tps / step.seconds
        queue = 0.0
    elif wl.concurrency and not wl.batch_per_gpu and not steady:
        w = wave(sc, mem)
        info.update(mode="waves", output_len_dist=wl.output_len_dist, running_per_group=w.size,
                    waves_per_group=wl.concurrency / engine_groups(sc) / w.size,
                    wave_prefill_ms=1e3 * w.prefill_s, wave_duration_ms=1e3 * w.duration_s, queue_ms=1e3 * w.queue_s)
        step, pre, tpot, ttft, queue = w.decode_step, w.chunk, w.tpot_s, w.ttft_s, w.queue_s
        e2e = w.e2e_s
        # requests in flight: a concurrency below the engine groups leaves groups idle (concurrency 1 on 4 attention-DP
        # ranks is one request, not one per rank)
        out_gpu = min(wl.concurrency, w.size * engine_groups(sc)) * wl.output_len / w.duration_s / gpus
        metrics["prefill_tokens_per_s_per_gpu"] = w.size * new_prompt / w.prefill_s / par.tp
    else:
        running = _serve_running(sc, mem)
        info.update(mode="steady", running_per_group=running)
        pt = serve_point(sc, running)
        step, pre, tpot, ttft = pt.step, pt.prefill, pt.tpot_s, pt.ttft_s
        out_gpu = running / par.tp * tps / step.seconds
        demand = wl.concurrency / engine_groups(sc) if wl.concurrency else running
        queue = max(0.0, demand - running) / running * (wl.output_len * tpot + ttft)
        info["queue_ms"] = 1e3 * queue
        ttft += queue
        if pt.tails:  # random arrivals: the prompt's wait for prefill capacity is queueing too
            tl = pt.tails
            info.update(arrivals="poisson", requests_per_s_per_group=tl.arrivals_per_s,
                        prefill_load=tl.prefill_load,
                        prefill_wait_ms=1e3 * tl.wait_s if isfinite(tl.wait_s) else None)
            metrics[percentile_metric("ttft_ms", tl.percentile)] = 1e3 * (tl.ttft_s + queue)
            metrics[percentile_metric("tpot_ms", tl.percentile)] = 1e3 * tl.tpot_s
            queue += tl.wait_s
    metrics.setdefault("prefill_tokens_per_s_per_gpu", new_prompt / (ttft - queue) / par.tp)
    metrics.update(
        ttft_ms=1e3 * ttft, decode_tokens_per_s_per_gpu=out_gpu, tpot_ms=1e3 * tpot,
        output_tokens_per_s_per_user=1 / tpot,
        system_output_tokens_per_s=out_gpu * gpus,
        system_total_tokens_per_s=out_gpu * gpus * (1 + wl.input_len / max(wl.output_len, 1)),
        e2e_latency_ms=1e3 * (e2e if e2e is not None else ttft + max(wl.output_len - 1, 0) * tpot),
    )
    metrics["prefill_tokens_per_s_per_node"] = metrics["prefill_tokens_per_s_per_gpu"] * per_node
    metrics["decode_tokens_per_s_per_node"] = out_gpu * per_node
    bottleneck.update(prefill=pre.bottleneck, decode=step.bottleneck)
    # random arrivals beyond the prefill capacity (planner.serving.arrivals: load >= 1) queue without bound: no TTFT
    metrics = {k: (v if v is None or isfinite(v) else None) for k, v in metrics.items()}
    return metrics, bottleneck, curve


def _decode_batch(sc: Scenario, mem: MemoryReport) -> float:
    wl, par = sc.workload, sc.parallelism
    if wl.batch_per_gpu:
        return wl.batch_per_gpu
    if wl.concurrency:
        return wl.concurrency / engine_groups(sc) / par.tp
    return _slo_limited(sc, max_running(sc, mem), serving=False) / par.tp


def _serve_running(sc: Scenario, mem: MemoryReport) -> float:
    wl = sc.workload
    cap = max_running(sc, mem)
    if wl.batch_per_gpu:
        return min(cap, wl.batch_per_gpu * sc.parallelism.tp)
    if wl.concurrency:
        return max(min(cap, wl.concurrency / engine_groups(sc)), min(1.0, wl.concurrency / engine_groups(sc)))
    return _slo_limited(sc, cap, serving=True)


def slo_excess(sc: Scenario, limits: Limits, running: float) -> float:
    """Limits.excess of the serving point with `running` sequences per engine group (<= 0 where the SLO holds, at
    its percentile where it has one): what the SLO-limit searches (planner.serving.point.largest_within) narrow."""
    pt = serve_point(sc, running)
    return float(limits.excess(pt.slo_tpot_s, pt.slo_ttft_s))


def _slo_limited(sc: Scenario, cap: float, serving: bool) -> float:
    """Largest running batch per engine group (<= cap) whose TPOT and TTFT keep the SLO (planner.serving.point
    .largest_within; 1 when not even one sequence keeps it). `serving`: steady-state mixed steps with their TTFT;
    else decode steps alone."""
    limits = Limits.of(dict(sc.slo))
    if not limits.any:
        return cap

    def excess(r: float) -> float:
        if serving:
            return slo_excess(sc, limits, r)
        return float(limits.excess(OperatingPoint(sc, r).decode_step().seconds / tokens_per_step(sc), 0.0))

    best = largest_within(excess, cap, rel_tol=ESTIMATE_REL_TOL)
    return 1.0 if best is None else best


def throughput_curve(sc: Scenario, mem: MemoryReport) -> list[dict]:
    """Decode throughput vs latency for running batches 1, 2, 4, ... up to the memory/engine limit."""
    cap = max_running(sc, mem)
    points, r = [], 1.0
    tps = tokens_per_step(sc)
    while True:
        r = min(r, cap)
        step = decode_step(sc, r / sc.parallelism.tp, sc.workload.mean_kv_len)
        points.append({"running_per_group": r, "tpot_ms": 1e3 * step.seconds / tps,
                       "decode_tokens_per_s_per_gpu": r / sc.parallelism.tp * tps / step.seconds,
                       "output_tokens_per_s_per_user": tps / step.seconds, "bottleneck": step.bottleneck})
        if r >= cap:
            return points
        r *= 2


def best_decode_rate(sc: Scenario, mem: MemoryReport) -> float:
    """Decode tokens/s per GPU at the largest running batch memory and the engine allow (plan comparison)."""
    r = max_running(sc, mem)
    step = decode_step(sc, r / sc.parallelism.tp, sc.workload.mean_kv_len)
    return r / sc.parallelism.tp * tokens_per_step(sc) / step.seconds
