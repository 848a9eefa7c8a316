"""Config reader of DeepSeek-V4 (`deepseek_v4`: DeepSeek-V4-Flash and -Pro), as a field dict for
planner.model.spec.ModelSpec plus the facts no other family has (DeepseekV4Spec).

What transformers 5.25 builds (models/deepseek_v4, DeepseekV4Config / DeepseekV4ForCausalLM; the planner's count is
checked against it on the meta device in tests/test_models_deepseek_v4.py):
- attention kind per layer from `layer_types`, else from the legacy per-layer `compress_ratios` (0 -> sliding_attention,
  4 -> compressed_sparse_attention "CSA", 128 -> heavily_compressed_attention "HCA"; entries past num_hidden_layers
  belong to the MTP layers and are dropped), else 2 HCA layers then CSA/HCA alternating. The rate of each compressed
  kind is `compress_rates` (default {CSA: 4, HCA: 128}; legacy compress_rate_csa / compress_rate_hca fold in).
- every layer's attention (DeepseekV4Attention): one shared K = V head of head_dim 512 (num_key_value_heads is not
  read), q_a_proj [q_lora_rank, h] + q_a_norm, q_b_proj [heads x head_dim, q_lora_rank] (a weightless per-head norm),
  kv_proj [head_dim, h] + kv_norm, a learned sink per head, partial RoPE on the last qk_rope_head_dim channels, and the
  grouped low-rank output projection: o_a_proj [o_groups x o_lora_rank, heads x head_dim / o_groups] applied per group
  (block-diagonal), then o_b_proj [h, o_groups x o_lora_rank]. Queries attend to the last sliding_window (128) tokens
  on every layer, plus on CSA/HCA layers to the compressed entries.
- a compressor on CSA/HCA layers: every `rate` tokens become one 512-wide entry, a softmax-gated sum of their
  kv_proj outputs. CSA (overlapping windows of 2 x 4 tokens): kv_proj and gate_proj [2 x head_dim, h], position_bias
  [4, 2 x head_dim] (float32), kv_norm [head_dim]; and a lightning indexer with its own compressor at index_head_dim
  (kv_proj, gate_proj [2 x 128, h], position_bias [4, 256], kv_norm [128]), q_b_proj [index_n_heads x index_head_dim,
  q_lora_rank] and weights_proj [index_n_heads, h]: it scores the L/4 compressed keys and the attention reads its
  index_topk best. HCA (windows of 128): kv_proj, gate_proj [head_dim, h], position_bias [128, head_dim], kv_norm.
- hyper-connections (mHC, hc_mult = 4 residual streams) around the attention and the FFN of every layer:
  fn [(2 + m) m, m h], base [(2 + m) m], scale [3] (float32), and one final head collapse (hc_head: fn [m, m h],
  base [m], scale [1]); RMSNorms input_layernorm, post_attention_layernorm (h) per layer, norm (h) at the end.
- MoE on every layer: n_routed_experts experts of moe_intermediate_size (gate_up_proj [E, 2 I, h], down_proj
  [E, h, I]), top num_experts_per_tok, router weight [E, h] scored by sqrtsoftplus, one shared SwiGLU expert of
  moe_intermediate_size (built whatever n_shared_experts says). The first num_hash_layers layers (or those named
  hash_moe in mlp_layer_types) route by token id: a persistent int64 buffer tid2eid [vocab, top-k] and no
  e_score_correction_bias; the others carry the float32 e_score_correction_bias [E].
- embed_tokens and an untied lm_head [vocab, h].
Not built by transformers (its loader skips `mtp.*`), counted apart as params.mtp from the checkpoint listing
(gogongxt/python scripts/models/deepseek_v4_pro.md, mtp.0.*): per MTP layer a decoder layer whose attention is a
sliding-window layer (compress_ratios entry 0, no compressor) with a score-biased router, e_proj and h_proj [h, h],
enorm, hnorm and norm (h), and its own hc_head; it shares embed and head with the main model.

What the engines cache (planner.model.kv): a 128-token window of 584-byte entries on every layer, fixed per request,
and per CSA/HCA layer one 584-byte entry per 4 / 128 tokens, plus a 132-byte indexer key per 4 tokens on CSA layers
and the compressors' float32 running state, fixed per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

# transformers configuration_deepseek_v4.py: _COMPRESS_RATIO_TO_LAYER_TYPE and DEEPSEEK_V4_LAYER_TYPES
_RATIO_TYPES = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
_TYPES = tuple(_RATIO_TYPES.values())
CSA_RATIO = 4  # tokens per CSA entry: the only rate the overlapping compressor, its indexer and the engines support


@dataclass(frozen=True)
class DeepseekV4Spec:
    """DeepSeek-V4 facts beyond the MLA and MoE fields of ModelSpec (module docstring)."""

    compress_ratios: tuple[int, ...]  # tokens per cached entry, per decoder layer then per MTP layer (0: window only)
    o_groups: int  # head groups of the grouped output projection
    o_lora_rank: int  # rank of each group's o_a_proj
    hc_mult: int  # hyper-connection residual streams
    hash_layers: tuple[bool, ...]  # per decoder layer: routed by token id (tid2eid) instead of the learned top-k

    @staticmethod
    def coff(ratio: int) -> int:
        """Series a compressor projects per token: 2 on CSA layers (ratio 4: an entry mixes two overlapping windows,
        transformers DeepseekV4CSACompressor, vLLM DeepseekCompressor coff = 1 + overlap), 1 on HCA layers."""
        return 2 if ratio == CSA_RATIO else 1


def _layer_types(f: Fields, cfg: Mapping[str, Any], layers: int, mtp: int, file: str,
                 prefix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(decoder layer types, MTP layer types) as transformers DeepseekV4Config.__post_init__ derives them."""
    given, ratios = cfg.get("layer_types"), cfg.get("compress_ratios")
    if given is not None:
        if not isinstance(given, list) or len(given) < layers or any(t not in _TYPES for t in given):
            raise PlannerError(f"expected {layers} entries of {'/'.join(_TYPES)}", file=file,
                               field=f"{prefix}layer_types")
        types = list(given)
    elif ratios is not None:
        if not isinstance(ratios, list) or len(ratios) < layers or any(r not in _RATIO_TYPES for r in ratios):
            raise PlannerError(f"expected at least {layers} entries of 0/4/128", file=file,
                               field=f"{prefix}compress_ratios")
        types = [_RATIO_TYPES[r] for r in ratios]
    else:  # the V4-Pro default: 2 HCA layers, then CSA / HCA alternating
        types = [_TYPES[2]] * min(layers, 2) + [_TYPES[1] if i % 2 else _TYPES[2] for i in range(max(layers - 2, 0))]
    extra = types[layers:layers + mtp]
    return tuple(types[:layers]), tuple(extra) + (_TYPES[0],) * (mtp - len(extra))  # an MTP layer: window only


def deepseek_v4(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """DeepSeek-V4 (module docstring): MLA-like fields for its one 512-wide K = V head, MoE on every layer, the
    compress ratios, grouped output projection, hyper-connections and hash routing in DeepseekV4Spec."""
    rates = cfg.get("compress_rates") or {}
    if not isinstance(rates, Mapping):
        raise PlannerError("expected a mapping", file=file, field=f"{prefix}compress_rates")
    rf = Fields(rates, file, f"{prefix}compress_rates.")
    csa = rf.int(_TYPES[1], f.int("compress_rate_csa", 4))
    hca = rf.int(_TYPES[2], f.int("compress_rate_hca", 128))
    if csa != CSA_RATIO or hca == CSA_RATIO:  # vLLM DeepseekCompressor / CompressorStateCache: ratios 4 and 128
        raise f._err("compress_rates", f"DeepSeek-V4 compresses 4 tokens per CSA entry and another rate on HCA layers; "
                                       f"got {csa} and {hca}")
    mtp = f.int("num_nextn_predict_layers", 1, minimum=0)
    types, mtp_types = _layer_types(f, cfg, layers, mtp, file, prefix)
    rate = {_TYPES[0]: 0, _TYPES[1]: csa, _TYPES[2]: hca}
    mlp_types = cfg.get("mlp_layer_types")
    if mlp_types is not None:
        if not isinstance(mlp_types, list) or len(mlp_types) < layers or any(
                t not in ("hash_moe", "moe") for t in mlp_types):
            raise PlannerError(f"expected {layers} entries of hash_moe/moe", file=file,
                               field=f"{prefix}mlp_layer_types")
        hashed = tuple(t == "hash_moe" for t in mlp_types[:layers])
    else:
        hashed = tuple(i < f.int("num_hash_layers", 3, minimum=0) for i in range(layers))
    heads, head_dim = f.int("num_attention_heads", 64), f.int("head_dim", 512)
    rope = f.int("qk_rope_head_dim", 64)
    groups = f.int("o_groups", 8)
    if heads % groups or rope >= head_dim:
        raise f._err("o_groups", f"{groups} groups do not divide {heads} heads" if heads % groups else
                     f"qk_rope_head_dim {rope} leaves no non-rotary channel of head_dim {head_dim}")
    experts, inter = f.int("n_routed_experts", 256), f.int("moe_intermediate_size", 2048)
    return dict(
        architecture="deepseek_v4", attention="mla", num_heads=heads, num_kv_heads=1, head_dim=head_dim,
        # the cached vector is head_dim wide (K = V): kv_lora_rank is its non-rotary part, as MLA's latent + rope
        q_lora_rank=f.int("q_lora_rank", 1024), kv_lora_rank=head_dim - rope, qk_nope_head_dim=head_dim - rope,
        qk_rope_head_dim=rope, v_head_dim=head_dim, qkv_bias=False, o_bias=False, attention_sinks=True,
        layer_types=types, sliding_window=f.int("sliding_window", 128), mlp_bias=f.bool("mlp_bias", False),
        moe_layers=(True,) * layers, n_routed_experts=experts, experts_per_token=f.int("num_experts_per_tok", 6),
        moe_intermediate_size=inter, n_shared_experts=1, shared_intermediate_size=inter, router_score_bias=True,
        mtp_layers=mtp,  # the checkpoint stores each expert's w1 / w3 apart (gate_up_fused False)
        index_n_heads=f.int("index_n_heads", 64), index_head_dim=f.int("index_head_dim", 128),
        index_topk=f.int("index_topk", 512),
        deepseek_v4=DeepseekV4Spec(tuple(rate[t] for t in types + mtp_types), groups, f.int("o_lora_rank", 1024),
                                   f.int("hc_mult", 4), hashed),
    )
