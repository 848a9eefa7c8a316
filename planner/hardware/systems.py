"""Machine classes the sizing search draws from (`profiles/systems/<name>.yaml`): GPU servers, CPU-offload
workstations, Apple unified-memory machines and CPU-only servers, with the prices of the parts that are not
accelerators (CPU, DRAM per GB, platform) and their sources.

    kind: system
    class: workstation               # gpu_server | workstation | apple | cpu_server
    gpus: [rtx-4090, rtx-5090]       # accelerator profiles it takes; `all` = every one of the class
    gpu_counts: [1, 2]               # GPUs per machine (gpu_server: per node; 0 = CPU only)
    host: {cpu: ryzen-9-9950x, sockets: 1, dram: ddr5-5600, channels_per_socket: 2}
    memory_gb: [128, 192, 256]       # host RAM sizes offered
    power: {watts: 170, source: [...]}   # host side (CPU TDP), W
    prices: {cpu_usd: {...}, dram_usd_per_gb: {...}, platform_usd: {...}, cloud_usd_per_hour: {...}}

A price left null is "not published here": the search rejects plans that need it (CPU, DRAM) and lists the
parts it could not price (platform) beside the capex it reports. Same strict loading as
planner/hardware/accelerators.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.yamlio import (
    PROFILES,
    check_keys,
    get_choice,
    get_number,
    get_str,
    profile_names,
    profile_path,
    require_mapping,
)
from planner.hardware.accelerators import (  # shared strict-loading helpers (as planner/hardware/hosts.py uses them)
    Price,
    _price,
    _section,
    _top,
    list_accelerators,
    load_accelerator,
)
from planner.hardware.hosts import Host, load_host

SYSTEMS_DIR = PROFILES / "systems"
CLASSES = ("gpu_server", "workstation", "apple", "cpu_server")
_KEYS = ("kind", "display_name", "class", "gpus", "gpu_counts", "host", "memory_gb", "power", "prices", "notes",
         "sources")
_PRICE_KEYS = ("cpu_usd", "dram_usd_per_gb", "platform_usd", "cloud_usd_per_hour")


@dataclass(frozen=True)
class System:
    name: str  # profile name (file stem)
    display_name: str
    cls: str  # gpu_server | workstation | apple | cpu_server
    gpus: tuple[str, ...]  # accelerator profiles this machine takes (empty for cpu_server)
    gpu_counts: tuple[int, ...]  # GPUs per machine (per node for gpu_server); 0 = CPU only
    host: Host | None  # CPU, sockets, DRAM kind and channels (memory size set per plan)
    memory_gb: tuple[float, ...]  # host RAM sizes offered, GB = 1e9 B
    host_power_w: float | None  # host side (CPU TDP), excluding accelerators
    cpu: Price | None  # per socket
    dram_per_gb: Price | None  # USD per GB of host DRAM
    platform: Price | None  # board, chassis, PSU, storage per machine
    cloud_per_hour: Price | None  # renting the whole machine, USD per hour
    file: str

    def __hash__(self) -> int:
        return hash((self.name, self.file))


def list_systems() -> list[str]:
    return profile_names(SYSTEMS_DIR)


def load_system(name: str) -> System:
    path = profile_path(SYSTEMS_DIR, name, "system", "system")
    return _load(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _load(path_text: str, _mtime_ns: int) -> System:
    doc, file, sources = _top(Path(path_text), "system", _KEYS)
    cls = get_choice(doc, "class", CLASSES, file)
    gpus = _gpus(doc.get("gpus"), cls, file)
    counts = doc.get("gpu_counts") or ([0] if cls == "cpu_server" else [1])
    if not isinstance(counts, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 64
                                               for c in counts):
        raise PlannerError("expected a list of GPU counts (0-64)", file=file, field="gpu_counts")
    host = None
    if doc.get("host") is not None:
        host = load_host(doc["host"], file=file, field="host")
    elif cls in ("workstation", "cpu_server"):
        raise PlannerError(f"a {cls} needs a host", file=file, field="host")
    sizes = doc.get("memory_gb") or []
    if not isinstance(sizes, list) or not all(isinstance(s, (int, float)) and s > 0 for s in sizes):
        raise PlannerError("expected a list of host RAM sizes in GB", file=file, field="memory_gb")
    if cls in ("workstation", "cpu_server") and not sizes:
        raise PlannerError(f"a {cls} needs host RAM sizes", file=file, field="memory_gb")
    power = _section(doc, "power", ("watts",), file, sources, ("watts",), optional=True) or {}
    prices = require_mapping(doc.get("prices") or {}, file, "prices")
    check_keys(prices, _PRICE_KEYS, file, "prices.")
    get_str(doc, "notes", file, default=None)
    return System(
        name=Path(path_text).stem, display_name=get_str(doc, "display_name", file), cls=cls, gpus=gpus,
        gpu_counts=tuple(sorted(set(counts))), host=host, memory_gb=tuple(sorted(float(s) for s in sizes)),
        host_power_w=get_number(power, "watts", file, prefix="power.", default=None, minimum=0),
        cpu=_price(prices, "cpu_usd", file, sources), dram_per_gb=_price(prices, "dram_usd_per_gb", file, sources),
        platform=_price(prices, "platform_usd", file, sources),
        cloud_per_hour=_price(prices, "cloud_usd_per_hour", file, sources), file=file)


def _gpus(value, cls: str, file: str) -> tuple[str, ...]:
    if cls == "cpu_server" and not value:
        return ()
    if value == "all":
        unified = cls == "apple"
        return tuple(n for n in list_accelerators() if load_accelerator(n).unified_memory == unified)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PlannerError("expected `all` or a list of accelerator profiles", file=file, field="gpus")
    for name in value:
        try:
            load_accelerator(name)
        except PlannerError as err:
            raise PlannerError(err.message, file=file, field="gpus") from None
    return tuple(value)
