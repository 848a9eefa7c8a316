"""SGLang's collector times context MLA on Hopper (FA3, kernel_source flash_attention) and SM89/SM120 (Triton) in the
absorbed form, query/key 576 and value 512 wide over one shared KV head, and on Blackwell (trtllm_mla) per head,
192 / 128 (kernels_bench/silicon_mla.py LATENT_CONTEXT_KERNELS). A row is the planner's record of what was timed,
so the fit gets the kernel's speed, which the planner then applies to its own per-head prefill record."""

from __future__ import annotations

from collections import namedtuple

import pytest

from kernels_bench.silicon_mla import LATENT_CONTEXT_KERNELS, mla_ops
from planner.deploy.scenario import make_scenario
from planner.model.models import load_model
from planner.perf.steps import on_silicon_tables, prefill_step

Row = namedtuple("Row", "kernel_source kv_cache_dtype num_heads batch_size isl tp_size step")


def _flop(kernel: str, phase: str, tp: int = 1) -> float:
    row = Row(kernel, "bfloat16", 128 // tp, 2, 4096, tp, 0 if phase == "prefill" else 4095)
    (op,) = mla_ops(row, "h200-sxm", phase)
    return op.flops


@pytest.mark.parametrize("kernel", LATENT_CONTEXT_KERNELS)
@pytest.mark.parametrize("tp", [1, 8])
def test_latent_context_rows_count_the_absorbed_product(kernel, tp):
    spec = load_model("deepseek-v3").spec
    latent = (spec.kv_lora_rank + spec.qk_rope_head_dim) + spec.kv_lora_rank  # 576 + 512
    per_head = spec.qk_head_dim + spec.v_head_dim  # 192 + 128
    assert _flop(kernel, "prefill", tp) / _flop("trtllm_mla", "prefill", tp) == pytest.approx(latent / per_head)
    assert latent / per_head == pytest.approx(3.4)


def test_decode_rows_are_the_absorbed_record_whatever_the_kernel():
    assert _flop("flash_attention", "decode") == _flop("trtllm_mla", "decode")


def test_hopper_sglang_silicon_prefill_attention_runs_near_the_default_tables_fa3_speed():
    """Read as the per-head record, the committed H200 SGLang tables timed DeepSeek's prefill attention 3.4x slower
    than the default table's FA3 figure; as the absorbed product they agree within a factor of 1.5."""
    sc = make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine="sglang",
                       parallelism={"tp": 8})
    silicon = on_silicon_tables(sc)
    assert silicon.engine.kernel_tables == "silicon"

    def attention_s(s) -> float:
        step = prefill_step(s, 8192 / 8, 8192)
        return next(t.seconds for t in step.timed if t.op.name == "attn.mla_prefill")

    ratio = attention_s(silicon) / attention_s(sc)
    assert 1 / 1.5 < ratio < 1.5, ratio
