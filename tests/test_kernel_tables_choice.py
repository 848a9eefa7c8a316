"""Issue 19 item 2: a scenario on a GPU and engine with imported silicon kernel tables runs on them, the others on
the default table (engine_options.kernel_tables "auto", the default), and says which in its assumptions.
`--kernel-tables default` (estimate, size, validate, silicon) or a sizing workload's `kernel_tables: default` runs
on the default table alone; `--kernel-tables silicon` names the silicon tables."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from planner.base.errors import PlannerError
from planner.cli import main
from planner.hardware.systems import load_system
from planner.sizing.candidates import Candidate, Hardware
from planner.sizing.workload import load_workload, workload_from_mapping

SCENARIO = "profiles/scenarios/kimi-k2.5-int4-8xh200.yaml"  # vLLM on 8x H200: silicon tables imported


def _estimate(capsys, *extra):
    assert main(["estimate", SCENARIO, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_takes_the_silicon_tables_where_imported_and_the_default_on_request(capsys):
    auto, silicon = _estimate(capsys), _estimate(capsys, "--kernel-tables", "silicon")
    default = _estimate(capsys, "--kernel-tables", "default")
    for doc in (auto, silicon):
        assert any("silicon/h200-sxm-vllm.yaml" in a for a in doc["assumptions"])
    assert auto["metrics"] == silicon["metrics"]
    assert not any("silicon/h200-sxm-vllm.yaml" in a for a in default["assumptions"])
    assert any("kernel tables: default (engine_options.kernel_tables: default" in a for a in default["assumptions"])
    assert default["metrics"]["tpot_ms"] != auto["metrics"]["tpot_ms"]


def test_a_gpu_without_imported_tables_runs_on_the_default_table_unless_silicon_is_named():
    from planner.deploy.scenario import make_scenario
    from planner.perf.steps import uses_silicon_tables

    sc = make_scenario("kimi-k2.5", weights="int4-g32", gpu="mi300x", gpus_per_node=8, engine="vllm",
                       parallelism={"tp": 8})
    assert sc.engine.kernel_tables == "auto" and not uses_silicon_tables(sc)
    named = replace(sc, engine=replace(sc.engine, kernel_tables="silicon"))
    with pytest.raises(PlannerError) as err:
        uses_silicon_tables(named)
    assert err.value.field == "engine_options.kernel_tables"
    assert "no silicon kernel tables for vllm" in err.value.message


def _candidate(gpu: str, engine: str) -> Candidate:
    hw = Hardware(load_system("gpu-server"), gpu, 8, 1, None)
    return Candidate("kimi-k2.5", hw, "int4-g32", "bf16", engine, tp=8)


def test_a_sizing_workload_takes_the_silicon_tables_plan_by_plan_unless_it_asks_for_the_default():
    from planner.perf.steps import uses_silicon_tables

    auto = load_workload("profiles/workloads/kimi-k2.5-chat.yaml")
    assert auto.kernel_tables == "auto"
    for wl in (auto, replace(auto, kernel_tables="silicon")):
        assert uses_silicon_tables(_candidate("h200-sxm", "vllm").scenario(wl))
        assert not uses_silicon_tables(_candidate("mi300x", "vllm").scenario(wl))  # none imported: default
    default = replace(auto, kernel_tables="default")
    assert _candidate("h200-sxm", "vllm").scenario(default).engine.kernel_tables == "default"


def test_an_unknown_kernel_tables_choice_is_refused_by_name():
    doc = {"model": "kimi-k2.5", "traffic": {"requests_per_s": 1, "input_len": 1000, "output_len": 100},
           "kernel_tables": "measured"}
    with pytest.raises(PlannerError) as err:
        workload_from_mapping(doc, "w.yaml")
    assert err.value.field == "kernel_tables"
    assert workload_from_mapping({**doc, "kernel_tables": "silicon"}, "w.yaml").kernel_tables == "silicon"
