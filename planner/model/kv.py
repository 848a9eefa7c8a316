"""KV cache bytes: MLA latent or GQA/MHA heads, per token and per layer, by storage dtype.

MLA (DeepSeek-V2/V3, Kimi K2): one latent "head" per layer of kv_lora_rank + qk_rope_head_dim
elements (512 + 64 = 576), the same on every TP rank (the latent is not split by heads).
GQA/MHA: K and V of num_kv_heads heads, 2 x kv_heads x head_dim elements per layer, split over TP
ranks down to one head per rank. Sliding-window layers keep at most `sliding_window` tokens.

`fp8_ds_mla` is FlashMLA's FP8 layout: 656 B per token per layer =
512 B e4m3 latent + 4 float32 scales (one per 128 latent values, 16 B) + 64 bf16 rope values (128 B)
(deepseek-ai/FlashMLA README, "FP8 KV cache"; vLLM kv_cache_dtype fp8_ds_mla).

DSA (DeepSeek-V3.2, GLM-5): every layer also caches the lightning indexer's key, 132 B per token per layer =
index_head_dim 128 fp8 values + one float32 scale per 128 values, stored as uint8 whatever the KV dtype
(vllm-project/vllm@002d6073 vllm/model_executor/models/deepseek_v2.py, Indexer: DeepseekV32IndexerCache(head_dim=
head_dim + head_dim // quant_block_size * 4, dtype=torch.uint8), quant_block_size 128; SGLang's DSA pool,
dsa_indexer_bytes_per_token_per_layer, is the same index_head_dim + index_head_dim // 128 * 4 uint8). Not split by TP
(the indexer is replicated, one key per token).

Linear attention (Gated DeltaNet, Qwen3-Next / Qwen3.5): no per-token cache; each request holds, per linear
layer, a conv state of (kernel - 1) x conv_dim and a recurrent state of Hv x dv x dk, conv_dim = 2 Hk dk + Hv dv,
both split over TP by heads (vllm-project/vllm@02d71083 vllm/model_executor/layers/mamba/mamba_utils.py
MambaStateShapeCalculator.gated_delta_net_state_shape). Dtypes (gated_delta_net_state_dtype): conv state in the
model dtype, recurrent state in mamba_ssm_cache_dtype (the model dtype unless set; Qwen3.5's config asks for
float32). Qwen3-Next-80B-A3B: 3 x 8192 x 2 B + 32 x 128 x 128 x 2 B = 1,097,728 B per layer, x 36 layers.

Mamba-2 (Nemotron-H, Nemotron-3): the same two states with conv_dim = H p + 2 G n and a temporal state H x p x n
(MambaStateShapeCalculator.mamba2_state_shape; planner.model.families_nemotron maps H, p, G, n onto the linear_*
fields), conv state in the model dtype, SSM state in mamba_ssm_cache_dtype (float32 in Nemotron-3's configs).
Nemotron-3 Super: 3 x 10,240 x 2 B + 128 x 64 x 128 x 4 B = 4,255,744 B per Mamba layer, x 40 layers. vLLM splits
the H heads over TP and replicates the G groups where tp does not divide G (extra_groups_for_head_shards); the planner
divides the whole state by tp up to H ranks: exact for tp dividing G (8), APPROXIMATE (conv state a little low) above.
Blocks without a token mixer (Nemotron-H feed-forward blocks, layer type "none") hold no cache and no state.

Gemma 4 (planner.model.families_gemma4): sliding and full-attention layers differ in head width and KV heads, so a
layout holds the bytes of each kind, each split over TP by its own KV heads. vLLM caches K and V on every layer, also
where the model has K = V (attention_k_eq_v: vllm-project/vllm@001cabc1 vllm/model_executor/models/gemma4.py loads the
K weights "into both K and V slots of qkv_proj" and gives Attention(num_kv_heads, head_dim) a full K/V cache), so the
planner counts both. Gemma-4-26B-A4B in bf16: sliding 2 x 8 heads x 256 x 2 B = 8,192 B per token per layer (25
layers, capped at the 1,024-token window), full 2 x 2 heads x 512 x 2 B = 4,096 B (5 layers).

MiniMax-M3 (planner.model.families_minimax): GQA K and V on every layer (4 kv heads x 128: 2 x 4 x 128 x 2 B = 2,048 B
per token per layer in bf16, split over TP by heads) and, on each of the 57 block-sparse layers, the lightning
indexer's key: one index_head_dim vector per token in bf16 whatever the KV dtype, 128 x 2 = 256 B, not split by TP
(vllm-project/vllm@0484480b vllm/models/minimax_m3/common/indexer.py MiniMaxM3IndexerCache: MLAAttentionSpec(
num_kv_heads=1, head_size=index_head_dim), dtype bf16 unless indexer_kv_dtype fp8, which only the SM100 MSA path
takes). 60 x 2,048 + 57 x 256 = 137,472 B per token. APPROXIMATE: vLLM forces a 128-token KV page for M3 (index_topk.py
"one sparse block == one KV page"); the planner pages at the engine's kv_block_tokens.

MiMo-V2-Flash and Step-3.7-Flash (planner.model.families_mimo, families_step) take Gemma 4's layout: each layer kind's
K and V split over TP by its own KV heads, sliding layers capped at the window. vLLM's page per layer is
block_size x num_kv_heads x (head_size + head_size_v) x dtype bytes, V of its own width (vllm-project/vllm@001cabc1
vllm/v1/kv_cache_interface.py FullAttentionSpec.real_page_size_bytes; Attention.get_kv_cache_spec gives
SlidingWindowSpec and FullAttentionSpec head_size_v, vllm-project/vllm@0014ca6b
vllm/model_executor/layers/attention/attention.py; mimo_v2_flash.py passes head_size_v=v_head_dim and
per_layer_sliding_window=sliding_window_size). MiMo-V2-Flash in bf16: 39 sliding layers x 8 kv heads x (192 + 128) x
2 B = 5,120 B each, capped at 128 tokens, + 9 full layers x 4 x 320 x 2 B = 2,560 B each (23,040 B per token beyond
the window). Step-3.7-Flash (vllm step3p5.py Step3p5Attention: Attention(num_kv_heads, head_dim,
per_layer_sliding_window=sliding_window)): 2 x 8 x 128 x 2 B = 4,096 B on all 45 layers, the 33 sliding ones capped at
512 tokens (49,152 B per token beyond the window).
APPROXIMATE: vLLM's SlidingWindowSpec.max_memory_usage_bytes reserves up to sliding_window - 1 + max_num_batched_tokens
tokens (+ one block) per sliding layer while a prefill chunk is in flight; the planner keeps the window.

DeepSeek-V4 (planner.model.families_deepseek_v4): one 512-wide K = V entry per cached position, in vLLM's fp8_ds_mla
layout for V4: 584 B = 448 e4m3 non-rotary values + 64 bf16 rotary values (128 B) + 7 UE8M0 scales (one per 64 values)
+ 1 pad byte (vllm-project/vllm vllm/v1/kv_cache_interface.py MLAAttentionSpec.real_page_size_bytes, model_version
"deepseek_v4": storage_block_size x 584; vllm/model_executor/layers/deepseek_v4_attention.py
DeepseekV4MultiHeadLatentAttentionWrapper head_bytes). vLLM caches V4 in fp8 only (DeepseekV4MLAAttention turns fp8 into
fp8_ds_mla; SGLang's DeepSeekV4TokenToKVPool is an fp8_ds_mla pool too): kv_cache fp8 and fp8_ds_mla give 584 B; bf16
and fp16 give 512 x 2 = 1,024 B, the cache transformers keeps, no engine's.
- per CSA / HCA layer, growing with the context: one entry per 4 / 128 tokens (MLAAttentionSpec compress_ratio:
  storage_block_size = block_size // compress_ratio), and on CSA layers the indexer's key, 132 B per entry = 128 fp8 +
  one float32 scale (deepseek_v4_attention.py DeepseekV4Indexer: k_cache_head_dim = head_dim + head_dim // 128 x 4 in
  a DeepseekV4IndexerCache of the same compress_ratio). Flash in fp8: 21 CSA layers x (584 + 132) / 4 + 20 HCA layers x
  584 / 128 = 3,759 + 91.25 = 3,850.25 B per token; a request of L tokens holds floor(L / ratio) entries per layer.
- fixed per request (state_bytes_per_request; not split by TP: one KV head): the window of sliding_window (128) entries
  on every layer (sparse_swa.py DeepseekV4SWACache: SlidingWindowMLASpec(sliding_window=window_size), 584 B per token in
  DeepseekSparseSWABackend.get_kv_cache_shape), and each compressor's float32 running state, 2 x coff x head_dim values
  (kv and score) for the last coff x ratio tokens (vllm/model_executor/layers/deepseek_compressor.py
  CompressorStateCache: sliding_window = coff x compress_ratio, state_dim = 2 x coff x head_dim, float32; coff 2 on
  CSA layers): CSA 8 x 2,048 x 4 = 65,536 B + its indexer's 8 x 512 x 4 = 16,384 B, HCA 128 x 1,024 x 4 = 524,288 B.
  Flash in fp8: 43 x 128 x 584 + 21 x 81,920 + 20 x 524,288 = 3,214,336 + 1,720,320 + 10,485,760 = 15,420,416 B.
APPROXIMATE: vLLM pads each page to a multiple of 576 B (alignment=576: a 64-entry page of 37,376 B takes 37,440 B,
+0.17%) and frees window pages 64 tokens at a time; the planner counts entries. The MTP layer's window is not counted
(no model's MTP cache is).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

from planner.base.errors import PlannerError
from planner.model.spec import ModelSpec

KV_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}
KV_DTYPES = ("bf16", "fp16", "fp8", "fp8_ds_mla")
FP8_DS_MLA_BYTES_PER_LAYER = 512 * 1 + (512 // 128) * 4 + 64 * 2  # = 656
INDEXER_QUANT_BLOCK = 128  # fp8 values per float32 scale in the DSA indexer key cache (vLLM quant_block_size)
STATE_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
DSV4_SCALE_BLOCK = 64  # fp8 non-rotary values per UE8M0 scale byte in DeepSeek-V4's cache entry (module docstring)
COMPRESSOR_STATE_BYTES = 4  # float32 kv and score of a compressor's unfinished windows (vLLM CompressorStateCache)


def indexer_bytes_per_token_per_layer(spec: ModelSpec) -> int:
    """DSA indexer key cache: index_head_dim fp8 + 4 B per 128 values (128 + 4 = 132 B for DeepSeek-V3.2)."""
    if not spec.index_topk:
        return 0
    if spec.architecture == "minimax_m3":  # bf16 index key (module docstring)
        return spec.index_head_dim * 2
    return spec.index_head_dim + spec.index_head_dim // INDEXER_QUANT_BLOCK * 4


def linear_state_bytes_per_layer(spec: ModelSpec) -> tuple[int, int]:
    """(conv state, recurrent state) bytes of one request in one Gated DeltaNet layer, unsplit."""
    if not spec.num_linear_layers:
        return 0, 0
    conv_dim = 2 * spec.linear_num_key_heads * spec.linear_key_head_dim \
        + spec.linear_num_value_heads * spec.linear_value_head_dim
    conv = (spec.linear_conv_kernel - 1) * conv_dim * STATE_DTYPE_BYTES.get(spec.native_dtype, 2)
    rec_dtype = spec.linear_state_dtype or spec.native_dtype
    rec = spec.linear_num_value_heads * spec.linear_value_head_dim * spec.linear_key_head_dim \
        * STATE_DTYPE_BYTES.get(rec_dtype, 2)
    return conv, rec


@dataclass(frozen=True)
class KVLayout:
    """Per-token KV bytes of one model under one KV dtype."""

    dtype: str  # bf16 | fp16 | fp8 | fp8_ds_mla
    bytes_per_token_full: int  # all layers, one token, before any TP split and without window caps
    full_layers: int  # layers whose cache grows with the whole context
    sliding_layers: int  # layers capped at sliding_window tokens
    sliding_window: int | None  # tokens a sliding layer keeps
    bytes_per_token_per_layer: int  # one layer, one token (unsplit)
    split_by_tp: bool  # GQA heads split across TP ranks; False for the MLA latent
    indexer_bytes_per_token_per_layer: int = 0  # DSA indexer key (132 B), included in bytes_per_token_per_layer
    linear_layers: int = 0  # linear-attention layers: a fixed state per request, no per-token cache
    state_bytes_per_request: int = 0  # all linear layers' conv + recurrent state of one request, unsplit
    state_tp_heads: int = 1  # heads the state splits over TP (linear_num_key_heads): at most this many ranks
    # Gemma 4: sliding layers with their own geometry (0 = as a full layer); then bytes_per_token_per_layer is a
    # full layer's, split over full_kv_heads, and a sliding layer's bytes split over the caller's kv_heads
    sliding_bytes_per_token_per_layer: int = 0  # one sliding layer, one token (unsplit)
    full_kv_heads: int = 0  # KV heads of a full layer (0 = the caller's kv_heads)
    # MiniMax-M3: layers caching an index key (unsplit) BESIDE their K and V, bytes_per_token_per_layer without it;
    # 0 = the key is part of every layer's bytes_per_token_per_layer (MLA + DSA)
    indexed_layers: int = 0
    # DeepSeek-V4: per compressed kind (tokens per entry, layers, bytes per entry incl. the CSA indexer key); then
    # bytes_per_token_per_layer is one entry's, bytes_per_token_full the mean over L (a float) and the window is state
    compressed: tuple[tuple[int, int, int], ...] = ()

    def state_bytes_per_gpu(self, tp: int = 1, layers_fraction: float = 1.0) -> int:
        """One request's linear-attention state on one GPU of a TP group (heads split; a rank keeps at least one)."""
        if not self.state_bytes_per_request:
            return 0
        return ceil(self.state_bytes_per_request / min(max(tp, 1), self.state_tp_heads) * layers_fraction)

    def bytes_for_context(self, tokens: int, tp: int = 1, kv_heads: int = 1, layers_fraction: float = 1.0) -> int:
        """KV bytes of one sequence of `tokens` on one GPU of a TP group (window caps applied)."""
        if self.compressed:  # DeepSeek-V4: floor(tokens / ratio) entries per compressed layer, whole on every rank
            return ceil(sum(n * (tokens // r) * b for r, n, b in self.compressed) * layers_fraction)
        per_layer = self.per_gpu_layer_bytes(tp, kv_heads)
        sliding_tokens = min(tokens, self.sliding_window or tokens)
        if self.sliding_bytes_per_token_per_layer:
            total = per_layer * self.full_layers * tokens \
                + self.per_gpu_layer_bytes(tp, kv_heads, sliding=True) * self.sliding_layers * sliding_tokens
        else:
            total = per_layer * (self.full_layers * tokens + self.sliding_layers * sliding_tokens)
        if self.indexed_layers:  # MiniMax-M3's index keys: every token, not split by TP
            total += self.indexer_bytes_per_token_per_layer * self.indexed_layers * tokens
        return ceil(total * layers_fraction)

    def per_gpu_layer_bytes(self, tp: int, kv_heads: int, sliding: bool = False) -> int:
        """One token of one full layer (a sliding one where `sliding` and the layout has its own) on one GPU."""
        per_layer, heads = self.bytes_per_token_per_layer, self.full_kv_heads or kv_heads
        if sliding and self.sliding_bytes_per_token_per_layer:
            per_layer, heads = self.sliding_bytes_per_token_per_layer, kv_heads
        if not self.split_by_tp or tp <= 1:
            return per_layer
        # heads split over tp ranks; when tp > kv_heads each rank still holds one (replicated) head
        heads_per_rank = max(1, heads // tp)
        return per_layer * heads_per_rank // heads

    def mean_layer_bytes(self, tp: int, kv_heads: int) -> float:
        """One token on one GPU, averaged over the cached layers (before window caps): what one more token of
        context costs per cached layer (the one layer's bytes where every cached layer is alike)."""
        cached = self.full_layers + self.sliding_layers
        if self.compressed:  # DeepSeek-V4: the compressed caches over all its layers (the windows are state)
            return self.bytes_per_token_full / cached
        if self.indexed_layers:  # MiniMax-M3: + the unsplit index keys of the sparse layers
            return (self.per_gpu_layer_bytes(tp, kv_heads) * cached
                    + self.indexer_bytes_per_token_per_layer * self.indexed_layers) / cached
        if not self.sliding_bytes_per_token_per_layer:
            return self.per_gpu_layer_bytes(tp, kv_heads)
        return (self.per_gpu_layer_bytes(tp, kv_heads) * self.full_layers
                + self.per_gpu_layer_bytes(tp, kv_heads, sliding=True) * self.sliding_layers) / cached


def kv_layout(spec: ModelSpec, dtype: str = "bf16") -> KVLayout:
    """The model's KV cache layout in `dtype` (cached per model and dtype: the sizing search asks per plan)."""
    return _kv_layout(spec, dtype)


@lru_cache(maxsize=256)
def _kv_layout(spec: ModelSpec, dtype: str) -> KVLayout:
    if dtype not in KV_DTYPES and dtype not in KV_DTYPE_BYTES:
        raise PlannerError(f"unknown KV cache dtype {dtype!r}; known: {', '.join(KV_DTYPES)}", field="kv_cache")
    if spec.deepseek_v4:
        return _deepseek_v4_layout(spec, dtype)
    sliding = sum(t == "sliding_attention" for t in spec.layer_types)
    linear = spec.num_linear_layers
    full = spec.num_layers - sliding - linear - spec.num_mixerless_layers
    indexer = indexer_bytes_per_token_per_layer(spec)
    if spec.attention == "mla":
        if dtype == "fp8_ds_mla":
            if spec.kv_lora_rank != 512 or spec.qk_rope_head_dim != 64:
                raise PlannerError("fp8_ds_mla is FlashMLA's layout for kv_lora_rank 512 + rope 64", field="kv_cache")
            per_layer = FP8_DS_MLA_BYTES_PER_LAYER
        else:
            per_layer = spec.kv_latent_elems_per_layer * KV_DTYPE_BYTES[dtype]
        per_layer += indexer
        split = False
    else:
        if dtype == "fp8_ds_mla":
            raise PlannerError(f"fp8_ds_mla needs an MLA model; {spec.name} uses {spec.attention.upper()}",
                               field="kv_cache")
        # K and V (V narrower than K where v_head_dim is set: MiMo-V2-Flash, module docstring)
        per_layer = spec.num_kv_heads * (spec.head_dim + (spec.v_head_dim or spec.head_dim)) * KV_DTYPE_BYTES[dtype]
        split = True
    conv, rec = linear_state_bytes_per_layer(spec)
    # the state splits over TP by key heads (Gated DeltaNet, KDA) or by SSM heads (Mamba-2, module docstring)
    tp_heads = spec.linear_num_value_heads if spec.architecture == "nemotron_h" else spec.linear_num_key_heads
    if spec.full_head_dim:  # Gemma 4: K and V of a full layer's own heads (both cached where K = V, docstring)
        full_layer = (spec.full_kv_heads or spec.num_kv_heads) * KV_DTYPE_BYTES[dtype] \
            * (spec.full_head_dim + (spec.v_head_dim or spec.full_head_dim))
        return KVLayout(dtype, full_layer * full + per_layer * sliding, full, sliding, spec.sliding_window,
                        full_layer, split, sliding_bytes_per_token_per_layer=per_layer,
                        full_kv_heads=spec.full_kv_heads or spec.num_kv_heads)
    if spec.attention != "mla" and indexer:  # MiniMax-M3: index keys beside K and V on the sparse layers only
        indexed = sum(t == "sparse_attention" for t in spec.layer_types)
        return KVLayout(dtype, per_layer * (full + sliding) + indexer * indexed, full, sliding, spec.sliding_window,
                        per_layer, split, indexer, indexed_layers=indexed)
    return KVLayout(dtype, per_layer * (full + sliding), full, sliding, spec.sliding_window, per_layer, split,
                    indexer, linear, (conv + rec) * linear, max(1, tp_heads))


def _deepseek_v4_layout(spec: ModelSpec, dtype: str) -> KVLayout:
    """Compressed caches per token and the window and compressor states per request (module docstring)."""
    # vLLM turns every fp8 cache dtype into fp8_ds_mla for V4; bf16 / fp16: the 512-wide entry as is
    # (vLLM DeepseekV4MultiHeadLatentAttentionWrapper head_bytes: 448 fp8 + 64 x 2 B rope + 7 scales + 1 pad = 584)
    nope, rope = spec.qk_nope_head_dim, spec.qk_rope_head_dim
    entry = nope + 2 * rope + nope // DSV4_SCALE_BLOCK + 1 if dtype.startswith("fp8") \
        else spec.head_dim * KV_DTYPE_BYTES[dtype]
    idx = spec.index_head_dim + spec.index_head_dim // INDEXER_QUANT_BLOCK * 4  # 132 B, fp8 whatever the KV dtype
    ratios = spec.deepseek_v4.compress_ratios[:spec.num_layers]
    kinds = sorted({r for r in ratios if r})
    compressed = tuple((r, ratios.count(r), entry + (idx if spec.deepseek_v4.coff(r) == 2 else 0)) for r in kinds)
    state = spec.num_layers * spec.sliding_window * entry  # every layer's window
    state += sum(compressor_state_bytes(spec, r) for r in ratios)
    return KVLayout(dtype, sum(n * b / r for r, n, b in compressed), len(ratios) - ratios.count(0), ratios.count(0),
                    spec.sliding_window, entry, False, idx, state_bytes_per_request=state, compressed=compressed)


def compressor_state_bytes(spec: ModelSpec, ratio: int) -> int:
    """One request's compressor state in one DeepSeek-V4 layer of compress ratio `ratio` (0: no compressor): float32
    kv and score of coff x head_dim (+ the indexer's at index_head_dim on CSA layers) for coff x ratio tokens."""
    c = spec.deepseek_v4.coff(ratio) if ratio else 0
    return c * ratio * 2 * c * (spec.head_dim + (spec.index_head_dim if c == 2 else 0)) * COMPRESSOR_STATE_BYTES


def mha_equivalent_bytes_per_token(spec: ModelSpec, dtype: str = "bf16") -> int:
    """What the cache would be with every head's K and V stored (MLA decompressed: K of
    qk_nope + qk_rope and V of v_head_dim per head; Kimi K2.5: 64 x (192 + 128) x 2 B = 40,960 B per layer)."""
    nbytes = KV_DTYPE_BYTES.get(dtype, 1)
    if spec.attention == "mla":
        per_layer = spec.num_heads * (spec.qk_head_dim + spec.v_head_dim) * nbytes
    elif spec.full_head_dim:  # Gemma 4 (MiMo, Step): every head's K and V at each layer kind's head width
        full = sum(t == "full_attention" for t in spec.layer_types)
        k_v = lambda d: d + (spec.v_head_dim or d)  # noqa: E731  (MiMo: V of v_head_dim)
        return spec.num_heads * nbytes * (k_v(spec.full_head_dim) * full
                                          + k_v(spec.head_dim) * (spec.num_layers - full))
    else:
        per_layer = 2 * spec.num_heads * spec.head_dim * nbytes
    return per_layer * (spec.num_layers - spec.num_linear_layers - spec.num_mixerless_layers)


def paged_tokens(tokens: int, block_tokens: int) -> int:
    """Tokens a paged allocator reserves for one sequence: rounded up to whole blocks."""
    return ceil(tokens / block_tokens) * block_tokens if block_tokens > 1 else tokens
