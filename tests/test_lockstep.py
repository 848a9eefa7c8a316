"""Attention-DP ranks step in lockstep (planner.perf.step_mix.lockstep, planner.perf.steps.mixed_step): the closed-form
mixed step of an attention-DP deployment agrees with the serving simulator, which steps the ranks together."""

import numpy as np
import pytest

from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.perf.step_mix import blend, lockstep
from planner.perf.steps import decode_step, mixed_step, prefill_step, tokens_per_step
from planner.serving.client import Client, Lengths
from planner.serving.point import OperatingPoint
from planner.serving.sim import simulate


def test_lockstep_share_relations():
    for f in (0.0, 0.01, 0.2, 0.7, 1.0):
        assert lockstep(f, 1) == f
        shares = [lockstep(f, d) for d in (1, 2, 4, 8, 16)]
        assert all(f - 1e-12 <= s <= 1.0 for s in shares)
        assert all(b >= a - 1e-12 for a, b in zip(shares, shares[1:], strict=False))
    assert lockstep(0.01, 8) == pytest.approx(1 - 0.99 ** 8)


def _sc(engine, par, rate):
    return make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine=engine,
                         parallelism=par, workload={"phase": "serve", "request_rate": rate, "input_len": 2000,
                                                    "output_len": 500})


@pytest.mark.parametrize("engine, par", [("vllm", {"tp": 1, "dp_attention": 8, "ep": 8}),
                                         ("sglang", {"tp": 2, "dp_attention": 4, "ep": 8})])
def test_closed_form_tracks_the_simulator_on_attention_dp(engine, par):
    """At the simulated run's mean running batch, the closed form's TPOT is within 20% of the simulated mean; the
    per-rank amortization alone (each rank's prompts spread over its own steps, as without lockstep) is more than
    20% below it: a prompt on one rank holds every rank's step."""
    rate, n = 4.0, 1200
    sc = _sc(engine, par, rate)
    res = simulate(sc, memory_report(sc), Client(n, Lengths(2000), Lengths(500), rate=rate))
    sim_tpot = res.metrics()["tpot_ms"] / 1e3
    d = sc.parallelism.dp_attention
    op = OperatingPoint(sc, res.summary()["mean_running"] / d)
    tps = tokens_per_step(sc)
    closed = op.mixed_step().seconds / tps
    assert closed == pytest.approx(sim_tpot, rel=0.2)
    # the same step with each rank's prompt work spread over its own steps only (share f, not lockstep(f, d))
    b, p, t = op.batch_per_gpu, op.prompt_tokens_per_gpu, sc.parallelism.tp
    alone = decode_step(sc, b, op.kv_len)
    if sc.engine.mixed_chunk:
        chunk = min(2000.0, sc.engine.max_batched_tokens - b * t * tps) / t
        per_rank = blend(alone, mixed_step(sc, b, op.kv_len, chunk, 2000.0), p / chunk).seconds
    else:
        f = min(1.0, p * t / 2000.0)
        per_rank = alone.seconds + f * prefill_step(sc, p / f, 2000.0).seconds
    assert per_rank / tps < 0.8 * sim_tpot
    assert closed > per_rank / tps


def test_one_rank_is_unchanged():
    """Without attention DP the mixed step is the merged (or amortized) step as before: no lockstep share."""
    for engine in ("vllm", "sglang"):
        sc = _sc(engine, {"tp": 8}, 4.0)
        b, kv, p = 4.0, 2500.0, 30.0
        got = mixed_step(sc, b, kv, p, 2000.0).seconds
        if sc.engine.mixed_chunk:
            assert got > decode_step(sc, b, kv).seconds
        else:
            f = p * 8 / 2000.0
            want = decode_step(sc, b, kv).seconds + f * prefill_step(sc, p / f, 2000.0).seconds
            assert got == pytest.approx(want, rel=1e-12)
    assert np.isfinite(got)
