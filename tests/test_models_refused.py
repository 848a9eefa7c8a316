"""Model types the planner refuses rather than approximates (issue 20): one error line that says why. DeepSeek-V4,
the first such type, is modelled since (tests/test_models_deepseek_v4.py); the mechanism stays for the next one."""

from __future__ import annotations

import pytest

import planner.model.spec as spec_module
from planner.base.errors import PlannerError
from planner.model.families import NOT_MODELLED
from planner.model.spec import SUPPORTED_MODEL_TYPES, model_spec_from_config


def test_a_refused_type_names_its_reason(monkeypatch):
    monkeypatch.setattr(spec_module, "NOT_MODELLED", {"future_moe": "its routing is not modelled yet"})
    with pytest.raises(PlannerError, match=r"unsupported model_type 'future_moe' \(its routing is not modelled yet\)"):
        model_spec_from_config({"model_type": "future_moe"}, name="f", file="f.json")


def test_no_refused_type_is_also_supported():
    assert not set(NOT_MODELLED) & set(SUPPORTED_MODEL_TYPES)
    assert "deepseek_v4" in SUPPORTED_MODEL_TYPES and "deepseek_v4" not in NOT_MODELLED
