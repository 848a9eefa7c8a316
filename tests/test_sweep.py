"""The vectorized sweep agrees with the scalar decode model it is derived from."""

from __future__ import annotations

import numpy as np
import pytest

from planner.perf.steps import decode_step
from planner.perf.sweep import DecodeSweep
from tests.scenario_util import scenario

CASES = [
    {},
    dict(model="deepseek-v3", weights="fp8-block128", engine="sglang", hardware={"gpu": "h100-sxm", "nodes": 4},
         parallelism={"tp": 1, "dp_attention": 32, "ep": 32}),
    dict(model="llama-3.1-70b", weights="fp8", parallelism={"tp": 4}, hardware={"gpus_per_node": 4}),
    dict(model="gpt-oss-120b", weights="mxfp4", parallelism={"tp": 2}, hardware={"gpus_per_node": 2}),
    dict(model="deepseek-v3", weights="fp8-block128", hardware={"nodes": 2}, parallelism={"tp": 8, "pp": 2}),
    # SGLang decode batches above --cuda-graph-max-bs (512 per group = 64 per GPU at TP8) pay the host launch floor
    dict(model="deepseek-v3", weights="fp8-block128", engine="sglang", parallelism={"tp": 8}),
    # vLLM's fused-MoE streaming (latency + bytes at its HBM fraction, no floor) on NVIDIA's Kimi-K2.5-NVFP4
    dict(weights="nvfp4-bf16-attn", kv_cache="fp8", hardware={"gpu": "b200", "gpus_per_node": 4},
         parallelism={"tp": 4, "ep": 4}),
    # the engine's silicon tables: shape surfaces on GEMMs, INT4 MoE and MLA decode (roofline.time_op, sweep._surface)
    dict(engine_options={"kernel_tables": "silicon"}),
    dict(model="deepseek-v3", weights="fp8-block128", engine="sglang", parallelism={"tp": 8},
         engine_options={"kernel_tables": "silicon"}),
]


@pytest.mark.parametrize("over", CASES, ids=["kimi-tp8", "dsv3-ep32", "llama70b-tp4", "gptoss-tp2", "dsv3-tp8-pp2",
                                             "dsv3-sglang-tp8-eager", "kimi-nvfp4-b200-tp4-ep4",
                                             "kimi-tp8-silicon", "dsv3-sglang-tp8-silicon"])
def test_sweep_matches_scalar(over):
    sc = scenario(**over)
    sweep = DecodeSweep(sc)
    for b, c in [(1, 1000), (7, 5000), (64, 300), (65, 300), (256, 2000)]:
        step, rate = sweep.evaluate(b, c)
        assert float(step) == pytest.approx(decode_step(sc, b, c).seconds, rel=1e-9)
        assert float(rate) == pytest.approx(b / float(step))


def test_sweep_broadcasts_and_scales():
    sweep = DecodeSweep(scenario())
    step, _ = sweep.evaluate(np.array([1, 8, 64])[:, None], np.array([1024, 8192])[None, :], bw_scale=1.0)
    assert step.shape == (3, 2)
    faster, _ = sweep.evaluate(8, 8192, bw_scale=2.0)
    assert float(faster) < float(step[1, 1])
