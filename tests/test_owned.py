"""`purchase: owned` answers what fits (issue 21): 8x H100 cannot hold Kimi K2.5 with a 131,072-token request, so
`size` names the largest context that fits, the formats at the requested and at that context, why each misses the
requested one, and the best plan sized at the largest context."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from planner.deploy.memory import memory_report
from planner.sizing.candidates import enumerate_candidates
from planner.sizing.fits import STEP, largest_context, plan_fits
from planner.sizing.fitting import build
from planner.sizing.search import size
from planner.sizing.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent
OWNED = ROOT / "tests" / "data" / "owned-8xh100-kimi.yaml"


@pytest.fixture(scope="module")
def doc():
    return size(load_workload(OWNED))


def test_owned_8xh100_names_largest_context_and_a_plan(doc):
    assert doc["plans"] == []  # nothing holds 131,072 tokens on 8x 80 GB
    fit = doc["fits"]
    assert fit["requested_context"] == 131072
    assert fit["request_tokens"] <= fit["largest_context"] < 131072
    assert fit["largest_context"] % STEP == 0
    assert fit["formats_at_requested"] == []
    assert fit["formats_at_largest"]
    plan = fit["plan"]
    assert plan is not None
    assert plan["hardware"]["gpu"] == "h100-sxm" and plan["hardware"]["gpus_per_replica"] <= 8
    assert plan["weights"] in fit["formats_at_largest"]
    assert plan["cost"]["capex_usd"] == 0 and plan["cost"]["usd_per_hour"] > 0  # owned: energy only
    assert f"--max-model-len {fit['largest_context']}" in plan["flags"]["vllm"]
    # every format that misses the requested context says why, with the memory model's reason
    for f in fit["by_format"]:
        assert f["largest_context"] < 131072 and f["why_not_requested"]
        assert f["largest_context"] <= fit["largest_context"]


def test_largest_context_is_the_memory_boundary(doc):
    """The plan that reaches the largest context fits there and not STEP tokens further (memory model)."""
    wl = load_workload(OWNED)
    fit = doc["fits"]
    best = next(f for f in fit["by_format"] if f["largest_context"] == fit["largest_context"])
    fits, _ = plan_fits(enumerate_candidates(wl, Counter()), wl)
    pf = next(f for f in fits if f.cand.weights == best["weights"] and f.largest_context == fit["largest_context"])
    top = pf.largest_context
    assert memory_report(build(pf.cand, replace(wl, context_len=top))).fits
    assert not memory_report(build(pf.cand, replace(wl, context_len=top + STEP))).fits
    assert largest_context(pf.cand, wl).largest_context == top


def test_owned_fits_in_the_readable_answer():
    out = subprocess.run([sys.executable, "-m", "planner", "size", str(OWNED), "--time-budget", "0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "What fits on this hardware" in out.stdout
    assert "largest context:" in out.stdout and "best plan at" in out.stdout


def test_owned_with_a_plan_has_no_fits_block():
    """A plan on a published checkpoint (int4-g32 on 8x H200) answers the question: no fits block. On 8x H100 at
    16,384 tokens only the group-64/128 INT4 recipes nobody publishes fit, so the block says what the published
    checkpoint fits there."""
    doc = size(replace(load_workload(OWNED), context_len=16384, accelerators=("h200-sxm",)))
    assert any(p["checkpoint"]["published"] for p in doc["plans"]) and "fits" not in doc
    doc = size(replace(load_workload(OWNED), context_len=16384))
    assert doc["plans"] and doc["fits"]["published_only"] and doc["fits"]["formats_searched"] == ["int4-g32"]


def test_owned_with_plans_only_on_own_quantizations_says_what_published_checkpoints_fit():
    """Every format accepted: per-channel INT4 (no published Kimi K2.5 checkpoint) holds 131,072 tokens on 8x H100, so
    plans exist, all marked as needing your own quantization; the answer then says what the published checkpoints
    fit on this hardware (here nothing: int4-g32's 77.1 GB per GPU is over vLLM's 0.9 x 85.5 GB)."""
    wl = replace(load_workload(OWNED), weights=None)
    doc = size(wl)
    assert doc["plans"] and not any(p["checkpoint"]["published"] for p in doc["plans"])
    fit = doc["fits"]
    assert fit["published_only"] and "int4-g32" in fit["formats_searched"]
    assert all(f["published"] for f in fit["by_format"])
    assert fit["formats_at_requested"] == []

