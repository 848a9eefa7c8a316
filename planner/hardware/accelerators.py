"""Accelerator specs read from profiles/hardware/*.yaml (hosts, CPUs, networks: planner/hardware/hosts.py).

One strict loader per kind (unknown keys are errors) that converts units once: TB/s, GB/s -> B/s
(1e12, 1e9), TFLOPS -> FLOP/s (1e12), GHz -> Hz, MiB -> B (2**20), GB -> B (1e9), GiB -> B (2**30).
Every published number names `source:` keys that must resolve in the file's `sources:` map.
null means "not published / not supported", never zero.

    acc = load_accelerator("h200-sxm"); acc.memory_bytes, acc.peak_flops("bf16")
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.limits import MAX_PRICE_USD
from planner.base.yamlio import PROFILES, check_keys, get_number, get_str, is_file, load_document, require_mapping

HARDWARE_DIR = PROFILES / "hardware"
TERA, GIGA, MEGA, MIB, GIB = 1e12, 1e9, 1e6, 2**20, 2**30
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp6", "fp4", "nvfp4")  # int8 in OP/s
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "e4m3": "fp8",
                 "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "mxfp4": "fp4", "mxfp6": "fp6"}
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SOURCE_KEYS = ("url", "repo", "path", "commit", "document", "grade", "note")
_ACC_MEASURED = {"mamf_bf16_tflops": TERA, "mamf_fp8_tflops": TERA, "memory_achieved_tb_per_s": TERA,
                 "scale_up_achieved_uni_gb_per_s": GIGA, "host_link_achieved_uni_gb_per_s": GIGA,
                 "allreduce_busbw_gb_per_s": GIGA}


@dataclass(frozen=True)
class Price:
    usd: float  # USD per unit named by the field that holds this price
    date: str | None  # as the source states it
    source: str  # citation (URL or repo path)
    note: str  # range, alternatives, assumptions


@dataclass(frozen=True)
class Accelerator:
    name: str  # profile name (file stem), e.g. "h200-sxm"
    display_name: str  # label for reports, e.g. "H200 SXM"
    vendor: str  # NVIDIA | AMD | Apple
    arch: str  # architecture as the datasheet names it
    unified_memory: bool  # True: CPU and GPU share one memory pool (Apple silicon)
    memory_capacity_gb: float  # datasheet capacity class, GB = 1e9 B (a label: "H200 141 GB")
    memory_bytes: int  # device memory total: driver-reported when known, else capacity_gb x 1e9
    memory_bytes_basis: str  # "driver" (nvidia-smi total) or "datasheet" (capacity_gb x 1e9)
    memory_type: str | None  # HBM3, HBM3e, GDDR6X, LPDDR5 ...
    memory_bandwidth_bytes_per_s: float  # datasheet peak DRAM/HBM bandwidth
    peak_flops_by_dtype: Mapping[str, float | None]  # dense (no 2:4 sparsity) FLOP/s; None = unsupported/unpublished
    scale_up_link: str | None  # NVLink 4, XGMI ...; None = no scale-up fabric
    scale_up_bytes_per_s: float | None  # per-GPU unidirectional scale-up bandwidth (half the vendor duplex figure)
    scale_up_latency_s: float | None  # one-way small-message latency, when published
    host_link_kind: str | None  # "PCIe" or "NVLink-C2C"; None for unified memory
    pcie_gen: int | None  # PCIe generation of the host link
    pcie_lanes: int | None  # PCIe lanes of the host link
    host_link_bytes_per_s: float | None  # CPU<->GPU bandwidth per direction (x16 gen5 = 63 GB/s)
    power_w: float | None  # maximum board power / TDP
    mamf_bf16_flops_per_s: float | None  # measured maximum achievable matmul FLOP/s, bf16
    mamf_fp8_flops_per_s: float | None  # measured maximum achievable matmul FLOP/s, fp8
    memory_achieved_bytes_per_s: float | None  # measured achieved memory bandwidth (kernel or copy)
    scale_up_achieved_bytes_per_s: float | None  # measured peer copy / all-to-all, per direction
    host_link_achieved_bytes_per_s: float | None  # measured host-to-device copy
    allreduce_busbw_bytes_per_s: float | None  # measured NCCL/RCCL all-reduce bus bandwidth, large messages
    purchase: Price | None  # purchase price per GPU
    cloud: Price | None  # rental price per GPU-hour
    sources: Mapping[str, str]  # source key -> citation
    file: str  # profile path, for error messages
    # superchips (GH200, GB200, GB300): the Grace CPU's LPDDR5X is a memory tier behind NVLink-C2C
    grace_memory_bytes_per_gpu: int | None = None  # Grace memory per GPU (a Grace serves 1 or 2 GPUs); None: no tier
    grace_stream_bytes_per_s: float | None = None  # Grace -> GPU per GPU: min(C2C per direction, LPDDR5X per GPU)
    scale_up_domain_gpus: int | None = None  # GPUs in one NVLink domain that spans nodes (GB200/GB300 NVL72: 72)

    def __hash__(self) -> int:  # the dict fields are not hashable; a profile is identified by its file
        return hash((self.name, self.file))

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s (OP/s for int8) of `dtype`; nvfp4 falls back to the fp4 peak."""
        key = DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
        if key not in DTYPES:
            raise PlannerError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})", file=self.file)
        value = self.peak_flops_by_dtype.get(key)
        if value is None and key == "nvfp4":
            value = self.peak_flops_by_dtype.get("fp4")
        if value is None:
            raise PlannerError(f"{self.display_name} has no {key} peak (not supported or not published)",
                               file=self.file, field=f"peak_tflops.{key}")
        return value

    @property
    def purchase_usd(self) -> float | None:
        return self.purchase.usd if self.purchase else None

    @property
    def cloud_usd_per_gpu_hour(self) -> float | None:
        return self.cloud.usd if self.cloud else None

    def fraction(self, measure: str) -> float | None:
        """Measured / peak for a default efficiency: mamf_bf16, mamf_fp8, memory, scale_up, host_link, allreduce
        (all-reduce bus bandwidth over the unidirectional scale-up spec). None when either side is unknown."""
        pairs = {"mamf_bf16": (self.mamf_bf16_flops_per_s, self.peak_flops_by_dtype.get("bf16")),
                 "mamf_fp8": (self.mamf_fp8_flops_per_s, self.peak_flops_by_dtype.get("fp8")),
                 "memory": (self.memory_achieved_bytes_per_s, self.memory_bandwidth_bytes_per_s),
                 "scale_up": (self.scale_up_achieved_bytes_per_s, self.scale_up_bytes_per_s),
                 "host_link": (self.host_link_achieved_bytes_per_s, self.host_link_bytes_per_s),
                 "allreduce": (self.allreduce_busbw_bytes_per_s, self.scale_up_bytes_per_s)}
        if measure not in pairs:
            raise PlannerError(f"unknown measure {measure!r} (known: {', '.join(pairs)})", file=self.file)
        return _ratio(*pairs[measure])


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else num / den


def _opt(section: Mapping, key: str, file: str, prefix: str, scale: float | None = 1.0) -> Any:
    """Optional non-negative number times `scale`; scale None reads an integer."""
    value = get_number(section, key, file, prefix=prefix, default=None, minimum=0, integer=scale is None)
    return value if value is None or scale is None else value * scale


def _profile_file(subdir: str, name_or_path: str | Path, kind: str) -> tuple[str, int]:
    """(path, modification time in ns; 0 for no regular file) of a profile (_profile_path), with one stat for a
    name that names a file: a sizing search asks thousands of times."""
    text = str(name_or_path)
    if _NAME.fullmatch(text):
        path_text = f"{HARDWARE_DIR / subdir if subdir else HARDWARE_DIR}{os.sep}{text}.yaml"
        try:
            st = os.stat(path_text)
        except (OSError, ValueError):
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            return path_text, st.st_mtime_ns
    path = _profile_path(subdir, name_or_path, kind)
    return str(path), path.stat().st_mtime_ns if is_file(path) else 0


def _profile_path(subdir: str, name_or_path: str | Path, kind: str) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        return Path(text)
    folder = HARDWARE_DIR / subdir if subdir else HARDWARE_DIR
    path = folder / f"{text}.yaml"
    if not _NAME.fullmatch(text) or not is_file(path):
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise PlannerError(f"unknown {kind} {text!r} (known: {known})", field=kind)
    return path


def _names(subdir: str) -> list[str]:
    return sorted(p.stem for p in (HARDWARE_DIR / subdir).glob("*.yaml"))


def list_accelerators() -> list[str]:
    return _names("")


def list_profiles(kind: str) -> list[str]:
    """Profile names of `kind`: accelerators, cpus, hosts or network."""
    return _names({"accelerators": "", "cpus": "cpus", "hosts": "hosts", "network": "network"}[kind])


def _sources(doc: Mapping, file: str) -> dict[str, str]:
    out = {}
    for key, entry in require_mapping(doc.get("sources"), file, "sources").items():
        field = f"sources.{key}"
        entry = require_mapping(entry, file, field)
        check_keys(entry, _SOURCE_KEYS, file, f"{field}.")
        text = {k: get_str(entry, k, file, prefix=f"{field}.", default=None) for k in _SOURCE_KEYS}
        if text["url"]:
            out[str(key)] = text["url"]
        elif text["repo"] and text["path"]:
            out[str(key)] = f"{text['repo']} {text['path']}" + (f"@{text['commit'][:12]}" if text["commit"] else "")
        elif text["document"]:
            out[str(key)] = text["document"]
        else:
            raise PlannerError("a source needs url, repo + path, or document", file=file, field=field)
    return out


def _refs(section: Mapping, file: str, prefix: str, sources: Mapping[str, str], required: bool) -> tuple[str, ...]:
    raw = section.get("source")
    refs = [raw] if isinstance(raw, str) else raw
    if not refs:
        if required:
            raise PlannerError("published numbers here need a source key", file=file, field=f"{prefix}source")
        return ()
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise PlannerError("expected a source key or a list of them", file=file, field=f"{prefix}source")
    for ref in refs:
        if ref not in sources:
            raise PlannerError(f"source {ref!r} is not in this file's sources map", file=file, field=f"{prefix}source")
    return tuple(refs)


def _section(doc: Mapping, key: str, allowed: tuple[str, ...], file: str, sources: Mapping[str, str],
             numbers: tuple[str, ...], optional: bool = False) -> dict | None:
    """A sub-mapping with a `source:` list; any non-null number in it requires a source."""
    if optional and doc.get(key) is None:
        return None
    section = require_mapping(doc.get(key), file, key)
    check_keys(section, allowed + ("source", "note"), file, f"{key}.")
    _refs(section, file, f"{key}.", sources, required=any(section.get(n) is not None for n in numbers))
    return section


def _measured(doc: Mapping, file: str, sources: Mapping[str, str], scales: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for key, entry in require_mapping(doc.get("measured") or {}, file, "measured").items():
        if key not in scales:
            raise PlannerError(f"unknown key (allowed: {', '.join(scales)})", file=file, field=f"measured.{key}")
        if entry is None:
            continue
        entry = require_mapping(entry, file, f"measured.{key}")
        check_keys(entry, ("value", "source", "note"), file, f"measured.{key}.")
        _refs(entry, file, f"measured.{key}.", sources, required=True)
        out[key] = get_number(entry, "value", file, prefix=f"measured.{key}.", minimum=0) * scales[key]
    return out


def _price(doc: Mapping, key: str, file: str, sources: Mapping[str, str]) -> Price | None:
    if doc.get(key) is None:
        return None
    entry = require_mapping(doc[key], file, f"prices.{key}")
    check_keys(entry, ("value", "date", "source", "note"), file, f"prices.{key}.")
    refs = _refs(entry, file, f"prices.{key}.", sources, required=True)
    date = entry.get("date")
    return Price(get_number(entry, "value", file, prefix=f"prices.{key}.", minimum=0, maximum=MAX_PRICE_USD),
                 None if date is None else str(date), "; ".join(sources[r] for r in refs),
                 get_str(entry, "note", file, prefix=f"prices.{key}.", default=""))


def _top(path: Path, kind: str, allowed: tuple[str, ...]) -> tuple[dict, str, dict[str, str]]:
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, allowed, file)
    if doc.get("kind") != kind:
        raise PlannerError(f"expected kind: {kind}, got {doc.get('kind')!r}", file=file, field="kind")
    return doc, file, _sources(doc, file)


_ACC_KEYS = ("kind", "display_name", "vendor", "arch", "form_factor", "unified_memory", "memory", "peak_tflops",
             "scale_up", "host_link", "power", "measured", "prices", "notes", "sources", "superchip_host_memory")
_GRACE_KEYS = ("capacity_gb_per_gpu", "type", "c2c_uni_gb_per_s", "bandwidth_gb_per_s_per_gpu")


def load_accelerator(name_or_path: str | Path) -> Accelerator:
    """Accelerator by profile name (profiles/hardware/<name>.yaml) or by path to a profile file; the file's
    modification time keys the cache, so an edited profile is read again."""
    return _load_accelerator(*_profile_file("", name_or_path, "accelerator"))


@lru_cache(maxsize=256)
def _load_accelerator(path_text: str, _mtime_ns: int) -> Accelerator:
    doc, file, sources = _top(Path(path_text), "accelerator", _ACC_KEYS)
    num = get_number
    unified = doc.get("unified_memory", False)
    if not isinstance(unified, bool):
        raise PlannerError("expected true or false", file=file, field="unified_memory")
    mem = _section(doc, "memory", ("capacity_gb", "driver_total_mib", "type", "bandwidth_tb_per_s"), file, sources,
                   ("capacity_gb", "driver_total_mib", "bandwidth_tb_per_s"))
    capacity_gb = num(mem, "capacity_gb", file, prefix="memory.", minimum=0)
    mib = _opt(mem, "driver_total_mib", file, "memory.", None)
    peaks = _section(doc, "peak_tflops", DTYPES, file, sources, DTYPES)
    for dtype in DTYPES:
        if dtype not in peaks:
            raise PlannerError("missing (write null when not supported or not published)", file=file,
                               field=f"peak_tflops.{dtype}")
    flops = {d: (None if peaks[d] is None else num(peaks, d, file, prefix="peak_tflops.", minimum=0) * TERA)
             for d in DTYPES}
    up = _section(doc, "scale_up", ("link", "uni_gb_per_s", "latency_us", "domain_gpus"), file, sources,
                  ("uni_gb_per_s", "latency_us", "domain_gpus"), optional=True) or {}
    link = _section(doc, "host_link", ("kind", "pcie_gen", "lanes", "uni_gb_per_s"), file, sources,
                    ("pcie_gen", "lanes", "uni_gb_per_s"), optional=True) or {}
    power = _section(doc, "power", ("watts",), file, sources, ("watts",), optional=True) or {}
    grace = _section(doc, "superchip_host_memory", _GRACE_KEYS, file, sources, _GRACE_KEYS[:1] + _GRACE_KEYS[2:],
                     optional=True) or {}
    grace_gb = _opt(grace, "capacity_gb_per_gpu", file, "superchip_host_memory.", GIGA)
    grace_rates = [r for r in (_opt(grace, k, file, "superchip_host_memory.", GIGA) for k in _GRACE_KEYS[2:]) if r]
    measured = _measured(doc, file, sources, _ACC_MEASURED)
    prices = require_mapping(doc.get("prices") or {}, file, "prices")
    check_keys(prices, ("purchase_usd", "cloud_usd_per_gpu_hour"), file, "prices.")
    for key in ("notes", "form_factor"):
        get_str(doc, key, file, default=None)

    return Accelerator(
        name=Path(path_text).stem, display_name=get_str(doc, "display_name", file), vendor=get_str(doc, "vendor", file),
        arch=get_str(doc, "arch", file), unified_memory=unified, memory_capacity_gb=capacity_gb,
        memory_bytes=int(mib * MIB) if mib else int(capacity_gb * GIGA),
        memory_bytes_basis="driver" if mib else "datasheet",
        memory_type=get_str(mem, "type", file, prefix="memory.", default=None),
        memory_bandwidth_bytes_per_s=num(mem, "bandwidth_tb_per_s", file, prefix="memory.", minimum=0) * TERA,
        peak_flops_by_dtype=flops,
        scale_up_link=get_str(up, "link", file, prefix="scale_up.", default=None),
        scale_up_bytes_per_s=_opt(up, "uni_gb_per_s", file, "scale_up.", GIGA),
        scale_up_latency_s=_opt(up, "latency_us", file, "scale_up.", 1e-6),
        scale_up_domain_gpus=_opt(up, "domain_gpus", file, "scale_up.", None),
        host_link_kind=get_str(link, "kind", file, prefix="host_link.", default=None),
        pcie_gen=_opt(link, "pcie_gen", file, "host_link.", None),
        pcie_lanes=_opt(link, "lanes", file, "host_link.", None),
        host_link_bytes_per_s=_opt(link, "uni_gb_per_s", file, "host_link.", GIGA),
        power_w=_opt(power, "watts", file, "power."),
        mamf_bf16_flops_per_s=measured.get("mamf_bf16_tflops"), mamf_fp8_flops_per_s=measured.get("mamf_fp8_tflops"),
        memory_achieved_bytes_per_s=measured.get("memory_achieved_tb_per_s"),
        scale_up_achieved_bytes_per_s=measured.get("scale_up_achieved_uni_gb_per_s"),
        host_link_achieved_bytes_per_s=measured.get("host_link_achieved_uni_gb_per_s"),
        allreduce_busbw_bytes_per_s=measured.get("allreduce_busbw_gb_per_s"),
        purchase=_price(prices, "purchase_usd", file, sources),
        cloud=_price(prices, "cloud_usd_per_gpu_hour", file, sources),
        sources=sources, file=file, grace_memory_bytes_per_gpu=None if grace_gb is None else int(grace_gb),
        grace_stream_bytes_per_s=min(grace_rates) if grace_gb and grace_rates else None)


