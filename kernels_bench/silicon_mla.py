"""Aiconfigurator-core's MLA rows (generation_mla_perf, context_mla_perf) as the planner's own op records: the
attn.mla_decode / attn.mla_prefill record of planner.perf.steps.decode_ops / prefill_ops for a model of that MLA
layout at the row's TP, in the form the row's kernel computed (LATENT_CONTEXT_KERNELS). Read by
kernels_bench/silicon_tables.py load_rows."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from planner.deploy.scenario import make_scenario
from planner.model.models import load_model
from planner.perf.steps import decode_ops, prefill_ops

MLA_MODELS = {128: "deepseek-v3", 64: "kimi-k2.5"}  # total attention heads -> a profile with that MLA layout
# context-MLA rows timed in the absorbed (latent) form, not the per-head form the engines' prefill runs: SGLang's
# collector gives its non-Blackwell backends (FA3 on Hopper, kernel_source flash_attention; Triton on SM89/SM120)
# query/key heads of kv_lora_rank + rope = 576 and value heads of kv_lora_rank = 512 over one shared KV head in the
# context phase too, and the per-head 192 / 128 (q_nope + rope, v) only on Blackwell's trtllm_mla (ai-dynamo/
# aiconfigurator collector/sglang/collect_mla.py run_mla since cc24d1377, 2026-01-13, "correct v_head_dim and
# head_dim_total when not collecting data for blackwell"; every 0.5.9 and 0.5.14 table is newer). Such a row's
# product is (576 + 512) / (192 + 128) = 3.4 times the per-head one: read as the per-head record, the Hopper tables
# looked 3.4x slower than FA3 (175 TFLOPS). Their rows are the planner's attn.mla_prefill record of those widths.
LATENT_CONTEXT_KERNELS = ("flash_attention", "triton")


@lru_cache(maxsize=64)
def _mla_scenario(gpu: str, model: str, tp: int, kv: str, latent: bool = False):
    """`latent`: the model's MLA heads as the absorbed form (query/key width kv_lora_rank + rope, value width
    kv_lora_rank, LATENT_CONTEXT_KERNELS), so that its attn.mla_prefill record counts the product that was timed."""
    spec = load_model(model).spec
    if latent:
        spec = replace(spec, qk_nope_head_dim=spec.kv_lora_rank, v_head_dim=spec.kv_lora_rank)
    return make_scenario(replace(load_model(model), spec=spec), weights="bf16", kv_cache=kv, gpu=gpu,
                         gpus_per_node=min(tp, 8), nodes=max(1, tp // 8), parallelism={"tp": tp}, engine="ideal",
                         name="silicon-mla", file="kernels_bench import-silicon")


def mla_ops(row, gpu: str, phase: str) -> list:
    model = MLA_MODELS[row.num_heads * row.tp_size]
    latent = phase == "prefill" and getattr(row, "kernel_source", "") in LATENT_CONTEXT_KERNELS
    sc = _mla_scenario(gpu, model, row.tp_size, "fp8" if row.kv_cache_dtype == "fp8" else "bf16", latent)
    per_gpu = row.batch_size / row.tp_size  # the TP group's sequences, counted per GPU as the planner does
    if phase == "decode":
        ops = decode_ops(sc, per_gpu, row.step + 1)
        name = "attn.mla_decode"
    else:
        ops = prefill_ops(sc, per_gpu * row.isl, row.isl)
        name = "attn.mla_prefill"
    return [replace(op, count=1) for op in ops if op.name == name]
