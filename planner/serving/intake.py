"""The client side of one simulated replica (planner.serving.sim.Replica): requests sent, taken in by the API
server one at a time, delivered to the client, and routed to an attention-DP rank. See planner.serving.sim for the
engine side and the sources of each rule."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

WAITING_WEIGHT = 4  # vLLM DPLBAsyncMPClient: score = waiting x 4 + running


class Intake:
    """API-server intake and DP routing; the subclass provides `s` (Sched), `client`, `send_at`, `sent`,
    `waiting`, `running`, `rr`, `next_send` and `_finished`."""

    def __init__(self):
        self.ingest_start: list[float] = []
        self.ingest_end: list[float] = []
        self.run_end: list[float] = []  # end of each busy run of the API server
        self.run_of: list[int] = []  # the busy run each intake belongs to
        self.ready: deque = deque()  # (time taken in, request) in order

    # -- client and API server ------------------------------------------------------------------------------------
    def _send(self, i: int, t: float) -> None:
        """Request i leaves the client at t (or its send time); the API server takes it in after the ones before."""
        t = max(t, float(self.send_at[i]))
        self.sent[i] = t
        busy = bool(self.ingest_end) and t <= self.ingest_end[-1]
        start = self.ingest_end[-1] if busy else t
        end = start + self.s.ingest_s
        if busy:
            self.run_end[-1] = end  # the server's busy run goes on
        else:
            self.run_end.append(end)
        self.ingest_start.append(start)
        self.ingest_end.append(end)
        self.run_of.append(len(self.run_end) - 1)
        self.ready.append((end, i))

    def _send_more(self, t: float) -> None:
        c = self.client.concurrency
        n = self.client.num_prompts
        while self.next_send < n and (c is None or self.next_send - self._finished < c):
            self._send(self.next_send, t)
            self.next_send += 1

    def _delivered(self, t: float) -> float:
        """When a token made at engine time t reaches the client: after the first-token path, and not while the
        API server is taking requests in (it streams nothing meanwhile)."""
        t += self.s.path_s
        k = bisect_right(self.ingest_start, t) - 1
        if k >= 0 and self.ingest_end[k] > t:
            return self.run_end[self.run_of[k]]
        return t

    def _admit_ready(self, t: float) -> None:
        while self.ready and self.ready[0][0] <= t:
            _, i = self.ready.popleft()
            if self.s.least_loaded:
                r = min(range(self.s.ranks),
                        key=lambda q: WAITING_WEIGHT * len(self.waiting[q]) + len(self.running[q]))
            else:
                r, self.rr = self.rr, (self.rr + 1) % self.s.ranks
            self.waiting[r].append(i)


    def _intake(self, t: float) -> int:
        """Requests sent by time t and not yet taken in by the API server (a rate's later requests, handed to the
        intake in advance with their send times, are not counted before they are sent)."""
        if not self.ready:
            return 0
        i0 = self.ready[0][1]
        return bisect_right(self.sent, t, i0, self.next_send) - i0  # sends are in order: nondecreasing times
