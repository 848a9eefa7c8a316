"""Devices: NVIDIA GPUs through NVML, the CPU through /proc and torch; a planner Accelerator for each.

`discover()` lists what this machine has. NVML missing or failing (no driver: NVMLError) gives a clean
CPU-only answer. A GPU is matched to a `profiles/hardware/` accelerator by name, memory and power limit.
`accelerator_for(device, ceilings)` is what the planner's roofline runs on: the matched profile for a GPU
(datasheet peaks, so calibrated fractions mean what the planner's default fractions mean), and for the CPU
an Accelerator built from discovery with the *measured* ceilings (copy bandwidth, GEMM FLOP/s per dtype)
as its peaks.

    python -m kernels_bench discover --json
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES
from planner.hardware.accelerators import DTYPES, Accelerator, list_accelerators, load_accelerator

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_tile",
             "amx_bf16", "amx_int8", "asimd", "sve", "sve2")
CPU_THREADS_DEFAULT = 1  # see README: one thread is stable on a shared 2-core machine; --threads overrides


@dataclass(frozen=True)
class Device:
    name: str  # calibration name: matched accelerator profile (GPU) or cpu-<model slug>
    kind: str  # cuda | cpu
    display_name: str  # as the driver or /proc/cpuinfo says
    torch_device: str  # "cuda:0" | "cpu"
    profile: str | None  # matched profiles/hardware/ accelerator (GPU only)
    threads: int  # torch intra-op threads used for the runs
    info: dict  # the discovery record

    def as_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "display_name": self.display_name, "profile": self.profile,
                "torch_device": self.torch_device, "threads": self.threads, **{k: v for k, v in self.info.items()
                                                                             if k not in ("name", "kind")}}


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)|cpu @.*|\bcpu\b", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_info() -> dict:
    """Model, cores, memory, ISA flags, caches and torch threads (Linux /proc and /sys; platform elsewhere)."""
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    have = set(flags.group(1).split()) if flags else set()
    sockets = len(set(re.findall(r"^physical id\s*:\s*(\d+)", cpuinfo, re.M))) or 1
    per_socket = re.search(r"^cpu cores\s*:\s*(\d+)", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    l3 = _read("/sys/devices/system/cpu/cpu0/cache/index3/size").strip()
    name = model.group(1).strip() if model else (platform.processor() or platform.machine())
    return {
        "kind": "cpu", "name": name, "logical_cpus": os.cpu_count() or 1, "sockets": sockets,
        "physical_cores": int(per_socket.group(1)) * sockets if per_socket else os.cpu_count() or 1,
        "memory_bytes": int(mem.group(1)) * 1024 if mem else None,
        "l3_cache": l3 or None, "isa": [f for f in ISA_FLAGS if f in have],
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
    }


def nvml_gpus() -> tuple[list[dict], str]:
    """NVIDIA GPUs seen by NVML, and why none were when the list is empty."""
    try:
        import pynvml
    except ImportError as err:
        return [], f"pynvml not importable ({err})"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:  # no driver / no GPU: the CPU-only answer
        return [], f"NVML: {err}"
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        return [_gpu_record(pynvml, i, driver) for i in range(pynvml.nvmlDeviceGetCount())], ""
    except pynvml.NVMLError as err:
        return [], f"NVML: {err}"
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _gpu_record(nv, i: int, driver: str) -> dict:
    h = nv.nvmlDeviceGetHandleByIndex(i)

    def opt(fn, *args):
        try:
            return fn(h, *args)
        except (nv.NVMLError, AttributeError):
            return None

    mem = nv.nvmlDeviceGetMemoryInfo(h)
    mem_clock = opt(nv.nvmlDeviceGetMaxClockInfo, nv.NVML_CLOCK_MEM)  # MHz
    bus = opt(nv.nvmlDeviceGetMemoryBusWidth)  # bits
    power = opt(nv.nvmlDeviceGetPowerManagementLimitConstraints)  # (min, max) mW
    rec = {
        "kind": "cuda", "index": i, "name": _text(nv.nvmlDeviceGetName(h)), "memory_bytes": int(mem.total),
        "sm_clock_mhz": opt(nv.nvmlDeviceGetMaxClockInfo, nv.NVML_CLOCK_SM), "memory_clock_mhz": mem_clock,
        "memory_bus_bits": bus,
        # double data rate: 2 transfers per memory clock x bus width / 8 bits per byte (NVML clocks in MHz)
        "theoretical_bandwidth_bytes_per_s": 2 * mem_clock * 1e6 * bus / 8 if mem_clock and bus else None,
        "power_limit_w": power[1] / 1000 if power else None, "driver": driver,
        "pcie_gen": opt(nv.nvmlDeviceGetMaxPcieLinkGeneration), "pcie_width": opt(nv.nvmlDeviceGetMaxPcieLinkWidth),
        "pcie_gen_current": opt(nv.nvmlDeviceGetCurrPcieLinkGeneration),
        "pcie_width_current": opt(nv.nvmlDeviceGetCurrPcieLinkWidth),
        "sm_count": None, "compute_capability": None,
    }
    if torch.cuda.is_available() and i < torch.cuda.device_count():
        props = torch.cuda.get_device_properties(i)
        rec["sm_count"] = props.multi_processor_count
        rec["compute_capability"] = f"{props.major}.{props.minor}"
    rec["profile"] = match_profile(rec)
    return rec


def match_profile(gpu: dict) -> str | None:
    """The accelerator profile whose name tokens appear in the NVML name, closest in memory and power limit."""
    name = gpu["name"].lower().replace("nvidia", "")
    best, best_key = None, None
    for prof in list_accelerators():
        try:
            acc = load_accelerator(prof)
        except PlannerError:
            continue
        tokens = [t for t in re.split(r"[^a-z0-9]+", acc.display_name.lower()) if t and t not in ("nvidia", "gb")]
        model = tokens[0] if tokens else prof
        if not re.search(rf"\b{re.escape(model)}\b", name):
            continue
        mem_gap = abs(acc.memory_bytes - gpu["memory_bytes"]) / max(acc.memory_bytes, 1)
        power_gap = (abs((acc.power_w or 0) - gpu["power_limit_w"]) / 1000 if gpu.get("power_limit_w") and acc.power_w
                     else 0.0)
        form = sum(t in name for t in tokens[1:])  # "sxm", "pcie", "nvl" named by the driver
        key = (-form, round(mem_gap, 2), power_gap)
        if best_key is None or key < best_key:
            best, best_key = prof, key
    return best


def discover() -> dict:
    gpus, why = nvml_gpus()
    return {"gpus": gpus, "gpu_note": why, "cpu": cpu_info(),
            "default": "cuda" if gpus and torch.cuda.is_available() else "cpu"}


def select_device(kind: str | None = None, threads: int | None = None, index: int = 0) -> Device:
    """The device runs go to: `cuda` (GPU `index`), `cpu`, or None = a GPU when torch sees one."""
    found = discover()
    kind = kind or found["default"]
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise PlannerError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU "
                               f"({found['gpu_note'] or 'CPU build of torch'})")
        nv = next((g for g in found["gpus"] if g["index"] == index), None)
        display = nv["name"] if nv else torch.cuda.get_device_name(index)
        profile = nv["profile"] if nv else None
        info = nv or {"name": display}
        return Device(profile or f"gpu-{_slug(display)}", "cuda", display, f"cuda:{index}", profile,
                      torch.get_num_threads(), info)
    if kind != "cpu":
        raise PlannerError(f"unknown device {kind!r} (known: cpu, cuda)", field="--device")
    cpu = found["cpu"]
    n = threads or CPU_THREADS_DEFAULT
    torch.set_num_threads(n)
    cpu["torch_threads"] = n
    return Device(f"cpu-{_slug(cpu['name'])}", "cpu", cpu["name"], "cpu", None, n, cpu)


def accelerator_for(device: Device, ceilings: dict | None) -> Accelerator:
    """The planner's view of the device: a matched GPU profile, or the CPU with measured ceilings as peaks."""
    if device.profile:
        return load_accelerator(device.profile)
    if not ceilings:
        raise PlannerError(f"{device.name}: no accelerator profile and no measured ceilings to predict with")
    flops = ceilings["gemm_flops_per_s"]
    peaks = {d: flops.get(d) for d in DTYPES}
    copy = ceilings["copy_bytes_per_s"]
    mem = device.info.get("memory_bytes") or 0
    source = {"kernels_bench": f"measured by kernels_bench ceilings ({device.threads} threads)"}
    return Accelerator(
        name=device.name, display_name=device.display_name, vendor=device.kind.upper(),
        arch=" ".join(device.info.get("isa", [])) or device.kind, unified_memory=True,
        memory_capacity_gb=mem / 1e9, memory_bytes=mem, memory_bytes_basis="driver", memory_type=None,
        memory_bandwidth_bytes_per_s=copy, peak_flops_by_dtype=peaks,
        # processes on one host exchange data through shared memory: the copy bandwidth is their link
        scale_up_link="shared memory" if device.kind == "cpu" else None,
        scale_up_bytes_per_s=copy if device.kind == "cpu" else None, scale_up_latency_s=None,
        host_link_kind=None, pcie_gen=None, pcie_lanes=None, host_link_bytes_per_s=None, power_w=None,
        mamf_bf16_flops_per_s=None, mamf_fp8_flops_per_s=None, memory_achieved_bytes_per_s=copy,
        scale_up_achieved_bytes_per_s=None, host_link_achieved_bytes_per_s=None, allreduce_busbw_bytes_per_s=None,
        purchase=None, cloud=None, sources=source, file="kernels_bench:ceilings")


def versions() -> dict:
    """Python, torch, CUDA and git versions of this process, stored with every run (planner.base.store)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROFILES.parent, capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda, "git": rev,
            "platform": platform.platform()}
