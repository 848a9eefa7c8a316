"""The parts of a disaggregated run (planner.serving.disagg): its result, and the state of one prefill worker and one
decode worker as the simulation steps them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from planner.serving.simstats import SimResult


@dataclass(frozen=True)
class DisaggResult:
    """A simulated run of a disaggregated deployment: the client's metrics and each stage's mean time."""

    sim: SimResult
    prefill_wait_s: float  # mean from intake to the prompt's last chunk done (queue + prefill)
    slot_wait_s: float  # mean wait for a decode slot after the prefill
    transfer_s: float  # mean KV transfer, link queue included
    pickup_s: float  # mean wait on the decode worker from the KV's arrival to the step the request joins
    transfer_bytes: float  # mean bytes per transfer
    prefill_busy: float  # share of the run the prefill workers stepped (mean over workers)
    decode_running: float  # mean requests running per decode worker over its busy steps

    def summary(self) -> dict:
        return {**self.sim.summary(), "prefill_wait_ms": 1e3 * self.prefill_wait_s,
                "decode_slot_wait_ms": 1e3 * self.slot_wait_s, "kv_transfer_ms": 1e3 * self.transfer_s,
                "decode_pickup_ms": 1e3 * self.pickup_s,
                "kv_transfer_bytes": self.transfer_bytes, "prefill_busy_share": self.prefill_busy,
                "decode_running_per_worker": self.decode_running}

    def summary_line(self) -> str:
        return (f"{self.sim.summary_line()}; disaggregated: queue + prefill {1e3 * self.prefill_wait_s:,.1f} ms, "
                f"decode slot wait {1e3 * self.slot_wait_s:,.1f} ms, KV transfer {1e3 * self.transfer_s:,.2f} ms "
                f"({self.transfer_bytes / 1e6:,.1f} MB), decode pick-up {1e3 * self.pickup_s:,.1f} ms, "
                f"prefill workers busy {self.prefill_busy:.0%}, {self.decode_running:,.1f} running per decode worker")


class PrefillWorker:
    """One prefill worker: per-rank queues, KV in use, link free time; its step in progress."""

    def __init__(self, ranks: int):
        self.waiting = [deque() for _ in range(ranks)]
        self.queued = [0.0] * ranks  # prompt tokens waiting or in progress
        self.total = 0.0  # ... on all ranks (whole token counts: exact in any order)
        self.kv_used = [0.0] * ranks
        self.link_free = [0.0] * ranks
        self.busy = False
        self.busy_s = 0.0


class DecodeWorker:
    """One decode worker: per-rank running and arrived requests, reserved KV; its step in progress. Its ranks step
    together, so every running request gains the same tokens per step: the worker keeps one counter G of tokens per
    running request since the start, a request i only its offsets (generated G - g0[i], context G + c0[i], both in
    DisaggRun), and a heap of the G at which each finishes, as planner.serving.sim.Replica does: a span costs O(1)."""

    def __init__(self, ranks: int):
        self.per_rank = [0] * ranks  # running requests per rank
        self.ready: list[list[int]] = [[] for _ in range(ranks)]
        self.held = [0] * ranks  # requests reserved on the rank (in transfer, ready or running)
        self.kv_used = [0.0] * ranks  # tokens reserved
        self.G = self.sum_c0 = 0.0
        self.heap: list[tuple[float, int]] = []  # (G at which the request finishes, request)
        self.joined: list[int] = []  # running requests that joined since the worker's last decode step
        self.last_end = 0.0  # end of the worker's last decode step
        self.busy = False
        self.span = (0.0, 0, 0.0)  # the running span: start, steps, seconds per step
        self.version = 0  # of the span's end event (a cut span's old end is stale)
        self.steps = 0
        self.running_sum = 0.0

    @property
    def running(self) -> int:
        return len(self.heap)
