"""Config reader of NVIDIA's Nemotron-H hybrids (`nemotron_h`: Nemotron-H, Nemotron-3 Nano/Super/Ultra), as a field
dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/nemotron_h, NemotronHConfig / NemotronHForCausalLM; the planner's count is
checked against it in tests/test_models_nemotron.py):
- a stack of single-sublayer blocks, one per character of `hybrid_override_pattern` (or one per entry of
  `layers_block_type` / `layer_types`): M = Mamba-2 mixer, * = GQA attention, - = MLP, E = MoE. Each block is
  RMSNorm -> mixer -> residual; a block has a token mixer OR a feed-forward, never both. The number of blocks is
  the pattern's length: transformers ignores num_hidden_layers where the pattern is given (Nemotron-3 Ultra's config
  has no num_hidden_layers), and so does the planner (`block_count`).
- Mamba-2 (NemotronHMamba2Mixer): in_proj [h -> 2 H p + 2 G n + H] (z, then x/B/C through a depthwise conv1d of
  conv_dim = H p + 2 G n channels with bias where use_conv_bias, then dt per head), dt_bias, A_log and D per head,
  a grouped RMSNorm of width H p and out_proj [H p -> h]; H = mamba_num_heads, p = mamba_head_dim,
  G = n_groups, n = ssm_state_size. in/out_proj carry a bias where use_bias.
- attention: q/k/v/o without bias, head_dim default 128 (NemotronHConfig), no q/k norm.
- MLP and experts are NOT gated (relu2: up_proj and down_proj only). MoE (NemotronHMoE): router [E, h] (float32)
  with e_score_correction_bias, routed experts of moe_intermediate_size, one shared expert of
  moe_shared_expert_intermediate_size (built whatever n_shared_experts says), and where moe_latent_size is set the
  routed experts run at that width between fc1_latent_proj [h -> L] and fc2_latent_proj [L -> h].

The planner maps the Mamba-2 state onto its linear-attention fields (the state shapes are the same algebra as Gated
DeltaNet's): linear_num_value_heads = H, linear_value_head_dim = p, linear_key_head_dim = n, linear_num_key_heads = G,
so conv_dim = 2 G n + H p and the recurrent state is H x p x n (vLLM mamba_utils.py
MambaStateShapeCalculator.mamba2_state_shape: conv (kernel - 1) x conv_dim, temporal (H, p, n)).
The recurrent (SSM) state is kept in `mamba_ssm_cache_dtype` (default float32: vLLM
NemotronHForCausalLMConfig.update_mamba_ssm_cache_dtype reads it from the HF config), the conv state in the model
dtype (MambaStateDtypeCalculator.mamba2_state_dtype, mamba_cache_dtype auto).

Not counted: the MTP block(s) of num_nextn_predict_layers (transformers ignores `mtp.*` tensors on load and builds
none, so params.mtp is 0; the Super checkpoint stores one "*E" MTP block beside the 88 counted here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.base.limits import MAX_LAYERS
from planner.model.config_fields import Fields

# block character -> (layer type of the mixer, FFN): transformers NemotronHConfig._pattern_to_list
BLOCKS = {"M": ("linear_attention", "none"), "*": ("full_attention", "none"), "-": ("none", "dense"),
          "E": ("none", "moe")}
_LIST_NAMES = {"mamba": "M", "linear_attention": "M", "attention": "*", "full_attention": "*", "mlp": "-",
               "moe": "E"}
_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def block_count(cfg: Mapping[str, Any], file: str, prefix: str) -> int:
    """Blocks of the stack: the pattern's length (num_hidden_layers only where no pattern is given)."""
    if all(cfg.get(k) is None for k in ("layers_block_type", "layer_types", "hybrid_override_pattern")):
        return Fields(cfg, file, prefix).int("num_hidden_layers")
    blocks = len(_pattern(cfg, file, prefix))
    if blocks > MAX_LAYERS:  # as num_hidden_layers is limited (planner.base.limits)
        raise PlannerError(f"{blocks:,} blocks is over the planner's limit of {MAX_LAYERS:,}", file=file,
                           field=f"{prefix}hybrid_override_pattern")
    return blocks


def _pattern(cfg: Mapping[str, Any], file: str, prefix: str) -> str:
    """One character per block from hybrid_override_pattern, or from a layers_block_type / layer_types list."""
    for key in ("layers_block_type", "layer_types"):
        given = cfg.get(key)
        if given is not None:
            if not isinstance(given, list) or any(t not in _LIST_NAMES for t in given):
                raise PlannerError(f"expected a list of {'/'.join(_LIST_NAMES)}", file=file, field=f"{prefix}{key}")
            return "".join(_LIST_NAMES[t] for t in given)
    pattern = cfg.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or not pattern or any(c not in BLOCKS for c in pattern):
        raise PlannerError("expected a string of M (Mamba-2), * (attention), - (MLP), E (MoE)", file=file,
                           field=f"{prefix}hybrid_override_pattern")
    return pattern


def nemotron_h(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """Nemotron-H / Nemotron-3 (module docstring)."""
    pattern = _pattern(cfg, file, prefix)
    raw = cfg.get("mamba_ssm_cache_dtype", "float32")
    if raw not in _STATE_DTYPES:
        raise PlannerError(f"expected one of {', '.join(_STATE_DTYPES)}, got {raw!r}"[:120], file=file,
                           field=f"{prefix}mamba_ssm_cache_dtype")
    moe = "E" in pattern
    experts = f.int("n_routed_experts", 8) if moe else 0
    # transformers reads the deprecated mamba_* names where the config has them (NemotronHConfig.__post_init__)
    groups = f.int("mamba_n_groups", None) or f.int("n_groups", 8)
    kernel = f.int("mamba_d_conv", None) or f.int("conv_kernel", 4)
    conv_bias = f.bool("mamba_conv_bias", f.bool("use_conv_bias", True))
    return dict(
        architecture="nemotron_h", head_dim=f.int("head_dim", 128), qkv_bias=False, o_bias=False,
        block_pattern=pattern, mlp_gated=False, mlp_bias=f.bool("mlp_bias", False),
        layer_types=tuple(BLOCKS[c][0] for c in pattern), moe_layers=tuple(c == "E" for c in pattern),
        intermediate_size=f.int("intermediate_size", 21504),
        n_routed_experts=experts, experts_per_token=f.int("num_experts_per_tok", 2) if moe else 0,
        moe_intermediate_size=f.int("moe_intermediate_size", 7688) if moe else 0,
        n_shared_experts=1 if moe else 0,
        shared_intermediate_size=f.int("moe_shared_expert_intermediate_size", 7688) if moe else 0,
        router_score_bias=moe, latent_expert_size=(f.int("moe_latent_size", None) or 0) if moe else 0,
        linear_num_value_heads=f.int("mamba_num_heads", 128), linear_value_head_dim=f.int("mamba_head_dim", 64),
        linear_num_key_heads=groups, linear_key_head_dim=f.int("ssm_state_size", 128), linear_conv_kernel=kernel,
        linear_state_dtype=_STATE_DTYPES[raw], linear_conv_bias=conv_bias, linear_proj_bias=f.bool("use_bias", False),
    )
