"""Host CPUs, their DRAM and scale-out networks, read from profiles/hardware/{cpus,hosts,network}/.

Same strict loading and unit rules as planner/hardware/accelerators.py (whose helpers it uses). A host is a profile
name, an inline mapping `{sockets, cpu, memory_gb, dram, channels_per_socket}` or a slug
`<cpu>-<sockets>[s]-<dram>-<channels>[ch][-<GB>gb]` such as `xeon-6454s-2s-ddr5-4800-8ch`.

    host = load_host("xeon-6454s-2s-ddr5-4800-8ch"); host.memory_bandwidth_bytes_per_s
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.limits import MAX_HOST_MEMORY_GB
from planner.base.yamlio import check_keys, file_problem, get_number, get_str, is_file, require_mapping
from planner.hardware.accelerators import (  # shared strict-loading helpers
    DTYPE_ALIASES,
    GIB,
    GIGA,
    HARDWARE_DIR,
    MEGA,
    _measured,
    _opt,
    _profile_path,
    _ratio,
    _refs,
    _section,
    _top,
    list_profiles,
)

DRAM_BYTES_PER_TRANSFER = 8  # one 64-bit channel (DDR5: two 32-bit subchannels) moves 8 B per transfer
_DRAM = re.compile(r"(ddr4|ddr5|lpddr5x?|mrdimm)-(\d{3,5})")
# <cpu>-<sockets>[s]-<dram>-<channels per socket>[ch][-<GB>gb], e.g. xeon-6454s-2s-ddr5-4800-8ch
_SLUG = re.compile(r"(?P<cpu>[a-z0-9]+(?:-[a-z0-9]+)*?)-(?P<sockets>\d+)s?-(?P<dram>(?:ddr[45]|lpddr5x?|mrdimm)-\d+)"
                   r"-(?P<channels>\d+)(?:ch)?(?:-(?P<gb>\d+)gb)?")
@dataclass(frozen=True)
class Cpu:
    name: str  # profile name, e.g. "xeon-6454s"
    display_name: str  # e.g. "Intel Xeon Gold 6454S"
    vendor: str  # Intel | AMD
    arch: str  # microarchitecture / generation
    cores_per_socket: int  # physical cores
    base_clock_hz: float | None  # datasheet base clock
    all_core_turbo_hz: float | None  # datasheet all-core turbo, when published
    max_channels_per_socket: int  # DRAM channels the socket has
    max_dram_mt_per_s: Mapping[str, float | None]  # dram kind ("ddr5", "mrdimm") -> fastest supported MT/s
    pcie_gen: int | None  # PCIe generation of the socket
    pcie_lanes_per_socket: int | None  # PCIe lanes per socket
    numa_nodes_per_socket: int | None  # with sub-NUMA clustering off (BIOS default)
    flops_per_cycle_per_core: Mapping[str, float | None]  # fp32: AVX-512 FMA; bf16, int8: AMX TMUL; None = absent
    sources: Mapping[str, str]  # source key -> citation
    file: str  # profile path

    def __hash__(self) -> int:
        return hash((self.name, self.file))

    @property
    def clock_hz(self) -> float | None:  # clock used for peaks: all-core turbo, else base
        return self.all_core_turbo_hz or self.base_clock_hz

    def peak_flops_per_socket(self, dtype: str) -> float:
        """bf16 / int8 via AMX, fp32 via AVX-512: cores x clock x FLOP per cycle per core."""
        per_cycle = self.flops_per_cycle_per_core.get(DTYPE_ALIASES.get(dtype, dtype))
        if per_cycle is None or self.clock_hz is None:
            raise PlannerError(f"{self.display_name} has no {dtype} peak (no matrix/vector unit or clock recorded)",
                               file=self.file, field="vector")
        return self.cores_per_socket * self.clock_hz * per_cycle


@dataclass(frozen=True)
class Host:
    name: str  # profile name, slug, or "inline"
    cpu: Cpu  # socket model
    sockets: int  # populated sockets
    dram_kind: str  # "DDR5", "MRDIMM", ...
    dram_mt_per_s: float  # transfer rate, MT/s
    channels_per_socket: int  # populated DRAM channels per socket
    memory_bytes: int | None  # installed DRAM; None = not stated
    measured_memory_bytes_per_s_per_socket: float | None  # e.g. Intel mlc read bandwidth
    sources: Mapping[str, str]  # source key -> citation
    file: str  # where the spec came from

    def __hash__(self) -> int:
        return hash((self.name, self.cpu.name, self.sockets, self.dram_kind, self.dram_mt_per_s,
                     self.channels_per_socket, self.memory_bytes))

    @property
    def cores(self) -> int:
        return self.sockets * self.cpu.cores_per_socket

    @property
    def memory_bandwidth_bytes_per_s_per_socket(self) -> float:  # channels x MT/s x 8 B
        return self.channels_per_socket * self.dram_mt_per_s * MEGA * DRAM_BYTES_PER_TRANSFER

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:  # all sockets; NUMA-local access assumed
        return self.sockets * self.memory_bandwidth_bytes_per_s_per_socket

    @property
    def memory_bandwidth_fraction(self) -> float | None:
        return _ratio(self.measured_memory_bytes_per_s_per_socket, self.memory_bandwidth_bytes_per_s_per_socket)

    @property
    def numa_nodes(self) -> int | None:
        n = self.cpu.numa_nodes_per_socket
        return None if n is None else n * self.sockets

    def peak_flops(self, dtype: str) -> float:
        return self.sockets * self.cpu.peak_flops_per_socket(dtype)


@dataclass(frozen=True)
class Network:
    name: str  # profile name, e.g. "infiniband-ndr400"
    display_name: str  # e.g. "InfiniBand NDR 400G"
    technology: str  # InfiniBand | RoCE | EFA
    port_bytes_per_s: float | None  # signalling rate per port / 8, one direction
    adapter: str | None  # NIC, e.g. ConnectX-7
    achieved_bytes_per_s_per_port: float | None  # measured achievable per port (e.g. DeepEP RDMA bandwidth)
    allreduce_busbw_bytes_per_s: float | None  # measured multi-node all-reduce bus bandwidth over this fabric
    sources: Mapping[str, str]  # source key -> citation
    file: str  # profile path


_VECTOR = {"fp32": "avx512_fp32_flops_per_cycle_per_core", "bf16": "amx_bf16_flops_per_cycle_per_core",
           "int8": "amx_int8_ops_per_cycle_per_core"}
_CPU_KEYS = ("kind", "display_name", "vendor", "arch", "cores", "memory", "pcie", "numa", "vector", "notes", "sources")


def load_cpu(name_or_path: str | Path) -> Cpu:
    """Host CPU (one socket) by profile name (profiles/hardware/cpus/<name>.yaml) or path."""
    path = _profile_path("cpus", name_or_path, "cpu")
    doc, file, sources = _top(path, "cpu", _CPU_KEYS)
    num = get_number
    cores = _section(doc, "cores", ("per_socket", "base_clock_ghz", "all_core_turbo_ghz"), file, sources,
                     ("per_socket", "base_clock_ghz", "all_core_turbo_ghz"))
    mem = _section(doc, "memory", ("channels_per_socket", "max_mt_per_s"), file, sources, ("channels_per_socket",))
    speeds = require_mapping(mem.get("max_mt_per_s"), file, "memory.max_mt_per_s")
    for kind in speeds:
        if not _DRAM.fullmatch(f"{kind}-1000"):
            raise PlannerError("unknown DRAM kind (ddr4, ddr5, lpddr5, lpddr5x, mrdimm)", file=file,
                               field=f"memory.max_mt_per_s.{kind}")
    pcie = _section(doc, "pcie", ("gen", "lanes_per_socket"), file, sources, ("gen", "lanes_per_socket"))
    numa = _section(doc, "numa", ("nodes_per_socket",), file, sources, ("nodes_per_socket",))
    vec = _section(doc, "vector", tuple(_VECTOR.values()), file, sources, tuple(_VECTOR.values()))
    get_str(doc, "notes", file, default=None)

    return Cpu(
        name=path.stem, display_name=get_str(doc, "display_name", file), vendor=get_str(doc, "vendor", file),
        arch=get_str(doc, "arch", file),
        cores_per_socket=num(cores, "per_socket", file, prefix="cores.", integer=True, minimum=1),
        base_clock_hz=_opt(cores, "base_clock_ghz", file, "cores.", GIGA),
        all_core_turbo_hz=_opt(cores, "all_core_turbo_ghz", file, "cores.", GIGA),
        max_channels_per_socket=num(mem, "channels_per_socket", file, prefix="memory.", integer=True, minimum=1),
        max_dram_mt_per_s={str(k): _opt(speeds, k, file, "memory.max_mt_per_s.") for k in speeds},
        pcie_gen=_opt(pcie, "gen", file, "pcie.", None),
        pcie_lanes_per_socket=_opt(pcie, "lanes_per_socket", file, "pcie.", None),
        numa_nodes_per_socket=_opt(numa, "nodes_per_socket", file, "numa.", None),
        flops_per_cycle_per_core={dtype: _opt(vec, key, file, "vector.") for dtype, key in _VECTOR.items()},
        sources=sources, file=file)


_HOST_SPEC_KEYS = ("cpu", "sockets", "dram", "channels_per_socket", "memory_gb", "memory_gib")
_HOST_FILE_KEYS = ("kind", "display_name") + _HOST_SPEC_KEYS + ("source", "measured", "notes", "sources")


def load_host(spec: str | Path | Mapping, file: str | None = None, field: str | None = None) -> Host:
    """Host from (a) a profile name in profiles/hardware/hosts/ or a path, (b) an inline mapping
    {sockets: 2, cpu: xeon-8480, memory_gb: 512, dram: ddr5-4800, channels_per_socket: 8}, or (c) a slug
    <cpu>-<sockets>[s]-<dram>-<channels>[ch][-<GB>gb], e.g. xeon-6454s-2s-ddr5-4800-8ch.
    `file` and `field` name where the spec was written, for error messages."""
    where = file or "<host>"
    prefix = f"{field}." if field else ""
    if isinstance(spec, Mapping):
        check_keys(spec, _HOST_SPEC_KEYS, where, prefix)
        return _host(spec, "inline", where, prefix, {})
    if not isinstance(spec, (str, Path)):
        raise PlannerError(f"expected a host name, slug or mapping, got {type(spec).__name__}", file=where, field=field)
    text = str(spec)
    if text.endswith((".yaml", ".yml")) or "/" in text or is_file(HARDWARE_DIR / "hosts" / f"{text}.yaml"):
        path = _profile_path("hosts", text, "host")
        if not is_file(path):  # a path the input names: say where it was named
            raise PlannerError(f"host profile {text!r}: {file_problem(path)}", file=where, field=field)
        doc, pfile, sources = _top(path, "host", _HOST_FILE_KEYS)
        _refs(doc, pfile, "", sources, required=True)
        measured = _measured(doc, pfile, sources, {"memory_read_gb_per_s_per_socket": GIGA})
        get_str(doc, "notes", pfile, default=None)
        return _host(doc, path.stem, pfile, "", sources, measured.get("memory_read_gb_per_s_per_socket"))
    match = _SLUG.fullmatch(text)
    if not match:
        raise PlannerError(f"host {text!r} is neither a host profile ({', '.join(list_profiles('hosts'))}) nor a "
                           "slug <cpu>-<sockets>s-<dram>-<channels>ch such as xeon-6454s-2s-ddr5-4800-8ch",
                           file=where, field=field)
    parts = {"cpu": match["cpu"], "sockets": int(match["sockets"]), "dram": match["dram"],
             "channels_per_socket": int(match["channels"])}
    if match["gb"]:
        parts["memory_gb"] = int(match["gb"])
    return _host(parts, text, where, prefix, {})


def _host(doc: Mapping, name: str, file: str, prefix: str, sources: Mapping[str, str],
          measured_per_socket: float | None = None) -> Host:
    cpu_name = get_str(doc, "cpu", file, prefix=prefix)
    try:
        cpu = load_cpu(cpu_name)
    except PlannerError as err:
        raise PlannerError(err.message, file=file, field=f"{prefix}cpu") from None
    sockets = get_number(doc, "sockets", file, prefix=prefix, integer=True, minimum=1, maximum=8)
    dram = get_str(doc, "dram", file, prefix=prefix).lower()
    match = _DRAM.fullmatch(dram)
    if not match:
        raise PlannerError(f"expected <kind>-<MT/s> such as ddr5-4800 or mrdimm-8800, got {dram!r}", file=file,
                           field=f"{prefix}dram")
    kind, mt = match[1], float(match[2])
    if kind not in cpu.max_dram_mt_per_s:
        raise PlannerError(f"{cpu.display_name} does not take {kind} (takes: {', '.join(cpu.max_dram_mt_per_s)})",
                           file=file, field=f"{prefix}dram")
    top = cpu.max_dram_mt_per_s[kind]
    if top is not None and mt > top:
        raise PlannerError(f"{cpu.display_name} runs {kind} at most at {top:g} MT/s, got {mt:g}", file=file,
                           field=f"{prefix}dram")
    channels = get_number(doc, "channels_per_socket", file, prefix=prefix, integer=True, minimum=1,
                          maximum=cpu.max_channels_per_socket, default=cpu.max_channels_per_socket)
    gb, gib = (get_number(doc, key, file, prefix=prefix, default=None, minimum=0, maximum=MAX_HOST_MEMORY_GB)
               for key in ("memory_gb", "memory_gib"))
    if gb is not None and gib is not None:
        raise PlannerError("give memory_gb or memory_gib, not both", file=file, field=f"{prefix}memory_gib")
    memory = int(gb * GIGA) if gb is not None else (int(gib * GIB) if gib is not None else None)
    return Host(name=name, cpu=cpu, sockets=sockets, dram_kind=kind.upper(), dram_mt_per_s=mt,
                channels_per_socket=channels, memory_bytes=memory,
                measured_memory_bytes_per_s_per_socket=measured_per_socket, sources=sources, file=file)


def load_network(name_or_path: str | Path) -> Network:
    """Scale-out fabric by profile name (profiles/hardware/network/<name>.yaml) or path."""
    path = _profile_path("network", name_or_path, "network")
    doc, file, sources = _top(path, "network", ("kind", "display_name", "technology", "port", "measured", "notes",
                                                "sources"))
    port = _section(doc, "port", ("gbit_per_s", "lanes", "adapter"), file, sources, ("gbit_per_s", "lanes"))
    gbit, _ = _opt(port, "gbit_per_s", file, "port."), _opt(port, "lanes", file, "port.", None)
    get_str(doc, "notes", file, default=None)
    measured = _measured(doc, file, sources, {"achieved_gb_per_s_per_port": GIGA, "allreduce_busbw_gb_per_s": GIGA})
    return Network(name=path.stem, display_name=get_str(doc, "display_name", file),
                   technology=get_str(doc, "technology", file),
                   port_bytes_per_s=None if gbit is None else gbit * GIGA / 8,
                   adapter=get_str(port, "adapter", file, prefix="port.", default=None),
                   achieved_bytes_per_s_per_port=measured.get("achieved_gb_per_s_per_port"),
                   allreduce_busbw_bytes_per_s=measured.get("allreduce_busbw_gb_per_s"), sources=sources, file=file)
