"""`python -m planner list`: every kind lists its profiles with a one-line description; GPUs carry prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.base.yamlio import PROFILES, profile_names
from planner.catalog import KINDS, MAX_DESCRIPTION, catalog
from planner.cli import main


def test_every_kind_lists_every_profile_with_a_description():
    doc = catalog()
    assert set(doc["kinds"]) == set(KINDS)
    for kind, (folder, _) in KINDS.items():
        rows = doc["kinds"][kind]["profiles"]
        assert [r["name"] for r in rows] == profile_names(folder)
        for r in rows:
            assert r["description"] and "\n" not in r["description"], (kind, r["name"])
            assert len(r["description"]) <= MAX_DESCRIPTION


def test_gpus_carry_vendor_memory_and_prices():
    rows = {r["name"]: r for r in catalog("gpus")["kinds"]["gpus"]["profiles"]}
    h100 = rows["h100-sxm"]
    assert h100["vendor"] == "NVIDIA" and h100["memory_gb"] == 80
    assert h100["purchase_usd"] > 0 and h100["usd_per_gpu_hour"] > 0
    assert {r["vendor"] for r in rows.values()} >= {"NVIDIA", "AMD", "Apple"}


def test_cli_list_json_and_text(capsys):
    assert main(["list", "engines", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "vllm" in [r["name"] for r in doc["kinds"]["engines"]["profiles"]]
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("models (profiles/models/)") and "kimi-k2.5" in out


@pytest.mark.parametrize("kind", ["bogus", "../models"])
def test_unknown_kind_is_one_line_exit_2(kind, capsys):
    assert main(["list", kind]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: kind: unknown kind") and err.count("\n") == 1


def test_profiles_root_is_the_repository_one():
    assert (PROFILES / "hardware" / "h100-sxm.yaml").is_file()


def test_every_scenario_key_and_engine_option_is_documented():
    """docs/formats.md shows every top-level scenario key and every engine_options key the reader accepts."""
    from planner.deploy.engine_options import ENGINE_OPTION_KEYS
    from planner.deploy.scenario_file import TOP_KEYS

    text = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text()
    missing = [k for k in (*TOP_KEYS, *ENGINE_OPTION_KEYS) if f"{k}:" not in text]
    assert not missing, missing
