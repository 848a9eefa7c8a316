"""Hardware profiles: every profile loads, golden values pinned to published facts, bad input fails by name.

Run: .venv/bin/python -m pytest tests/test_hardware.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from planner.base.errors import PlannerError
from planner.hardware import accelerators as hw
from planner.hardware import hosts

REPO = Path(__file__).resolve().parent.parent
# CONTRACT section 6: accelerator profile names that cases, reports and checks use.
CONTRACT_ACCELERATORS = ["h100-sxm", "h100-pcie", "h200-sxm", "h800-sxm", "h20", "b200", "gb200", "a100-sxm-80gb",
                         "a100-pcie-80gb", "a100-sxm-40gb", "l40s", "l20", "rtx-4090", "rtx-5090", "rtx-6000-ada",
                         "rtx-pro-6000", "mi300x", "mi325x", "mi355x", "apple-m3-ultra", "apple-m4-max"]
# Every `host:` slug in shared/validation/public_cases.yaml (copied so the test runs without that file).
PUBLIC_CASE_HOSTS = ["xeon-6454s-2s-ddr5-4800-8ch", "xeon-8488c-2s-ddr5-4800-8ch", "xeon-6980p-2s-mrdimm-8800-12ch",
                     "xeon-6980p-1s-mrdimm-8800-12ch"]
CASE_FILES = [REPO / "validation" / "public_cases.yaml", REPO.parent / "shared" / "validation" / "public_cases.yaml"]
TB, GB, T = 1e12, 1e9, 1e12


@pytest.mark.parametrize("name", hw.list_accelerators())
def test_every_accelerator_loads_and_is_sane(name):
    acc = hw.load_accelerator(name)
    assert acc.name == name and acc.sources
    # driver totals sit between the decimal and ~1.1x the binary datasheet size: catches MiB/GB typos
    assert 0.99 * acc.memory_capacity_gb * GB <= acc.memory_bytes <= 1.1 * acc.memory_capacity_gb * 2**30
    assert acc.memory_bandwidth_bytes_per_s > 0
    peaks = {d: v for d, v in acc.peak_flops_by_dtype.items() if v is not None}
    assert all(v > 0 for v in peaks.values())
    for lo, hi in (("bf16", "fp8"), ("fp8", "fp4"), ("fp32", "bf16")):
        if lo in peaks and hi in peaks:
            assert peaks[lo] <= peaks[hi], (lo, hi)
    for measure in ("mamf_bf16", "mamf_fp8", "memory", "scale_up", "host_link"):
        value = acc.fraction(measure)
        assert value is None or 0.3 < value < 1.0, (measure, value)


@pytest.mark.parametrize("name", CONTRACT_ACCELERATORS)
def test_contract_accelerator_names_exist(name):
    assert name in hw.list_accelerators()


@pytest.mark.parametrize("kind,loader", [("cpus", hosts.load_cpu), ("hosts", hosts.load_host),
                                         ("network", hosts.load_network)])
def test_every_cpu_host_network_profile_loads(kind, loader):
    names = hw.list_profiles(kind)
    assert names
    for name in names:
        assert loader(name).sources


def test_h200_golden():
    # stas00/ml-engineering compute/accelerator/README.md (NVIDIA H200 page): 141 GB HBM3e, 4.8 TB/s, 989 TFLOPS bf16
    acc = hw.load_accelerator("h200-sxm")
    assert acc.memory_capacity_gb == 141
    assert acc.memory_bandwidth_bytes_per_s == pytest.approx(4.8 * TB)
    assert acc.peak_flops("bf16") == pytest.approx(989 * T)
    # sgl-project/sglang#3196: nvidia-smi shows 143771MiB per H200
    assert acc.memory_bytes == 143771 * 2**20 and acc.memory_bytes_basis == "driver"
    # stas00 network/README.md: NVLink p2p copy 88% and PCIe gen5 h2d 88% of spec
    assert acc.fraction("scale_up") == pytest.approx(0.88, abs=0.005)
    assert acc.fraction("host_link") == pytest.approx(0.88, abs=0.005)
    assert acc.cloud_usd_per_gpu_hour == 2.3  # lm-sys blog 2025-07-20 (Kimi K2 cost assumption)


def test_h100_golden():
    # stas00 table: H100 SXM 989 bf16, 1979 fp8 dense, 3.35 TB/s, 450 GB/s NVLink per direction
    acc = hw.load_accelerator("h100-sxm")
    assert acc.peak_flops("bf16") == pytest.approx(989 * T)
    assert acc.peak_flops("bfloat16") == acc.peak_flops("bf16")
    assert acc.peak_flops("fp8") == pytest.approx(1979 * T)
    assert acc.scale_up_bytes_per_s == pytest.approx(450 * GB)
    # modal-labs/modal-client#2797: "85520809984 bytes ... on H100" (81559 MiB)
    assert acc.memory_bytes == 85_520_809_984
    # stas00: MAMF bf16 794.5 TFLOPS = 80.3% of spec
    assert acc.fraction("mamf_bf16") == pytest.approx(0.803, abs=0.001)
    with pytest.raises(PlannerError, match="fp4"):
        acc.peak_flops("fp4")  # Hopper has no FP4


def test_blackwell_and_amd_golden():
    b200 = hw.load_accelerator("b200")  # stas00: 2250 bf16, 9000 fp4, 10000 nvfp4; MAMF 77.6% / 76.3%
    assert b200.peak_flops("fp4") == pytest.approx(9000 * T)
    assert b200.peak_flops("nvfp4") == pytest.approx(10000 * T)
    assert b200.fraction("mamf_bf16") == pytest.approx(0.776, abs=0.001)
    assert b200.fraction("mamf_fp8") == pytest.approx(0.763, abs=0.001)
    assert b200.memory_bytes == 183359 * 2**20  # NVIDIA/TensorRT-LLM#10278 nvidia-smi
    gb200 = hw.load_accelerator("gb200")  # no nvfp4 column: falls back to fp4
    assert gb200.peak_flops("nvfp4") == gb200.peak_flops("fp4") == pytest.approx(10000 * T)
    assert gb200.host_link_kind == "NVLink-C2C" and gb200.host_link_bytes_per_s == pytest.approx(450 * GB)
    mi300x = hw.load_accelerator("mi300x")  # stas00: 192 GB, 5.3 TB/s, MAMF 51.4%
    assert mi300x.memory_bandwidth_bytes_per_s == pytest.approx(5.3 * TB)
    assert mi300x.memory_bytes == 205_822_885_888 and mi300x.memory_bytes_basis == "driver"  # rocm-smi total
    assert mi300x.fraction("mamf_bf16") == pytest.approx(0.514, abs=0.001)
    a100 = hw.load_accelerator("a100-sxm-80gb")  # stas00: all-reduce busbw 78% of the 300 GB/s uni spec
    assert a100.fraction("allreduce") == pytest.approx(0.78, abs=0.005)
    with pytest.raises(PlannerError) as err:
        a100.peak_flops("fp8")
    assert err.value.field == "peak_tflops.fp8" and err.value.file.endswith("a100-sxm-80gb.yaml")


def test_consumer_and_apple():
    rtx = hw.load_accelerator("rtx-4090")  # vllm-project/vllm#7553: 24564MiB; waredb: 1.008 TB/s
    assert rtx.memory_bytes == 24564 * 2**20 and rtx.pcie_gen == 4
    assert rtx.purchase_usd == 1599  # launch MSRP 2022-10-12
    ultra = hw.load_accelerator("apple-m3-ultra")
    assert ultra.unified_memory and ultra.host_link_kind is None
    assert ultra.memory_bandwidth_bytes_per_s == pytest.approx(0.819 * TB)
    assert not hw.load_accelerator("h100-sxm").unified_memory


def test_load_by_path_matches_name_and_specs_hash():
    assert hw.load_accelerator(hw.HARDWARE_DIR / "h20.yaml") == hw.load_accelerator("h20")
    host = hosts.load_host("xeon-6454s-2s-ddr5-4800-8ch")
    assert len({hw.load_accelerator("h20"), hw.load_accelerator("h20"), host, hosts.load_cpu("xeon-6454s")}) == 3


def test_host_slugs_from_public_cases_parse():
    slugs = set(PUBLIC_CASE_HOSTS)
    for path in CASE_FILES:
        if path.is_file():
            cases = yaml.safe_load(path.read_text())["cases"]
            slugs |= {c["hardware"]["host"] for c in cases if c["hardware"].get("host")}
    for slug in sorted(slugs):
        host = hosts.load_host(slug, file="public_cases.yaml", field="hardware.host")
        assert host.memory_bandwidth_bytes_per_s > 0 and host.cores > 0


def test_host_bandwidth_golden():
    # hardware.yaml host.dram: per-channel GB/s = MT/s x 8 B; DDR5-4800 x 8 = 307.2 GB/s per socket
    host = hosts.load_host("xeon-6454s-2s-ddr5-4800-8ch")
    assert host.memory_bandwidth_bytes_per_s_per_socket == pytest.approx(307.2 * GB)
    assert host.memory_bandwidth_bytes_per_s == pytest.approx(614.4 * GB)
    assert host.cores == 64 and host.memory_bytes == 1024 * 2**30  # KTransformers tutorial: 2x32 cores, 1 TB
    # MRDIMM-8800 x 12 = 844.8 GB/s per socket (hardware.yaml, Xeon 6900P)
    assert hosts.load_host("xeon-6980p-2s-mrdimm-8800-12ch").memory_bandwidth_bytes_per_s == pytest.approx(1689.6 * GB)
    # Tom's Hardware: Genoa 12 x DDR5-4800 = 460.8 GB/s per socket; slug without "s"/"ch" suffixes
    genoa = hosts.load_host("epyc-9654-2-ddr5-4800-12")
    assert genoa.memory_bandwidth_bytes_per_s_per_socket == pytest.approx(460.8 * GB)
    with pytest.raises(PlannerError, match="bf16"):
        genoa.peak_flops("bf16")  # no AMX on Zen 4


def test_host_inline_mapping_from_contract():
    spec = {"sockets": 2, "cpu": "xeon-8480", "memory_gb": 512, "dram": "ddr5-4800", "channels_per_socket": 8}
    host = hosts.load_host(spec, file="scenario.yaml", field="hardware.host")
    assert host.memory_bytes == 512 * GB and host.cores == 112 and host.dram_kind == "DDR5"
    assert host.peak_flops("bf16") == pytest.approx(2 * 56 * 2.0e9 * 1024)  # AMX: cores x clock x 1024 FLOP/cycle


def test_named_host_profile_agrees_with_its_slug():
    for name in PUBLIC_CASE_HOSTS:
        named = hosts.load_host(name)
        match = re.fullmatch(r"(.+)-(\d+)s-(.+-\d+)-(\d+)ch", name)
        parsed = hosts.load_host({"cpu": match[1], "sockets": int(match[2]), "dram": match[3],
                               "channels_per_socket": int(match[4])})
        assert (named.cpu, named.sockets, named.dram_mt_per_s, named.channels_per_socket) == (
            parsed.cpu, parsed.sockets, parsed.dram_mt_per_s, parsed.channels_per_socket)


@pytest.mark.parametrize("slug,field,message", [
    ("xeon-6454s-two-sockets", "hardware.host", "neither a host profile"),
    ("no-such-cpu-2s-ddr5-4800-8ch", "hardware.host.cpu", "unknown cpu"),
    ("xeon-6454s-2s-ddr5-4800-16ch", "hardware.host.channels_per_socket", "must be <= 8"),
    ("xeon-6454s-2s-mrdimm-8800-8ch", "hardware.host.dram", "does not take mrdimm"),
    ("xeon-6454s-2s-ddr5-6400-8ch", "hardware.host.dram", "at most at 4800"),
    ("xeon-6454s-0s-ddr5-4800-8ch", "hardware.host.sockets", "must be >= 1"),
])
def test_bad_host_slug_names_field(slug, field, message):
    with pytest.raises(PlannerError) as err:
        hosts.load_host(slug, file="case.yaml", field="hardware.host")
    assert err.value.file == "case.yaml" and err.value.field == field
    assert message in str(err.value)


@pytest.mark.parametrize("spec,field", [
    ({"cpu": "xeon-8480", "sockets": 2, "dram": "ddr5-4800", "ram_gb": 512}, "hardware.host.ram_gb"),
    ({"cpu": "xeon-8480", "sockets": 2, "dram": "fast"}, "hardware.host.dram"),
    ({"cpu": "xeon-8480", "sockets": 2, "dram": "ddr5-4800", "memory_gb": 1, "memory_gib": 1},
     "hardware.host.memory_gib"),
    ({"cpu": "xeon-8480", "dram": "ddr5-4800"}, "hardware.host.sockets"),
    (42, "hardware.host"),
])
def test_bad_inline_host_names_field(spec, field):
    with pytest.raises(PlannerError) as err:
        hosts.load_host(spec, file="scenario.yaml", field="hardware.host")
    assert err.value.field == field and err.value.file == "scenario.yaml"


def _edited_profile(tmp_path, edit):
    doc = yaml.safe_load((hw.HARDWARE_DIR / "h100-sxm.yaml").read_text())
    edit(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(bogus=1), "bogus"),
    (lambda d: d["memory"].update(hbm_gb=80), "memory.hbm_gb"),
    (lambda d: d["measured"].update(mfu=0.5), "measured.mfu"),
    (lambda d: d["peak_tflops"].pop("fp6"), "peak_tflops.fp6"),
    (lambda d: d["peak_tflops"].update(source=["nowhere"]), "peak_tflops.source"),
    (lambda d: d["scale_up"].pop("source"), "scale_up.source"),
    (lambda d: d["memory"].update(bandwidth_tb_per_s="fast"), "memory.bandwidth_tb_per_s"),
    (lambda d: d["memory"].update(driver_total_mib=-1), "memory.driver_total_mib"),
    (lambda d: d["sources"]["stas00_net"].pop("repo"), "sources.stas00_net"),
    (lambda d: d["prices"]["purchase_usd"].pop("source"), "prices.purchase_usd.source"),
    (lambda d: d.update(kind="host"), "kind"),
])
def test_bad_accelerator_profile_names_file_and_field(tmp_path, edit, field):
    path = _edited_profile(tmp_path, edit)
    with pytest.raises(PlannerError) as err:
        hw.load_accelerator(path)
    assert err.value.field == field and err.value.file == str(path)


def test_unknown_accelerator_and_dtype():
    with pytest.raises(PlannerError, match="unknown accelerator 'h300'"):
        hw.load_accelerator("h300")
    with pytest.raises(PlannerError, match="unknown dtype"):
        hw.load_accelerator("h100-sxm").peak_flops("fp64")


def test_planner_hardware_stays_pure():
    text = Path(hw.__file__).read_text()
    assert not re.search(r"^\s*(import|from)\s+(torch|pynvml|streamlit)\b", text, re.M)


def test_nvl72_collectives_stay_on_nvlink_across_trays():
    """GB200/GB300 NVL72: 72 GPUs in one NVLink domain over compute trays of 4. A TP16 plan on four trays runs its
    all-reduces over NVLink (as inside one 8-GPU B200 node), not over the trays' RDMA NICs; an HGX B200 pair of
    nodes does go over RDMA."""
    from planner.deploy.scenario import make_scenario
    from planner.perf.ops import scale_up_gpus
    from planner.perf.steps import decode_step

    def sc(gpu, per_node, nodes):
        return make_scenario("deepseek-r1", weights="nvfp4", gpu=gpu, gpus_per_node=per_node, nodes=nodes,
                             engine="trtllm", parallelism={"tp": 16, "ep": 16}, name="nvl", file="t")

    gb, b2 = sc("gb200", 4, 4), sc("b200", 8, 2)
    assert (scale_up_gpus(gb), scale_up_gpus(b2), scale_up_gpus(sc("gb300", 4, 4))) == (72, 8, 72)
    comm = lambda s: sum(t.seconds for t in decode_step(s, 8, 2048).timed if t.op.kind == "comm")  # noqa: E731
    assert comm(gb) < 0.5 * comm(b2)


def test_cross_node_all_reduce_runs_over_every_nic_of_the_node():
    """NCCL runs one ring per NIC and each ring leaves a node once, so a multi-node all-reduce moves at the node's
    NICs together, not one NIC's rate. nccl-tests all_reduce_perf on 8x H200 nodes with 8 NICs each reaches ~350 GB/s
    bus bandwidth at 512 MB (NVIDIA/nccl-tests #283); a large message across 2 nodes lands near that, far above one
    CX7 NIC (~45 GB/s), and never above the NVLink all-reduce inside one node."""
    from planner.deploy.scenario import make_scenario
    from planner.perf.ops import Op
    from planner.perf.roofline import comm_time
    from planner.perf.steps import machine

    m = machine(make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, nodes=2,
                              engine="sglang", parallelism={"tp": 16}, name="nccl", file="t"))
    size = 512 * 2**20

    def busbw(group):
        t = comm_time(Op("comm.tp_allreduce", "comm", 1, 0.0, comm_bytes=size, comm="allreduce", group=group), m)
        return 2 * (group - 1) / group * size / t

    assert 300e9 <= busbw(16) <= 400e9
    assert busbw(16) > 5 * m.eff.comm["rdma_bytes_per_s_per_gpu"]
    assert busbw(16) <= busbw(8)  # inside one node: NVLink
