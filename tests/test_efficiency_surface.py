"""Shape surfaces in calibration files (planner.hardware.efficiency.Surface, shape_by_dtype) and their fit
(kernels_bench/silicon_fit.py): read, evaluated on op records, refused when malformed, absent from the default table,
and a known factor recovered from rows built through the planner's own op records."""

from __future__ import annotations

import math

import pytest
import yaml

from kernels_bench import silicon_fit
from planner.base.errors import PlannerError
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import CAL_DIR, _read, efficiency_for, read_surface
from planner.hardware.surface import Surface, shape_axis
from planner.perf.op_record import _gemm


def test_surface_interpolates_in_log_and_holds_flat():
    s = Surface(("m", "width"), ((1.0, 100.0), (10.0, 1000.0)), (1.0, 2.0, 3.0, 4.0))
    assert s.at((1, 10)) == 1.0 and s.at((100, 1000)) == pytest.approx(4.0)
    assert s.at((10, 100)) == pytest.approx(24 ** 0.25)  # the middle of both axes: geometric mean of the corners
    assert s.at((1e6, 1e6)) == pytest.approx(4.0) and s.at((0.5, 1)) == 1.0
    assert Surface(("m",), ((8.0,),), (2.0,)).at((1000,)) == pytest.approx(2.0)


def test_shape_axes_read_off_op_records():
    op = _gemm("gemm", 1, 64, 7168, 2048, 2048 * 7168 * 2, "bf16")
    assert (shape_axis(op, "m"), shape_axis(op, "depth"), shape_axis(op, "width")) == (64, 7168, pytest.approx(2048))
    assert shape_axis(op, "context") == 1.0  # no KV


def test_default_table_has_no_surface():
    eff = efficiency_for(None)
    op = _gemm("gemm", 1, 64, 7168, 2048, 1.0, "bf16")
    assert all(not e.shape_by_dtype and e.shape_for(op) == 1.0 for e in eff.ops.values())


def test_calibration_file_with_surface_and_refusals(tmp_path):
    doc = {"device": "x", "ops": {"gemm": {"shape_by_dtype": {"bf16": {
        "axes": ["m", "depth"], "knots": [[1, 1024], [256, 8192]], "factors": [0.5, 0.6, 1.2, 1.5]}}}}}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc))
    eff = _read(path, efficiency_for(None))
    g = eff.ops["gemm"]
    assert g.compute == efficiency_for(None).ops["gemm"].compute  # curves kept from the base
    assert g.shape_for(_gemm("gemm", 1, 1024, 8192, 4096, 1.0, "bf16")) == pytest.approx(1.5)
    assert g.shape_for(_gemm("gemm", 1, 1024, 8192, 4096, 1.0, "fp8")) == 1.0  # no fp8 surface
    bad = [({"axes": ["m", "nope"], "knots": [[1], [1]], "factors": [1]}, "axes"),
           ({"axes": ["m"], "knots": [[4, 2]], "factors": [1, 1]}, "knots"),
           ({"axes": ["m"], "knots": [[1, 2]], "factors": [1]}, "factors"),
           ({"axes": ["m"], "knots": [[1, 2]], "factors": [1, -1]}, "factors")]
    for surface, field in bad:
        with pytest.raises(PlannerError, match=field):
            read_surface(surface, "f.yaml", "ops.gemm.shape_by_dtype.bf16")
    doc["ops"]["gemm"]["shape_by_dtype"] = {"int3": doc["ops"]["gemm"]["shape_by_dtype"]["bf16"]}
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PlannerError, match="int3"):
        _read(path, efficiency_for(None))
    assert (CAL_DIR / "default.yaml").is_file()


def test_fit_recovers_a_shape_factor():
    """Rows timed as the curves predict, slowed by a factor that grows with the reduction depth: the fitted surface
    brings every row within a few percent, where the curves alone are off by up to the factor."""
    acc = load_accelerator("h200-sxm")
    eff = efficiency_for(None)
    runs = []
    for i, (m, k, n) in enumerate((m, k, n) for m in (1, 8, 64, 512, 4096) for k in (1024, 4096, 16384)
                                  for n in (1024, 4096, 16384)):
        op = _gemm("gemm", 1, m, k, n, 2.0 * k * n, "bf16")
        slow = 1 + 0.5 * math.log2(k / 1024) / 4  # 1 .. 1.5
        runs.append({"ops": [op], "measured_s": silicon_fit.predict({"ops": [op]}, eff, acc) * slow,
                     "dtype": "bfloat16", "table": "gemm_perf", "model": (n, k), "holdout": i % 5 == 4})
    fitted = silicon_fit.fit_surfaces([r for r in runs if not r["holdout"]], eff, acc, {("gemm", "bf16"): "bfloat16"})
    assert dict(fitted.ops["gemm"].shape_by_dtype)["bf16"].axes == silicon_fit.SHAPE["gemm"]
    held = [r for r in runs if r["holdout"]]
    assert max(abs(e) for e in silicon_fit.errors(held, fitted, acc)) < 0.05
    assert max(abs(e) for e in silicon_fit.errors(held, eff, acc)) > 0.25
    cv = silicon_fit.cv_model_shapes(runs, fitted, acc, {("gemm", "bf16"): "bfloat16"})
    assert sorted(cv) == ["gemm_perf.bfloat16"] and len(cv["gemm_perf.bfloat16"]) == len(runs)


def test_a_scenario_takes_the_surfaces_of_the_kernel_variant_it_runs():
    """On silicon tables, per-tensor FP8 weights take the fp8_tensor surfaces in place of the block-scaled fp8 ones,
    an FP8 KV cache the attention kinds' fp8_kv surfaces, and INT4 weight-only experts (BF16 compute records) the
    int4 MoE surface; block-scaled FP8 and a BF16 cache keep their own."""
    from planner.perf.steps import machine
    from tests.scenario_util import scenario

    table = efficiency_for("h200-sxm", "sglang", silicon=True)
    shapes = {k: dict(e.shape_by_dtype) for k, e in table.ops.items()}
    assert {"fp8", "fp8_tensor"} <= set(shapes["gemm"]) and "fp8_kv" in shapes["attention_decode"]
    on = {"engine": "sglang", "engine_options": {"kernel_tables": "silicon"}}
    tensor = machine(scenario(model="llama-3.1-70b", weights="fp8", kv_cache="fp8", **on)).eff.ops
    block = machine(scenario(model="llama-3.1-70b", weights="fp8-block128", **on)).eff.ops
    assert dict(tensor["gemm"].shape_by_dtype)["fp8"] == shapes["gemm"]["fp8_tensor"]
    assert dict(block["gemm"].shape_by_dtype)["fp8"] == shapes["gemm"]["fp8"]
    assert dict(tensor["attention_decode"].shape_by_dtype)["bf16"] == shapes["attention_decode"]["fp8_kv"]
    assert dict(block["attention_decode"].shape_by_dtype)["bf16"] == shapes["attention_decode"]["bf16"]
    kimi = machine(scenario(model="kimi-k2.5", weights="int4-g32", parallelism={"tp": 8}, **on)).eff.ops
    assert dict(kimi["grouped_gemm"].shape_by_dtype)["bf16"] == shapes["grouped_gemm"]["int4"]


def test_a_surface_may_time_a_moe_or_attention_record_below_the_curves_floor():
    """MoE and attention tables time the planner's whole op record, floors included: a kernel measured faster than
    the curves' floor keeps its measured time; a GEMM's other kernels keep their floors outside its surface."""
    from dataclasses import replace

    from planner.hardware.efficiency import Efficiency
    from planner.perf.op_record import Op
    from planner.perf.roofline import Machine, time_op

    base = efficiency_for(None)
    fast = Surface(("m",), ((1.0, 1e6),), (4.0, 4.0))
    ops = {k: replace(e, shape_by_dtype=(("bf16", fast),)) for k, e in base.ops.items()}
    m = Machine(load_accelerator("h200-sxm"), None, Efficiency("t", ops, base.comm, ()), 1, False, "bf16")
    moe = Op("moe.experts", "grouped_gemm", 1, 1e3, weight_bytes=1e3, kernels=3, m=1)
    floor = base.ops["grouped_gemm"].floor_s
    assert time_op(moe, m).seconds == pytest.approx(3 * floor / 4)
    gemm = _gemm("g", 1, 1, 64, 64, 1e3, "bf16", kernels=3)
    assert time_op(gemm, m).seconds == pytest.approx(2 * base.ops["gemm"].floor_s)
