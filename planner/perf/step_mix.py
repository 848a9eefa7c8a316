"""Combining steps (planner.perf.steps): the op records of a chunked-prefill step (decode and prompt tokens in one
forward), a step followed on average by a share of another, and attention-DP ranks stepping in lockstep."""

from __future__ import annotations

from dataclasses import replace


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


def amortized(a, b, f: float):
    """Step a followed, on average, by f of step b (planner.perf.steps.Step)."""
    timed = a.timed + tuple(replace(x, seconds=x.seconds * f) for x in b.timed)
    return replace(a, seconds=a.seconds + f * b.seconds, timed=timed, compute_s=a.compute_s + f * b.compute_s,
                   memory_s=a.memory_s + f * b.memory_s, comm_s=a.comm_s + f * b.comm_s,
                   host_s=a.host_s + f * b.host_s, overhead_s=a.overhead_s + f * b.overhead_s,
                   launch_s=a.launch_s + f * b.launch_s)


def blend(a, b, w: float):
    """Step a in a share 1 - w of steps and step b in the rest, on average (planner.perf.steps.Step)."""
    timed = tuple(replace(x, seconds=x.seconds * (1 - w)) for x in a.timed) + \
        tuple(replace(x, seconds=x.seconds * w) for x in b.timed)
    mix = lambda x, y: (1 - w) * x + w * y  # noqa: E731
    return replace(a, seconds=mix(a.seconds, b.seconds), timed=timed, compute_s=mix(a.compute_s, b.compute_s),
                   memory_s=mix(a.memory_s, b.memory_s), comm_s=mix(a.comm_s, b.comm_s),
                   host_s=mix(a.host_s, b.host_s), overhead_s=mix(a.overhead_s, b.overhead_s),
                   launch_s=mix(a.launch_s, b.launch_s))
