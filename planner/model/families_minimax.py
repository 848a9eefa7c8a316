"""Config reader of MiniMax-M3 (`minimax_m3`, and the text model under `text_config` of a `minimax_m3_vl` config), as
a field dict for planner.model.spec.ModelSpec.

What transformers 5.25 builds (models/minimax_m3_vl, MiniMaxM3VLTextConfig / MiniMaxM3VLForCausalLM; the planner's
count is checked against it in tests/test_models_minimax_m3.py):
- attention per layer from `layer_types`, else from sparse_attention_config.sparse_attention_freq (1: block-sparse
  "minimax_m3_sparse", 0: full attention): GQA q/k/v/o without bias, per-head q_norm and k_norm (RMSNorm of head_dim);
  a block-sparse layer adds a lightning indexer: q_proj [index_n_heads x index_head_dim, h], one shared index key
  k_proj [index_head_dim, h], q_norm and k_norm of index_head_dim (sparse_num_index_heads / sparse_index_dim in the
  published config). Its keys are scored per token, max-pooled over blocks of sparse_block_size tokens and each
  query (per KV head) attends to the top sparse_topk_blocks blocks, the sparse_local_block block(s) before it forced
  INTO those top-k (transformers MiniMaxM3VLIndexer boosts them to +inf inside topk; vLLM
  vllm/models/minimax_m3/common/ops/index_topk.py _topk_index_kernel scores them 1e29 and stores `topk` indices):
  at most 16 x 128 = 2,048 tokens per query, not (16 + 1) x 128. The planner keeps that cap in index_topk.
- feed-forward per layer from `mlp_layer_types`, else moe_layer_freq (1: MoE, 0: dense; first_k_dense_replace is not
  read): dense SwiGLU-OAI MLP of dense_intermediate_size (gate and up fused in gate_up_proj); MoE: router [E, h] with
  an e_score_correction_bias buffer (sigmoid routing), E = num_local_experts experts of intermediate_size (gate_up_proj
  [E, 2 I, h], down_proj [E, h, I]) top num_experts_per_tok, and one shared expert of shared_intermediate_size (built
  whatever n_shared_experts says).
Not counted: the MTP modules (num_mtp_modules; transformers builds none, params.mtp 0) and the vision tower.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.model.config_fields import Fields

_ATTENTION = {"full_attention": "full_attention", "minimax_m3_sparse": "sparse_attention"}


def _per_layer(cfg: Mapping[str, Any], key: str, flags_key: str, flags: Any, names: dict[str, Any], layers: int,
               file: str, prefix: str) -> tuple[Any, ...] | None:
    """A per-layer list given by name (`key`) or as 0/1 flags (`flags_key`); None where neither is given."""
    given = cfg.get(key)
    if given is not None:
        if not isinstance(given, list) or len(given) != layers or any(t not in names for t in given):
            raise PlannerError(f"expected {layers} entries of {'/'.join(names)}", file=file, field=f"{prefix}{key}")
        return tuple(names[t] for t in given)
    if flags is None:
        return None
    if not isinstance(flags, list) or len(flags) != layers or any(f not in (0, 1) for f in flags):
        raise PlannerError(f"expected {layers} entries of 0/1", file=file, field=f"{prefix}{flags_key}")
    values = list(names.values())
    return tuple(values[f] for f in flags)


def minimax_m3(f: Fields, cfg: Mapping[str, Any], layers: int, file: str, prefix: str) -> dict[str, Any]:
    """MiniMax-M3 text model (module docstring)."""
    sac = cfg.get("sparse_attention_config") or {}
    if not isinstance(sac, Mapping):
        raise PlannerError("expected a mapping", file=file, field=f"{prefix}sparse_attention_config")
    sf = Fields(sac, file, f"{prefix}sparse_attention_config.")
    types = _per_layer(cfg, "layer_types", "sparse_attention_config.sparse_attention_freq",
                       sac.get("sparse_attention_freq"), _ATTENTION, layers, file, prefix)
    moe = _per_layer(cfg, "mlp_layer_types", "moe_layer_freq", cfg.get("moe_layer_freq"),
                     {"dense": False, "sparse": True}, layers, file, prefix)
    # transformers MiniMaxM3VLTextConfig: the flat index_* fields, overridden by the sparse_attention_config names
    block = sf.int("sparse_block_size", f.int("index_block_size", 128))
    topk_blocks = sf.int("sparse_topk_blocks", f.int("index_topk_blocks", 16))
    return dict(
        architecture="minimax_m3", head_dim=f.int("head_dim", 128), qkv_bias=False, o_bias=False, qk_norm=True,
        layer_types=types or ("full_attention",) * layers, intermediate_size=f.int("dense_intermediate_size", 12288),
        moe_layers=moe or (True,) * layers, n_routed_experts=f.int("num_local_experts", 128),
        experts_per_token=f.int("num_experts_per_tok", 4), moe_intermediate_size=f.int("intermediate_size", 3072),
        n_shared_experts=1, shared_intermediate_size=f.int("shared_intermediate_size", 3072),
        router_score_bias=True, gate_up_fused=True,
        index_n_heads=sf.int("sparse_num_index_heads", f.int("index_n_heads", 4)),
        index_head_dim=sf.int("sparse_index_dim", f.int("index_head_dim", 128)),
        index_topk=topk_blocks * block,  # tokens a query attends to at most (local block among the top-k)
    )
