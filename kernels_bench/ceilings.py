"""Ceilings: what the device reaches on the simplest kernels, stored as its measured peaks.

- copy bandwidth: y.copy_(x) over buffers well past the last-level cache; bytes = read + write (2 x size),
  the way the planner counts an op's bytes (read + written);
- GEMM FLOP/s per dtype: [n, n] x [n, n] in bf16 and fp32 (2 n^3 FLOP), fp8 block-128 (GPU: torch._scaled_mm
  where supported, else dequantize-then-matmul, as the CPU always does) and int4 g32 (unpack + dequantize +
  bf16 matmul); the fp8/int4 rates are those of the path that runs here (`gemm_paths`).
On the CPU these become the peaks the planner's roofline predicts with (kernels_bench.devices.accelerator_for);
on a GPU they sit beside the datasheet peaks (MBU/MFU goals: copy and bf16 GEMM fractions).
"""

from __future__ import annotations

import torch

from kernels_bench.devices import Device
from kernels_bench.qformats import linear, quantize, try_enable_scaled_mm
from kernels_bench.timing import Flusher, measure

SIZES = {  # (copy bytes, GEMM n) per device kind and suite size
    ("cpu", "smoke"): (256 * 2**20, 2048), ("cpu", "full"): (512 * 2**20, 3072),
    ("cuda", "smoke"): (2 * 2**30, 8192), ("cuda", "full"): (4 * 2**30, 8192),
}


def measure_ceilings(device: Device, size: str = "smoke", iters: int = 8) -> dict:
    dev = torch.device(device.torch_device)
    copy_bytes, n = SIZES[(device.kind, "full" if size == "full" else "smoke")]
    flush = Flusher(dev)
    x = torch.ones(copy_bytes, dtype=torch.uint8, device=dev)  # written: untouched pages would read as zeros
    y = torch.ones_like(x)
    t_copy = measure(lambda x=x, y=y: y.copy_(x), dev, warmup=2, iters=iters)
    del x, y
    gen = torch.Generator(device=dev).manual_seed(0)
    a32 = torch.randn(n, n, device=dev, generator=gen)
    w32 = torch.randn(n, n, device=dev, generator=gen) * n ** -0.5
    flops, paths, samples = {}, {}, {}
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
    cases = {"bf16": ("bf16", torch.bfloat16), "fp32": ("f32", torch.float32), "fp8": ("fp8_block128", torch.bfloat16),
             "int4": ("int4_g32", torch.bfloat16)}
    for dtype, (storage, act) in cases.items():
        w = quantize(w32, storage)
        paths[dtype] = try_enable_scaled_mm(w, dev) if storage == "fp8_block128" else ("native" if w.native
                                                                                       else "dequant")
        a = a32.to(act)
        t = measure(lambda a=a, w=w: linear(a, w), dev, warmup=2, iters=max(3, iters // 2), before=flush)
        flops[dtype] = 2 * n**3 / t.median_s
        samples[dtype] = list(t.samples_s)
    return {"copy_bytes_per_s": 2 * copy_bytes / t_copy.median_s, "gemm_flops_per_s": flops, "gemm_paths": paths,
            "copy_bytes": copy_bytes, "gemm_n": n, "threads": device.threads,
            "samples_s": {"copy": list(t_copy.samples_s), **samples}}


def summary(c: dict) -> str:
    f = c["gemm_flops_per_s"]
    parts = ", ".join(f"{d} {v / 1e9:,.0f} GFLOP/s ({c['gemm_paths'][d]})" for d, v in f.items())
    return f"copy {c['copy_bytes_per_s'] / 1e9:.1f} GB/s (read + write); GEMM n={c['gemm_n']}: {parts}"
