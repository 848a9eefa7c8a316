"""`estimate --kernel-tables silicon` and a sizing workload's `kernel_tables: silicon` (or `size --kernel-tables
silicon`): scenarios on a GPU and engine with imported silicon kernel tables run on them, the others keep the default
table (issue 19 item 2 as an explicit choice; the default stays default.yaml, docs/silicon.md says why)."""

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


def test_estimate_takes_the_silicon_tables_on_request_and_says_so(capsys):
    default, silicon = _estimate(capsys), _estimate(capsys, "--kernel-tables", "silicon")
    assert any("silicon/h200-sxm-vllm.yaml" in a for a in silicon["assumptions"])
    assert not any("silicon/h200-sxm-vllm.yaml" in a for a in default["assumptions"])
    assert any("--kernel-tables silicon" in a for a in default["assumptions"])
    assert silicon["metrics"]["tpot_ms"] != default["metrics"]["tpot_ms"]


def _candidate(gpu: str, engine: str) -> Candidate:
    hw = Hardware(load_system("gpu-server"), gpu, 8, 1, None)
    return Candidate("kimi-k2.5", hw, "int4-g32", "bf16", engine, tp=8)


def test_a_sizing_workload_asks_for_the_silicon_tables_plan_by_plan():
    wl = replace(load_workload("profiles/workloads/kimi-k2.5-chat.yaml"), kernel_tables="silicon")
    assert _candidate("h200-sxm", "vllm").scenario(wl).engine.kernel_tables == "silicon"
    assert _candidate("mi300x", "vllm").scenario(wl).engine.kernel_tables == "default"  # none imported: default
    default = load_workload("profiles/workloads/kimi-k2.5-chat.yaml")
    assert default.kernel_tables == "default"
    assert _candidate("h200-sxm", "vllm").scenario(default).engine.kernel_tables == "default"


def test_an_unknown_kernel_tables_choice_is_refused_by_name():
    doc = {"model": "kimi-k2.5", "traffic": {"requests_per_s": 1, "input_len": 1000, "output_len": 100},
           "kernel_tables": "measured"}
    with pytest.raises(PlannerError) as err:
        workload_from_mapping(doc, "w.yaml")
    assert err.value.field == "kernel_tables"
    assert workload_from_mapping({**doc, "kernel_tables": "silicon"}, "w.yaml").kernel_tables == "silicon"
