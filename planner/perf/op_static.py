"""Per-op constants of the vectorized step timing (planner.perf.step_sweep): what planner.perf.roofline.time_op reads
of an op besides its FLOP and bytes (peak, efficiency curves by number, floor, bandwidth, MoE streaming, collective
latency and slopes, a measured all-reduce table, a silicon shape surface), cached by what they depend on."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from planner.perf.roofline import _mamf_cap, _peak, allreduce_table, comm_time, compute_curve, depth_factor, mma_dtype

COMM_PROBE_BYTES = 1e9  # bytes at which comm_time's slope is read (large: no cancellation against the latency)

# per-op constants by what they read (_op_static): many plans run the same op kinds, dtypes and shapes on the same
# GPU and table (a search's plans differ in counts, lengths and node counts far more than in those); and a Timer's
# whole [ops, C] array by the op signatures it times and the machine (constants), which a search asks for per plan
_OP_STATIC: dict = {}
_STATIC: dict = {}
STATIC_MAX = 16384
# efficiency curves by number (a Timer's ops name their compute and memory curves by it, so a batch of many plans'
# ops interpolates each distinct curve once): id(curve) -> number, and the curves, held so their ids stay theirs
_CURVE_NO: dict[int, int] = {}
CURVES: list = []
CURVES_MAX = 65536
# a Timer's per-op constants, columns of one [ops, C] array (so a batch concatenates them at once)
C_COUNT, C_LAT, C_ALPHA, C_BETA, C_PEAK, C_MAMF, C_KFAC, C_FLOOR, C_BW, C_SLAT, C_SFRAC, C_COMM, C_STREAM, C_GEMM, \
    C_CCURVE, C_MCURVE, C_KERNELS = range(17)


def _curve_no(curve) -> int:
    no = _CURVE_NO.get(id(curve))
    if no is None or CURVES[no] is not curve:
        no = _CURVE_NO[id(curve)] = len(CURVES)
        CURVES.append(curve)
    return no


def constants(m, sig: tuple, ops: list) -> tuple:
    """([ops, C] constants without counts, shape surfaces) of `ops` on machine `m`; `sig`: the numbers of the op
    signatures (signature) the ops come from, which name everything these constants read of them."""
    key = (id(m.acc), id(m.eff), m.gpus_per_node, m.moe_stream_fraction, m.moe_stream_latency_s, sig)
    hit = _STATIC.get(key)
    if hit is not None and hit[0] is m.acc and hit[1] is m.eff:
        return hit[2]
    if len(_STATIC) >= STATIC_MAX or len(_OP_STATIC) >= STATIC_MAX or len(CURVES) >= CURVES_MAX:
        _STATIC.clear()  # before the curve numbers their entries hold are dropped
        _OP_STATIC.clear()
        if len(CURVES) >= CURVES_MAX:
            _CURVE_NO.clear()
            CURVES.clear()
    rows = [_op_static(m, op) for op in ops]
    out = (np.array([row for row, _ in rows]),
           tuple((i,) + shape for i, (_, shape) in enumerate(rows) if shape is not None))
    _STATIC[key] = (m.acc, m.eff, out)
    return out


_SIGNATURES: dict[tuple, int] = {}
_NEXT_SIGNATURE = [0]  # numbers are never reused (a _STATIC key holding an old number stays that op list's)


def signature(ops: list) -> int:
    """A number for what constants reads of a list of ops (names too: a mixed step's op list follows them)."""
    sig = tuple((op.name, op.kind, op.dtype, op.depth, op.kernels, op.comm, op.group, op.config) for op in ops)
    no = _SIGNATURES.get(sig)
    if no is None:
        if len(_SIGNATURES) >= STATIC_MAX:
            _SIGNATURES.clear()
        no = _SIGNATURES[sig] = _NEXT_SIGNATURE[0]
        _NEXT_SIGNATURE[0] += 1
    return no


def _op_static(m, op) -> tuple:
    """(constants row, shape surface or None) of one op on machine `m`: comm probes, peak, curves, floor, surface."""
    key = (id(m.acc), id(m.eff), m.gpus_per_node, m.moe_stream_fraction, m.moe_stream_latency_s,
           op.kind, op.dtype, op.depth, op.kernels, op.comm, op.group, op.config)
    hit = _OP_STATIC.get(key)
    if hit is not None and hit[0] is m.acc and hit[1] is m.eff:
        return hit[2]
    c = np.zeros(C_KERNELS + 1)
    c[C_KERNELS] = op.kernels
    c[[C_PEAK, C_MAMF, C_KFAC]] = 1.0
    c[[C_CCURVE, C_MCURVE]] = -1  # comm ops read no curve
    c[C_BW] = m.acc.memory_bandwidth_bytes_per_s
    c[C_SLAT], c[C_SFRAC] = m.moe_stream_latency_s or 0.0, m.moe_stream_fraction or 0.0
    shape_row = None
    if op.kind == "comm":  # comm_time is latency + max(alpha x bytes, beta x RDMA bytes), 0 without bytes
        probe = lambda b, r: comm_time(SimpleNamespace(comm=op.comm, group=op.group, comm_bytes=b,  # noqa: E731
                                                       rdma_bytes=r), m)
        c[C_LAT] = tiny = probe(1e-300, 0.0)
        c[C_ALPHA] = (probe(COMM_PROBE_BYTES, 0.0) - tiny) / COMM_PROBE_BYTES
        c[C_BETA] = (probe(1e-300, COMM_PROBE_BYTES) - tiny) / COMM_PROBE_BYTES
        table = allreduce_table(op, m)  # a measured all-reduce: C_COMM is 2 + its number among CURVES
        c[C_COMM] = 1.0 if table is None else 2.0 + _curve_no(table)
    else:
        e = m.eff.ops[op.kind]
        c[C_PEAK] = _peak(m.acc, op.dtype)
        if op.kind in ("gemm", "grouped_gemm"):
            c[C_MAMF], c[C_KFAC], c[C_GEMM] = _mamf_cap(m.acc, op.dtype), depth_factor(op.depth), 1.0
        c[C_FLOOR] = e.floor_s * op.kernels
        stream = op.kind == "grouped_gemm" and bool(m.moe_stream_fraction)
        c[C_STREAM] = stream
        c[C_CCURVE] = _curve_no(compute_curve(e, op.kind, mma_dtype(m.acc, op.dtype)))
        c[C_MCURVE] = _curve_no(e.memory)
        shape, config = e.surface_for(op), e.config_curve(op) if e.config_by_dtype else None
        if (shape is not None or config is not None) and not stream:
            shape_row = (shape, config, e.floor_s * (1 if op.kind == "gemm" else op.kernels),
                         max(op.depth or 1.0, 1.0))
    _OP_STATIC[key] = (m.acc, m.eff, (c, shape_row))
    return c, shape_row
