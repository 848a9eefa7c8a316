"""Every Hugging Face config.json in the shared reference folder (../shared/reference/hf-configs, with byte copies of
some in tests/data/hf-configs): `planner inspect` reads it, and its language-model parameter count equals transformers
5.25 on the meta device (tests.hf_reference.hf_param_count; Kimi-K3, which transformers cannot build as published, is
checked by shape in tests/test_models_2026.py). Issue 20: "inspect works and is exact for every config"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.model.inventory import params_by_part
from planner.model.spec import model_spec_from_config
from tests.hf_reference import hf_param_count
from tests.scenario_util import inspect_json

HERE = Path(__file__).resolve().parent
FOLDERS = (HERE.parents[1] / "shared" / "reference" / "hf-configs", HERE / "data" / "hf-configs")
CONFIGS = sorted({p.name: p for folder in reversed(FOLDERS) if folder.is_dir()
                  for p in folder.glob("*.json")}.items())


@pytest.mark.parametrize("path", [p for _, p in CONFIGS], ids=[n for n, _ in CONFIGS])
def test_every_reference_config_is_read_exactly(path):
    config = json.loads(path.read_text())
    spec = model_spec_from_config(config, name=path.stem, file=str(path))
    assert params_by_part(spec)["language"] == hf_param_count(config)


def test_inspect_command_reads_every_reference_config():
    """The command a user runs, on every config (one subprocess each)."""
    assert CONFIGS
    for _, path in CONFIGS:
        doc = inspect_json(path)
        assert doc, path
