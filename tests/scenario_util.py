"""Build scenarios in tests from small dicts (defaults: Kimi K2.5 INT4 on 8x H200, TP8, vLLM); run `planner inspect`
as a user does."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from planner.deploy.scenario_file import scenario_from_mapping

BASE = {
    "model": "kimi-k2.5", "weights": "int4-g32", "kv_cache": "bf16",
    "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8, "nodes": 1},
    "parallelism": {"tp": 8}, "engine": "vllm",
    "workload": {"phase": "decode", "input_len": 4096, "output_len": 1024},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def scenario(**over):
    return scenario_from_mapping(merge(BASE, over), "test.yaml")


def sglang_dsv3(**over):
    """SGLang DeepSeek-V3 as launched with its defaults (a stated concurrency: scenario.tuned_for_chosen_batch)"""
    return scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                    **{"workload": {"concurrency": 64}, **over})


def inspect_json(path) -> dict:
    """`python -m planner inspect PATH --json` in a subprocess, as a user runs it: its document (exit 0 asserted)."""
    out = subprocess.run([sys.executable, "-m", "planner", "inspect", str(path), "--json"],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
