"""The one timing harness (STYLE.md habit 7) and the memory probes.

`measure(fn, device)`: warm-up calls, then per timed call a cache flush (GPU: zero a 256 MB buffer, as
triton's do_bench; CPU: write a buffer larger than the last-level cache share this process gets), then
CUDA events around the call on a GPU or perf_counter on the CPU. All samples are kept; median, p10 and p90
summarize them. `before=` replaces the flush (the comm benchmark puts a barrier there).

`PeakMemory`: torch.cuda.max_memory_allocated on a GPU; on the CPU the process high-water mark VmHWM,
reset by writing 5 to /proc/self/clear_refs (Linux), reported as the rise over the resident set at entry.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

GPU_FLUSH_BYTES = 256 * 2**20  # triton do_bench's cache buffer (H100/H200 L2 is 50 MiB)
# CPU: on this 2-core VM reads of a 32 MiB tensor fall from ~50 to ~22 GB/s after a 128 MiB write and
# no further with larger ones (the VM reports a 480 MiB L3, mostly other tenants'); 128 MiB costs ~10 ms.
CPU_FLUSH_BYTES = 128 * 2**20


@dataclass(frozen=True)
class Timing:
    samples_s: tuple[float, ...]  # every timed call, in order

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    def percentile(self, q: float) -> float:
        """Linear-interpolated percentile, q in [0, 100]."""
        xs = sorted(self.samples_s)
        pos = (len(xs) - 1) * q / 100
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    @property
    def p10_s(self) -> float:
        return self.percentile(10)

    @property
    def p90_s(self) -> float:
        return self.percentile(90)


class Flusher:
    """Evicts caches between timed calls by writing a buffer; one per device, reused.

    On the CPU the flush also evicts the interpreter's and torch dispatcher's own state, which an engine running
    the same loop keeps hot (a [1, 1024] RMSNorm took 350 us after a bare flush, 34 us without, 60 us with this
    warm-up): a few tiny torch ops on small private tensors bring the code paths back without touching the data
    the timed call reads."""

    def __init__(self, device: torch.device, nbytes: int | None = None):
        self.device = device
        size = nbytes if nbytes is not None else (GPU_FLUSH_BYTES if device.type == "cuda" else CPU_FLUSH_BYTES)
        self.buf = torch.empty(size // 4, dtype=torch.int32, device=device) if size else None
        self.i = 0
        self.small = torch.randn(4, 64, device=device).to(torch.bfloat16)  # [4, 64]
        self.idx = torch.tensor([1, 0, 3, 2], device=device)

    def _warm(self) -> None:
        a = self.small
        af = a.float()
        n = (af * torch.rsqrt(af.pow(2).mean(-1, keepdim=True) + 1e-6)).to(a.dtype)  # norm-like
        m = torch.nn.functional.linear(n, a)  # [4, 4]
        b = torch.bmm(a[None], a.t()[None]).float().softmax(-1)  # [1, 4, 4]
        s = torch.argsort(self.idx, stable=True)
        torch.bincount(self.idx, minlength=4)
        g = torch.nn.functional.silu(a.index_select(0, s)) * a
        torch.zeros_like(a).index_add_(0, s, g)
        torch.cat([m, b[0].to(a.dtype)], -1)

    def __call__(self) -> None:
        if self.buf is not None:
            self.i += 1
            self.buf.fill_(self.i)
            if self.device.type == "cpu":
                self._warm()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, *, warmup: int = 2, iters: int = 10,
            before: Callable[[], None] | None = None, budget_s: float | None = None) -> Timing:
    """Time `fn` `iters` times after `warmup` calls; `before` runs untimed ahead of each call (default: none).

    budget_s: stop early (at least 3 samples) once the timed calls have taken this long in total."""
    for _ in range(warmup):
        fn()
    sync(device)
    samples: list[float] = []
    spent = 0.0
    for _ in range(iters):
        if before is not None:
            before()
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            dt = start.elapsed_time(end) / 1e3  # ms -> s
        else:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
        samples.append(dt)
        spent += dt
        if budget_s is not None and spent > budget_s and len(samples) >= 3:
            break
    return Timing(tuple(samples))


# ---------------------------------------------------------------- memory

_STATUS = Path("/proc/self/status")


def _status_kib(key: str) -> int | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def reset_cpu_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory a block adds: `with PeakMemory(dev) as pm: ...; pm.peak_bytes` (None when unmeasurable)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes: int | None = None
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._ok = reset_cpu_peak()
            self._base = (_status_kib("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        elif self._ok:
            hwm = _status_kib("VmHWM")
            self.peak_bytes = None if hwm is None else max(0, hwm * 1024 - self._base)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (views of one storage count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())
