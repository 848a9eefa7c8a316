"""Combining steps (planner.perf.steps): the op records of a chunked-prefill step (decode and prompt tokens in one
forward), a step followed on average by a share of another, and attention-DP ranks stepping in lockstep."""

from __future__ import annotations

from dataclasses import replace

import numpy as np


def merge(a: list, b: list) -> list:
    """One chunked-prefill step: the same ops over decode and prefill tokens; weights are read once."""
    by_name = {op.name: op for op in b}
    out = []
    for op in a:
        other = by_name.pop(op.name, None)
        if other is None:
            out.append(op)
            continue
        out.append(replace(op, flops=op.flops + other.flops, weight_bytes=max(op.weight_bytes, other.weight_bytes),
                           act_bytes=op.act_bytes + other.act_bytes,
                           kv_read_bytes=op.kv_read_bytes + other.kv_read_bytes,
                           kv_write_bytes=op.kv_write_bytes + other.kv_write_bytes,
                           comm_bytes=op.comm_bytes + other.comm_bytes,
                           rdma_bytes=op.rdma_bytes + other.rdma_bytes, m=op.m + other.m))
    return out + list(by_name.values())


def lockstep(f: float, ranks: int) -> float:
    """Share of lockstep steps in which at least one of `ranks` attention-DP ranks, each busy in a share f of steps
    independently, is busy (mixed_step)."""
    return 1.0 - (1.0 - f) ** ranks if ranks > 1 else f  # f a number or a numpy array


def chunk_per_gpu(budget: float, decode_tokens, new: float, tp: int):
    """Prompt tokens per GPU one rank's step takes of a waiting prompt of `new` tokens: what the step's token budget
    leaves beside its `decode_tokens` (per engine group), at most the prompt (numbers or numpy arrays)."""
    return np.minimum(new, np.maximum(1.0, budget - decode_tokens)) / tp


def amortized(a, b, f: float):
    """Step a followed, on average, by f of step b (planner.perf.steps.Step)."""
    return _weighted(a, 1.0, b, f)


def blend(a, b, w: float):
    """Step a in a share 1 - w of steps and step b in the rest, on average (planner.perf.steps.Step)."""
    return _weighted(a, 1 - w, b, w)


def _weighted(a, wa: float, b, wb: float):
    """wa x step a + wb x step b: every time and every timed op scaled by its weight."""
    timed = tuple(replace(x, seconds=x.seconds * wa) for x in a.timed) + \
        tuple(replace(x, seconds=x.seconds * wb) for x in b.timed)
    mix = lambda x, y: wa * x + wb * y  # noqa: E731
    return replace(a, seconds=mix(a.seconds, b.seconds), timed=timed, compute_s=mix(a.compute_s, b.compute_s),
                   memory_s=mix(a.memory_s, b.memory_s), comm_s=mix(a.comm_s, b.comm_s),
                   host_s=mix(a.host_s, b.host_s), overhead_s=mix(a.overhead_s, b.overhead_s),
                   launch_s=mix(a.launch_s, b.launch_s))
