"""import-silicon's corrections of rows whose timing holds what a served step does not: the host floor of tables
timed without CUDA graphs, per-tensor FP8 GEMMs timed with dynamic activation scaling, and MoE rows routed
round-robin (`balanced`) rather than as served."""

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


def test_balanced_moe_rows_touch_the_experts_their_round_robin_routing_touches():
    """aiconfigurator's `balanced` routing puts token i on experts i + j ceil(E / k) mod E: T tokens touch min(E, k T)
    experts, all 384 of Kimi K2.5's at 64 tokens, where uniform routing touches 284 (planner.perf.ops
    distinct_experts). The row's op record reads what the table's kernel read, and an EP rank is not the busiest."""
    from types import SimpleNamespace

    from planner.perf.ops import distinct_experts

    assert distinct_experts(384, 384, 8, 64, balanced=True) == 384
    assert distinct_experts(384, 384, 8, 4, balanced=True) == 32
    assert distinct_experts(384, 384, 8, 64) == pytest.approx(384 * (1 - (1 - 8 / 384) ** 64))  # ~284
    row = lambda t, tp, ep: SimpleNamespace(moe_dtype="int4_wo", num_tokens=t, hidden_size=7168,  # noqa: E731
                                            inter_size=2048, topk=8, num_experts=384, moe_tp_size=tp, moe_ep_size=ep)
    one = next(o for o in silicon.moe_ops(row(1, 8, 1), GPU) if o.name == "moe.experts")
    for t, touched in ((8, 64), (64, 384), (512, 384)):
        ex = next(o for o in silicon.moe_ops(row(t, 8, 1), GPU) if o.name == "moe.experts")
        assert ex.weight_bytes == pytest.approx(one.weight_bytes * touched / 8)
    # EP 8: each rank holds 48 experts and, routed round-robin, receives exactly its share of the pairs
    ep = next(o for o in silicon.moe_ops(row(64, 1, 8), GPU) if o.name == "moe.experts")
    assert ep.weight_bytes == pytest.approx(one.weight_bytes * 48)  # 48 whole experts, not 8 experts' 1/8 slices
    assert ep.m == 2  # 64 x 8 pairs / 8 ranks = 64 over its 48 experts, none more than another rank's


def test_deepseek_shaped_balanced_rows_keep_the_groups_their_grouped_top_k_keeps():
    """DeepSeek-V3's router keeps the top 4 of 8 expert groups; round-robin logits give every token one pick per
    group, so every group ties and every token keeps the same four: 4 of its picks there plus 4 tie picks shared by
    all tokens, at most the 128 experts of those groups (the tables' 256-token TP8 rows read 1.41 GB at the GPU's
    peak otherwise). With EP the tied groups sit on some ranks only: those rows keep uniform routing."""
    from types import SimpleNamespace

    from planner.perf.ops import distinct_experts

    assert [distinct_experts(256, 256, 8, t, balanced=(8, 4)) for t in (1, 4, 31, 32, 256)] == [8, 20, 128, 128, 128]
    row = lambda t, tp, ep: SimpleNamespace(moe_dtype="fp8_block", num_tokens=t, hidden_size=7168,  # noqa: E731
                                            inter_size=2048, topk=8, num_experts=256, moe_tp_size=tp, moe_ep_size=ep)
    ex = lambda r: next(o for o in silicon.moe_ops(r, GPU) if o.name == "moe.experts")  # noqa: E731
    assert ex(row(256, 8, 1)).weight_bytes == pytest.approx(ex(row(1, 8, 1)).weight_bytes * 128 / 8)
    assert ex(row(256, 1, 8)).weight_bytes == pytest.approx(ex(row(1, 8, 1)).weight_bytes * 8 * distinct_experts(
        32, 256, 8, 256) / 8)  # EP 8: a rank's 32 experts as uniform routing touches them


def test_trtllm_rows_are_grouped_only_for_the_kernel_its_collector_routes_with_deepseeks_gate():
    """TensorRT-LLM's collector routes its min-latency kernel's rows with DeepseekV3Gate (4 of 8 groups) whatever the
    model, and every other kernel's with a plain top-k (kernels_bench/silicon_tables.py TRTLLM_GROUPED)."""
    from types import SimpleNamespace

    from kernels_bench.silicon_tables import routing_groups

    row = lambda kernel, experts: SimpleNamespace(framework="TRTLLM", kernel_source=kernel,  # noqa: E731
                                                  hidden_size=7168, num_experts=experts, topk=8)
    assert routing_groups(row("moe_torch_flow_min_latency", 128)) == (8, 4)
    assert routing_groups(row("moe_torch_flow_cutlass", 256)) is None
    assert routing_groups(row("moe_torch_flow_min_latency", 384)) is None  # the kernel takes 256 experts at most
    assert routing_groups(SimpleNamespace(framework="VLLM", hidden_size=7168, num_experts=256, topk=8)) == (8, 4)
    assert routing_groups(SimpleNamespace(framework="VLLM", hidden_size=7168, num_experts=384, topk=8)) is None
