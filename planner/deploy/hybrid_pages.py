"""vLLM's KV pages for hybrid models (attention + Gated DeltaNet / KDA / Mamba-2 layers): the block size, the padded
state page and the bytes one request holds per GPU.

vLLM keeps one block pool for every layer of a hybrid model, so every layer's page must have the same size in bytes
(vllm-project/vllm@1936cf3841edb9781b06c50fc4daf4bac9d3b23e vllm/model_executor/models/config.py,
HybridAttentionMambaModelConfig.verify_and_update_config). It grows the attention block until one attention page holds
at least one linear layer's state, and pads the state page up to the attention page:

    block = a x cdiv(state page, a x attention bytes of one token)      (without prefix caching, vLLM's default)
    block = lcm(chunk, a) x cdiv(cdiv(state page, attention bytes of one token), lcm(chunk, a))  (prefix caching)
    page  = block x attention bytes of one token  (= the padded state page)

with the kernel alignment a = 16 tokens, 32 where the head size is 256 on SM100 (B200, GB200: FlashInfer), 64 for MLA
(128 only when VLLM_ATTENTION_BACKEND=CUTLASS_MLA is set). Both pages are per GPU: the attention page of
num_kv_heads // tp heads (FullAttentionSpec; MLA: one 576-wide latent, MLAAttentionSpec), the state of the heads the
rank holds (MambaSpec.page_size_bytes = sum of prod(shape) x dtype bytes over the state tensors,
vllm-project/vllm@bc8282e61df21719b12b391c3a976b1c900dfbb4 vllm/v1/kv_cache_interface.py).

State shapes per GPU (vllm-project/vllm@2afe1e8573cf51b73569ae1d35f59078a2032a91
vllm/model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator; t = tp, planner.model.kv's field names):
- Gated DeltaNet (Qwen3-Next, Qwen3.5; gated_delta_net_state_shape): conv (k - 1 + spec, (2 Hk dk + Hv dv) / t) in the
  model dtype, recurrent (Hv / t, dk, dv) in mamba_ssm_cache_dtype (Qwen3.5's config asks float32: planner.model.kv).
- KDA (Kimi-K3, kimi_linear; kda_state_shape, kda_state_dtype): three conv states (k - 1, H d / t) in the model dtype
  and the recurrent (H / t, d, d) in float32.
- Mamba-2 (Nemotron-3; mamba2_state_shape): conv (k - 1, (H p + 2 G' n) / t) in the model dtype, with the G groups
  replicated up to t where t does not divide G (G' = G + t - G, extra_groups_for_head_shards), temporal (H / t, p, n)
  in mamba_ssm_cache_dtype (float32 in Nemotron-3's config).
Ranks beyond the heads the state splits over replicate it (the planner's rule in planner.model.kv; vLLM rejects such a
TP), and a split that does not divide rounds up.

Groups (vllm-project/vllm@bbf906a88ba1a39104884c88c9811a4f968e4659 vllm/v1/core/kv_cache_utils.py,
_get_kv_cache_config_uniform_page_size): layers of one kind are cut into KV cache groups of group_size = the fewest
layers of any kind, the last group of a kind padded; group_size tensors of page x num_blocks bytes each hold one layer
of every group, so a block costs page x group_size bytes whatever group takes it. A request holds cdiv(tokens, block)
blocks in each attention group and 1 + spec blocks in each linear group (MambaSpec.max_memory_usage_bytes with
mamba_cache_mode "none", num_speculative_blocks = the draft tokens), so per GPU:

    bytes = (attention groups x cdiv(tokens, block) + linear groups x (1 + spec)) x page x group_size

Qwen3-Next-80B-A3B in bf16 at TP1 (12 full-attention + 36 Gated DeltaNet layers): attention 2 heads x (256 + 256) x 2 B
= 2,048 B per token; state 3 x 8,192 x 2 B + 32 x 128 x 128 x 2 B = 1,097,728 B; block 16 x cdiv(1,097,728, 32,768) =
544 tokens, page 1,114,112 B (state padded 1.5%); group_size 12, 1 attention + 3 linear groups; 5,000 tokens:
(10 + 3) x 1,114,112 x 12 = 173,801,472 B per GPU, where per-token paging gives 123.1 MB KV + 39.5 MB state = 162.6 MB.
The gap is widest for short requests: 100 tokens take (1 + 3) x 13.4 MB = 53.5 MB, per-token paging 42.3 MB (+26.5%).

Prefix caching is off by default for hybrid models (vllm-project/vllm@99d7eb5d6a512cfcc5a2b104f24ebf2d6cda772b
vllm/engine/arg_utils.py EngineArgs._set_default_args: "Disable prefix caching default for hybrid models"); the planner
models that default (`chunk` gives the prefix-caching block for a caller that knows the chunk).
APPROXIMATE: with pipeline parallelism the fullest stage is taken to hold ceil(group_size x its share of the layers)
layers of each group; an MTP draft layer's own attention group is not counted (no model's MTP cache is); newer vLLM
takes the larger layer count as group_size where it is under 1.5 x the smaller (no profile here comes near: 3:1 to
5:1). SGLang keeps linear-attention state in its own pool (HybridReqToTokenPool / MambaPool, sized by
--max-mamba-cache-size or mamba_full_memory_ratio) beside a per-token attention pool; the planner keeps charging
SGLang per-token KV + state per request, as before, since that split is not modelled here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import ceil, lcm

from planner.base.units import count, mb
from planner.model.kv import STATE_DTYPE_BYTES, KVLayout
from planner.model.spec import ModelSpec

ALIGN_TOKENS = 16  # FlashAttention: block size a multiple of 16 (HybridAttentionMambaModelConfig)
ALIGN_TOKENS_SM100_HEAD256 = 32  # FlashInfer on SM100 with head size 256 (flashinfer-ai/flashinfer#1993)
ALIGN_TOKENS_MLA = 64  # MLA backends other than CUTLASS_MLA
KDA_RECURRENT_BYTES = 4  # kda_state_dtype: the recurrent state is torch.float32 whatever the cache dtype


@dataclass(frozen=True)
class HybridPages:
    """vLLM's page geometry of one hybrid model on one GPU of a deployment."""

    block_tokens: int  # attention tokens per block (cache_config.block_size after vLLM enlarges it)
    page_bytes: int  # one layer's page per GPU: block_tokens x attention bytes per token = the padded state page
    state_page_bytes: int  # one linear layer's state per GPU before padding (MambaSpec.page_size_bytes)
    group_layers: int  # layers per KV cache group on the fullest stage: the tensors a block spans
    attention_groups: int  # KV cache groups of attention layers
    state_groups: int  # KV cache groups of linear-attention layers
    state_blocks: int = 1  # blocks a request holds in each linear group (1 + draft tokens)

    @property
    def padding(self) -> float:
        """Fraction the state page is padded by to reach the attention page."""
        return self.page_bytes / self.state_page_bytes - 1

    def blocks_for(self, tokens: int) -> int:
        """Blocks of the shared pool one request of `tokens` holds (every group)."""
        return self.attention_groups * ceil(max(1, tokens) / self.block_tokens) + self.state_groups * self.state_blocks

    def bytes_for(self, tokens: int) -> int:
        """Bytes one request of `tokens` holds on one GPU: its blocks x page x layers per group."""
        return self.blocks_for(tokens) * self.page_bytes * self.group_layers

    def note(self, tokens: int, per_token_bytes: int) -> str:
        """The assumption line: block size, padding, and one request at `tokens` against per-token paging."""
        return (f"vLLM hybrid pages: attention block {count(self.block_tokens)} tokens, linear-attention state page "
                f"{count(self.state_page_bytes)} B padded {self.padding:.1%} to {count(self.page_bytes)} B per GPU "
                f"(vLLM HybridAttentionMambaModelConfig); {self.attention_groups} attention + {self.state_groups} "
                f"state groups of {self.group_layers} layers share one block pool, so a {count(tokens)}-token request "
                f"holds {self.blocks_for(tokens)} blocks = {mb(self.bytes_for(tokens))} per GPU "
                f"(per-token KV + state would be {mb(per_token_bytes)})")


def kernel_alignment(spec: ModelSpec, arch: str) -> int:
    """Tokens the attention block must be a multiple of (module docstring); `arch` is the accelerator's, 'SM100'."""
    if spec.attention == "mla":
        return ALIGN_TOKENS_MLA
    sm = re.search(r"SM(\d+)", arch or "")
    return ALIGN_TOKENS_SM100_HEAD256 if sm and sm.group(1) == "100" and spec.head_dim == 256 else ALIGN_TOKENS


def state_page_bytes(spec: ModelSpec, layout: KVLayout, tp: int, spec_tokens: int = 0) -> int:
    """One linear layer's state of one request on one GPU of a TP group, as vLLM shapes it (module docstring)."""
    t = min(max(tp, 1), layout.state_tp_heads)
    kernel, conv_b = spec.linear_conv_kernel, STATE_DTYPE_BYTES.get(spec.native_dtype, 2)
    rec_b = STATE_DTYPE_BYTES.get(spec.linear_state_dtype or spec.native_dtype, 2)
    hk, dk = spec.linear_num_key_heads, spec.linear_key_head_dim
    hv, dv = spec.linear_num_value_heads, spec.linear_value_head_dim
    if spec.architecture == "nemotron_h":  # Mamba-2: G = hk groups of n = dk, H = hv heads of p = dv
        groups = hk + (t - hk if hk % t else 0)
        conv = (kernel - 1) * ceil((hv * dv + 2 * groups * dk) / t) * conv_b
        return conv + ceil(hv / t) * dv * dk * rec_b
    if spec.architecture == "kimi_linear":  # KDA: q, k, v conv states, float32 recurrent state
        return 3 * (kernel - 1) * ceil(hv * dv / t) * conv_b + ceil(hv / t) * dv * dv * KDA_RECURRENT_BYTES
    conv = (kernel - 1 + spec_tokens) * ceil((2 * hk * dk + hv * dv) / t) * conv_b  # Gated DeltaNet
    return conv + ceil(hv / t) * dk * dv * rec_b


def block_tokens(state_page: int, token_bytes: int, align: int, chunk: int | None = None) -> int:
    """vLLM's attention block size: the fewest aligned tokens whose page holds one state page (module docstring);
    with prefix caching (`chunk`: the mamba block or kernel chunk size) a multiple of lcm(chunk, align)."""
    if chunk:
        step = lcm(chunk, align)
        return step * ceil(ceil(state_page / token_bytes) / step)
    return align * ceil(state_page / (align * token_bytes))


def vllm_hybrid_pages(spec: ModelSpec, layout: KVLayout, tp: int, *, arch: str = "", min_block_tokens: int = 1,
                      layers_fraction: float = 1.0, spec_tokens: int = 0) -> HybridPages | None:
    """The page geometry vLLM gives a model with linear-attention layers on one GPU of a `tp` group (None for a model
    without them). `min_block_tokens`: the engine's --block-size, kept where it is larger; `layers_fraction`: the
    fullest pipeline stage's share of the layers; `spec_tokens`: draft tokens per step."""
    attention = layout.full_layers + layout.sliding_layers
    if not layout.linear_layers or not attention or layout.compressed:
        return None
    token_bytes = layout.per_gpu_layer_bytes(tp, spec.num_kv_heads)
    state = state_page_bytes(spec, layout, tp, spec_tokens)
    block = max(min_block_tokens, block_tokens(state, token_bytes, kernel_alignment(spec, arch)))
    size = min(attention, layout.linear_layers)
    return HybridPages(block_tokens=block, page_bytes=block * token_bytes, state_page_bytes=state,
                       group_layers=ceil(size * layers_fraction - 1e-9), attention_groups=ceil(attention / size),
                       state_groups=ceil(layout.linear_layers / size), state_blocks=1 + spec_tokens)
