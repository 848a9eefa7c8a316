"""Tiny aiconfigurator-core tables for the import-silicon tests (tests/test_silicon_import.py,
tests/test_silicon_row_corrections.py): gemm, moe and MLA generation tables for h200_sxm / sglang 0.5.14, timed as the
default table predicts times a factor, so a fit has something to find."""

from __future__ import annotations

import pandas as pd

from kernels_bench import plan, silicon
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import efficiency_for
from planner.perf.roofline import time_op

GPU = "h200-sxm"


def _write(df, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)


def _latency_ms(ops, scale: float) -> float:
    m = plan.machine(load_accelerator(GPU), efficiency_for(None))
    return scale * sum(time_op(op, m).seconds for op in ops) * 1e3


def fixtures(root):
    """gemm, moe (fp8_block and int4_wo at 384 experts) and MLA generation tables for h200_sxm / sglang 0.5.14,
    timed as the default table predicts x 1.3 (int4 x 2.5), so a fit has something to find."""
    base = root / "h200_sxm"
    meta = {"framework": "SGLang", "version": "0.5.14", "device": "NVIDIA H200"}
    gemm = [dict(meta, op_name="gemm", kernel_source="t", gemm_dtype=d, m=m, n=n, k=k, latency=0.0)
            for d in ("bfloat16", "fp8_block", "fp8") for m in (1, 8, 64, 512, 4096)
            for n, k in ((4096, 7168), (7168, 2048))]
    g = pd.DataFrame(gemm)  # per-tensor fp8 (a CUTLASS scaled-mm) runs 2.2x faster than the block-scaled kernel
    g["latency"] = [_latency_ms(silicon.gemm_ops(r), 0.6 if r.gemm_dtype == "fp8" else 1.3)
                    for r in g.itertuples(index=False)]
    _write(g, base / "gemm/sglang/0.5.14/gemm_perf.parquet")
    moe = [dict(meta, op_name="moe", kernel_source="t", moe_dtype=d, num_tokens=t, hidden_size=7168, inter_size=2048,
                topk=8, num_experts=384, moe_tp_size=tp, moe_ep_size=ep, distribution="balanced", latency=0.0)
           for d in ("fp8_block", "int4_wo") for t in (1, 16, 256, 4096, 16384) for tp, ep in ((1, 8), (8, 1))]
    mo = pd.DataFrame(moe).assign(kernel_source="sglang_fused_moe_triton")
    mo["latency"] = [_latency_ms(silicon.moe_ops(r, GPU), 2.5 if r.moe_dtype == "int4_wo" else 1.3)
                     for r in mo.itertuples(index=False)]
    # the same shapes on a kernel SGLang's `auto` does not run on Hopper, 4x slower: listed first, never fitted
    other = mo[mo.moe_dtype == "fp8_block"].assign(kernel_source="sglang_flashinfer_cutlass_moe")
    mo = pd.concat([other.assign(latency=other.latency * 4), mo], ignore_index=True)
    _write(mo, base / "moe/sglang/0.5.14/moe_perf.parquet")
    mla = [dict(meta, op_name="mla_generation", kernel_source="t", mla_dtype="bfloat16", kv_cache_dtype=kv,
                num_heads=128 // tp, batch_size=b, isl=1, tp_size=tp, step=s, latency=0.0)
           for kv in ("bfloat16", "fp8") for tp in (1, 8) for b in (1, 64) for s in (1023, 8191, 32767)]
    ml = pd.DataFrame(mla)  # over an FP8 KV cache the kernel runs at half the speed the BF16 one's surface gives
    ml["latency"] = [_latency_ms(silicon.mla_ops(r, GPU, "decode"), 2.6 if r.kv_cache_dtype == "fp8" else 1.3)
                     for r in ml.itertuples(index=False)]
    _write(ml, base / "mla/sglang/0.5.14/generation_mla_perf.parquet")


def allreduce_fixture(root, engine: str = "sglang", version: str = "0.5.14"):
    """comm/<engine>/<version>/custom_allreduce_perf.parquet for h200_sxm: graph-replayed rows at 4 + 2 x MB us
    (8 GPUs) and 3 + 1 x MB us (2 GPUs) of BF16 messages, and eager rows 5x slower, which the import leaves out.
    Returns the graph rows' {GPUs: [(bytes, seconds), ...]}."""
    sizes = [2 ** i for i in range(7, 27, 2)]  # elements, as the package's tables (128 .. 32 Mi)
    rows, want = [], {}
    for g, (a_us, b_us) in ((2, (3.0, 1.0)), (8, (4.0, 2.0))):
        for n in sizes:
            us = a_us + b_us * n * 2 / 1e6
            want.setdefault(g, []).append((n * 2.0, us * 1e-6))
            for backend, f in ((f"{engine}_graph", 1.0), (f"{engine}_eager", 5.0)):
                rows.append(dict(framework=engine, version=version, device="NVIDIA H200", op_name="all_reduce",
                                 kernel_source=backend, allreduce_dtype="bfloat16", num_gpus=g, message_size=n,
                                 latency=us * f * 1e-3, backend=backend))
    _write(pd.DataFrame(rows), root / "h200_sxm" / "comm" / engine / version / "custom_allreduce_perf.parquet")
    return want
