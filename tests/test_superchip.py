"""Superchips (GH200, GB200, GB300): the Grace CPU's LPDDR5X is a memory tier used only when HBM is short.

LMSYS's GB200 prefill instances (lm-sys blog 2025-09-25: DeepSeek V3/R1, FP8 MoE, 4 ranks per prefill instance)
"offload weights to the host memory with prefetching" over NVLink-C2C; the planner answered "does not fit".
"""

import pytest

from planner.deploy.memory import grace_tier, memory_report
from planner.deploy.scenario import make_scenario
from planner.hardware.accelerators import load_accelerator
from planner.serving.estimate import estimate


def _prefill(gpu: str, n: int, model: str = "deepseek-v3", weights: str = "fp8-block128", **kw):
    return make_scenario(model, weights=weights, gpu=gpu, gpus_per_node=n, engine="sglang",
                         parallelism={"tp": 1, "dp_attention": n, "ep": n},
                         workload={"phase": "prefill", "batch_per_gpu": 16384, "input_len": 2000}, **kw)


def test_superchip_profiles_carry_their_grace_memory():
    gb200, gh200, h200 = (load_accelerator(n) for n in ("gb200", "gh200", "h200-sxm"))
    assert gb200.grace_memory_bytes_per_gpu == 240e9  # 480 GB per Grace, 2 GPUs
    assert gb200.grace_stream_bytes_per_s == 256e9  # LPDDR5X 512 GB/s per Grace is below C2C's 450 per GPU
    assert gh200.grace_memory_bytes_per_gpu == 480e9 and gh200.grace_stream_bytes_per_s == 450e9
    assert h200.grace_memory_bytes_per_gpu is None and h200.grace_stream_bytes_per_s is None


def test_gb200_prefill_with_grace_resident_experts_evaluates():
    sc = _prefill("gb200", 4)
    assert not memory_report(sc).fits  # HBM alone is short: 4 ranks x 186 GB for 690 GB of FP8 weights + KV
    out = estimate(sc)
    assert out["fits"], out["reason"]
    assert out["metrics"]["prefill_tokens_per_s_per_gpu"] > 0
    assert any(a.startswith("Grace memory tier") for a in out["assumptions"])


def test_grace_tier_only_when_hbm_is_short():
    roomy, _ = grace_tier(_prefill("gb200", 8))  # 8 ranks: HBM holds everything
    assert roomy.expert_layers_on_cpu == 0
    short, notes = grace_tier(_prefill("gb200", 4))
    tight, _ = grace_tier(_prefill("gb200", 2))  # fewer GPUs: more layers move to Grace
    assert 0 < short.expert_layers_on_cpu < tight.expert_layers_on_cpu < short.model.spec.num_moe_layers
    assert not short.cpu_compute and notes
    assert memory_report(short).fits
    one_less = make_scenario(short.model, weights=short.weights, gpu="gb200", gpus_per_node=4, engine="sglang",
                             parallelism={"tp": 1, "dp_attention": 4, "ep": 4},
                             expert_layers_on_cpu=short.expert_layers_on_cpu - 1,
                             workload={"phase": "prefill", "batch_per_gpu": 16384, "input_len": 2000})
    assert not memory_report(one_less).fits  # the fewest layers that fit


def test_hbm_only_gpus_are_unaffected():
    sc = _prefill("h200-sxm", 4)
    same, notes = grace_tier(sc)
    assert same is sc and notes == [] and not estimate(sc)["fits"]


def test_stated_offload_on_a_superchip_streams_over_c2c():
    sc = _prefill("gb200", 4, expert_layers_on_cpu=10)  # no host profile: the Grace tier
    assert sc.host is None and not sc.cpu_compute
    ops = estimate(sc)
    assert ops["fits"] and any("as the scenario states" in a for a in ops["assumptions"])
    with pytest.raises(Exception, match="host profile"):
        _prefill("h200-sxm", 4, expert_layers_on_cpu=10)


def test_grace_capacity_is_checked():
    sc = _prefill("gb200", 1, model="kimi-k2.5", weights="bf16")  # 2 TB of weights on one GPU
    assert not estimate(sc)["fits"]
