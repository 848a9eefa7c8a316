"""Vectorized steps at one operating point's lengths: planner.perf.steps.decode_step and mixed_step over arrays of
(sequences per GPU, prompt tokens per GPU per step), for the sizing screen (planner.sizing.capacity.screen).

At a fixed mean KV length, prompt length and cached prefix, every op record's FLOP and bytes are affine in the step's
tokens x: v(x) = a + b x (x: a decode step's sequences per GPU, or a prefill's prompt tokens per GPU). The
coefficients come from the scalar op records themselves (planner.perf.steps.decode_ops / prefill_ops at x = 1 and 2),
so this cannot drift from the scalar model. Two parts are not affine and are computed as planner.perf.ops does: a
routed-expert op reads E_rank (1 - (1 - k/E)^(T G)) experts' weights for T tokens per GPU, with
ceil(pairs x G/ep / touched) rows per expert; and GEMM rows are whole numbers (ceil of the affine rows).

Ops are evaluated together as [ops x points] arrays (`evaluate`: the ops of many steps, even of many plans, stacked),
each timed as planner.perf.roofline.time_op does, summed per step as planner.perf.steps.run_ops does (launch floor
outside CUDA graphs, two-batch overlap, step overhead, pipeline stages). Mixed steps combine decode and prompt records
as planner.perf.steps.mixed_step does (merged, amortized, attention-DP ranks in lockstep: planner.perf.step_mix).
tests/test_step_sweep.py holds the two paths equal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from planner.deploy.scenario import Scenario
from planner.perf.op_static import (
    C_ALPHA,
    C_BETA,
    C_BW,
    C_CCURVE,
    C_COMM,
    C_COUNT,
    C_FLOOR,
    C_GEMM,
    C_KERNELS,
    C_KFAC,
    C_LAT,
    C_MAMF,
    C_MCURVE,
    C_PEAK,
    C_SFRAC,
    C_SLAT,
    C_STREAM,
    CURVES,
    constants,
    signature,
)
from planner.perf.ops import ep_load_imbalance, scale_up_gpus
from planner.perf.step_mix import chunk_per_gpu, lockstep
from planner.perf.steps import TBO_HIDDEN, decode_ops, launch_per_kernel, machine, prefill_ops, tokens_per_step
from planner.perf.sweep import _context, _interp, shape_factor

FIELDS = ("flops", "weight_bytes", "act_bytes", "kv_read_bytes", "kv_write_bytes", "comm_bytes", "rdma_bytes", "m")
FLOPS, WEIGHTS, ACT, KV_READ, KV_WRITE, COMM, RDMA, ROWS = range(len(FIELDS))
EXPERTS = ("moe.experts", "mtp.moe.experts")  # routed experts on the GPU: the main pass and MTP draft passes
NARROW = 4  # jobs of at most this many points are timed apart from the wider ones (evaluate)


class _Records:
    """One step family's op records (names and kinds as the scalar model lists them) as affine coefficients in x."""

    def __init__(self, sc: Scenario, make, expert_tokens: dict[str, float]):
        one, two, big = make(1.0), make(2.0), {op.name: op for op in make(1e9)}
        if [op.name for op in one] != [op.name for op in two] or any(op.where != "gpu" for op in one):
            raise ValueError("the step sweep needs one fixed set of GPU op records")
        self.ops = one
        self.names = [op.name for op in one]
        self.sig, self.counts = signature(one), np.array([float(op.count) for op in one])
        a = np.array([[float(getattr(op, f)) for f in FIELDS] for op in one])
        b = np.array([[float(getattr(op, f)) for f in FIELDS] for op in two]) - a
        self.icpt, self.slope = a - b, b
        s, par = sc.model.spec, sc.parallelism
        per_rank = -(-(s.n_routed_experts + par.redundant_experts) // max(par.ep, 1))
        # routed-expert ops: where, and (tokens per x, all experts' bytes, 1 - k/E, k, GPUs per stage, busiest
        # rank's share, expert TP, experts per rank) as the columns evaluate's _values reads
        self.ex_at = np.array([i for i, op in enumerate(one) if op.name in EXPERTS], dtype=int)
        k, stage = s.experts_per_token, par.gpus_per_stage
        self.ex = np.array([[expert_tokens.get(one[i].name, 1.0), big[one[i].name].weight_bytes,
                             1 - k / s.n_routed_experts, k, stage, ep_load_imbalance(sc), stage / par.ep, per_rank]
                            for i in self.ex_at]).reshape(-1, 8)

    def values(self, x: np.ndarray) -> np.ndarray:
        """[ops, FIELDS, points] at tokens x (decode: sequences per GPU)."""
        return _values([(self, np.asarray(x, dtype=float))])


class Timer:
    """What timing a step's op records needs besides their FLOP and bytes (roofline.time_op, run_ops): per-op
    constants, shape surfaces, the launch floor outside a CUDA graph (launch_seconds), overhead, stages, two-batch
    overlap. `sig`: the signatures (_Records.sig) of the records `ops` come from (the decode ops, then the
    prompt-only ops of a mixed step); `counts`: each op's count."""

    def __init__(self, sc: Scenario, sig: tuple, ops: list, counts: np.ndarray, prefill: bool, m=None):
        base, self.shapes = constants(m or machine(sc), sig, ops)
        self.const = base.copy()
        self.const[:, C_COUNT] = counts
        self.launch = launch_per_kernel(sc, prefill) * float(counts @ base[:, C_KERNELS])  # steps.launch_seconds
        self.tbo = sc.engine.overlap_comm == "tbo_ep" and sc.parallelism.ep > 1
        self.pp, self.overhead = sc.parallelism.pp, sc.engine.step_overhead_s


@dataclass(frozen=True)
class Job:
    """One step-time evaluation over an array of points: the timer, the op values as one family's records at x
    (`parts` ((records, x),)), or a decode and a prompt family merged as planner.perf.steps.merge does (`parts`
    ((decode records, b), (prompt records, p)), `merge` (prompt op -> decode op or -1, prompt-only ops)), and
    whether each point replays a CUDA graph."""

    timer: Timer
    parts: tuple
    graphed: np.ndarray
    merge: tuple | None = None


def evaluate(jobs: list[Job]) -> list[np.ndarray]:
    """Step seconds of each job, as [its points]: the jobs of a few points (a prompt chunk alone, a decode step
    at a batch without prompt tokens) timed together, the others together, each set in one set of array operations
    (planner.perf.roofline.time_op per op, planner.perf.steps.run_ops per step), its points padded to its longest."""
    narrow = [len(job.parts[0][1]) <= NARROW for job in jobs]
    if all(narrow) or not any(narrow):
        return _evaluate(jobs)
    out: list = [None] * len(jobs)
    for side in (True, False):
        ks = [k for k, n in enumerate(narrow) if n is side]
        for k, got in zip(ks, _evaluate([jobs[k] for k in ks]), strict=True):
            out[k] = got
    return out


def _evaluate(jobs: list[Job]) -> list[np.ndarray]:
    if not jobs:
        return []
    n = [len(job.parts[0][1]) for job in jobs]
    width = max(n)
    pad = (lambda x: x if len(x) == width else np.concatenate([x, np.full(width - len(x), x[-1])]))
    parts = [(rec, pad(x)) for job in jobs for rec, x in job.parts]
    flat = _values(parts)
    blocks, at = [], 0
    for job in jobs:
        pieces = []
        for rec, _ in job.parts:
            pieces.append(flat[at:at + len(rec.ops)])
            at += len(rec.ops)
        blocks.append(pieces[0] if job.merge is None else _merged(*pieces, *job.merge))
    busy = _busy([job.timer for job in jobs], np.concatenate(blocks, axis=0), [len(b) for b in blocks])
    out = []
    for j, job in enumerate(jobs):
        t, b = job.timer, busy[j, :n[j]]
        out.append(t.pp * (np.where(job.graphed, b, np.maximum(b, t.launch)) + t.overhead))
    return out


def _values(parts: list) -> np.ndarray:
    """Records.values of every (records, x) part, stacked along the ops axis (all x of one length)."""
    recs = [rec for rec, _ in parts]
    sizes = [len(rec.ops) for rec in recs]
    x = np.repeat(np.array([x for _, x in parts]), sizes, axis=0)  # [ops, points]
    v = np.concatenate([rec.icpt for rec in recs])[:, :, None] + \
        np.concatenate([rec.slope for rec in recs])[:, :, None] * x[:, None, :]
    v[:, ROWS] = np.ceil(v[:, ROWS] - 1e-9)
    starts = np.cumsum([0] + sizes[:-1])
    ex = [(start + rec.ex_at, rec.ex) for start, rec in zip(starts, recs, strict=True) if len(rec.ex_at)]
    if ex:  # routed experts, as planner.perf.ops._ffn_ops in its order of operations (Records.ex columns)
        at = np.concatenate([i for i, _ in ex])
        tpx, full, share, k, stage, busiest, expert_tp, per_rank = np.concatenate([e for _, e in ex]).T[:, :, None]
        stage_tokens = x[at] * tpx * stage
        frac = np.where(stage_tokens > 0, 1 - share ** stage_tokens, 0.0)
        pairs = stage_tokens * k / stage * busiest
        v[at, WEIGHTS] = full * frac
        v[at, ROWS] = np.ceil(pairs * expert_tp / np.maximum(per_rank * frac, 1))
    return v


def _merged(dec: np.ndarray, pre: np.ndarray, pre_into: np.ndarray, only_pre: list) -> np.ndarray:
    """A mixed step's op values (planner.perf.steps.merge): each decode op plus the same prompt op (weights read
    once), then the prompt-only ops."""
    common = pre_into >= 0
    both = dec.copy()
    rows = pre_into[common]
    both[rows] += pre[common]
    both[rows, WEIGHTS] = np.maximum(dec[rows, WEIGHTS], pre[common, WEIGHTS])
    return np.concatenate([both, pre[only_pre]], axis=0)


def _shaped(timers: list[Timer], starts, t, t_c, t_m, rows, total, flops, v, floor) -> None:
    """The ops with a silicon table's shape surface or configuration curve (roofline.time_op), timed in place in
    `t`: the ops of every job that read one (surface, curve) pair at once (the screen's plans on one GPU and engine
    share them)."""
    groups: dict[tuple, list] = {}
    for start, timer in zip(starts, timers, strict=True):
        for i, shape, config, one, depth in timer.shapes:
            groups.setdefault((id(shape), id(config)), []).append((start + i, shape, config, one, depth))
    for ops in groups.values():
        i = np.array([op[0] for op in ops])
        one = np.array([op[3] for op in ops])[:, None]
        depth = np.array([op[4] for op in ops], dtype=float)[:, None]
        r = rows[i]
        axes = {"m": r, "depth": depth, "bytes": total[i], "width": flops[i] / (2 * r * depth),
                "context": _context(v[i, KV_READ], v[i, KV_WRITE])}
        factor = shape_factor(ops[0][1], ops[0][2], axes)
        t[i] = np.maximum(np.maximum(np.maximum(t_c[i], t_m[i]), one) / factor, floor[i, None] - one)


def _busy(timers: list[Timer], v: np.ndarray, sizes: list[int]) -> np.ndarray:
    """[jobs, points] work + communication of each job's ops, as run_ops adds them before the launch floor."""
    c = np.concatenate([t.const for t in timers])
    rows = np.maximum(v[:, ROWS], 1.0)  # `op.m or 1`
    eff_c, eff_m = np.ones_like(rows), np.ones_like(rows)
    for col, eff in ((C_CCURVE, eff_c), (C_MCURVE, eff_m)):
        no = c[:, col].astype(int)
        order = np.argsort(no, kind="stable")
        cut = np.flatnonzero(np.diff(no[order])) + 1
        for idx in np.split(order, cut):
            if no[idx[0]] >= 0:
                eff[idx] = _interp(CURVES[no[idx[0]]], rows[idx])
    gemm, comm, stream = c[:, C_GEMM] > 0, c[:, C_COMM] > 0, c[:, C_STREAM] > 0
    eff_c = np.where(gemm[:, None], np.minimum(eff_c, c[:, C_MAMF, None]) * c[:, C_KFAC, None], eff_c)
    flops = v[:, FLOPS]
    t_c = np.where(flops > 0, flops / (c[:, C_PEAK, None] * eff_c), 0.0)
    total = v[:, WEIGHTS] + v[:, ACT] + v[:, KV_READ] + v[:, KV_WRITE]
    bw = c[:, C_BW, None]
    t_m = np.where(total > 0, total / (bw * eff_m), 0.0)
    t = np.maximum(np.maximum(t_c, t_m), c[:, C_FLOOR, None])
    if stream.any():  # the engine's fused-MoE streaming: latency + bytes at its HBM fraction, no floor
        s = stream
        t[s] = np.maximum(t_c[s], c[s, C_SLAT, None] + total[s] / (bw[s] * c[s, C_SFRAC, None]))
    starts = np.cumsum([0] + sizes[:-1])
    _shaped(timers, starts, t, t_c, t_m, rows, total, flops, v, c[:, C_FLOOR])
    count = c[:, C_COUNT, None]
    work = np.add.reduceat(np.where(comm[:, None], 0.0, t) * count, starts, axis=0)
    comm_t = np.where(v[:, COMM] > 0, c[:, C_LAT, None] + np.maximum(c[:, C_ALPHA, None] * v[:, COMM],
                                                                     c[:, C_BETA, None] * v[:, RDMA]), 0.0)
    for no in np.unique(c[comm, C_COMM]).astype(int) - 2:  # measured all-reduce tables (roofline.allreduce_table)
        if no >= 0:
            i = c[:, C_COMM] == no + 2
            comm_t[i] = np.where(v[i, COMM] > 0, CURVES[no].seconds(v[i, COMM]), 0.0)
    comm_s = np.add.reduceat(np.where(comm[:, None], comm_t, 0.0) * count, starts, axis=0)
    tbo = np.array([timer.tbo for timer in timers])[:, None]
    comm_s = np.where(tbo, comm_s - TBO_HIDDEN * np.minimum(comm_s, work), comm_s)
    return work + comm_s


class StepSweep:
    """decode_step(sc, b, kv_len) and mixed_step(sc, b, kv_len, p, prompt_len, cached) over arrays of b and p;
    each also as Jobs, so that many plans' steps are timed in one `evaluate` (the sizing screen)."""

    def __init__(self, sc: Scenario, kv_len: float, prompt_len: float, cached: float = 0.0):
        if sc.gpu is None or sc.expert_layers_on_cpu:
            raise ValueError("the step sweep models GPU deployments without host-resident experts")
        self.sc, self.prompt_len, self.cached = sc, prompt_len, cached
        self.machine = machine(sc)
        sq = 1 + sc.mtp_tokens
        key = _ops_key(sc)
        self.dec = _records(("decode", key, kv_len), lambda: _Records(
            sc, lambda x: decode_ops(sc, x, kv_len), {"moe.experts": sq, "mtp.moe.experts": 1.0}))
        self.pre = _records(("prefill", key, prompt_len, cached), lambda: _Records(
            sc, lambda x: prefill_ops(sc, x, prompt_len, cached), {"moe.experts": 1.0}))
        self.dec_timer = Timer(sc, (self.dec.sig,), self.dec.ops, self.dec.counts, prefill=False, m=self.machine)
        if sc.engine.mixed_chunk:
            at = {name: k for k, name in enumerate(self.dec.names)}
            only_pre = [i for i, name in enumerate(self.pre.names) if name not in at]
            self.merge = (np.array([at.get(name, -1) for name in self.pre.names]), only_pre)
            # the records planner.perf.steps.merge gives, as far as a Timer reads them (kind, dtype, depth, kernels,
            # collective, configuration, count: the decode op's where both run it, then the prompt-only ops): their
            # FLOP and bytes come from `mixed`'s arrays
            self.mix_timer = Timer(sc, (self.dec.sig, self.pre.sig), self.dec.ops + [self.pre.ops[i] for i in only_pre],
                                   np.concatenate([self.dec.counts, self.pre.counts[only_pre]]), prefill=True,
                                   m=self.machine)

    @cached_property
    def pre_timer(self) -> Timer:
        """The prompt-only step's timer: an engine that runs prompt batches apart, and the prompt chunk alone."""
        return Timer(self.sc, (self.pre.sig,), self.pre.ops, self.pre.counts, prefill=True, m=self.machine)

    def prefill_job(self, tokens) -> Job:
        """planner.perf.steps.prefill_step(sc, tokens, prompt_len, cached) over an array of prompt tokens per GPU."""
        x = np.atleast_1d(np.asarray(tokens, dtype=float))
        return Job(self.pre_timer, ((self.pre, x),), self.sc.engine.graphed(x * self.sc.parallelism.tp, True))

    def decode_job(self, batch) -> Job:
        b = np.atleast_1d(np.asarray(batch, dtype=float))
        return Job(self.dec_timer, ((self.dec, b),), self.sc.engine.graphed(b * self.sc.parallelism.tp, False))

    def mixed_jobs(self, batch, prompt_tokens) -> tuple[list[Job], Callable[[list], np.ndarray]]:
        """Jobs of a step with `batch` sequences and `prompt_tokens` prompt tokens per GPU, and their combiner. The
        decode step alone is timed only where it is needed: every point of an engine that runs prompt batches apart;
        for one that mixes, the points without prompt tokens and those a lockstep share blends in."""
        b_all, p_all = np.broadcast_arrays(np.atleast_1d(np.asarray(batch, dtype=float)),
                                           np.atleast_1d(np.asarray(prompt_tokens, dtype=float)))
        has = p_all > 0
        if not has.any():
            return [self.decode_job(b_all)], lambda out: out[0]
        b, p = b_all[has], p_all[has]
        eng, t = self.sc.engine, self.sc.parallelism.tp
        d, new = self.sc.parallelism.dp_attention, max(self.prompt_len - self.cached, 1.0)
        if not eng.mixed_chunk:  # one prompt batch of p / f tokens every 1/f decode steps (mixed_step)
            f = np.minimum(1.0, p * t / new)
            jobs, share, lumpy = [self.prefill_job(p / f)], lockstep(f, d), None
            dec_at = np.ones_like(has)
        else:  # attention-DP ranks in lockstep: a whole chunk in a share of steps where the prompt tokens are fewer
            chunk = chunk_per_gpu(eng.max_batched_tokens, b * t * tokens_per_step(self.sc), new, t)
            lumpy = (p < chunk) if d > 1 else np.zeros_like(p, dtype=bool)
            q = np.where(lumpy, chunk, p)
            share = np.where(lumpy, lockstep(p / chunk, d), 1.0)
            jobs = [Job(self.mix_timer, ((self.dec, b), (self.pre, q)), eng.graphed((b + q) * t, True), self.merge)]
            dec_at = ~has
            dec_at[has] = lumpy
        if dec_at.any():
            jobs.append(self.decode_job(b_all[dec_at]))

        def combine(out: list) -> np.ndarray:  # decode + share x prompt batch, or a blend of decode and mixed
            step = np.zeros(len(b_all))  # the decode step alone where it was timed
            if dec_at.any():
                step[dec_at] = out[1]
            if lumpy is None:
                step[has] += share * out[0]
            else:
                step[has] = np.where(lumpy, (1 - share) * step[has] + share * out[0], out[0])
            return step
        return jobs, combine

    def prefill(self, tokens) -> np.ndarray:
        return evaluate([self.prefill_job(tokens)])[0]

    def decode(self, batch) -> np.ndarray:
        return evaluate([self.decode_job(batch)])[0]

    def mixed(self, batch, prompt_tokens) -> np.ndarray:
        """Seconds of a step with `batch` sequences decoding and `prompt_tokens` prompt tokens per GPU on average."""
        jobs, combine = self.mixed_jobs(batch, prompt_tokens)
        return combine(evaluate(jobs))


# op-record coefficients by what the records depend on (_ops_key), shared by every GPU a search tries a plan on
_RECORDS: dict = {}
RECORDS_MAX = 4096


def _ops_key(sc: Scenario) -> tuple:
    """What planner.perf.ops reads of a GPU scenario: everything but the accelerator itself, of which it reads only
    the scale-up domain (planner.perf.ops.scale_up_gpus), and the labels. tests/test_step_sweep.py checks, across the
    catalog's GPUs, that records shared under one key equal the records built for each scenario."""
    return replace(sc, name="", file="", gpu="", accelerator=None, slo=(), measured=(), correction=None), \
        scale_up_gpus(sc)


def _records(key: tuple, build) -> _Records:
    hit = _RECORDS.get(key)
    if hit is None:
        if len(_RECORDS) >= RECORDS_MAX:
            _RECORDS.clear()
        hit = _RECORDS[key] = build()
    return hit

