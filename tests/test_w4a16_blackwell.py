"""W4A16 (Marlin-family) routed experts on Blackwell: the kernels do not use tcgen05, so B200 runs them about as fast
as H200 (aiconfigurator-core int4_wo MoE tables: 0.86-0.94x the H200 time), not 2.27x faster as a fraction of the
BF16 peak would say (profiles/calibration/b200.yaml)."""

import pytest

from planner.deploy.scenario import make_scenario
from planner.perf.steps import decode_step


def _experts_s(gpu: str, batch: float) -> float:
    sc = make_scenario("kimi-k2.5", weights="int4-g32", gpu=gpu, gpus_per_node=8, engine="vllm",
                       parallelism={"tp": 8})
    step = decode_step(sc, batch, 2048)
    return next(t.seconds for t in step.timed if t.op.name == "moe.experts")


@pytest.mark.parametrize("batch", [1, 2, 4])  # decode rows per GPU of the silicon runs (TP8, 4-64 users)
def test_b200_w4a16_experts_near_h200(batch):
    ratio = _experts_s("b200", batch) / _experts_s("h200-sxm", batch)
    assert 0.75 <= ratio <= 1.3, ratio  # the tables' 0.86-0.94 (HBM alone would give 0.6)


def test_b200_fp4_experts_keep_default_curves():
    sc = make_scenario("kimi-k2.5", weights="nvfp4", gpu="b200", gpus_per_node=4, engine="vllm",
                       parallelism={"tp": 4})
    step = decode_step(sc, 4, 2048)
    assert next(t for t in step.timed if t.op.name == "moe.experts").bound == "memory"


def test_fp4_weights_without_fp4_tensor_cores_run_weight_only_on_the_bf16_mma():
    """Hopper has no FP4 MMA: gpt-oss's MXFP4 experts run bf16 x mxfp4 (vLLM Marlin, TensorRT-LLM Triton) at the BF16
    peak with the W4A16 (int4) curve, and NVFP4 weights at the BF16 peak, never at FP8's; Blackwell runs MXFP4 on
    its FP4 fused-MoE kernels."""
    from planner.perf.roofline import _peak, mma_dtype
    from planner.perf.steps import machine, prefill_step

    def oss(gpu: str):
        return make_scenario("gpt-oss-120b", weights="mxfp4", gpu=gpu, gpus_per_node=1, engine="vllm",
                             parallelism={"tp": 1})

    h200, b200 = oss("h200-sxm"), oss("b200")
    assert mma_dtype(h200.accelerator, "mxfp4") == "bf16" and mma_dtype(b200.accelerator, "mxfp4") == "fp4"
    acc = h200.accelerator
    assert _peak(acc, "mxfp4") == _peak(acc, "fp4") == acc.peak_flops("bf16") < acc.peak_flops("fp8")
    gg = machine(h200).eff.ops["grouped_gemm"]
    assert gg.compute_for("bf16") == gg.compute_for("int4")  # the W4A16 curve
    experts = next(t for t in prefill_step(h200, 8192, 8192).timed if t.op.name == "moe.experts")
    assert experts.op.dtype == "mxfp4" and experts.bound == "compute"
    assert _peak(b200.accelerator, "mxfp4") == b200.accelerator.peak_flops("fp4")
