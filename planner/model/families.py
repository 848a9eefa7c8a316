"""Config readers of the model families released since mid 2025, as field dicts for planner.model.spec.ModelSpec.

Each reads the config fields transformers 5.25's own config class reads for that model_type (the planner's
parameter counts are checked against those modules in tests/test_models_2026.py):
- DeepSeek sparse attention (`deepseek_v32`, `glm_moe_dsa`): MLA plus a lightning indexer per layer
  (index_n_heads, index_head_dim, index_topk); the MLA and MoE fields are DeepSeek-V3's.
- Gated DeltaNet hybrids (`qwen3_next`, `qwen3_5_moe` text model): `layer_types` of linear_attention and
  full_attention (or one full-attention layer every `full_attention_interval`), gated full attention with
  per-head q/k norm, Qwen2-MoE-style experts with a sigmoid-gated shared expert.
- `minimax_m2`: GQA with q/k RMSNorm over all heads at once, 256 routed experts and no shared expert, sigmoid
  routing with a score-correction bias.
- `gpt_oss` (sliding/full attention with sinks, MXFP4 experts) and `glm4_moe` (GLM-4.5), moved here from
  planner.model.spec to keep that module under the 400-line limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

DSA_TYPES = ("deepseek_v32", "glm_moe_dsa")
# the family a person knows a model by, from the leading name of its config's model_type (a wrapper's text model:
# kimi_k25 -> kimi_k2, qwen3_5_moe -> qwen3_5_moe_text), in the order pickers list them; none of these: "Other"
FAMILY_NAMES = (("deepseek", "DeepSeek"), ("kimi", "Kimi"), ("qwen", "Qwen"), ("glm", "GLM"), ("minimax", "MiniMax"),
                ("llama", "Llama"), ("gemma", "Gemma"), ("nemotron", "Nemotron"), ("mimo", "MiMo"), ("step", "Step"),
                ("gpt_oss", "gpt-oss"), ("mixtral", "Mixtral"), ("mistral", "Mistral"))
OTHER_FAMILY = "Other"
# model types seen in published configs that the planner refuses rather than approximates, with why (issue 20)
NOT_MODELLED: dict[str, str] = {}
_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def family_name(model_type: str) -> str:
    """'Kimi' for kimi_k2 and kimi_linear, 'Qwen' for qwen3_next, 'gpt-oss' for gpt_oss (FAMILY_NAMES)."""
    return next((name for prefix, name in FAMILY_NAMES if model_type.startswith(prefix)), OTHER_FAMILY)


def dsa(f: Fields) -> dict[str, Any]:
    """Lightning-indexer shape (transformers DeepseekV32Config / GlmMoeDsaConfig: index_n_heads, index_head_dim,
    index_topk)."""
    return dict(index_n_heads=f.int("index_n_heads"), index_head_dim=f.int("index_head_dim"),
                index_topk=f.int("index_topk"))


def hybrid_layer_types(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[str, ...]:
    """`layer_types` as given, else one full-attention layer every `full_attention_interval` (default 4: layers
    3, 7, 11, ... as transformers Qwen3NextConfig builds them), the rest linear attention."""
    types = cfg.get("layer_types")
    if types is None:
        every = f.int("full_attention_interval", 4)
        return tuple("full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(layers))
    if not isinstance(types, list) or len(types) != layers \
            or any(t not in ("linear_attention", "full_attention") for t in types):
        raise PlannerError(f"expected {layers} entries of linear_attention/full_attention",
                           file=file, field=f"{prefix}layer_types")
    return tuple(types)


def qwen_next(f: Fields, cfg: Mapping[str, Any], layers: int, model_type: str, file: str,
              prefix: str) -> dict[str, Any]:
    """Qwen3-Next / Qwen3.5 MoE text model (after the Qwen2-MoE expert fields): Gated DeltaNet layers and gated
    full attention. The recurrent state is kept in `mamba_ssm_dtype` where the config names one (Qwen3.5:
    float32), else in the model dtype (vLLM MambaStateDtypeCalculator.gated_delta_net_state_dtype: "auto" = the
    conv-state dtype = the model dtype)."""
    raw = cfg.get("mamba_ssm_dtype")
    if raw is not None and raw not in _STATE_DTYPES:
        raise PlannerError(f"expected one of {', '.join(_STATE_DTYPES)}, got {raw!r}"[:120], file=file,
                           field=f"{prefix}mamba_ssm_dtype")
    return dict(
        architecture="qwen3_next", qkv_bias=f.bool("attention_bias", False), o_bias=False, qk_norm=True,
        attn_output_gate=f.bool("attn_output_gate", True),
        layer_types=hybrid_layer_types(f, cfg, layers, file, prefix),
        linear_num_key_heads=f.int("linear_num_key_heads"), linear_num_value_heads=f.int("linear_num_value_heads"),
        linear_key_head_dim=f.int("linear_key_head_dim"), linear_value_head_dim=f.int("linear_value_head_dim"),
        linear_conv_kernel=f.int("linear_conv_kernel_dim"),
        linear_state_dtype=_STATE_DTYPES.get(raw, "") if raw else "",
    )


def minimax_m2(f: Fields, layers: int) -> dict[str, Any]:
    """MiniMax-M2: every layer MoE (num_local_experts x intermediate_size), no shared expert, q_norm/k_norm of
    width heads x head_dim and kv_heads x head_dim (transformers MiniMaxM2Attention), e_score_correction_bias.
    Its MTP modules (num_mtp_modules) are not counted: transformers does not build them (params.mtp 0)."""
    return dict(
        qkv_bias=False, qk_norm=f.bool("use_qk_norm", True), qk_norm_full=True,
        moe_layers=(True,) * layers, n_routed_experts=f.int("num_local_experts"),
        experts_per_token=f.int("num_experts_per_tok"), moe_intermediate_size=f.int("intermediate_size"),
        router_score_bias=f.bool("use_routing_bias", True),
    )


def gpt_oss(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """gpt-oss: alternating sliding/full attention with sinks, biased router and experts (MXFP4 in the checkpoint)."""
    types = cfg.get("layer_types") or ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers \
            or any(t not in ("sliding_attention", "full_attention") for t in types):
        raise PlannerError(f"expected {layers} entries of sliding_attention/full_attention",
                           file=file, field=f"{prefix}layer_types")
    return dict(
        qkv_bias=f.bool("attention_bias", True), o_bias=f.bool("attention_bias", True), attention_sinks=True,
        layer_types=tuple(types),
        sliding_window=f.int("sliding_window"), moe_layers=(True,) * layers,
        n_routed_experts=f.int("num_local_experts"), experts_per_token=f.int("num_experts_per_tok"),
        moe_intermediate_size=f.int("intermediate_size"), router_linear_bias=True, expert_bias=True,
        gate_up_fused=True,
    )


def glm4_moe(f: Fields, layers: int) -> dict[str, Any]:
    """GLM-4.5: GQA with q/k/v bias and optional qk-norm, DeepSeek-V3-style MoE after first_k_dense_replace."""
    experts = f.int("n_routed_experts")
    first_dense = f.int("first_k_dense_replace", 0, minimum=0)
    shared = f.int("n_shared_experts", 0, minimum=0)
    moe_inter = f.int("moe_intermediate_size")
    return dict(
        qk_norm=f.bool("use_qk_norm", False), moe_layers=tuple(i >= first_dense for i in range(layers)),
        n_routed_experts=experts, experts_per_token=f.int("num_experts_per_tok"), moe_intermediate_size=moe_inter,
        n_shared_experts=shared, shared_intermediate_size=shared * moe_inter, router_score_bias=True,
        mtp_layers=f.int("num_nextn_predict_layers", 0, minimum=0),
    )
