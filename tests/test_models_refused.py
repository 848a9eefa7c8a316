"""Model types the planner refuses rather than approximates (issue 20): one error line that says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT.parent / "shared" / "reference" / "hf-configs"


@pytest.mark.parametrize("name", ["deepseek-ai__DeepSeek-V4-Flash.json", "deepseek-ai__DeepSeek-V4-Pro.json"])
def test_deepseek_v4_is_refused_with_the_reason(name):
    path = CONFIGS / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    assert json.loads(path.read_text())["model_type"] == "deepseek_v4"
    out = subprocess.run([sys.executable, "-m", "planner", "inspect", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert "unsupported model_type 'deepseek_v4' (DeepSeek-V4's compressed" in out.stderr
