"""Published checkpoints (issue 21 item 3): each model profile knows which formats someone publishes (its official
checkpoint, plus `published:` entries with their sources); sizing ranks plans on published checkpoints first, labels
the others "needs your own quantization", and engine flags name the real repository."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.model.models import load_model
from planner.sizing.flags import checkpoint
from planner.sizing.search import size
from planner.sizing.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent


def test_official_and_community_checkpoints_are_known():
    kimi = load_model("kimi-k2.5")
    assert kimi.checkpoint("int4-g32") == "moonshotai/Kimi-K2.5"  # the native format is the official checkpoint
    assert kimi.checkpoint("gguf-ud-q2_k_xl") == "unsloth/Kimi-K2.5-GGUF"
    assert kimi.checkpoint("int4-g128") is None
    assert load_model("deepseek-r1").checkpoint("gguf-ud-iq1_s") == "unsloth/DeepSeek-R1-GGUF"
    assert load_model("llama-3.1-70b").checkpoint(load_model("llama-3.1-70b").native_weights)


def test_flags_name_the_real_checkpoint_or_say_it_is_the_users_own():
    assert checkpoint("kimi-k2.5", "int4-g32") == "moonshotai/Kimi-K2.5"
    assert "your-own-quantization" in checkpoint("kimi-k2.5", "int4-g128")


def test_a_published_entry_needs_a_repo_and_a_source(tmp_path):
    text = (ROOT / "profiles/models/kimi-k2.5.yaml").read_text()
    bad = text.replace("gguf-ud-tq1_0: {repo: unsloth/Kimi-K2.5-GGUF, source:",
                       "gguf-ud-tq1_0: {repo: unsloth/x, sourc:")
    path = tmp_path / "kimi.yaml"
    path.write_text(bad)
    with pytest.raises(PlannerError, match="published.gguf-ud-tq1_0"):
        load_model(str(path))


def test_sizing_ranks_published_checkpoints_first_and_labels_the_rest():
    wl = load_workload(ROOT / "profiles/workloads/kimi-k2.5-chat.yaml")
    wl = replace(wl, weights=("int4-g32", "int4-g128"), classes=("gpu_server",), accelerators=("h200-sxm", "b200"))
    doc = size(wl)
    plans = doc["plans"]
    assert plans and plans[0]["weights"] == "int4-g32" and plans[0]["checkpoint"]["published"]
    seen_unpublished = False
    for p in plans:  # every published plan before any unpublished one
        seen_unpublished |= not p["checkpoint"]["published"]
        assert not (seen_unpublished and p["checkpoint"]["published"])
        if not p["checkpoint"]["published"]:
            assert "needs your own quantization" in p["checkpoint"]["note"] and p["checkpoint"]["repo"] is None
