"""Prefill/decode disaggregation simulated (issue 18): a prefill pool and a decode pool
(planner.deploy.disaggregation) under one benchmark client, event by event, with step times from the roofline
(planner.serving.steptable) and each pool's scheduler knobs from planner.serving.gates.Sched.

A request's life:
1. the client sends it (planner.serving.client: closed loop, rate, burst); the frontend takes requests in one at a
   time (the prefill engine's `request_ingest_s`);
2. it goes to the prefill worker with the fewest prompt tokens queued, there to the attention-DP rank with the
   fewest (APPROXIMATE: TensorRT-LLM's disaggregated router and SGLang's load balancer pick round robin or at
   random, Dynamo by KV overlap and load; with equal prompts every choice spreads alike);
3. prefill: each worker steps on its own clock; a step is a prefill batch per rank of up to the token budget
   (`max_batched_tokens`) and the running cap in arrival order, the last prompt chunked, while the rank's KV pool has
   room (a prompt's KV stays there until its transfer is done); the ranks step together (the slowest rank's time); no
   decode runs there. The worker samples the first token when the prompt's last chunk is done;
4. a decode slot: the request waits (in arrival order of finished prefills) for a decode rank whose running cap
   and KV pool take it, the least loaded first; its prompt and whole answer are reserved there at once
   (TensorRT-LLM's default capacity policy GUARANTEED_NO_EVICT reserves a request's maximum tokens; APPROXIMATE for
   SGLang, which reserves part of the answer and retracts when full, and vLLM, which allocates as it goes);
5. the KV transfer (planner.deploy.disaggregation.KVTransfer): kv_bytes(prompt) over the prefill rank's link,
   transfers from one rank one after another (bandwidth shared in time), plus the fixed latency; the prefill
   rank's KV is freed when its bytes are sent;
6. decode: each decode worker steps on its own clock; a request whose KV has arrived joins at the next step
   boundary with its first token made; decode-only steps of every running request (the ranks together); steps run
   as one span up to the first finish, cut at the step boundary after a request's arrival (a request arriving
   mid-step waits for the step's end either way), as planner.serving.sim's spans.
TTFT: first token delivered when the prefill worker made it (`first_token: prefill`) or when the decode worker picks
the request up after the transfer (`decode`), plus the engine's first-token path (`first_token_path_s`); TPOT, ITL
and E2E as vLLM's client computes them (planner.serving.simstats): TPOT comes from the decode pool's steps and the
wait between the first token and the second (transfer, decode admission).

Not modelled: prefix caching (every prompt is prefilled whole), preemption (the reservation prevents it), the API
server's hold on streamed tokens during a burst (planner.serving.sim models it for one replica), transfers that share
a NIC across ranks, decode-side link contention.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import replace
from math import ceil

import numpy as np

from planner.base.errors import PlannerError
from planner.deploy.disaggregation import Disaggregation
from planner.deploy.memory import MemoryReport
from planner.deploy.scenario import Scenario
from planner.serving.client import Client
from planner.serving.disagg_workers import DecodeWorker, DisaggResult, PrefillWorker
from planner.serving.gates import Sched
from planner.serving.simstats import Run, combine
from planner.serving.steptable import step_table

INTAKE, PSTEP, KVFREE, ARRIVE, DSTEP = range(5)  # event kinds, in the order simultaneous events are handled


class DisaggRun:
    """One client against the two pools. `run()` returns the DisaggResult."""

    def __init__(self, dis: Disaggregation, mems: tuple[MemoryReport, MemoryReport], client: Client):
        self.dis, self.client = dis, client
        self.ps, self.ds = Sched.of(dis.prefill.scenario, mems[0]), Sched.of(dis.decode.scenario, mems[1])
        self.ptab, self.dtab = step_table(dis.prefill.scenario, client), step_table(dis.decode.scenario, client)
        rng = np.random.default_rng(client.seed)
        n = client.num_prompts
        self.inp, self.out = client.input.draw(n, rng), client.output.draw(n, rng)
        self.send_at = client.send_times(rng)
        self.sent, self.first, self.last = (np.full(n, np.nan) for _ in range(3))
        self.done = np.zeros(n)  # prompt tokens prefilled
        self.gen = np.zeros(n)  # tokens generated (the first one by the prefill worker) when it joins decoding
        self.last_tok = np.zeros(n)  # engine time of its latest token when it joins decoding (ITL)
        self.g0, self.c0 = [0.0] * n, [0.0] * n  # decoding: generated G - g0, context G + c0 (DecodeWorker.G)
        self.intake = np.zeros(n)
        self.prefilled = np.zeros(n)
        self.reserved = np.zeros(n)
        self.arrived = np.zeros(n)
        self.joined = np.zeros(n)
        self.nbytes = np.array([dis.kv_bytes(x) for x in self.inp]) if n else np.zeros(0)
        self.where = np.zeros((n, 2), dtype=np.int64)  # prefill worker and rank
        self.rank_of = np.zeros(n, dtype=np.int64)  # decode rank
        self.pw = [PrefillWorker(self.ps.ranks) for _ in range(dis.prefill.workers)]
        self.dw = [DecodeWorker(self.ds.ranks) for _ in range(dis.decode.workers)]
        self.pending: deque = deque()  # prefilled requests waiting for a decode slot
        self.events: list = []
        self.seq = 0
        self.next_send = self.finished = 0
        self.ingest_free = 0.0
        self.itl_gap: list[float] = []  # inter-token gaps (seconds) ...
        self.itl_n: list[float] = []  # ... and how many tokens had each
        self.timeline: list[tuple[float, int, int, float]] = []
        self.prefill_tokens = 0.0
        # the timeline's totals, kept as they change (sums of whole token counts: exact in any order)
        self.n_running = self.n_waiting = 0
        self.kv_reserved = 0.0

    def _push(self, t: float, kind: int, data) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, data))

    # -- client and frontend ----------------------------------------------------------------------------------------
    def _send_more(self, t: float) -> None:
        c, n = self.client.concurrency, self.client.num_prompts
        while self.next_send < n and (c is None or self.next_send - self.finished < c):
            i = self.next_send
            self.next_send += 1
            self.sent[i] = max(t, float(self.send_at[i]))
            self.ingest_free = max(self.sent[i], self.ingest_free) + self.ps.ingest_s
            self._push(self.ingest_free, INTAKE, i)

    # -- prefill ----------------------------------------------------------------------------------------------------
    def _route(self, i: int, t: float) -> None:
        w = min(range(len(self.pw)), key=lambda k: self.pw[k].total) if len(self.pw) > 1 else 0
        p = self.pw[w]
        r = min(range(self.ps.ranks), key=lambda q: p.queued[q])
        p.waiting[r].append(i)
        self.n_waiting += 1
        p.queued[r] += self.inp[i]
        p.total += self.inp[i]
        self.where[i] = (w, r)
        self.intake[i] = t
        self._prefill_step(w, t)

    def _prefill_step(self, w: int, t: float) -> None:
        p, s = self.pw[w], self.ps
        if p.busy:
            return
        plan, dt = [], 0.0
        for r in range(s.ranks):
            budget, free, pieces = float(s.budget), s.kv_tokens - p.kv_used[r], []
            for i in p.waiting[r]:
                left = self.inp[i] - self.done[i]
                take = min(left, budget, free)
                if take <= 0 or len(pieces) >= s.cap:
                    break
                pieces.append((i, take))
                budget, free = budget - take, free - take
                if take < left:
                    break
            if pieces:
                tokens = sum(x for _, x in pieces)
                ctx = sum(x * (self.done[i] + x / 2) for i, x in pieces) / tokens
                dt = max(dt, self.ptab.prefill(tokens, ctx))
                plan.append((r, pieces))
        if plan:
            p.busy, p.busy_s = True, p.busy_s + dt
            self._push(t + dt, PSTEP, (w, plan))

    def _prefill_done(self, w: int, plan, t: float) -> None:
        p = self.pw[w]
        p.busy = False
        for r, pieces in plan:
            for i, x in pieces:
                self.done[i] += x
                p.kv_used[r] += x
                p.queued[r] -= x
                p.total -= x
                self.prefill_tokens += x
                if self.done[i] >= self.inp[i] - 1e-9:
                    p.waiting[r].popleft()
                    self.n_waiting -= 1
                    self.prefilled[i] = t
                    self.gen[i] = 1.0
                    if self.dis.transfer.first_token == "prefill":
                        self.first[i] = t + self.ds.path_s
                        self.last_tok[i] = t
                    self.pending.append(i)
        self._reserve(t)
        self._prefill_step(w, t)

    # -- decode slot and transfer -------------------------------------------------------------------------------------
    def _reserve(self, t: float) -> None:
        s = self.ds
        while self.pending:
            i = self.pending[0]
            need = float(self.inp[i] + self.out[i])
            room = s.kv_tokens - need
            best, fewest = None, s.cap  # the first rank (worker-major) holding the fewest, with a slot and the KV
            for w, d in enumerate(self.dw):
                held, kv = d.held, d.kv_used
                for r in range(s.ranks):
                    if held[r] < fewest and kv[r] <= room:
                        best, fewest = (w, r), held[r]
            if best is None:
                return
            self.pending.popleft()
            w, r = best
            d = self.dw[w]
            d.held[r] += 1
            d.kv_used[r] += need
            self.kv_reserved += need
            self.reserved[i] = t
            self.rank_of[i] = r
            pw, pr = self.where[i]
            link = self.pw[pw]
            start = max(t, link.link_free[pr])
            link.link_free[pr] = start + self.nbytes[i] / self.dis.transfer.bytes_per_s
            self._push(link.link_free[pr], KVFREE, (pw, pr, float(self.inp[i])))
            self._push(link.link_free[pr] + self.dis.transfer.latency_s, ARRIVE, (i, w, r))

    # -- decode -----------------------------------------------------------------------------------------------------
    def _decode_step(self, w: int, t: float) -> None:
        d, s = self.dw[w], self.ds
        if d.busy:
            return
        for r in range(s.ranks):
            for i in d.ready[r]:
                self.joined[i] = t
                if self.dis.transfer.first_token == "decode":
                    self.first[i] = t + s.path_s
                    self.last_tok[i] = t
                if self.out[i] <= 1:
                    self._finish(w, r, i, t, running=False)
                    continue
                d.per_rank[r] += 1
                gen = float(self.gen[i])
                self.g0[i], self.c0[i] = d.G - gen, float(self.inp[i]) + gen - d.G
                d.sum_c0 += self.c0[i]
                heapq.heappush(d.heap, (self.g0[i] + float(self.out[i]), i))
                d.joined.append(i)
                self.n_running += 1
            d.ready[r] = []
        if not d.heap:
            return
        steps = max(1, ceil((d.heap[0][0] - d.G) / s.tps - 1e-9))  # to the first finish
        dt = self._decode_seconds(d, steps)
        d.busy, d.span, d.version = True, (t, steps, dt), d.version + 1
        self._push(t + steps * dt, DSTEP, (w, d.version))

    def _arrive(self, i: int, w: int, r: int, t: float) -> None:
        """Request i's KV is on decode rank r of worker w: it joins at the worker's next step boundary (a span
        running past that boundary is cut there: its step time, taken at the uncut span's middle context, kept)."""
        d = self.dw[w]
        self.arrived[i] = t
        d.ready[r].append(i)
        if not d.busy:
            self._decode_step(w, t)
            return
        t0, steps, dt = d.span
        cut = max(1, ceil((t - t0) / dt - 1e-9))
        if cut < steps:
            d.span, d.version = (t0, cut, dt), d.version + 1
            self._push(t0 + cut * dt, DSTEP, (w, d.version))

    def _decode_seconds(self, d: DecodeWorker, steps: int) -> float:
        """One decode step of the worker at the span's middle context: its fullest rank's batch at the worker's mean
        context (APPROXIMATE: the ranks' contexts taken alike; requests go to the least loaded rank)."""
        kv = d.G + d.sum_c0 / d.running + (steps - 1) / 2 * self.ds.tps
        return self.dtab.decode(max(d.per_rank), kv)

    def _decode_done(self, w: int, version: int, t: float) -> None:
        d, s = self.dw[w], self.ds
        if version != d.version:  # the end of a span since cut
            return
        d.busy = False
        _, steps, dt = d.span
        n = d.running
        d.steps += steps
        d.running_sum += steps * n
        # ITL gaps with their token counts: those that decoded in the worker's last step share one gap (the step
        # time when the spans are back to back: counted with the span's other steps), those that joined since
        # their own (from the first token)
        first_end, alike = t - (steps - 1) * dt, (steps - 1) * n
        shared = n - len(d.joined)
        gaps = [(first_end - d.last_end, shared)] if shared else []
        gaps += [(first_end - float(self.last_tok[i]), 1) for i in d.joined]
        for gap, count in gaps:
            if abs(gap - dt) <= 1e-9 * dt:
                alike += count
            else:
                self.itl_gap.append(gap)
                self.itl_n.append(float(count))
        d.joined.clear()
        self.itl_gap.append(dt)
        self.itl_n.append(float(alike))
        d.G += steps * s.tps
        d.last_end = t
        top = d.G + 1e-9
        while d.heap and d.heap[0][0] <= top:
            i = heapq.heappop(d.heap)[1]
            d.sum_c0 -= self.c0[i]
            self.n_running -= 1
            self._finish(w, int(self.rank_of[i]), i, t)
        self.timeline.append((t, self.n_running, self.n_waiting + len(self.pending),
                              self.kv_reserved / (s.kv_tokens * s.ranks * len(self.dw))))
        self._reserve(t)
        self._decode_step(w, t)

    def _finish(self, w: int, r: int, i: int, t: float, running: bool = True) -> None:
        d = self.dw[w]
        if running:  # (already off the worker's heap)
            d.per_rank[r] -= 1
        d.held[r] -= 1
        d.kv_used[r] -= float(self.inp[i] + self.out[i])
        self.kv_reserved -= float(self.inp[i] + self.out[i])
        self.last[i] = t + self.ds.path_s
        self.finished += 1
        self._send_more(float(self.last[i]))

    # -- the run ----------------------------------------------------------------------------------------------------
    def run(self) -> DisaggResult:
        n = self.client.num_prompts
        if n and (self.inp + self.out).max() > self.ds.kv_tokens:
            raise PlannerError(f"a request of {int((self.inp + self.out).max()):,} tokens does not fit a decode rank's "
                               f"KV pool of {self.ds.kv_tokens:,.0f} tokens", field="disaggregation.decode")
        self._send_more(0.0)
        while self.events:
            t, kind, _, data = heapq.heappop(self.events)
            if kind == INTAKE:
                self._route(data, t)
            elif kind == PSTEP:
                self._prefill_done(data[0], data[1], t)
            elif kind == KVFREE:
                w, r, tokens = data
                self.pw[w].kv_used[r] -= tokens
                self._prefill_step(w, t)
            elif kind == ARRIVE:
                self._arrive(*data, t)
            else:
                self._decode_done(data[0], data[1], t)
        if self.finished < n:
            raise PlannerError("disaggregated simulation stalled: requests neither run nor arrive (a prompt larger "
                               "than a prefill rank's KV pool?)", field="disaggregation")
        return self._result()

    def _result(self) -> DisaggResult:
        dis, n = self.dis, self.client.num_prompts
        busy = sum(p.busy_s for p in self.pw)
        run = Run(self.sent, self.first, self.last, self.inp, self.out, np.array(self.itl_gap), np.array(self.itl_n),
                  np.array(self.timeline).reshape(-1, 4), self.prefill_tokens, busy * dis.prefill.gpus_per_worker,
                  np.zeros(n))
        sim = combine(_whole(dis), [(run, 1)])
        duration = max(sim.duration_s, 1e-12)
        steps = sum(d.steps for d in self.dw)
        return DisaggResult(sim, float(np.mean(self.prefilled - self.intake)),
                            float(np.mean(self.reserved - self.prefilled)),
                            float(np.mean(self.arrived - self.reserved)), float(np.mean(self.joined - self.arrived)),
                            float(np.mean(self.nbytes)),
                            busy / len(self.pw) / duration,
                            sum(d.running_sum for d in self.dw) / steps if steps else 0.0)


def simulate_disaggregated(dis: Disaggregation, mems: tuple[MemoryReport, MemoryReport],
                           client: Client) -> DisaggResult:
    """Run `client` against the prefill and decode pools of `dis` (`mems`: each pool's memory report)."""
    return DisaggRun(dis, mems, client).run()


def _whole(dis: Disaggregation) -> Scenario:
    """The decode worker's scenario standing for the whole deployment in planner.serving.simstats.combine: its
    GPUs are every GPU of both pools (per-GPU throughput), one GPU per replica (the run's prefill_busy_s is counted
    in prefill GPU-seconds, so prefill tokens/s per GPU is per prefill GPU)."""
    sc = dis.decode.scenario
    return replace(sc, parallelism=replace(sc.parallelism, tp=1, dp_attention=1, pp=1, replicas=dis.gpus))

