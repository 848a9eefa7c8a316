"""import-silicon's corrections of rows whose timing holds what a served step does not: the host floor of tables
timed without CUDA graphs, and per-tensor FP8 GEMMs timed with dynamic activation scaling."""

from __future__ import annotations

import pytest

from kernels_bench import plan, silicon
from kernels_bench.cli import main
from planner.hardware.accelerators import load_accelerator
from planner.perf.roofline import _peak, time_op

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from tests.silicon_util import GPU, _latency_ms, _write, fixtures  # noqa: E402  (after the skips)


def test_eager_timed_rows_carry_a_host_floor_that_never_becomes_the_kernels_speed(tmp_path):
    """vLLM's block-FP8 GEMM table is timed without CUDA graphs (EAGER_TIMED): a row is max(host floor, kernel).
    Rows at the floor are predicted at it, only rows well above it fit the surface (those at it bound it from one
    side), and the planner's surface (device time, served under CUDA graphs) carries no floor."""
    from kernels_bench import silicon_fit

    floor = 0.2  # ms: every call pays it, as vLLM's Python dispatch of one linear does
    shapes = [(m, n, k) for m in (1, 4, 16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)
              for n, k in ((4096, 7168), (7168, 2048), (2048, 7168), (18432, 7168), (7168, 16384))]
    meta = {"framework": "VLLM", "version": "0.24.0", "device": "NVIDIA H200", "op_name": "gemm"}
    g = pd.DataFrame([dict(meta, kernel_source="DeepGemm", gemm_dtype=d, m=m, n=n, k=k, latency=0.0)
                      for d in ("bfloat16", "fp8_block") for m, n, k in shapes])
    kernel = [_latency_ms(silicon.gemm_ops(r), 1.3) for r in g.itertuples(index=False)]
    g["latency"] = [max(floor, t) if r.gemm_dtype == "fp8_block" else t
                    for r, t in zip(g.itertuples(index=False), kernel, strict=True)]
    _write(g, tmp_path / "h200_sxm/gemm/vllm/0.24.0/gemm_perf.parquet")
    tables = silicon.find_tables(tmp_path, "h200_sxm", "vllm", None)
    runs = silicon.load_rows(tables, GPU, engine="vllm")
    block = [r for r in runs if r["dtype"] == "fp8_block"]
    assert all(r["eager"] and r["host_floor_s"] == pytest.approx(floor * 1e-3, rel=0.01) for r in block)
    assert not any(r.get("host_floor_s") for r in runs if r["dtype"] == "bfloat16")  # graph-timed: no floor
    bound = [r for r in block if silicon_fit.device_bound(r)]
    assert 4 <= len(bound) < len(block) / 2
    eff, _, sources = silicon.fit_silicon(runs, load_accelerator(GPU))
    held = [r for r in block if r["holdout"]]
    errs = silicon_fit.errors(held, eff, load_accelerator(GPU))
    assert max(abs(e) for e in errs) < 0.15  # at the floor and above it
    # the planner's time of a shape near the floor is its kernel's: at most the measured time, small ones far below
    at_floor = [r for r in block if not silicon_fit.device_bound(r)]
    m = plan.machine(load_accelerator(GPU), eff)
    kernel_s = [sum(time_op(op, m).seconds for op in r["ops"]) for r in at_floor]
    assert all(t <= 1.15 * r["measured_s"] for t, r in zip(kernel_s, at_floor, strict=True))
    assert min(kernel_s) < 0.2 * floor * 1e-3
    # without the rule (another engine's table) the floor would be fitted as the kernel's speed
    plain = silicon.load_rows(tables, GPU, engine="sglang")
    eff_plain, _, _ = silicon.fit_silicon(plain, load_accelerator(GPU))
    m_plain = plan.machine(load_accelerator(GPU), eff_plain)
    small = min(at_floor, key=lambda r: r["ops"][0].flops)
    assert sum(time_op(op, m_plain).seconds for op in small["ops"]) > 3 * sum(time_op(op, m).seconds
                                                                            for op in small["ops"])


def test_per_tensor_fp8_rows_timed_with_dynamic_scaling_are_served_with_a_static_scale(tmp_path, capsys):
    """The engine's compute-scale cost (dynamic minus static activation quantization, read off its quantize table in
    (log m, log k)) comes off each per-tensor FP8 GEMM row, never below the GEMM's roofline; block-FP8 and BF16 rows
    keep their times; the calibration file names the table and what it took off."""
    from kernels_bench.silicon_tables import STATIC_SCALED, ComputeScale

    fixtures(tmp_path / "data")
    tables = silicon.find_tables(tmp_path / "data", "h200_sxm", "sglang", None)
    plain = {(r["dtype"], r["group"]): r["measured_s"] for r in silicon.load_rows(tables, GPU)}
    meta = {"framework": "SGLang", "version": "0.5.14", "device": "NVIDIA H200", "op_name": "compute_scale",
            "kernel_source": "t", "quant_dtype": "fp8"}
    cost_ms = {(m, k): 0.008 * (1 + m * k / 2 ** 30) for m in (1, 64, 4096) for k in (1024, 8192)}
    path = tmp_path / "data/h200_sxm/quantize/sglang/0.5.14/computescale_perf.parquet"
    _write(pd.DataFrame([dict(meta, m=m, k=k, latency=v) for (m, k), v in cost_ms.items()]), path)
    assert silicon.find_compute_scale(tmp_path / "data", "h200_sxm", "sglang") == path
    cs = ComputeScale(path)
    assert cs.seconds(64, 1024) == pytest.approx(cost_ms[64, 1024] * 1e-3)
    assert cs.seconds(8, 2048) == pytest.approx(0.008e-3, rel=0.01)  # between grid points, small inputs: ~8 us
    assert cs.seconds(10 ** 6, 10 ** 5) == pytest.approx(cost_ms[4096, 8192] * 1e-3)  # held at the grid's edge
    runs = silicon.load_rows(tables, GPU, compute_scale=path)
    acc = load_accelerator(GPU)
    for r in runs:
        before = plain[r["dtype"], r["group"]]
        if r["dtype"] not in STATIC_SCALED["gemm_perf"] or r["table"] != "gemm_perf":
            assert r["measured_s"] == before and r["static_s"] == 0
            continue
        op = r["ops"][0]
        roof = max(op.flops / _peak(acc, op.dtype), op.bytes / acc.memory_bandwidth_bytes_per_s)
        assert r["measured_s"] == pytest.approx(max(before - r["static_s"], min(roof, before)))
        assert min(roof, before) * (1 - 1e-12) <= r["measured_s"] <= before
    assert sum(r["static_s"] > 0 for r in runs) >= 2  # fixture fp8 rows: 0.6 x the default table, most at the roof
    rc = main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
               "--out", str(tmp_path / "cal"), "--json"])
    assert rc == 0, capsys.readouterr().err
    text = (tmp_path / "cal/h200-sxm-sglang.yaml").read_text()
    assert "quantize/sglang/0.5.14/computescale_perf.parquet" in text and "static_fp8:" in text


def test_a_malformed_compute_scale_table_is_a_one_line_error_and_an_empty_one_takes_nothing_off(tmp_path, capsys):
    from kernels_bench.silicon_tables import ComputeScale

    fixtures(tmp_path / "data")
    path = tmp_path / "data/h200_sxm/quantize/sglang/0.5.14/computescale_perf.parquet"
    _write(pd.DataFrame([{"m": 1, "k": 1024, "latency": 0.008}]), path)  # no quant_dtype column
    rc = main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
               "--out", str(tmp_path / "cal")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "computescale_perf.parquet" in err and "quant_dtype" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    _write(pd.DataFrame([{"quant_dtype": "int8", "m": 1, "k": 1024, "latency": 0.008}]), path)
    assert ComputeScale(path).seconds(4, 1024) == 0.0
