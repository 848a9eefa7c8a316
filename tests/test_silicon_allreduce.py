"""An engine's measured all-reduce (aiconfigurator-core's custom_allreduce_perf tables) imported into a silicon
calibration's comm.allreduce_by_gpus, read by planner.perf.roofline.comm_time and the vectorized sweeps."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kernels_bench.cli import main
from planner.base.errors import PlannerError
from planner.hardware.allreduce import AllReduceTable, read_allreduce
from planner.hardware.efficiency import _read, efficiency_for
from planner.perf.roofline import comm_time
from planner.perf.steps import decode_step, kernel_notes, machine, on_silicon_tables
from tests.scenario_util import scenario

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from tests.silicon_util import allreduce_fixture, fixtures  # noqa: E402  (after the skips: they write parquet)


def _allreduce(g: int, nbytes: float, m) -> float:
    return comm_time(SimpleNamespace(comm="allreduce", group=g, comm_bytes=nbytes, rdma_bytes=0.0), m)


def test_import_keeps_the_graph_timed_allreduce_and_comm_time_reads_it(tmp_path, capsys):
    fixtures(tmp_path / "data")
    want = allreduce_fixture(tmp_path / "data")
    out = tmp_path / "cal"
    rc = main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
               "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    entry = doc["tables"]["custom_allreduce_perf.bfloat16"]
    assert entry["n_holdout"] == sum(len(p) - 2 for p in want.values())  # every inner size, left out in turn
    assert entry["holdout_median_abs_error"] < entry["default_median_abs_error"]
    assert doc["engine_versions"]["custom_allreduce_perf"] == "0.5.14"
    eff = _read(out / "h200-sxm-sglang.yaml", efficiency_for(None))
    assert sorted(t.gpus for t in eff.allreduce) == [2, 8]  # the GPU counts measured, graph rows only
    for g, points in want.items():
        assert [b for b, _ in eff.allreduce_table(g).points] == [b for b, _ in points]
        assert [s for _, s in eff.allreduce_table(g).points] == pytest.approx([s for _, s in points], rel=1e-3)
    m = replace(machine(scenario(hardware={"gpu": "h200-sxm"})), eff=eff)
    default = replace(m, eff=efficiency_for(None))
    b, s = want[8][4]
    assert _allreduce(8, b, m) == pytest.approx(s, rel=1e-3)
    assert _allreduce(4, b, m) == _allreduce(4, b, default)  # a GPU count the table lacks: the link model
    assert _allreduce(16, b, replace(m, gpus_per_node=8)) == _allreduce(16, b, replace(default, gpus_per_node=8))


def test_a_table_reads_log_linearly_flat_below_and_at_its_last_bandwidth_above():
    t = AllReduceTable(4, ((1e3, 5e-6), (1e5, 8e-6), (1e7, 100e-6)))
    assert [t.seconds(b) for b, _ in t.points] == pytest.approx([s for _, s in t.points])
    assert t.seconds(1e4) == pytest.approx((5e-6 * 8e-6) ** 0.5)  # the geometric mean halfway in log bytes
    assert t.seconds(10.0) == t.seconds(1e3)
    assert t.seconds(4e7) == pytest.approx(400e-6)
    assert list(t.seconds([1e4, 4e7])) == pytest.approx([t.seconds(1e4), t.seconds(4e7)])


@pytest.mark.parametrize("value, field", [({1: [[1, 1e-6], [2, 2e-6]]}, "comm.allreduce_by_gpus.1"),
                                          ({"x": [[1, 1e-6]]}, "comm.allreduce_by_gpus.x"),
                                          ({4: [[2, 1e-6], [1, 2e-6]]}, "comm.allreduce_by_gpus.4"),
                                          ({4: [[1, 0]]}, "comm.allreduce_by_gpus.4")])
def test_a_malformed_table_names_its_field(value, field):
    with pytest.raises(PlannerError) as err:
        read_allreduce(value, "cal.yaml", "comm.allreduce_by_gpus")
    assert err.value.field == field and err.value.file == "cal.yaml"


def test_committed_silicon_tables_time_tp_decode_collectives_as_measured():
    plain = scenario(hardware={"gpu": "h200-sxm"}, engine="vllm", parallelism={"tp": 8},
                     engine_options={"kernel_tables": "default"})
    sc = on_silicon_tables(plain)
    table = machine(sc).eff.allreduce_table(8)
    assert table is not None, "re-import the committed calibrations (kernels_bench import-silicon)"
    ar, linked = (next(t for t in decode_step(s, 4, 2048).timed if t.op.name == "comm.attn_allreduce")
                  for s in (sc, plain))
    assert ar.seconds == pytest.approx(table.seconds(ar.op.comm_bytes))
    assert ar.seconds < 0.8 * linked.seconds  # vLLM's one-shot kernel: ~6 us for 57 KB, where the model says 12
    assert any("all-reduces among 8 GPUs" in n for n in kernel_notes(sc))  # estimate's assumptions say so
    assert not any("all-reduces" in n for n in kernel_notes(plain))


def test_a_malformed_allreduce_table_is_one_line_naming_the_file_and_column(tmp_path, capsys):
    import pandas as pd

    fixtures(tmp_path / "data")
    path = tmp_path / "data" / "h200_sxm" / "comm" / "sglang" / "0.5.14" / "custom_allreduce_perf.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame([{"num_gpus": 8, "message_size": 1024, "allreduce_dtype": "bfloat16"}]).to_parquet(path)
    rc = main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
               "--out", str(tmp_path / "cal")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(path) in err and "latency" in err
    assert not (tmp_path / "cal" / "h200-sxm-sglang.yaml").exists()
