"""The simulated engine's scheduler knobs (Sched) and when it lets new work into a step (planner.serving.sim.Replica):
the knobs that hold requests back on purpose, each as its engine's code does it. Gates is a mixin over the replica's
state (`s`: Sched, `waiting`, `running`, `filling`, `decoding`, `prompt`, `done_pf`, `rc`, `last_decode`,
`wait_count`, `holding`, `adp_wait`, `adp_batch`)."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from planner.deploy.memory import MemoryReport
from planner.deploy.scenario import Scenario
from planner.perf.steps import tokens_per_step

LEAST_LOADED = ("vllm",)  # engines whose DP router picks the least loaded rank (others: round robin)


@dataclass(frozen=True)
class Sched:
    """Scheduler knobs of one engine group (attention-DP rank)."""

    budget: int  # tokens per step (max_num_batched_tokens, --chunked-prefill-size, max_num_tokens)
    cap: int  # running requests (Engine.running_cap)
    kv_tokens: float  # KV pool of the group, tokens
    mixed: bool  # prompt chunks share decode steps
    tps: float  # tokens per request per decode step (MTP included)
    draft: int  # budget tokens a decoding request takes (1 + MTP drafts)
    ingest_s: float  # the intake's time per request: request_ingest_s over the replica's API servers
    path_s: float
    ranks: int  # attention-DP ranks per replica
    least_loaded: bool
    recv_interval: int = 1  # decode steps between the scheduler's polls for requests (Engine.scheduler_recv_interval)
    wait_iters: int = 0  # TensorRT-LLM batch waiting (Engine.batch_wait): iterations context requests may be held ...
    wait_ratio: float = 0.0  # ... while the step's tokens stay below this share of the token budget
    adp: tuple[int, int] = (0, 0)  # TensorRT-LLM attention-DP balance (timeout, batching wait iterations); (0, 0) off
    chunk: bool = True  # prompts may be split over steps (Engine.chunked_prefill)
    overlap: bool = False  # requests arriving during a step join the step after the next (Engine.overlap_schedule)

    @classmethod
    def of(cls, sc: Scenario, mem: MemoryReport) -> Sched:
        eng = sc.engine
        kv = float(mem.kv_tokens_per_gpu) if mem.kv_tokens_per_gpu else float("inf")
        if mem.fits:  # the memory check holds one whole context in bytes; the pool in tokens (full-layer bytes per
            kv = max(kv, float(sc.workload.context_len))  # token) may count fewer where windows cap layers' KV
        return cls(max(1, eng.max_batched_tokens), max(1, eng.running_cap), kv, eng.mixed_chunk,
                   tokens_per_step(sc), 1 + sc.mtp_tokens,
                   eng.request_ingest_s / eng.api_servers(sc.parallelism.dp_attention), eng.first_token_path_s,
                   sc.parallelism.dp_attention, eng.name in LEAST_LOADED, eng.scheduler_recv_interval or 1,
                   *(eng.batch_wait or (0, 0.0)), eng.adp_balance or (0, 0), eng.chunked_prefill,
                   eng.overlap_schedule)


class Gates:
    def _receives(self) -> bool:
        """Whether the scheduler takes in new requests at the top of this iteration. SGLang with
        --scheduler-recv-interval N (python/sglang/srt/managers/scheduler_recv_skipper.py, SchedulerRecvSkipper):
        a counter grows by the weight of the last batch's mode, 1 for a decode batch or none, 1,000 otherwise, and
        the scheduler receives when it reaches N (then 0): after any prefill at once, during decoding every N steps
        (an idle loop spins through its N at once). A span of k decode steps holds k increments, its last at the
        next iteration's top."""
        n, k = self.s.recv_interval, self.last_decode
        if n <= 1 or not k:
            self.rc = 0
            return True
        self.rc = (self.rc + k) % n
        return self.rc == 0

    def _recv_step(self, arrival: int) -> int:
        """The first step of a decode span (1 = the next) at whose top the scheduler receives a request that is
        ready by step `arrival` (the receive points: the counter reaching the interval)."""
        n = self.s.recv_interval
        if n <= 1:
            return arrival
        first = n - self.rc
        return first if arrival <= first else first + ceil((arrival - first) / n) * n

    def _holds(self, r: int, n_dec: int) -> bool:
        """TensorRT-LLM batch waiting (PyExecutor._waiting_requests, applied with requests decoding and no attention
        DP): hold this step's context requests while the step's tokens, prompt tokens plus one per decoding request
        (and its drafts), stay below wait_ratio x max_num_tokens, for at most wait_iters iterations."""
        s = self.s
        self.holding = False
        if not (s.wait_iters and s.wait_ratio) or s.ranks > 1 or not n_dec:
            return False
        budget = s.budget - n_dec * s.draft
        want = sum(self.prompt[i] - self.done_pf[i] for i in self.filling[r])
        for i in list(self.waiting[r])[:max(0, s.cap - len(self.running[r]))]:
            if want >= budget:
                break
            want += self.prompt[i] - self.done_pf[i]
        if not want:
            return False
        if self.wait_count >= s.wait_iters or min(want, budget) + n_dec * s.draft >= s.wait_ratio * s.budget:
            self.wait_count = 0
            return False
        self.holding = True
        return True

    def _adp_holds(self, elapsed: int) -> bool:
        """TensorRT-LLM attention-DP balance (PyExecutor._balance_adp_requests, attention_dp_config.enable_balance)
        for this iteration, `elapsed` iterations after the last decision. When every rank has a context request and
        room for it, they are scheduled, after batching_wait iterations more while every rank decodes; otherwise a
        counter runs every iteration and context requests wait until it reaches timeout (then 0) or a rank has
        nothing to decode."""
        s = self.s
        timeout, batching = s.adp
        if not timeout or s.ranks <= 1:
            return False
        ranks = range(s.ranks)
        gen = [len(self.decoding[r]) for r in ranks]
        all_gen = all(gen)
        if all(g < s.cap for g in gen) and all(self.filling[r] or self.waiting[r] for r in ranks):
            self.adp_wait = 0
            if all_gen and self.adp_batch < batching:
                self.adp_batch += elapsed
                return True
            self.adp_batch = 0
            return False
        self.adp_wait += elapsed
        if self.adp_wait >= timeout or not all_gen:
            self.adp_wait = 0
            return False
        return True

    def _adp_release(self) -> int:
        """Decode steps until a held attention-DP balance lets context requests in (the counter's next release)."""
        timeout, batching = self.s.adp
        if all(self.filling[r] or self.waiting[r] for r in range(self.s.ranks)):
            return max(1, batching - self.adp_batch)
        return max(1, timeout - self.adp_wait)
