"""KV cache and per-request state by attention kind: what one more token of context adds, and what one request
holds whatever its length, per kind of layer (planner.model.kv computes the bytes; this module splits them by kind).

A model whose layers all cache every token (MLA, GQA) has one kind and nothing fixed per request. Hybrid models:
- sliding-window layers keep the last `window` tokens: past the window a token adds nothing to them, and each holds
  window x its bytes per token once the request is that long (Gemma 4, MiMo-V2-Flash, Step-3.7-Flash; Llama 4's
  chunked layers, which the planner caps at the chunk);
- linear-attention layers (Gated DeltaNet, Kimi Delta Attention, Mamba-2) cache no token and hold a conv and a
  recurrent state per request;
- DeepSeek-V4's CSA / HCA layers add one entry per 4 / 128 tokens, and every layer holds a 128-token window and its
  compressor's state per request;
- MiniMax-M3's block-sparse layers cache an index key beside K and V; MLA + DSA layers (DeepSeek-V3.2, GLM-5) one
  beside the latent.
One sequence of L tokens, L past every window, holds bytes_per_token x L + bytes_per_request (all layers, one copy,
before any TP split; DeepSeek-V4 counts whole entries, floor(L / ratio)). `KVLayout.bytes_for_context(L)` +
`KVLayout.state_bytes_per_request` is the exact count for any L (tests/test_new_models_surfaces.py checks the two
agree).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.base.units import mb
from planner.model.kv import KVLayout, compressor_state_bytes, kv_layout, linear_state_bytes_per_layer
from planner.model.spec import ATTENTION_KINDS, ModelSpec


@dataclass(frozen=True)
class KVKind:
    """The cache of one attention kind of a model under one KV dtype, unsplit (one copy of every layer)."""

    attention_kind: str  # planner.model.spec.ATTENTION_KINDS
    layers: int  # decoder layers of this kind
    bytes_per_token_per_layer: float  # what one more token of context adds to one layer, past any window
    bytes_per_request_per_layer: int  # held per request whatever its length: a full window and / or a state
    grows: str  # what a layer caches per token, in words ('' = nothing)
    holds: str  # what a layer holds per request, in words ('' = nothing)

    @property
    def cached(self) -> str:
        return "; ".join(w for w in (self.grows, self.holds) if w)

    @property
    def bytes_per_token(self) -> float:
        return self.layers * self.bytes_per_token_per_layer

    @property
    def bytes_per_request(self) -> int:
        return self.layers * self.bytes_per_request_per_layer


@dataclass(frozen=True)
class KVByKind:
    """Every attention kind of one model's cache; the totals a user sizes with."""

    dtype: str  # KV cache dtype
    kinds: tuple[KVKind, ...]

    @property
    def bytes_per_token(self) -> float:
        """One more token of context, all layers (past every window)."""
        return sum(k.bytes_per_token for k in self.kinds)

    @property
    def bytes_per_request(self) -> int:
        """Fixed per request, all layers: full windows and linear / compressor states."""
        return sum(k.bytes_per_request for k in self.kinds)

    @property
    def hybrid(self) -> bool:
        """Something other than one cache growing with every token."""
        return len(self.kinds) > 1 or self.bytes_per_request > 0

    def words(self) -> str:
        """'12,288 B per token of context (12 gqa layers) + 39.5 MB per request whatever its length (36 linear_gdn
        layers: no tokens; a conv and a recurrent state)'."""
        per_token = f"{self.bytes_per_token:,.2f}".rstrip("0").rstrip(".")
        growing = ", ".join(f"{k.layers} {k.attention_kind}" for k in self.kinds if k.bytes_per_token)
        text = f"{per_token} B per token of context ({growing} layers)"
        fixed = [f"{k.layers} {k.attention_kind}: {k.holds}" for k in self.kinds if k.bytes_per_request]
        if fixed:
            text += f" + {mb(self.bytes_per_request)} per request whatever its length ({'; '.join(fixed)})"
        return text


def kv_by_kind(spec: ModelSpec, dtype: str = "bf16") -> KVByKind:
    """The model's cache per attention kind in `dtype` (raises PlannerError for a dtype the model cannot take)."""
    layout = kv_layout(spec, dtype)
    kinds = spec.attention_kinds
    ratio = dict(zip(kinds, spec.deepseek_v4.compress_ratios[:spec.num_layers], strict=False)) \
        if spec.deepseek_v4 else {}
    rows = [_kind(spec, layout, kind, kinds.count(kind), ratio.get(kind, 0))
            for kind in ATTENTION_KINDS if kind in kinds and kind != "none"]
    return KVByKind(dtype, tuple(rows))


def _kind(spec: ModelSpec, layout: KVLayout, kind: str, n: int, ratio: int) -> KVKind:
    per_layer = layout.bytes_per_token_per_layer  # one token (or DeepSeek-V4 entry) of a full layer, unsplit
    window = spec.sliding_window or 0
    if layout.compressed:  # DeepSeek-V4: entries per `ratio` tokens, and on every layer a window + compressor state
        entry = dict((r, b) for r, _, b in layout.compressed).get(ratio, 0)  # the CSA entry with its indexer key
        state = compressor_state_bytes(spec, ratio)
        return KVKind(kind, n, entry / ratio if ratio else 0.0, window * per_layer + state,
                      f"1 entry per {ratio} tokens" if ratio else "",
                      f"the last {window:,} tokens" + (" and compressor state" if state else ""))
    if kind.startswith("linear_"):
        conv, rec = linear_state_bytes_per_layer(spec)
        return KVKind(kind, n, 0.0, conv + rec, "", "a conv and a recurrent state")
    if kind == "sliding":
        sliding = layout.sliding_bytes_per_token_per_layer or per_layer
        return KVKind(kind, n, 0.0, window * sliding, "", f"the last {window:,} tokens")
    if kind == "gqa_sparse":  # MiniMax-M3: K and V plus the index key
        return KVKind(kind, n, float(per_layer + layout.indexer_bytes_per_token_per_layer), 0,
                      "every token, with its index key", "")
    return KVKind(kind, n, float(per_layer), 0,
                  "every token" + (", with its index key" if layout.indexer_bytes_per_token_per_layer else ""), "")
