"""Config reader of Llama 4 (`llama4`: Llama-4-Scout/Maverick, text model under `text_config`, model_type
`llama4_text`), as a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/llama4, Llama4TextConfig / Llama4ForCausalLM; the planner's count is checked
against it in tests/test_models_2026.py):
- attention per layer from `layer_types`, else from `no_rope_layers` (default: 1 where (i + 1) % no_rope_layer_interval
  != 0, interval 4): despite its name an entry of 1 means the layer USES RoPE (Llama4TextAttention.use_rope =
  no_rope_layers[i]) and is chunked attention when attention_chunk_size is set; 0 is a NoPE layer with full
  attention over the whole context. Maverick: layers 3, 7, ..., 47 full (12), the other 36 chunked at 8192 tokens.
  vLLM applies the same rule (models/llama4.py: NoPE layers full, the rest chunked local attention).
- GQA q/k/v/o without bias; the optional qk_norm (use_qk_norm, on RoPE layers) is a weightless L2 norm: no parameters.
- MoE on `moe_layers`, else every `interleave_moe_layer_step` layers (layers step - 1, 2 step - 1, ...): a router
  Linear(h, num_local_experts) without bias or score bias, routed experts of width intermediate_size (gate and up
  stored fused as one gate_up_proj [E, h, 2 inter]) with top-k num_experts_per_tok, and one shared expert of width
  intermediate_size; the other layers are a dense MLP of width intermediate_size_mlp.

Chunked layers are modelled as the planner's sliding-window layers (layer type "sliding_attention", window =
attention_chunk_size): what matters for memory is that their cache is capped per request. vLLM's allocator holds at
most one chunk of KV per request on these layers (vllm-project/vllm vllm/v1/kv_cache_interface.py,
ChunkedLocalAttentionSpec.max_admission_blocks_per_request: min(attention_chunk_size + max_num_batched_tokens,
max_model_len) tokens, "During chunked prefill, we hold KV for at most one chunk window"); the planner caps at
attention_chunk_size and leaves out the in-flight prefill tokens. A chunked query attends to the tokens since the
start of its chunk (ctx mod chunk, at most chunk), which the window op records bound from above by min(ctx, chunk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

_TYPES = {"full_attention": "full_attention", "chunked_attention": "sliding_attention",
          "sliding_attention": "sliding_attention"}


def _layer_types(f: Fields, cfg: Mapping[str, Any], layers: int, chunk: int | None, file: str,
                 prefix: str) -> tuple[str, ...]:
    types = cfg.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers or any(t not in _TYPES for t in types):
            raise PlannerError(f"expected {layers} entries of chunked_attention/full_attention",
                               file=file, field=f"{prefix}layer_types")
        if chunk is None and any(_TYPES[t] == "sliding_attention" for t in types):
            raise PlannerError("chunked layers need attention_chunk_size", file=file,
                               field=f"{prefix}attention_chunk_size")
        return tuple(_TYPES[t] for t in types)
    rope = f.int_list("no_rope_layers")
    if not rope:  # transformers: an empty or missing list takes the default
        every = f.int("no_rope_layer_interval", 4)
        rope = [int((i + 1) % every != 0) for i in range(layers)]
    if len(rope) != layers or any(r not in (0, 1) for r in rope):
        raise PlannerError(f"expected {layers} entries of 0/1", file=file, field=f"{prefix}no_rope_layers")
    return tuple("sliding_attention" if r and chunk is not None else "full_attention" for r in rope)


def _moe_layers(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> tuple[bool, ...]:
    given = cfg.get("moe_layers")
    if given is None:
        step = f.int("interleave_moe_layer_step", 1)
        chosen = set(range(step - 1, layers, step))
    else:
        chosen = set(f.int_list("moe_layers"))
        if any(not 0 <= i < layers for i in chosen):
            raise PlannerError(f"layer outside 0..{layers - 1}", file=file, field=f"{prefix}moe_layers")
    return tuple(i in chosen for i in range(layers))


def llama4(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """Llama 4 text model (module docstring)."""
    # transformers default 8192; an explicit null turns chunking off (every layer full attention)
    chunk = None if "attention_chunk_size" in cfg and cfg["attention_chunk_size"] is None \
        else f.int("attention_chunk_size", 8192)
    inter = f.int("intermediate_size", 8192)
    types = _layer_types(f, cfg, layers, chunk, file, prefix)
    return dict(
        architecture="llama4", o_bias=f.bool("attention_bias", False), qk_norm=False,
        layer_types=types, sliding_window=chunk if "sliding_attention" in types else None,
        intermediate_size=f.int("intermediate_size_mlp", 16384),
        moe_layers=_moe_layers(f, cfg, layers, file, prefix), n_routed_experts=f.int("num_local_experts", 16),
        experts_per_token=f.int("num_experts_per_tok", 1), moe_intermediate_size=inter,
        n_shared_experts=1, shared_intermediate_size=inter, gate_up_fused=True,
    )
