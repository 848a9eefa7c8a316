"""When a simulated engine lets new work into a step (planner.serving.sim.Replica): the knobs that hold requests back
on purpose, each as its engine's code does it. A mixin over the replica's state (`s`: Sched, `waiting`, `running`,
`filling`, `prompt`, `done_pf`, `rc`, `last_decode`, `wait_count`, `holding`)."""

from __future__ import annotations

from math import ceil


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
        self.rc, hit = (self.rc + k) % n, (self.rc + k) % n == 0
        return hit

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
