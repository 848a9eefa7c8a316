"""Case lists. Shapes come from the model profile and a parallel plan (kernels_bench.plan), never typed here.

CPU suites run Kimi K2.5 scaled down (hidden 7168/7 = 1024, 384/12 = 32 routed experts, expert width 2048/8 = 256;
MLA keeps 576-wide latents and 192/128 head dims) with MLA on one rank of TP8 (8 of 64 heads):
  smoke  22 cases (+ their components), about a minute on one core (CI)
  full   54 cases, about 4 minutes (make bench)
CUDA suites run full Kimi K2.5 one-layer shapes (64 heads, 384 experts of 2048, h 7168) on one GPU:
  smoke  a handful of cases
  full   decode batch 1-256 at context 1K-128K, prefill 1K-16K, MoE 1-16K tokens; bf16, fp8-block128, int4-g32
"""

from __future__ import annotations

from kernels_bench.plan import Case, Scale

CPU_SCALE = Scale(hidden=7, experts=12, inter=8)
CPU_TP = 8
SUITES = ("smoke", "full")
PREFILL_TOKENS = 512  # MoE cases with at least this many tokens are labelled prefill (only the name changes)


def _moe(tokens: int, weights: str = "bf16", skew: float = 0.0, ep: int = 1, scale: Scale = CPU_SCALE) -> Case:
    phase = "prefill" if tokens >= PREFILL_TOKENS else "decode"
    return Case("moe", phase, tokens, weights=weights, skew=skew, ep=ep, scale=scale)


def _dec(batch: int, ctx: int, weights: str = "bf16", tp: int = CPU_TP, scale: Scale = CPU_SCALE) -> Case:
    return Case("mla", "decode", batch, ctx, weights=weights, tp=tp, scale=scale)


def _pre(tokens: int, weights: str = "bf16", tp: int = CPU_TP, scale: Scale = CPU_SCALE) -> Case:
    return Case("mla", "prefill", tokens, weights=weights, tp=tp, scale=scale)


def cpu_cases(suite: str) -> list[Case]:
    if suite == "smoke":
        mla = [_dec(b, c) for b in (1, 8, 32) for c in (1024, 4096)] + [_dec(8, 1024, "fp8-block128")]
        mla += [_pre(t) for t in (128, 256, 512)] + [_pre(256, "fp8-block128")]
        moe = [_moe(t) for t in (1, 4, 16, 64, 256)] + [_moe(t, skew=1.2) for t in (16, 64)]
        moe += [_moe(t, w) for w in ("fp8-block128", "int4-g32") for t in (4, 64)]
        return mla + moe
    mla = [_dec(b, c) for b in (1, 2, 4, 8, 16, 32, 64) for c in (512, 2048, 8192)]
    mla += [_dec(b, 2048, "fp8-block128") for b in (1, 16)]
    mla += [_pre(t) for t in (64, 128, 256, 512, 1024, 2048)] + [_pre(t, "fp8-block128") for t in (256, 1024)]
    moe = [_moe(t) for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)]
    moe += [_moe(t, skew=1.2) for t in (4, 16, 64, 256)]
    moe += [_moe(t, w) for w in ("fp8-block128", "int4-g32") for t in (1, 16, 256)]
    moe += [_moe(t, ep=4) for t in (16, 64)]
    return mla + moe


def cuda_cases(suite: str) -> list[Case]:
    full = Scale()
    dec = lambda b, c, w="bf16": _dec(b, c, w, tp=1, scale=full)  # noqa: E731
    pre = lambda t, w="bf16": _pre(t, w, tp=1, scale=full)  # noqa: E731
    moe = lambda t, w="bf16", skew=0.0: _moe(t, w, skew, scale=full)  # noqa: E731
    if suite == "smoke":
        return [dec(1, 8192), dec(64, 8192), pre(1024), moe(16), moe(1024), moe(64, "fp8-block128"),
                moe(64, "int4-g32")]
    points = [(1, 1024), (1, 8192), (1, 32768), (1, 131072), (16, 8192), (16, 32768), (16, 131072), (64, 8192),
              (64, 32768), (64, 131072), (256, 1024), (256, 8192), (256, 32768)]
    out = [dec(b, c) for b, c in points] + [dec(b, 8192, "fp8-block128") for b in (1, 64, 256)]
    out += [pre(t) for t in (1024, 4096, 16384)] + [pre(t, "fp8-block128") for t in (1024, 4096, 16384)]
    out += [moe(t) for t in (1, 16, 64, 256, 1024, 4096, 16384)] + [moe(t, skew=1.2) for t in (64, 1024)]
    out += [moe(t, w) for w in ("fp8-block128", "int4-g32") for t in (1, 64, 256, 4096, 16384)]
    return out


def cases_for(suite: str, kind: str) -> list[Case]:
    if suite not in SUITES:
        from planner.base.errors import PlannerError
        raise PlannerError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})", field="--suite")
    return cpu_cases(suite) if kind == "cpu" else cuda_cases(suite)


TIMING = {  # (warm-up, timed iterations, seconds budget per unit and round) per device kind and suite
    ("cpu", "smoke"): (1, 9, 0.3), ("cpu", "full"): (1, 9, 0.5),
    ("cuda", "smoke"): (3, 20, 0.5), ("cuda", "full"): (3, 20, 0.5),
}
# CPU runs interleave: every case gets iterations in each of 3 passes (a shared machine's busy and quiet periods
# then fall on all cases alike; run-to-run medians moved up to 2.5x here when cases ran one after another)
ROUNDS = {"cpu": 3, "cuda": 1}
