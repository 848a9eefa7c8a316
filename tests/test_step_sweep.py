"""The vectorized mixed step (planner.perf.step_sweep) agrees with the scalar steps it is derived from
(planner.perf.steps.decode_step / mixed_step), on the sweep's own cases and across the sizing catalog's GPUs, whose
plans share one set of op-record coefficients; and the sizing screen's TPOT is that step."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.perf import step_sweep
from planner.perf.step_sweep import StepSweep
from planner.perf.steps import mixed_step, prefill_step, tokens_per_step
from planner.serving.point import Limits
from planner.sizing.candidates import enumerate_candidates
from planner.sizing.capacity import screen
from planner.sizing.fitting import build
from planner.sizing.workload import workload_from_mapping
from tests.scenario_util import scenario
from tests.test_sweep import CASES

# rel 1e-4: a GEMM with fractional rows per token (lm_head on a prompt's last tokens) may round to one row off (a
# silicon table's shape surface, read at that row count, moves it a little further: PREFILL_REL)
PREFILL_REL = 2e-4
BATCH = np.array([0.125, 0.5, 1, 3, 7.5, 32, 100, 300])  # sequences per GPU
PROMPT = np.array([0, 1.7, 20, 100, 500, 2048, 4000, 9000])  # prompt tokens per GPU per step


def _scalar(sc, kv, length, cached):
    return np.array([mixed_step(sc, b, kv, p, length, cached).seconds for b, p in zip(BATCH, PROMPT, strict=True)])


EXTRA = [
    dict(engine="sglang"),  # prompt batches apart from decode (no mixed chunk): amortized every 1/f steps
    dict(model="deepseek-v3", weights="fp8-block128", speculative={"mtp_tokens": 2, "acceptance": 0.7}),  # drafts
    dict(model="qwen3.5-397b-a17b", weights="fp8", parallelism={"tp": 8}),  # Gated DeltaNet + attention layers
    dict(model="deepseek-v4-flash", weights="fp8", kv_cache="fp8", parallelism={"tp": 8}),  # windows, CSA top-k
    # attention-DP ranks in lockstep (steps.lockstep): a mixing engine's whole chunk in a share of steps, a
    # non-mixing engine's prompt batch amortized over the steps some rank runs one
    dict(model="deepseek-v3", weights="fp8-block128", parallelism={"tp": 1, "dp_attention": 8, "ep": 8}),
    dict(model="deepseek-v3", weights="fp8-block128", engine="sglang",
         parallelism={"tp": 2, "dp_attention": 4, "ep": 8}),
]


@pytest.mark.parametrize("over", CASES + EXTRA)
@pytest.mark.parametrize("cached", [0, 1024])
def test_mixed_step_matches_scalar(over, cached):
    try:
        sc = scenario(**over)
    except PlannerError as err:  # a case this checkout's profiles cannot build is a test defect, not a skip
        raise AssertionError(err.message) from err
    kv, length = 3000.0, 4096.0
    sweep = StepSweep(sc, kv, length, cached)
    assert sweep.mixed(BATCH, PROMPT) == pytest.approx(_scalar(sc, kv, length, cached), rel=1e-4)
    chunks = np.array([1.0, 64, 512, 2048, 8192])
    assert sweep.prefill(chunks) == pytest.approx([prefill_step(sc, x, length, cached).seconds for x in chunks],
                                                  rel=PREFILL_REL)


def test_catalog_plans_across_gpus_share_records_and_match():
    """Plans of the Kimi K2.5 chat search on every GPU type: the op records are built once per plan (not per GPU)
    and every GPU's steps still equal the scalar model's, MTP and both prefill styles included."""
    doc = {"name": "t", "model": "kimi-k2.5", "context_len": 32768, "kv_cache": ["bf16", "fp8"],
           "traffic": {"requests_per_s": 2.0, "input_len": 4000, "output_len": 1000},
           "slo": {"ttft_ms": 3000, "tpot_ms": 50}, "purchase": "rent", "search": {"max_nodes": 2}}
    wl = workload_from_mapping(doc, "t.yaml")
    pool = [c for c, _ in enumerate_candidates(wl, defaultdict(int)) if c.hw.gpu]
    rng = random.Random(7)
    by_plan = defaultdict(list)
    for cand in pool:
        by_plan[(cand.weights, cand.engine, cand.plan)].append(cand)
    shared = [cands for cands in by_plan.values() if len({c.hw.gpu for c in cands}) >= 4]
    assert shared
    step_sweep._RECORDS.clear()
    checked, gpus = 0, set()
    for cands in rng.sample(shared, min(6, len(shared))):
        for cand in cands[:8]:
            sc = build(cand, wl)
            w = sc.workload
            cached = w.input_len - w.new_prompt_len
            try:
                got = StepSweep(sc, w.mean_kv_len, w.input_len, cached).mixed(BATCH, PROMPT)
            except PlannerError:  # a GPU profile without the peak the speed model needs (the search rejects it)
                continue
            assert got == pytest.approx(_scalar(sc, w.mean_kv_len, w.input_len, cached), rel=1e-4), cand
            checked, gpus = checked + 1, gpus | {cand.hw.gpu}
    assert checked >= 20 and len(gpus) >= 4
    assert len(step_sweep._RECORDS) < checked  # records shared across GPUs (two families per plan)


def test_screen_tpot_is_the_mixed_step():
    sc = scenario(workload={"phase": "serve", "input_len": 4000, "output_len": 1000, "request_rate": 2.0},
                  slo={"ttft_ms": 3000, "tpot_ms": 50})
    cap, running, tpot = screen(sc, memory_report(sc), Limits.of({"ttft_ms": 3000, "tpot_ms": 50}))
    assert cap is not None and not cap.exact and len(running) == len(tpot)
    assert (np.diff(tpot) >= -1e-12).all()  # a larger running batch never steps faster
    from planner.serving.point import steady_prompt_tokens

    w, t = sc.workload, sc.parallelism.tp
    mixed = steady_prompt_tokens(sc, running)
    for k in (0, len(running) // 2, len(running) - 1):
        want = mixed_step(sc, running[k] / t, w.mean_kv_len, mixed[k], w.input_len, w.input_len - w.new_prompt_len)
        assert tpot[k] == pytest.approx(want.seconds / tokens_per_step(sc), rel=1e-4)


def test_plans_screened_together_equal_plans_screened_alone():
    """The sizing screen times a batch of plans' steps in one set of arrays (planner.perf.step_sweep.evaluate):
    each plan's capacity and curve are its own screen's, whatever else is in the batch (GPUs, engines, formats,
    plans with and without expert parallelism, both prefill styles)."""
    from planner.sizing.capacity import screen_many

    doc = {"name": "t", "model": "kimi-k2.5", "context_len": 32768, "kv_cache": ["bf16", "fp8"],
           "traffic": {"requests_per_s": 2.0, "input_len": 4000, "output_len": 1000},
           "slo": {"ttft_ms": 3000, "tpot_ms": 50}, "purchase": "rent", "search": {"max_nodes": 2}}
    wl = workload_from_mapping(doc, "t.yaml")
    pool = [c for c, _ in enumerate_candidates(wl, defaultdict(int)) if c.hw.gpu]
    plans = []
    for cand in random.Random(3).sample(pool, 40):
        sc = build(cand, wl)
        plans.append((sc, memory_report(sc)))
    limits = Limits.of(dict(wl.slo))
    together = screen_many(plans, limits)
    assert len({sc.engine.name for sc, _ in plans}) >= 2 and len({sc.gpu for sc, _ in plans}) >= 4
    for (sc, mem), got in zip(plans, together, strict=True):
        try:
            alone = screen(sc, mem, limits)
        except PlannerError as err:  # a GPU without the peak the speed model needs: the batch says the same
            assert isinstance(got, PlannerError) and got.message == err.message
            continue
        assert (got[0] is None) == (alone[0] is None)
        if alone[0] is not None:
            assert got[0].running == pytest.approx(alone[0].running, rel=1e-12)
            assert got[0].out_per_s == pytest.approx(alone[0].out_per_s, rel=1e-12)
        assert got[2] == pytest.approx(alone[2], rel=1e-12)
