"""What an engine's implementation of one model architecture refuses beyond its profile's weight formats and KV
dtypes. `make_scenario` raises it as a one-line error naming the field (estimate, reports, the dashboard); the
sizing search's static check rejects such plans with the same line (planner.sizing.candidates.static_reason).

DeepSeek-V4 (`deepseek_v4`, Flash and Pro):
- vLLM and SGLang cache it in FP8 only. vLLM's DeepseekV4MLAAttention asserts `kv_cache_dtype.startswith("fp8")`
  ("DeepseekV4 only supports fp8 kv-cache format for now") and turns any fp8 dtype into fp8_ds_mla
  (vllm-project/vllm@0a291a2e vllm/model_executor/layers/deepseek_v4_attention.py). SGLang's V4 pool asserts the
  584-byte FP8 entry (DeepSeekV4SingleKVPool.create_buffer, sgl-project/sglang@007bddd4
  python/sglang/srt/mem_cache/deepseek_v4_memory_pool.py), and its `_deepseek_v4_kv_cache_dtype` pass
  (python/sglang/srt/arg_groups/overrides.py) turns "auto" into fp8_e4m3, bfloat16 only on NPU, whose pool differs.
  So kv_cache fp8 or fp8_ds_mla (planner.model.kv: 584 B per entry either way); bf16 / fp16 are refused.
- vLLM splits the grouped output projection over TP ranks by whole groups: DeepseekV4Attention sets
  n_local_groups = o_groups // tp_size and runs wo_a as a batched GEMM of n_local_groups groups per rank
  (vllm-project/vllm@023da1fc vllm/model_executor/models/deepseek_v4.py). So tp must divide o_groups: Flash 8,
  Pro 16 (tp 16 on Flash would leave each rank no group). SGLang is not checked here (not read).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.model.models import Model

FP8_KV = ("fp8", "fp8_ds_mla")  # the KV dtypes that give DeepSeek-V4's FP8 entry (planner.model.kv)
FP8_ONLY = ("vllm", "sglang")  # engines that run DeepSeek-V4 with an FP8 KV cache only
WHOLE_O_GROUPS = ("vllm",)  # engines whose TP must divide DeepSeek-V4's o_groups


@dataclass(frozen=True)
class Refusal:
    field: str  # the scenario field it names: kv_cache or parallelism.tp
    reason: str  # one line


def engine_refusal(engine: str, model: Model, kv_cache: str, tp: int) -> Refusal | None:
    """Why `engine` (a profile name) cannot run `model` with this KV dtype at this TP degree, or None."""
    v4 = model.spec.deepseek_v4
    if v4 is None:
        return None
    if engine in FP8_ONLY and kv_cache not in FP8_KV:
        return Refusal("kv_cache", f"{engine} runs {model.name} (DeepSeek-V4) with an fp8 KV cache only "
                                   f"(kv_cache fp8 or fp8_ds_mla), not {kv_cache}")
    if engine in WHOLE_O_GROUPS and v4.o_groups % tp:
        return Refusal("parallelism.tp", f"{engine} runs {model.name} (DeepSeek-V4) at a tp that divides its "
                                         f"{v4.o_groups} output-projection groups, not tp {tp}")
    return None


def kv_dtypes_for(engine: str, model: Model, offered: tuple[str, ...]) -> tuple[str, ...]:
    """The KV dtypes among `offered` that `engine` runs `model` with (all of them for most models)."""
    return tuple(d for d in offered if engine_refusal(engine, model, d, 1) is None)
