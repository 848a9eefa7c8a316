"""Vectorized steps at one operating point's lengths: planner.perf.steps.decode_step and mixed_step over arrays of
(sequences per GPU, prompt tokens per GPU per step), for the sizing screen (planner.sizing.capacity.screen).

At a fixed mean KV length, prompt length and cached prefix, every op record's FLOP and bytes are affine in the step's
tokens x: v(x) = a + b x (x: a decode step's sequences per GPU, or a prefill's prompt tokens per GPU). The
coefficients come from the scalar op records themselves (planner.perf.steps.decode_ops / prefill_ops at x = 1 and 2),
so this cannot drift from the scalar model. Two parts are not affine and are computed as planner.perf.ops does: a
routed-expert op reads E_rank (1 - (1 - k/E)^(T G)) experts' weights for T tokens per GPU, with
ceil(pairs x G/ep / touched) rows per expert; and GEMM rows are whole numbers (ceil of the affine rows).

Ops are evaluated together as [ops x points] arrays, each timed as planner.perf.roofline.time_op does, and summed as
planner.perf.steps.run_ops does (the launch floor outside CUDA graphs, two-batch overlap, step overhead, pipeline
stages). A mixed step merges decode and prompt records as planner.perf.steps.merge does (weights read once); an engine
that does not mix runs a prompt batch every 1/f decode steps, amortized as planner.perf.steps.mixed_step.
tests/test_step_sweep.py holds the two paths equal.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from types import SimpleNamespace

import numpy as np

from planner.deploy.scenario import Scenario
from planner.perf.ops import ep_load_imbalance, scale_up_gpus
from planner.perf.roofline import _mamf_cap, _peak, comm_time, depth_factor, mma_dtype
from planner.perf.steps import TBO_HIDDEN, decode_ops, launch_seconds, machine, prefill_ops
from planner.perf.sweep import _interp, shape_factor

FIELDS = ("flops", "weight_bytes", "act_bytes", "kv_read_bytes", "kv_write_bytes", "comm_bytes", "rdma_bytes", "m")
FLOPS, WEIGHTS, ACT, KV_READ, KV_WRITE, COMM, RDMA, ROWS = range(len(FIELDS))
EXPERTS = ("moe.experts", "mtp.moe.experts")  # routed experts on the GPU: the main pass and MTP draft passes
COMM_PROBE_BYTES = 1e9  # bytes at which comm_time's slope is read (large: no cancellation against the latency)


class _Records:
    """One step family's op records (names and kinds as the scalar model lists them) as affine coefficients in x."""

    def __init__(self, sc: Scenario, make, expert_tokens: dict[str, float]):
        one, two, big = make(1.0), make(2.0), {op.name: op for op in make(1e9)}
        if [op.name for op in one] != [op.name for op in two] or any(op.where != "gpu" for op in one):
            raise ValueError("the step sweep needs one fixed set of GPU op records")
        self.ops = one
        self.names = [op.name for op in one]
        a = np.array([[float(getattr(op, f)) for f in FIELDS] for op in one])
        b = np.array([[float(getattr(op, f)) for f in FIELDS] for op in two]) - a
        self.icpt, self.slope = a - b, b
        s, par = sc.model.spec, sc.parallelism
        per_rank = -(-(s.n_routed_experts + par.redundant_experts) // max(par.ep, 1))
        self.experts = [(i, expert_tokens.get(op.name, 1.0), big[op.name].weight_bytes)
                        for i, op in enumerate(one) if op.name in EXPERTS]
        self.k, self.n_experts, self.busiest = s.experts_per_token, s.n_routed_experts, ep_load_imbalance(sc)
        self.stage, self.per_rank, self.expert_tp = par.gpus_per_stage, per_rank, par.gpus_per_stage / par.ep

    def values(self, x: np.ndarray) -> np.ndarray:
        """[ops, FIELDS, points] at tokens x (decode: sequences per GPU)."""
        v = self.icpt[:, :, None] + self.slope[:, :, None] * x[None, None, :]
        v[:, ROWS] = np.ceil(v[:, ROWS] - 1e-9)
        for i, tokens_per_x, full in self.experts:  # planner.perf.ops._ffn_ops, in its order of operations
            stage_tokens = x * tokens_per_x * self.stage
            frac = np.where(stage_tokens > 0, 1 - (1 - self.k / self.n_experts) ** stage_tokens, 0.0)
            pairs = stage_tokens * self.k / self.stage * self.busiest
            v[i, WEIGHTS] = full * frac
            v[i, ROWS] = np.ceil(pairs * self.expert_tp / np.maximum(self.per_rank * frac, 1))
        return v


# per-op constants of a Timer by what they read (_static): many plans run the same op kinds, dtypes and shapes on
# the same GPU and table (a search's plans differ in counts, lengths and node counts far more than in those)
_STATIC: dict = {}
STATIC_MAX = 4096


def _static(m, ops: list) -> tuple:
    """What a Timer needs of each op that depends only on the machine and the op's kind, dtype, depth, kernels,
    collective and kernel configuration (not its FLOP, bytes or count): comm probes, peaks, curves, floors, shape
    surfaces. Cached by those; the entry keeps the machine's accelerator and table alive, so their ids stay theirs."""
    key = (id(m.acc), id(m.eff), m.gpus_per_node, bool(m.moe_stream_fraction),
           tuple((op.kind, op.dtype, op.depth, op.kernels, op.comm, op.group, op.config) for op in ops))
    hit = _STATIC.get(key)
    if hit is not None and hit[0] is m.acc and hit[1] is m.eff:
        return hit[2]
    comm = np.array([op.kind == "comm" for op in ops])
    gpu = [i for i, op in enumerate(ops) if op.kind != "comm"]
    lat, alpha, beta = (np.zeros(len(ops)) for _ in range(3))
    for i, op in enumerate(ops):
        if op.kind == "comm":  # comm_time is latency + max(alpha x bytes, beta x RDMA bytes), 0 without bytes
            probe = lambda b, r: comm_time(SimpleNamespace(comm=op.comm, group=op.group, comm_bytes=b,  # noqa
                                                           rdma_bytes=r), m)
            lat[i] = tiny = probe(1e-300, 0.0)
            alpha[i] = (probe(COMM_PROBE_BYTES, 0.0) - tiny) / COMM_PROBE_BYTES
            beta[i] = (probe(1e-300, COMM_PROBE_BYTES) - tiny) / COMM_PROBE_BYTES
    peak, mamf, kfac = np.ones(len(ops)), np.ones(len(ops)), np.ones(len(ops))
    floor = np.zeros(len(ops))
    stream = np.zeros(len(ops), dtype=bool)
    compute, memory, shapes = {}, {}, []
    for i in gpu:
        op = ops[i]
        e = m.eff.ops[op.kind]
        peak[i] = _peak(m.acc, op.dtype)
        if op.kind in ("gemm", "grouped_gemm"):
            mamf[i], kfac[i] = _mamf_cap(m.acc, op.dtype), depth_factor(op.depth)
        floor[i] = e.floor_s * op.kernels
        stream[i] = op.kind == "grouped_gemm" and bool(m.moe_stream_fraction)
        compute.setdefault(id(c := e.compute_for(mma_dtype(m.acc, op.dtype))), (c, []))[1].append(i)
        memory.setdefault(id(e.memory), (e.memory, []))[1].append(i)
        shape, config = e.surface_for(op), e.config_curve(op) if e.config_by_dtype else None
        if (shape is not None or config is not None) and not stream[i]:
            shapes.append((i, shape, config, e.floor_s * (1 if op.kind == "gemm" else op.kernels),
                           max(op.depth or 1.0, 1.0)))
    gemm = np.array([op.kind in ("gemm", "grouped_gemm") for op in ops])
    out = (comm, lat, alpha, beta, peak, mamf, kfac, floor, stream, shapes, gemm,
           [(c, np.array(idx)) for c, idx in compute.values()], [(c, np.array(idx)) for c, idx in memory.values()])
    if len(_STATIC) >= STATIC_MAX:
        _STATIC.clear()
    _STATIC[key] = (m.acc, m.eff, out)
    return out


class Timer:
    """Seconds of a step's op records, given their fields as [ops, FIELDS, points] (roofline.time_op, run_ops)."""

    def __init__(self, sc: Scenario, ops: list, prefill: bool):
        m = self.machine = machine(sc)
        self.sc = sc
        self.count = np.array([float(op.count) for op in ops])
        (self.comm, self.lat, self.alpha, self.beta, self.peak, self.mamf, self.kfac, self.floor, self.stream,
         self.shapes, self.gemm, self.compute_groups, self.memory_groups) = _static(m, ops)
        self.launch = launch_seconds(sc, ops, prefill)

    def busy(self, v: np.ndarray) -> np.ndarray:
        """work + communication of each point (seconds), as run_ops adds them before the launch floor."""
        m = self.machine
        rows = np.maximum(v[:, ROWS], 1.0)  # `op.m or 1`
        eff_c, eff_m = np.ones_like(rows), np.ones_like(rows)
        for curve, idx in self.compute_groups:
            eff_c[idx] = _interp(curve, rows[idx])
        for curve, idx in self.memory_groups:
            eff_m[idx] = _interp(curve, rows[idx])
        eff_c = np.where(self.gemm[:, None], np.minimum(eff_c, self.mamf[:, None]) * self.kfac[:, None], eff_c)
        flops = v[:, FLOPS]
        t_c = np.where(flops > 0, flops / (self.peak[:, None] * eff_c), 0.0)
        total = v[:, WEIGHTS] + v[:, ACT] + v[:, KV_READ] + v[:, KV_WRITE]
        bw = m.acc.memory_bandwidth_bytes_per_s
        t_m = np.where(total > 0, total / (bw * eff_m), 0.0)
        t = np.maximum(np.maximum(t_c, t_m), self.floor[:, None])
        if self.stream.any():  # the engine's fused-MoE streaming: latency + bytes at its HBM fraction, no floor
            s = self.stream
            t[s] = np.maximum(t_c[s], m.moe_stream_latency_s + total[s] / (bw * m.moe_stream_fraction))
        for i, shape, config, one, depth in self.shapes:  # a silicon table's shape surface (roofline.time_op)
            r = rows[i]
            axes = {"m": r, "depth": depth, "bytes": total[i], "width": flops[i] / (2 * r * depth),
                    "context": v[i, KV_READ] / np.maximum(v[i, KV_WRITE], 1e-30)}
            factor = shape_factor(shape, config, axes)
            t[i] = np.maximum(np.maximum(np.maximum(t_c[i], t_m[i]), one) / factor, self.floor[i] - one)
        t = np.where(self.comm[:, None], 0.0, t)
        work = (t * self.count[:, None]).sum(axis=0)
        comm_t = np.where(v[:, COMM] > 0, self.lat[:, None] + np.maximum(self.alpha[:, None] * v[:, COMM],
                                                                        self.beta[:, None] * v[:, RDMA]), 0.0)
        comm = (np.where(self.comm[:, None], comm_t, 0.0) * self.count[:, None]).sum(axis=0)
        if self.sc.engine.overlap_comm == "tbo_ep" and self.sc.parallelism.ep > 1:
            comm = comm - TBO_HIDDEN * np.minimum(comm, work)
        return work + comm

    def step(self, v: np.ndarray, graphed: np.ndarray) -> np.ndarray:
        """Step seconds: stages x (max(busy, launch outside a CUDA graph) + overhead)."""
        busy = self.busy(v)
        busy = np.where(graphed, busy, np.maximum(busy, self.launch))
        return self.sc.parallelism.pp * (busy + self.sc.engine.step_overhead_s)


class StepSweep:
    """decode_step(sc, b, kv_len) and mixed_step(sc, b, kv_len, p, prompt_len, cached) over arrays of b and p."""

    def __init__(self, sc: Scenario, kv_len: float, prompt_len: float, cached: float = 0.0):
        if sc.gpu is None or sc.expert_layers_on_cpu:
            raise ValueError("the step sweep models GPU deployments without host-resident experts")
        self.sc, self.prompt_len, self.cached = sc, prompt_len, cached
        sq = 1 + sc.mtp_tokens
        key = _ops_key(sc)
        self.dec = _records(("decode", key, kv_len), lambda: _Records(
            sc, lambda x: decode_ops(sc, x, kv_len), {"moe.experts": sq, "mtp.moe.experts": 1.0}))
        self.pre = _records(("prefill", key, prompt_len, cached), lambda: _Records(
            sc, lambda x: prefill_ops(sc, x, prompt_len, cached), {"moe.experts": 1.0}))
        self.dec_timer = Timer(sc, self.dec.ops, prefill=False)
        if sc.engine.mixed_chunk:
            at = {name: k for k, name in enumerate(self.dec.names)}
            self.only_pre = [i for i, name in enumerate(self.pre.names) if name not in at]
            self.pre_into = np.array([at.get(name, -1) for name in self.pre.names])
            # the records planner.perf.steps.merge gives, as far as a Timer reads them (kind, dtype, depth, kernels,
            # collective, configuration, count: the decode op's where both run it, then the prompt-only ops): their
            # FLOP and bytes come from `mixed`'s arrays
            self.mix_timer = Timer(sc, self.dec.ops + [self.pre.ops[i] for i in self.only_pre], prefill=True)

    @cached_property
    def pre_timer(self) -> Timer:
        """The prompt-only step's timer: an engine that runs prompt batches apart, and the prompt chunk alone."""
        return Timer(self.sc, self.pre.ops, prefill=True)

    def prefill(self, tokens) -> np.ndarray:
        """planner.perf.steps.prefill_step(sc, tokens, prompt_len, cached) over an array of prompt tokens per GPU."""
        x = np.atleast_1d(np.asarray(tokens, dtype=float))
        return self.pre_timer.step(self.pre.values(x), self.sc.engine.graphed(x * self.sc.parallelism.tp, True))

    def decode(self, batch) -> np.ndarray:
        b = np.atleast_1d(np.asarray(batch, dtype=float))
        return self.dec_timer.step(self.dec.values(b), self.sc.engine.graphed(b * self.sc.parallelism.tp, False))

    def mixed(self, batch, prompt_tokens) -> np.ndarray:
        """Seconds of a step with `batch` sequences decoding and `prompt_tokens` prompt tokens per GPU on average."""
        b, p = np.broadcast_arrays(np.atleast_1d(np.asarray(batch, dtype=float)),
                                   np.atleast_1d(np.asarray(prompt_tokens, dtype=float)))
        out = self.decode(b)
        has = p > 0
        if not has.any():
            return out
        b, p = b[has], p[has]
        eng, t = self.sc.engine, self.sc.parallelism.tp
        if not eng.mixed_chunk:  # one prompt batch of p / f tokens every 1/f decode steps (mixed_step)
            f = np.minimum(1.0, p * t / max(self.prompt_len - self.cached, 1.0))
            tokens = p / f
            pre = self.pre_timer.step(self.pre.values(tokens), eng.graphed(tokens * t, True))
            out[has] = out[has] + f * pre
            return out
        dec, pre = self.dec.values(b), self.pre.values(p)
        common = self.pre_into >= 0
        both = dec.copy()
        rows = self.pre_into[common]
        both[rows] += pre[common]
        both[rows, WEIGHTS] = np.maximum(dec[rows, WEIGHTS], pre[common, WEIGHTS])  # weights read once
        v = np.concatenate([both, pre[self.only_pre]], axis=0)
        out[has] = self.mix_timer.step(v, eng.graphed((b + p) * t, True))
        return out


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

