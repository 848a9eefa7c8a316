"""kernels_bench fit-moe-stream on tiny tables in aiconfigurator-core's schema (the package itself is not needed):
tables timed as a known fixed latency + expert bytes at a known share of HBM (plus the planner's permute pass) give
that latency and share back, in sample and with each GPU left out."""

from __future__ import annotations

import json

import pytest

from kernels_bench import moe_stream, silicon
from kernels_bench.cli import main
from planner.perf.roofline import time_op
from planner.perf.steps import machine

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

A, F = 12e-6, 0.8  # the latency and HBM share the tables are built with


def _latency_ms(row, gpu: str) -> float:
    ops = silicon.moe_ops(row, gpu)
    sc = silicon._moe_scenario(gpu, silicon.MOE_DTYPES[row.moe_dtype][0], row.hidden_size, row.inter_size, row.topk,
                               row.num_experts, row.moe_tp_size, row.moe_ep_size)
    m = machine(sc)
    ex = next(o for o in ops if o.name == "moe.experts")
    perm = sum(time_op(o, m).seconds for o in ops if o.name != "moe.experts")
    return 1e3 * (perm + A + ex.bytes / (m.acc.memory_bandwidth_bytes_per_s * F))


def fixtures(root):
    for system, gpu in (("h200_sxm", "h200-sxm"), ("b200_sxm", "b200")):
        rows = [dict(op_name="moe", kernel_source="t", moe_dtype=d, num_tokens=t, hidden_size=7168, inter_size=2048,
                     topk=8, num_experts=256, moe_tp_size=tp, moe_ep_size=ep, distribution="balanced", latency=0.0)
                for d in ("fp8_block", "bfloat16") for t in (1, 4, 16, 64) for tp, ep in ((1, 8), (8, 1), (2, 4))]
        df = pd.DataFrame(rows)
        df["latency"] = [_latency_ms(r, gpu) for r in df.itertuples(index=False)]
        path = root / system / "moe" / "vllm" / "0.24.0" / "moe_perf.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path)


def test_fit_recovers_latency_and_share(tmp_path, capsys):
    fixtures(tmp_path)
    assert main(["fit-moe-stream", "--engine", "vllm", "--data", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["latency_s"] == pytest.approx(A, rel=1e-3) and doc["memory_fraction"] == pytest.approx(F, rel=1e-3)
    assert doc["in_sample"]["median_abs_error"] < 1e-3 and doc["leave_one_gpu_out"]["median_abs_error"] < 1e-3
    assert set(doc["by_gpu"]) == {"h200-sxm", "b200"}
    assert main(["fit-moe-stream", "--engine", "vllm", "--data", str(tmp_path)]) == 0
    assert "leave one GPU out" in capsys.readouterr().out


def test_no_tables_is_one_line(tmp_path, capsys):
    assert main(["fit-moe-stream", "--engine", "sglang", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no sglang MoE tables" in err


def test_rows_the_planner_calls_compute_bound_are_not_fitted():
    rows = [{"t_c": 1.0, "x": 1e-6, "meas": 2.0, "perm": 0.0}] * 3
    with pytest.raises(Exception, match="too few"):
        moe_stream.fit_stream(rows)
