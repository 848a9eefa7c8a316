"""The sizing search's time budget (issue 23): a search stopped by it answers with what it found and lists, per
model and hardware, the candidate plans it did not reach; every spelling of one config path is one model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from planner.sizing.candidates import distinct_models
from planner.sizing.search import size
from planner.sizing.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent
CHAT = ROOT / "profiles/workloads/kimi-k2.5-chat.yaml"


def _small():
    return replace(load_workload(CHAT), classes=("apple", "workstation"))


def test_a_spent_budget_gives_a_partial_answer_that_lists_what_was_left_out():
    doc = size(_small(), budget_s=0.0)
    s = doc["summary"]
    assert s["partial"] and doc["plans"] == [] and s["fit_memory"] == 0
    left = {line.split(": ")[0]: int(re.search(r": ([\d,]+) candidate", line)[1].replace(",", ""))
            for line in s["not_searched"]}
    assert sum(left.values()) == s["passed_static_checks"]  # every candidate past the static checks is accounted for
    assert all(where.startswith("kimi-k2.5 on ") for where in left)


def test_without_a_budget_the_search_is_whole_and_says_so():
    doc = size(_small())
    assert not doc["summary"]["partial"] and doc["summary"]["not_searched"] == [] and doc["summary"]["fit_memory"]


def test_cli_time_budget_zero_means_no_limit_and_a_negative_one_is_refused():
    cmd = [sys.executable, "-m", "planner", "size", str(CHAT)]
    bad = subprocess.run(cmd + ["--time-budget", "-3"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --time-budget:") and "Traceback" not in bad.stderr
    quick = subprocess.run(cmd + ["--time-budget", "0.01", "--json"], capture_output=True, text=True, cwd=ROOT)
    doc = json.loads(quick.stdout)
    assert quick.returncode == 0 and doc["summary"]["partial"] and doc["summary"]["not_searched"]


def test_spellings_of_one_config_path_are_one_model(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    spellings = [str(folder), str(folder / "config.json"), f"{tmp_path}/./m/../m", *[f"{folder}/" + "./" * k for k in
                                                                                   range(1, 200)]]
    assert distinct_models(tuple(["kimi-k2.5", *spellings, "kimi-k2.5", "deepseek-v3"])) == [
        "kimi-k2.5", str(folder), "deepseek-v3"]
