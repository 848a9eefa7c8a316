"""Discrete-event simulator of one serving deployment: the engine's scheduler and a benchmark client, step by step,
with step times from the roofline (planner.serving.steptable over planner.perf.steps). Issue 18, part 1.

Run: `python -m planner.serving.sim --bench` (speed: 1,000 requests of 1,024 in / 1,024 out at concurrency 64).

What is simulated, per replica (replicas share the client's requests evenly: concurrency, prompts and rate split
over them; a replica left without requests idles, so concurrency 1 never counts more than one user):
- the API server (one per replica, or Engine.api_servers side by side: vLLM >= 0.15 starts one per DP rank) takes
  requests in one at a time, `request_ingest_s` each, and streams nothing
  while requests wait to be taken in: a first token made meanwhile reaches the client when that backlog is done,
  and the request's later tokens as much later (they stream at the engine's pace afterwards; the per-token cost of
  that streaming is not modelled), as planner.serving.serve.wave does in closed form;
- attention-DP routing: each of the dp_attention ranks has its own scheduler, running batch and KV pool; requests go
  round robin (SGLang DataParallelController, --load-balance-method default round_robin) or to the least loaded rank
  (vLLM's DP load balancer: fewest waiting x 4 + running, vllm/v1/engine/core_client.py DPLBAsyncMPClient). The
  ranks step together (the MoE layers gather every rank's tokens): a replica's step lasts as long as its slowest
  rank's; a rank with no request joins with an idle batch that costs nothing here (APPROXIMATE: the op records of
  the fullest rank are used, not the MoE tokens of all ranks together);
- the scheduler of each rank, every step:
  - mixed engines (vLLM V1 `Scheduler.schedule`, TRT-LLM in-flight batching; engine `mixed_chunk: true`): a token
    budget of `max_batched_tokens`; running requests first (a decoding one takes 1 + MTP drafts tokens, one still
    in prefill takes the rest of its prompt up to the budget left), then waiting requests in arrival order while
    budget, the running cap (`Engine.running_cap`) and free KV allow, the last one chunked;
  - prefill-first engines (SGLang's default, `mixed_chunk: false`, scheduler.py get_next_batch_to_run): whenever a
    prompt waits (or a chunked one is unfinished) and can be admitted, a prefill batch of up to
    `max_batched_tokens` (--chunked-prefill-size) prompt tokens runs as a step of its own; otherwise one decode step
    of every running request;
  - KV: a group holds `MemoryReport.kv_tokens_per_gpu` tokens (its pool; a sequence's KV sits on every GPU of its
    TP group, split or replicated, so the pool of one GPU is the group's token count). A request holds its cached
    prefix, prefilled prompt and generated tokens. Blocks are taken as tokens are computed (vLLM's
    KVCacheManager.allocate_slots, no reservation); when a step cannot get its tokens, the latest admitted running
    request is preempted (vLLM's default, preemption by recompute; SGLang retract_decode likewise): its KV is freed
    and it waits at the head of the queue to prefill its prompt and generated tokens again. APPROXIMATE: SGLang's
    admission reserves KV for the outputs to come (new_token_ratio 0.7 decaying to 0.1), not modelled;
  - without chunked prefill (TensorRT-LLM's default, Engine.chunked_prefill false) a prompt goes whole into a step
    with room for it, or waits;
  - overlap scheduling (TensorRT-LLM, SGLang, vLLM's async scheduling; Engine.overlap_schedule): the scheduler
    forms step k+1 while step k runs, fetching requests as step k starts, so a request that arrives mid-step joins
    the step after the next (an idle engine takes it at once). APPROXIMATE: the first token is sent when its step
    ends; the engines send it once the next step is launched, a host delay not modelled;
  - CUDA graphs: the step-time model decides per step size (Engine.graphed: eager above the largest captured
    size); a decode batch replays the graph of the smallest captured size at least as large (Engine.graph_batch,
    the engine profile's cuda_graph_sizes), its layers timed at that size and its attention at the real batch
    (planner.serving.steptable); mixed and prefill steps are not padded;
  - prefix cache: `prefix_cache_hit` of every prompt is cached (its KV held, not computed);
  - MTP: each decode step gives 1 + drafts x acceptance tokens per request (planner.perf.steps.tokens_per_step).
- spans: while no rank has a prompt to prefill, every step is a decode step of the same batch, so the steps up to
  the next event (a request finishing, one arriving, the KV pool filling) run as one span, its step time taken at
  the span's middle context (exact where step time is linear in the context, planner.serving.steptable).

Metrics: planner.serving.simstats (vLLM benchmarks/serve.py definitions).

Closed loops and equal lengths: with every prompt and answer the same length, a closed loop's requests that start
together finish together and stay in step (waves); the clients' --random-range-ratio (workload.random_range_ratio,
planner.serving.client.Lengths.random) spreads the lengths, so requests drift apart and later prompts mostly
prefill alone. Which one a published run used matters more for TTFT than anything below (issue 18 notes).

Disaggregated pools are planner.serving.disagg; sizing re-runs its reported plans here (planner.sizing.simulated).
Not yet (issue 18): SGLang's output-token reservation at admission (new_token_ratio 0.7 decaying to 0.14 x
conservativeness over 600 steps; a new batch reserves its whole max_new_tokens, clipped at 4,096); TensorRT-LLM's
unpadded default graphs (sizes 1-32, 64, 128; other batches eager: profiles/engines/trtllm.yaml says why not) and its
one dummy request per padded row, which routes to the same experts (vLLM's and SGLang's padded rows carry stale
tokens and route like real ones, as modelled); a per-token streaming cost after a burst.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from heapq import heappop, heappush
from math import ceil

import numpy as np

from planner.deploy.memory import MemoryReport, memory_report
from planner.deploy.scenario import Scenario
from planner.deploy.scenario_file import load_scenario
from planner.serving.client import Client, Lengths
from planner.serving.gates import Gates, Sched
from planner.serving.intake import Intake
from planner.serving.simstats import Run, SimResult, combine, ttft_floor
from planner.serving.steptable import StepTable, step_table

GIVE_UP_EVERY = 16  # loop iterations between give_up checks (one costs about as much as 10 iterations)


class Replica(Intake, Gates):
    """One replica under one client: requests, ranks, clock. `run()` fills the per-request arrays.

    Decoding requests of a rank advance together (every decode step gives each 1 + MTP tokens), so a rank keeps one
    counter G of tokens per decoding request since the start, and a decoding request i keeps only offsets: its
    generated tokens are G - g0[i] and its KV G + c0[i]. A step then costs O(1) per rank, not O(batch): the batch's
    mean context is G + mean(c0), and the next request to finish is the top of a heap keyed by the G at which it
    does. Inter-token gaps are recorded as (gap, tokens) pairs: every request that decoded in a rank's last decode
    step shares one gap; those that joined since (a first token, a recomputed prompt) carry their own."""

    def __init__(self, sched: Sched, table: StepTable, client: Client, cached: float, give_up=None):
        super().__init__()
        self.s, self.table, self.client = sched, table, client
        rng = np.random.default_rng(client.seed)
        n = client.num_prompts
        self.inp = client.input.draw(n, rng)
        self.out = client.output.draw(n, rng)
        self.send_at = client.send_times(rng)
        cached_arr = np.minimum(np.floor(self.inp * cached), self.inp - 1)  # prefix-cache tokens of each prompt
        self.cached = cached_arr.tolist()
        self.out_l = self.out.astype(float).tolist()
        self.prompt = (self.inp - cached_arr).astype(float).tolist()  # tokens to prefill (recompute adds generated)
        self.inp_l = self.inp.astype(float).tolist()
        self.done_pf = [0.0] * n  # prompt tokens prefilled so far
        self.gen = [0.0] * n  # output tokens so far, while not decoding (decoding: G - g0)
        self.ctx = [0.0] * n  # KV tokens held, while not decoding (decoding: G + c0)
        self.g0 = [0.0] * n
        self.c0 = [0.0] * n
        self.ver = [0] * n  # heap entries of an earlier decoding spell are stale
        self.sent = np.full(n, np.nan)
        self.first = np.full(n, np.nan)  # first token delivered to the client
        self.last = np.full(n, np.nan)  # last token delivered
        self.last_tok = [0.0] * n  # engine time of the latest token (ITL) of a request that joined decoding
        self.held = np.zeros(n)  # how long the API server held the first token (and so every later one)
        self.itl_gap: list[float] = []  # inter-token gaps (seconds) ...
        self.itl_n: list[float] = []  # ... and how many tokens had each
        k = sched.ranks
        self.waiting = [deque() for _ in range(k)]
        self.running: list[list[int]] = [[] for _ in range(k)]  # in admission order
        self.filling: list[list[int]] = [[] for _ in range(k)]  # running requests still prefilling, in order
        self.decoding: list[set[int]] = [set() for _ in range(k)]
        self.joined: list[list[int]] = [[] for _ in range(k)]  # joined decoding since the rank's last decode step
        self.heap: list[list] = [[] for _ in range(k)]  # (G at which it finishes, version, request)
        self.G = [0.0] * k
        self.sum_c0 = [0.0] * k
        self.last_dec = [0.0] * k  # end of the rank's last decode step
        self.kv_used = [0.0] * k
        self.rr = 0
        self.next_send = 0
        self.prefill_tokens = 0.0
        self.prefill_busy_s = 0.0
        self.rc = 0  # the scheduler's receive counter (SGLang SchedulerRecvSkipper._counter)
        self.last_decode = 0  # decode steps of the last span (0: it prefilled, or nothing ran)
        self.wait_count = 0  # iterations the scheduled context requests have been held (TensorRT-LLM batch waiting)
        self.holding = False  # this step holds them
        self.adp_wait = self.adp_batch = 0  # TensorRT-LLM attention-DP balance counters
        self.adp_hold = False  # this iteration holds every rank's context requests
        self.timeline: list[tuple[float, int, int, float]] = []  # (t, running, queued, KV used fraction)
        self.give_up, self.stopped_s = give_up, None  # simulate's give_up (True stops the run), and when it did

    # -- decoding set -------------------------------------------------------------------------------------------
    def _join(self, r: int, i: int, last_token: float) -> None:
        """Request i (its gen and ctx as held) starts decoding on rank r."""
        g = self.G[r]
        self.g0[i], self.c0[i] = g - self.gen[i], self.ctx[i] - g
        self.ver[i] += 1
        self.decoding[r].add(i)
        self.sum_c0[r] += self.c0[i]
        heappush(self.heap[r], (self.g0[i] + self.out_l[i], self.ver[i], i))
        self.last_tok[i] = last_token
        self.joined[r].append(i)

    def _leave(self, r: int, i: int) -> None:
        """Request i stops decoding (finished or preempted): its gen and ctx are held again."""
        g = self.G[r]
        self.gen[i], self.ctx[i] = g - self.g0[i], g + self.c0[i]
        self.decoding[r].discard(i)
        self.sum_c0[r] -= self.c0[i]
        self.ver[i] += 1
        if i in self.joined[r]:
            self.joined[r].remove(i)
        else:  # it decoded in the rank's last decode step
            self.last_tok[i] = self.last_dec[r]

    def _next_finish(self, r: int) -> float | None:
        """The G at which the next decoding request of rank r finishes (stale heap entries dropped)."""
        h = self.heap[r]
        while h and h[0][1] != self.ver[h[0][2]]:
            heappop(h)
        return h[0][0] if h else None

    # -- scheduler --------------------------------------------------------------------------------------------------
    def _schedule(self, r: int) -> tuple[int, list[tuple[int, float]]]:
        """This step's decoding requests (how many) and prompt pieces (request, tokens) of rank r."""
        s, run = self.s, self.running[r]
        if not s.mixed:  # SGLang: a prefill batch, when one can be formed, runs alone
            pieces = self._pieces(r, s.budget, s.kv_tokens - self.kv_used[r])
            if pieces:
                return 0, pieces
        preempted = False
        while self.kv_used[r] + len(self.decoding[r]) * s.tps > s.kv_tokens and len(run) > 1:
            self._preempt(r, run[-1])  # the latest admitted request gives its KV back (recompute later)
            preempted = True
        n_dec = len(self.decoding[r])
        if not s.mixed or preempted:  # vLLM admits no waiting request in a step that preempted
            return n_dec, []
        free = s.kv_tokens - self.kv_used[r] - n_dec * s.tps
        if self.adp_hold or self._holds(r, n_dec):
            return n_dec, []
        return n_dec, self._pieces(r, s.budget - n_dec * s.draft, free)

    def _pieces(self, r: int, budget: float, free: float) -> list[tuple[int, float]]:
        """Prompt pieces for `budget` tokens and `free` KV tokens: unfinished prompts first, then waiting requests
        in order while the running cap allows (the last one chunked; one whose chunk finds no KV waits). Without
        chunked prefill (Sched.chunk) a prompt goes whole or waits, and the first that does not fit ends the scan
        (TensorRT-LLM cpp/tensorrt_llm/batch_manager/microBatchScheduler.cpp without a context chunking config:
        `break` once the batch's tokens would pass max_num_tokens); one longer than the whole budget, which that
        engine refuses, is chunked here instead."""
        s, run, wait = self.s, self.running[r], self.waiting[r]
        pieces = []
        for i in self.filling[r]:
            take = min(self.prompt[i] - self.done_pf[i], budget, free)
            if take <= 0:
                break
            pieces.append((i, take))
            budget, free = budget - take, free - take
        while wait and budget > 0 and len(run) < s.cap:
            i = wait[0]
            left = self.prompt[i] - self.done_pf[i]
            want = min(left, budget)
            if want + self.cached[i] > free or not s.chunk and want < left <= s.budget:
                break
            wait.popleft()
            run.append(i)
            self.filling[r].append(i)
            self.ctx[i] = self.cached[i]
            self.kv_used[r] += self.cached[i]
            pieces.append((i, want))
            budget, free = budget - want, free - want - self.cached[i]
        return pieces

    def _preempt(self, r: int, i: int) -> None:
        self.running[r].remove(i)
        if i in self.decoding[r]:
            self._leave(r, i)
        else:
            self.filling[r].remove(i)
        self.kv_used[r] -= self.ctx[i]
        self.ctx[i] = 0.0
        self.prompt[i] = self.inp_l[i] - self.cached[i] + self.gen[i]  # recompute the prompt and generated tokens
        self.done_pf[i] = 0.0
        self.waiting[r].appendleft(i)

    def _rank_seconds(self, r: int, n_dec: int, pieces, steps: int = 1) -> float:
        kv = self.G[r] + self.sum_c0[r] / n_dec + (steps - 1) / 2 * self.s.tps if n_dec else 0.0
        if not pieces:
            return self.table.decode(n_dec, kv)
        tokens = sum(p for _, p in pieces)
        ctx = sum(p * (self.cached[i] + self.done_pf[i] + p / 2) for i, p in pieces) / tokens
        return self.table.mixed(n_dec, kv, tokens, ctx)

    # -- the run ----------------------------------------------------------------------------------------------------
    def run(self) -> Run:
        s, n = self.s, self.client.num_prompts
        ranks = range(s.ranks)
        self._finished = 0
        t = fetched = 0.0  # fetched: when the scheduler last looked for requests (overlap: the last step's start)
        self._send_more(t)
        while self._finished < n:
            if self._receives():
                self._admit_ready(fetched if s.overlap else t)
            self.adp_hold = self._adp_holds(self.last_decode or 1)
            plan = [self._schedule(r) for r in ranks]
            prefill = any(p for _, p in plan)
            if not prefill and not any(d for d, _ in plan):
                if not self.ready:
                    raise RuntimeError("serving simulator stalled: nothing runs and nothing arrives")
                t = fetched = max(t, self.ready[0][0])  # an idle scheduler takes a request in as it arrives
                self.last_decode = 0
                continue
            steps, dt = (1, None) if prefill else self._span(plan, t)
            if dt is None:
                dt = max(self._rank_seconds(r, d, p, steps) for r, (d, p) in zip(ranks, plan, strict=True))
            t_end = t + steps * dt
            fetched = t_end - dt
            if prefill:
                self.prefill_busy_s += dt
            for r, (n_dec, pieces) in zip(ranks, plan, strict=True):
                self._advance(r, n_dec, pieces, steps, dt, t_end)
            self.last_decode = 0 if prefill else steps
            if self.holding:
                self.wait_count += steps
            t = t_end
            self._send_more(t)
            self.timeline.append((t, sum(map(len, self.running)), sum(map(len, self.waiting)) + self._intake(t),
                                  sum(self.kv_used) / (s.kv_tokens * s.ranks)))
            if self.give_up and not len(self.timeline) % GIVE_UP_EVERY and self.give_up(ttft_floor(self, t)):
                self.stopped_s = t
                break
        return Run(self.sent, self.first, self.last, self.inp, self.out, np.array(self.itl_gap),
                   np.array(self.itl_n), np.array(self.timeline).reshape(-1, 4), self.prefill_tokens,
                   self.prefill_busy_s, self.held, self.stopped_s)

    def _span(self, plan, t: float) -> tuple[int, float | None]:
        """Decode steps that can run as one span from t: up to the first finish, the KV pool filling, the next
        arrival; with the span's step time where it was computed for that many steps (else None)."""
        s, k = self.s, None
        for r, (n_dec, _) in enumerate(plan):
            if not n_dec:
                continue
            left = ceil((self._next_finish(r) - self.G[r]) / s.tps - 1e-9)
            room = int((s.kv_tokens - self.kv_used[r]) // (n_dec * s.tps)) if s.kv_tokens < float("inf") else left
            k = min(left, max(1, room)) if k is None else min(k, left, max(1, room))
        k = max(1, k or 1)
        if self.holding:  # held context requests are scheduled once the wait runs out
            k = min(k, max(1, self.s.wait_iters - self.wait_count))
        if self.adp_hold:
            k = min(k, self._adp_release())
        if self.ready and k > 1:
            dt = max(self._rank_seconds(r, d, p, k) for r, (d, p) in enumerate(plan))
            # the step the next request arrives in (<= 0: before this span); with overlap scheduling the scheduler
            # fetches it as the following step starts, so the span runs one step more to reach that fetch
            arrival = ceil((self.ready[0][0] - t) / dt) + self.s.overlap
            cut = max(1, min(k, self._recv_step(max(1, arrival))))
            return cut, (dt if cut == k else None)
        return k, None

    def _advance(self, r: int, n_dec: int, pieces, steps: int, dt: float, t_end: float) -> None:
        s = self.s
        finished = []
        if n_dec:
            first_end = t_end - (steps - 1) * dt
            shared = n_dec - len(self.joined[r])
            if shared:
                self.itl_gap.append(first_end - self.last_dec[r])
                self.itl_n.append(float(shared))
            for i in self.joined[r]:
                self.itl_gap.append(first_end - self.last_tok[i])
                self.itl_n.append(1.0)
            self.joined[r].clear()
            if steps > 1:
                self.itl_gap.append(dt)
                self.itl_n.append(float((steps - 1) * n_dec))
            self.G[r] += steps * s.tps
            self.kv_used[r] += steps * s.tps * n_dec
            self.last_dec[r] = t_end
            g, h = self.G[r] + 1e-9, self.heap[r]
            while (top := self._next_finish(r)) is not None and top <= g:
                finished.append(heappop(h)[2])
        for i, p in pieces:
            self.done_pf[i] += p
            self.ctx[i] += p
            self.kv_used[r] += p
            self.prefill_tokens += p
            if self.done_pf[i] < self.prompt[i] - 1e-9:
                continue
            self.filling[r].remove(i)
            if self.first[i] != self.first[i]:  # NaN: no first token yet (not a recomputed prompt)
                self.first[i] = self._delivered(t_end)
                self.held[i] = self.first[i] - (t_end + s.path_s)
                self.gen[i] = 1.0
                if self.out_l[i] <= 1:
                    finished.append(i)
                    continue
                self._join(r, i, t_end)
            else:  # a recomputed prompt: decoding resumes where it stopped
                self._join(r, i, self.last_tok[i])
        for i in finished:
            self.running[r].remove(i)
            if i in self.decoding[r]:
                self._leave(r, i)
            self.kv_used[r] -= self.ctx[i]
            self.last[i] = t_end + s.path_s + self.held[i]
            self._finished += 1


def simulate(sc: Scenario, mem: MemoryReport, client: Client, give_up=None) -> SimResult:
    """Run `client` against the deployment; replicas share its requests evenly (identical shares simulated once).
    `give_up(TTFT so far: simstats.ttft_floor)` may stop a run whose verdict is settled (SimResult.stopped_s)."""
    sched = Sched.of(sc, mem)
    wl = sc.workload
    table = step_table(sc, client)
    reps = sc.parallelism.replicas
    shares = []
    for k in range(reps):
        c = None if client.concurrency is None else client.concurrency // reps + (k < client.concurrency % reps)
        m = client.num_prompts // reps + (k < client.num_prompts % reps)
        if m and (c is None or c > 0):
            shares.append((c, m))
    runs = []
    for share in sorted(set(shares)):
        c, m = share
        sub = Client(m, client.input, client.output, c, client.rate / reps if client.rate else None,
                     client.arrival, client.seed)
        runs.append((Replica(sched, table, sub, wl.prefix_cache_hit, give_up).run(), shares.count(share)))
    return combine(sc, runs)


def _bench() -> None:
    sc = load_scenario("profiles/scenarios/kimi-k2.5-int4-8xh200.yaml")
    mem = memory_report(sc)
    client = Client(1000, Lengths(1024), Lengths(1024), concurrency=64)
    for label in ("first (step table built)", "again (step table cached)"):
        t0 = time.perf_counter()
        res = simulate(sc, mem, client)
        print(f"{label}: {1e3 * (time.perf_counter() - t0):.0f} ms; {res.summary_line()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="store_true", help="time 1,000 requests of 1,024/1,024 at concurrency 64")
    if parser.parse_args().bench:
        _bench()
