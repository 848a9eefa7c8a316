"""Vectorized decode model: the same op records and roofline as planner.perf.steps, evaluated with numpy over
arrays of scenario variants (batch per GPU, context length, memory-bandwidth and FLOP/s scaling of the GPU).

Every op's FLOP and bytes are affine in the tokens n and in n x context: v(n, c) = a + b n + d n c (context
capped per sliding-window layer as planner.perf.ops does). The
coefficients come from `step_ops` at three points, so the sweep cannot drift from the scalar model; routed
expert weights read follow E_rank (1 - (1 - k/E)^(n G)) exactly. `tests/test_sweep.py` checks the two paths
agree. Benchmark: `python -m planner.perf.sweep` (make bench-planner).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from planner.deploy.scenario import Scenario
from planner.deploy.scenario_file import load_scenario
from planner.perf.ops import ep_load_imbalance, step_ops
from planner.perf.ops_dsv4 import deepseek_v4_caps
from planner.perf.ops_kinds import gqa_groups
from planner.perf.roofline import _mamf_cap, _peak, allreduce_table, comm_time, compute_curve, depth_factor, mma_dtype
from planner.perf.steps import TBO_HIDDEN, launch_seconds, machine

FIELDS = ("flops", "weight_bytes", "act_bytes", "kv_read_bytes", "kv_write_bytes", "comm_bytes", "rdma_bytes", "m")


@dataclass
class _OpCoef:
    name: str
    kind: str
    count: int
    coef: dict  # field -> (a, b, d)
    expert_full: float  # routed expert op: weight bytes when every expert is touched (0 otherwise)
    peak: float
    mamf: float
    floor: float
    comm_a: float  # comm time = comm_a + comm_b x n (every byte of a collective scales with the tokens n)
    comm_b: float
    where: str
    kfac: float = 1.0  # reduction-depth factor on compute efficiency (planner.perf.roofline.depth_factor)
    # compute-efficiency curve of the op's dtype (planner.hardware.efficiency.OpEfficiency.compute_for)
    compute: object = None
    # the engine's fused-MoE streaming (latency_s, HBM fraction) of a grouped GEMM, else None (roofline.time_op)
    stream: tuple | None = None
    # a silicon calibration's shape surface for the op's dtype (OpEfficiency.shape_by_dtype), its one-kernel floor
    # and the op's reduction depth (roofline.time_op: the kernel's roofline with one floor, divided by the factor)
    shape: object = None
    floor1: float = 0.0
    depth: float = 1.0
    config: object = None  # the factor curve of the op's kernel configuration (OpEfficiency.config_curve), else None
    table: object = None  # a measured all-reduce (roofline.allreduce_table) in place of comm_a + comm_b x n


class DecodeSweep:
    def __init__(self, sc: Scenario):
        if sc.gpu is None or sc.expert_layers_on_cpu:  # CPU ops (and their dispatch) are left to planner.perf.steps
            raise ValueError("the vectorized sweep models GPU deployments without host-resident experts")
        self.sc, m = sc, machine(sc)
        self.machine = m
        spec = sc.model.spec
        par = sc.parallelism
        self.k_over_e = spec.experts_per_token / max(spec.n_routed_experts, 1)
        self.stage = par.gpus_per_stage
        # grouped-GEMM rows per expert: n k (G / ep) x imbalance / touched experts of the rank (as planner.perf.ops)
        per_rank = -(-(spec.n_routed_experts + par.redundant_experts) // par.ep)
        self.rows_per_expert = (spec.experts_per_token * (par.gpus_per_stage / par.ep) / max(per_rank, 1)
                                * ep_load_imbalance(sc))  # the busiest EP rank, as planner.perf.ops
        sliding = sum(t == "sliding_attention" for t in spec.layer_types) / spec.num_layers
        self.window, self.sliding = spec.sliding_window, sliding if spec.attention != "mla" else 0.0
        # Gemma 4, MiniMax-M3: each layer group's own records, context capped per group (planner.perf.ops_kinds)
        self.caps = {f"{g[0]}.": g[5] for g in gqa_groups(spec) if g[5]} if spec.attention != "mla" and (
            spec.full_head_dim or spec.index_topk) else {}
        if spec.deepseek_v4:  # DeepSeek-V4: the window records and CSA's top-k reads (planner.perf.ops_dsv4)
            self.caps = deepseek_v4_caps(spec)
        if self.caps:
            self.sliding = 0.0
        base = {(n, c): {op.name: op for op in step_ops(sc, "decode", n, c)} for n, c in ((1, 1), (2, 1), (1, 2))}
        big = {op.name: op for op in step_ops(sc, "decode", 1e9, 1)}
        self.launch = launch_seconds(sc, list(base[(1, 1)].values()))  # kernel count does not depend on n
        self.ops = []
        for name, op in base[(1, 1)].items():
            vals = {f: (getattr(op, f), getattr(base[(2, 1)][name], f), getattr(base[(1, 2)][name], f)) for f in FIELDS}
            coef = {}
            for f, (v11, v21, v12) in vals.items():
                d = v12 - v11  # n*c term at n = 1
                b = v21 - v11 - d  # n term
                coef[f] = (v11 - b - d, b, d)
            expert = big[name].weight_bytes if name in ("moe.experts", "moe.experts_host") else 0.0
            e = m.eff.ops[op.kind] if op.kind != "comm" else None
            peak = _peak(m.acc, op.dtype) if op.kind != "comm" else 0.0
            gemm = op.kind in ("gemm", "grouped_gemm")
            mamf = _mamf_cap(m.acc, op.dtype) if gemm else 1.0
            kfac = depth_factor(op.depth) if gemm else 1.0
            comm_a = comm_b = 0.0
            if op.kind == "comm" and op.group > 1:
                # all bytes of a collective scale with n, so its time is affine in n: latency + slope x n
                one, two = comm_time(op, m), comm_time(base[(2, 1)][name], m)
                comm_b = two - one
                comm_a = one - comm_b
            stream = (m.moe_stream_latency_s, m.moe_stream_fraction) if (
                op.kind == "grouped_gemm" and m.moe_stream_fraction and op.where == "gpu") else None
            shape = e.surface_for(op) if e else None
            self.ops.append(_OpCoef(name, op.kind, op.count, coef, expert, peak, mamf,
                                    e.floor_s * op.kernels if e else 0.0, comm_a, comm_b, op.where, kfac,
                                    compute_curve(e, op.kind, mma_dtype(m.acc, op.dtype)) if e else None, stream, shape,
                                    e.floor_s if e else 0.0, max(op.depth or 1.0, 1.0),
                                    e.config_curve(op) if e and e.config_by_dtype else None,
                                    allreduce_table(op, m) if op.kind == "comm" else None))

    def evaluate(self, batch, context, bw_scale=1.0, flops_scale=1.0):
        """Decode step seconds and tokens/s per GPU for arrays (broadcast together) of variants."""
        n = np.asarray(batch, dtype=float)
        c = np.asarray(context, dtype=float)
        if self.sliding and self.window:  # sliding-window layers attend to at most `window` tokens
            c = c * (1 - self.sliding) + np.minimum(c, self.window) * self.sliding
        bw = self.machine.acc.memory_bandwidth_bytes_per_s * np.asarray(bw_scale, dtype=float)
        fl = np.asarray(flops_scale, dtype=float)
        work = comm = 0.0
        eff = self.machine.eff.ops
        for op in self.ops:
            cap = self.caps.get(op.name[:op.name.find(".") + 1]) if self.caps else None
            cw = np.minimum(c, cap) if cap else c
            v = {f: a + b * n + d * n * cw for f, (a, b, d) in op.coef.items()}
            if op.kind == "comm":
                t = op.table.seconds(v["comm_bytes"]) if op.table else op.comm_a + op.comm_b * n
                comm = comm + np.where(n > 0, t, 0.0) * op.count
                continue
            weights = v["weight_bytes"]
            m = np.maximum(v["m"], 1.0)
            if op.expert_full:
                touched = 1 - (1 - self.k_over_e) ** (n * self.stage)  # fraction of the rank's experts
                weights = op.expert_full * touched
                m = np.maximum(np.ceil(n * self.rows_per_expert / np.maximum(touched, 1e-12)), 1.0)
            total_bytes = weights + v["act_bytes"] + v["kv_read_bytes"] + v["kv_write_bytes"]
            e = eff[op.kind]
            eff_c = _interp(op.compute, m)
            if op.kind in ("gemm", "grouped_gemm"):
                eff_c = np.minimum(eff_c, op.mamf) * op.kfac
            t_c = v["flops"] / (op.peak * fl * eff_c)
            if op.stream:  # latency + bytes at the engine's fraction of HBM, no floor
                work = work + np.maximum(t_c, op.stream[0] + total_bytes / (bw * op.stream[1])) * op.count
                continue
            t_m = total_bytes / (bw * _interp(e.memory, m))
            if op.shape is not None or op.config is not None:
                axes = {"m": m, "depth": op.depth, "bytes": total_bytes,
                        "width": v["flops"] / (2 * m * op.depth),
                        "context": _context(v["kv_read_bytes"], v["kv_write_bytes"])}
                factor = shape_factor(op.shape, op.config, axes)
                one = op.floor1 if op.kind == "gemm" else op.floor  # as roofline.time_op
                t_kernel = np.maximum(np.maximum(t_c, t_m), one) / factor
                work = work + np.maximum(t_kernel, op.floor - one) * op.count
                continue
            work = work + np.maximum(np.maximum(t_c, t_m), op.floor) * op.count
        if self.sc.engine.overlap_comm == "tbo_ep" and self.sc.parallelism.ep > 1:
            comm = comm - TBO_HIDDEN * np.minimum(comm, work)
        busy = work + comm
        cap = self.sc.engine.cuda_graph_max_batch
        if self.launch and cap is not None:  # batches above the captured sizes are launched from the host
            busy = np.where(n * self.sc.parallelism.tp > cap, np.maximum(busy, self.launch), busy)
        step = (busy + self.sc.engine.step_overhead_s) * self.sc.parallelism.pp
        return step, n / step


def _context(kv_read, kv_write) -> np.ndarray:
    """The `context` shape axis over arrays (planner.hardware.efficiency.shape_axis): KV read over KV written, 1
    where nothing is written."""
    return np.where(kv_write > 0, kv_read / np.maximum(kv_write, 1e-30), 1.0)


def shape_factor(surface, config, axes: dict) -> np.ndarray:
    """OpEfficiency.shape_for over arrays: the surface at the axes' values (1 without one) times the configuration's
    factor curve at m (1 without one)."""
    factor = _surface(surface, [np.maximum(axes[a], 1.0) for a in surface.axes]) if surface is not None else 1.0
    return factor * _interp(config, np.maximum(axes["m"], 1.0)) if config is not None else factor


def _surface(surface, values: list) -> np.ndarray:
    """planner.hardware.efficiency.Surface.at over arrays: multilinear in log(value) between knots, geometric in the
    factor, flat beyond the outer knots. The corners are indices into the flat (row-major) factors, taken in the
    order Surface.at sums them."""
    logf, logk, strides = surface.log_arrays
    corners = [(0, 1.0)]
    for lk, stride, v in zip(logk, strides, values, strict=True):
        if len(lk) == 1:
            continue
        x = np.minimum(np.maximum(np.log(v), lk[0]), lk[-1])
        i = np.minimum(np.maximum(np.searchsorted(lk, x, side="right") - 1, 0), len(lk) - 2)
        lo = lk[i]
        f = (x - lo) / (lk[i + 1] - lo)
        at = i * stride
        corners = [c for idx, w in corners for c in ((idx + at, w * (1 - f)), (idx + at + stride, w * f))]
    return np.exp(sum(w * logf[idx] for idx, w in corners))


_KNOTS: dict[int, tuple] = {}  # id(curve) -> (curve, log m, fractions): the curve held so its id stays its own
KNOTS_MAX = 4096


def _knots(curve) -> tuple[np.ndarray, np.ndarray]:
    """A planner.hardware.efficiency.Curve's points as (log m, fractions) arrays, computed once per curve."""
    hit = _KNOTS.get(id(curve))
    if hit is None or hit[0] is not curve:
        if len(_KNOTS) >= KNOTS_MAX:
            _KNOTS.clear()
        hit = _KNOTS[id(curve)] = (curve, np.log([p[0] for p in curve.points]), np.array([p[1] for p in curve.points]))
    return hit[1], hit[2]


def _interp(curve, m):
    """planner.hardware.efficiency.Curve.at over an array of m: linear in log m between points, flat beyond them."""
    xs, ys = _knots(curve)
    return np.interp(np.log(m), xs, ys) if len(xs) > 1 else np.full_like(m, ys[0])


def main(argv: list[str] | None = None) -> int:
    """Benchmark: variants per second of the vectorized decode model (Kimi K2.5 INT4, 8x H200, TP8)."""
    path = (argv or sys.argv[1:] or ["profiles/scenarios/kimi-k2.5-int4-8xh200.yaml"])[0]
    sc = load_scenario(path)
    t0 = time.perf_counter()
    sweep = DecodeSweep(sc)
    setup = time.perf_counter() - t0
    batch = np.geomspace(1, 1024, 100)[:, None, None]
    ctx = np.geomspace(512, 262144, 100)[None, :, None]
    bw = np.linspace(0.5, 2.0, 20)[None, None, :]
    n_variants = batch.size * ctx.size * bw.size
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        sweep.evaluate(batch, ctx, bw)
        best = min(best, time.perf_counter() - t0)
    print(f"vectorized decode sweep: {n_variants:,} variants (batch x context x bandwidth) of {sc.name} "
          f"in {best * 1e3:.1f} ms = {n_variants / best:,.0f} variants/s (setup {setup * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
