"""Model specs: one frozen dataclass built from a Hugging Face `config.json` of a supported type.

`model_spec_from_config(config, name=..., file=...)` reads the fields each architecture uses (the same names
transformers' own config classes read) and rejects unknown `model_type`s and missing fields with a one-line
PlannerError. Everything downstream (tensor inventory, bytes, KV cache, op records) reads only this spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from planner.base.errors import PlannerError
from planner.base.frozen import hash_once, state_without_hash
from planner.model.config_fields import Fields as _Fields
from planner.model.config_fields import config_dtype as _dtype
from planner.model.families import DSA_TYPES, NOT_MODELLED, dsa, glm4_moe, gpt_oss, minimax_m2, qwen_next
from planner.model.families_deepseek_v4 import DeepseekV4Spec, deepseek_v4
from planner.model.families_gemma4 import gemma4
from planner.model.families_hybrid import kimi_linear
from planner.model.families_llama4 import llama4
from planner.model.families_mimo import mimo_v2_flash
from planner.model.families_minimax import minimax_m3
from planner.model.families_nemotron import block_count, nemotron_h
from planner.model.families_step import step3p7

SUPPORTED_MODEL_TYPES = (
    "deepseek_v3", "kimi_k2", "kimi_k25", "deepseek_v2", "qwen3_moe", "qwen2_moe",
    "mixtral", "llama", "qwen3", "gpt_oss", "glm4_moe",
    "deepseek_v32", "glm_moe_dsa", "qwen3_next", "qwen3_5_moe", "minimax_m2",
    "kimi_linear", "kimi_k3", "llama4", "llama4_text", "nemotron_h", "gemma4", "gemma4_text", "minimax_m3",
    "minimax_m3_vl", "mimo_v2_flash", "step3p7", "deepseek_v4",
)
MLA_TYPES = ("deepseek_v3", "kimi_k2", "deepseek_v2", "deepseek_v32", "glm_moe_dsa")
# per-layer attention kinds (ModelSpec.attention_kinds) and FFN kinds (ModelSpec.ffn_kinds); "none": a Nemotron-H
# block that holds only a feed-forward (no token mixer) or only a token mixer (no feed-forward)
ATTENTION_KINDS = ("gqa", "sliding", "gqa_sparse", "mla", "mla_dsa", "linear_gdn", "linear_kda", "linear_mamba",
                   "csa", "hca", "none")
# MiniMax-M3 block-sparse layers; DeepSeek-V4 compressed layers (CSA 4x with an indexer, HCA 128x)
_KIND_OF_TYPE = {"sliding_attention": "sliding", "sparse_attention": "gqa_sparse",
                 "compressed_sparse_attention": "csa", "heavily_compressed_attention": "hca"}
FFN_KINDS = ("dense", "moe", "none")


@dataclass(frozen=True)
class VisionSpec:
    """MoonViT vision tower + patch-merger projector (Kimi K2.5 `vision_config`)."""

    hidden: int  # vt_hidden_size
    intermediate: int  # vt_intermediate_size
    layers: int  # vt_num_hidden_layers
    patch: int  # patch_size (square patches, 3 input channels)
    pos_emb_hw: tuple[int, int]  # init_pos_emb_height, init_pos_emb_width: learned 2-D position table
    merge: tuple[int, int]  # merge_kernel_size: patches merged into one token by the projector
    mm_hidden: int  # mm_hidden_size: projector input width per patch
    text_hidden: int  # text_hidden_size: projector output width


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of one language model; sizes are element counts, not bytes."""

    name: str  # profile name or config path
    model_type: str  # normalized HF model_type (kimi_k25 text model -> kimi_k2)
    architecture: str  # family the planner models it as: deepseek_v3, qwen3_moe, llama, ...
    vocab_size: int  # rows of embed_tokens and lm_head
    hidden_size: int  # d_model
    num_layers: int  # decoder layers of the language model (MTP layers not included)
    num_heads: int  # attention (query) heads
    num_kv_heads: int  # KV heads (GQA); for MLA the heads the latent is expanded to
    head_dim: int  # per-head width of q/k/v for GQA models (MLA: qk_nope + qk_rope)
    tie_word_embeddings: bool  # lm_head shares the embedding matrix
    native_dtype: str  # torch_dtype / dtype of the unquantized checkpoint tensors
    # attention
    attention: str  # "mla" | "gqa"
    q_lora_rank: int | None  # MLA query compression rank; None = plain q_proj
    kv_lora_rank: int  # MLA latent width (0 for GQA)
    qk_nope_head_dim: int  # MLA per-head non-rotary q/k width
    qk_rope_head_dim: int  # MLA rotary width (shared k_pe of one head)
    v_head_dim: int  # MLA per-head value width; GQA: V narrower than K (MiMo-V2-Flash 128 vs 192), 0 = head_dim
    qkv_bias: bool  # q/k/v projections carry a bias
    o_bias: bool  # output projection carries a bias
    qk_norm: bool  # per-head RMSNorm on q and k (Qwen3, GLM-4.5 use_qk_norm)
    attention_sinks: bool  # one learned sink logit per head (gpt-oss; MiMo-V2-Flash: on its sliding layers)
    layer_types: tuple[str, ...]  # per layer: "full_attention" | "sliding_attention" (also Llama 4 chunked layers) |
    # "linear_attention" | "sparse_attention" (MiniMax-M3 block-sparse) | "none" (a Nemotron-H feed-forward block)
    sliding_window: int | None  # tokens kept by sliding-window layers
    # feed-forward
    intermediate_size: int  # dense MLP width
    mlp_bias: bool  # dense MLP projections carry a bias (Llama mlp_bias)
    moe_layers: tuple[bool, ...]  # per layer: routed-expert MoE (True) or dense MLP (False)
    n_routed_experts: int  # routed experts per MoE layer
    experts_per_token: int  # top-k
    moe_intermediate_size: int  # width of one routed expert
    n_shared_experts: int  # shared experts (DeepSeek counts them as a multiple of moe_intermediate)
    shared_intermediate_size: int  # total width of the shared-expert MLP (0 = none)
    shared_expert_gate: bool  # Qwen2-MoE sigmoid gate on the shared expert, Linear(h, 1)
    router_score_bias: bool  # e_score_correction_bias buffer (noaux_tc routing), float32
    router_linear_bias: bool  # router Linear has a bias (gpt-oss)
    expert_bias: bool  # routed expert projections carry biases (gpt-oss)
    gate_up_fused: bool  # checkpoint stores gate and up of experts as one tensor
    # extras stored beside the language model
    mtp_layers: int  # num_nextn_predict_layers (DeepSeek/GLM multi-token prediction)
    vision: VisionSpec | None  # vision tower (Kimi K2.5)
    max_context: int | None = None  # max_position_embeddings: longest context the model is configured for
    # DeepSeek sparse attention (DSA, DeepSeek-V3.2 / GLM-5; MiniMax-M3 on its "sparse_attention" layers, bf16 key): a
    # lightning indexer scores every cached token with its own key and attention reads only the index_topk best
    index_n_heads: int = 0  # indexer query heads (64 in DeepSeek-V3.2); 0 = no indexer
    index_head_dim: int = 0  # indexer key/query width (128): its key cache holds one such vector per token
    index_topk: int = 0  # tokens each query attends to (2048)
    # Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5: layer_types "linear_attention"): per request a fixed
    # conv state and recurrent state instead of a growing cache
    linear_num_key_heads: int = 0  # q/k heads of the linear layers
    linear_num_value_heads: int = 0  # v heads (one dv x dk recurrent state each)
    linear_key_head_dim: int = 0  # dk
    linear_value_head_dim: int = 0  # dv
    linear_conv_kernel: int = 0  # causal short-convolution width (the conv state keeps kernel - 1 inputs)
    linear_state_dtype: str = ""  # recurrent-state dtype (Qwen3.5 mamba_ssm_dtype float32 -> "fp32"); "" = native
    attn_output_gate: bool = False  # full-attention q_proj also emits a per-channel sigmoid gate (2x wide)
    qk_norm_full: bool = False  # q/k RMSNorm over all heads at once (MiniMax-M2 qk_norm_type per_layer)
    # Kimi-K3 (kimi_linear text model; planner.model.families_hybrid): fields transformers 5.25 does not build
    linear_full_rank_gate: bool = False  # KDA output gate is one g_proj [H d, h] (use_full_rank_gate), not g_a/g_b
    mla_output_gate: bool = False  # MLA output gated by g_proj [heads x v_head_dim, h] (mla_use_output_gate)
    latent_expert_size: int = 0  # routed experts run at this width (routed_expert_hidden_size); 0 = hidden_size
    latent_expert_norm: bool = False  # RMSNorm of width latent_expert_size in the latent MoE (latent_moe_use_norm)
    # Nemotron-H (planner.model.families_nemotron): blocks of ONE sublayer each, Mamba-2 state in the linear_* fields
    block_pattern: str = ""  # hybrid_override_pattern, one char per layer: M Mamba-2, * attention, - MLP, E MoE
    mlp_gated: bool = True  # MLPs and experts have gate, up and down (SwiGLU); False: up and down only (relu2)
    linear_conv_bias: bool = False  # Mamba-2 conv1d has a bias (use_conv_bias)
    linear_proj_bias: bool = False  # Mamba-2 in_proj / out_proj have biases (use_bias)
    # Gemma 4 (planner.model.families_gemma4): full-attention layers with their own head geometry
    full_head_dim: int = 0  # head width of the full-attention layers (global_head_dim 512); 0 = head_dim
    full_kv_heads: int = 0  # KV heads of the full-attention layers (num_global_key_value_heads); 0 = num_kv_heads
    full_k_eq_v: bool = False  # full-attention layers have no v_proj: V is K (attention_k_eq_v)
    deepseek_v4: DeepseekV4Spec | None = None  # compress ratios, grouped o_proj, hyper-connections, hash routing
    head_gate: bool = False  # attention output gated per head by sigmoid(g_proj [heads, h]) (Step-3.7-Flash)

    __hash__ = hash_once  # hashed once: every per-scenario cache key holds a spec
    __getstate__ = state_without_hash

    def attention_kind(self, i: int) -> str:
        """Attention kind of decoder layer i (MTP layers, i >= num_layers, take the last full-attention kind)."""
        lt = self.layer_types[i] if i < self.num_layers else "full_attention"
        if lt == "none":
            return "none"
        if lt == "linear_attention":
            return {"kimi_linear": "linear_kda", "nemotron_h": "linear_mamba"}.get(self.architecture, "linear_gdn")
        if lt in _KIND_OF_TYPE:
            return _KIND_OF_TYPE[lt]
        if self.attention == "mla":
            return "mla_dsa" if self.index_topk else "mla"
        return "gqa"

    @property
    def attention_kinds(self) -> tuple[str, ...]:
        """Per layer: one of ATTENTION_KINDS."""
        return tuple(self.attention_kind(i) for i in range(self.num_layers))

    @property
    def ffn_kinds(self) -> tuple[str, ...]:
        """Per layer: "moe" (routed experts), "dense" (one MLP) or "none" (a Nemotron-H mixer block)."""
        if self.block_pattern:
            return tuple({"E": "moe", "-": "dense"}.get(c, "none") for c in self.block_pattern)
        return tuple("moe" if m else "dense" for m in self.moe_layers)

    def weight_kind(self, i: int) -> str:
        """Which layers' weights op records look up for layer i: "moe" or "dense" by its FFN; a Nemotron-H mixer
        block (no FFN) counts with the MoE layers of an MoE model, as the attention of other MoE models does."""
        if self.moe_layers[i]:
            return "moe"
        return "moe" if self.block_pattern and self.is_moe and self.block_pattern[i] != "-" else "dense"

    @property
    def layer_kind_counts(self) -> dict[str, dict[str, int]]:
        """Layers per attention kind and per FFN kind (kinds with no layer left out)."""
        att, ffn = self.attention_kinds, self.ffn_kinds
        return {"attention": {k: att.count(k) for k in ATTENTION_KINDS if k in att},
                "ffn": {k: ffn.count(k) for k in FFN_KINDS if k in ffn}}

    @cached_property  # frozen dataclass: the value goes to the instance's __dict__ once (the op records ask per step)
    def num_linear_layers(self) -> int:
        return sum(t == "linear_attention" for t in self.layer_types)

    @cached_property
    def num_mixerless_layers(self) -> int:
        """Nemotron-H feed-forward blocks: no token mixer (0 for decoder layers)."""
        return sum(t == "none" for t in self.layer_types)

    @property
    def num_moe_layers(self) -> int:
        return sum(self.moe_layers)

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0 and self.num_moe_layers > 0

    @property
    def qk_head_dim(self) -> int:
        """MLA query/key head width = qk_nope_head_dim + qk_rope_head_dim (128 + 64 = 192 for DeepSeek-V3)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def kv_latent_elems_per_layer(self) -> int:
        """MLA cache per token per layer: kv_lora_rank + qk_rope_head_dim (512 + 64 = 576 for DeepSeek-V3/Kimi)."""
        return self.kv_lora_rank + self.qk_rope_head_dim


# wrapper model_type -> the model_type of its language model under text_config. Only Kimi K2.5's MoonViT tower is
# counted (params.vision); the towers of Qwen3.5, Kimi-K3 (MoonViT-v2), Llama 4 and Gemma 4 are not yet (vision 0)
TEXT_CONFIG_TYPES = {
    "kimi_k25": "kimi_k2",  # Kimi K2.5: a DeepSeek-V3 architecture, MoonViT under vision_config
    "qwen3_5_moe": "qwen3_5_moe_text",
    "kimi_k3": "kimi_linear",  # Kimi-K3: the kimi_linear text model
    "llama4": "llama4_text",
    "gemma4": "gemma4_text",
    "minimax_m3_vl": "minimax_m3",
    "step3p7": "step3p7",  # Step-3.7-Flash: text_config, or flat (aiconfigurator)
}
# readers in their own modules, each (fields, config, layers, file, prefix) -> field dict
FAMILY_READERS = {"kimi_linear": kimi_linear, "llama4_text": llama4, "nemotron_h": nemotron_h, "gemma4_text": gemma4,
                  "minimax_m3": minimax_m3, "mimo_v2_flash": mimo_v2_flash, "step3p7": step3p7,
                  "deepseek_v4": deepseek_v4}


def model_spec_from_config(config: Mapping[str, Any], *, name: str, file: str) -> ModelSpec:
    """Build a ModelSpec from an HF config mapping (top level of config.json)."""
    if not isinstance(config, Mapping):
        raise PlannerError("config must be a mapping", file=file)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PlannerError(
            f"unsupported model_type {model_type!r}"
            f"{f' ({NOT_MODELLED[model_type]})' if model_type in tuple(NOT_MODELLED) else ''}; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
            file=file, field="model_type",
        )
    vision = None
    prefix = ""
    cfg = config
    if model_type in TEXT_CONFIG_TYPES:
        # multimodal wrappers: the language model sits under text_config (see TEXT_CONFIG_TYPES)
        cfg = config.get("text_config", config if model_type == "step3p7" else None)
        if not isinstance(cfg, Mapping):
            raise PlannerError("missing required field", file=file, field="text_config")
        prefix = "text_config." if cfg is not config else ""
        if model_type == "kimi_k25":
            vision = _moonvit(config.get("vision_config"), file)
        model_type = TEXT_CONFIG_TYPES[model_type]
    return _build(cfg, model_type, name=name, file=file, prefix=prefix, vision=vision)


def _moonvit(vcfg: Any, file: str) -> VisionSpec | None:
    if vcfg is None:
        return None
    if not isinstance(vcfg, Mapping):
        raise PlannerError("expected a mapping", file=file, field="vision_config")
    f = _Fields(vcfg, file, "vision_config.")
    merge = vcfg.get("merge_kernel_size", [2, 2])
    if not (isinstance(merge, list) and len(merge) == 2 and all(isinstance(m, int) and m > 0 for m in merge)):
        raise PlannerError("expected two positive integers", file=file, field="vision_config.merge_kernel_size")
    return VisionSpec(
        hidden=f.int("vt_hidden_size"),
        intermediate=f.int("vt_intermediate_size"),
        layers=f.int("vt_num_hidden_layers"),
        patch=f.int("patch_size"),
        pos_emb_hw=(f.int("init_pos_emb_height"), f.int("init_pos_emb_width")),
        merge=(merge[0], merge[1]),
        mm_hidden=f.int("mm_hidden_size", f.int("vt_hidden_size")),
        text_hidden=f.int("text_hidden_size"),
    )


def _build(cfg: Mapping[str, Any], model_type: str, *, name: str, file: str, prefix: str,
           vision: VisionSpec | None) -> ModelSpec:
    f = _Fields(cfg, file, prefix)
    hidden = f.int("hidden_size")
    layers = block_count(cfg, file, prefix) if model_type == "nemotron_h" else f.int("num_hidden_layers")
    heads = f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", heads)
    if heads % kv_heads:
        raise f._err("num_key_value_heads", f"{kv_heads} does not divide num_attention_heads {heads}")
    # transformers' default head_dim is hidden // heads: 0 when there are more heads than hidden units
    if model_type not in MLA_TYPES and cfg.get("head_dim") is None and hidden < heads:
        raise f._err("num_attention_heads", f"{heads} heads leave hidden_size {hidden} a head_dim of 0; "
                                            "give head_dim or fewer heads")
    base: dict[str, Any] = dict(
        name=name, model_type=model_type, architecture=model_type, vocab_size=f.int("vocab_size"),
        hidden_size=hidden, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=f.int("head_dim", hidden // heads),
        tie_word_embeddings=f.bool("tie_word_embeddings", False), native_dtype=_dtype(cfg),
        attention="gqa", q_lora_rank=None, kv_lora_rank=0, qk_nope_head_dim=0, qk_rope_head_dim=0, v_head_dim=0,
        qkv_bias=f.bool("attention_bias", False), o_bias=False, qk_norm=False, attention_sinks=False,
        layer_types=("full_attention",) * layers, sliding_window=None,
        intermediate_size=f.int("intermediate_size", 0, minimum=0), mlp_bias=False,
        moe_layers=(False,) * layers, n_routed_experts=0, experts_per_token=0, moe_intermediate_size=0,
        n_shared_experts=0, shared_intermediate_size=0, shared_expert_gate=False, router_score_bias=False,
        router_linear_bias=False, expert_bias=False, gate_up_fused=False, mtp_layers=0, vision=vision,
        max_context=f.int("max_position_embeddings", None),
    )
    if model_type in MLA_TYPES:
        base.update(_mla(f, cfg, model_type, layers))
    elif model_type in ("qwen3_moe", "qwen2_moe"):
        base.update(_qwen_moe(f, model_type, layers))
    elif model_type == "mixtral":
        # transformers MixtralAttention has no biases whatever attention_bias says
        base.update(qkv_bias=False, moe_layers=(True,) * layers, n_routed_experts=f.int("num_local_experts"),
                    experts_per_token=f.int("num_experts_per_tok"), moe_intermediate_size=f.int("intermediate_size"))
    elif model_type == "llama":
        base.update(o_bias=f.bool("attention_bias", False), mlp_bias=f.bool("mlp_bias", False))
        f.int("intermediate_size")
    elif model_type == "qwen3":
        base.update(qk_norm=True, o_bias=f.bool("attention_bias", False))
        f.int("intermediate_size")
    elif model_type == "gpt_oss":
        base.update(gpt_oss(f, cfg, layers, file, prefix))
    elif model_type == "glm4_moe":
        base.update(glm4_moe(f, layers))
    elif model_type in ("qwen3_next", "qwen3_5_moe_text"):
        base.update(_qwen_moe(f, "qwen2_moe", layers))  # the MoE block is Qwen2-MoE's (gated shared expert)
        base.update(qwen_next(f, cfg, layers, model_type, file, prefix))
    elif model_type == "minimax_m2":
        base.update(minimax_m2(f, layers))
    elif model_type in FAMILY_READERS:
        base.update(FAMILY_READERS[model_type](f, cfg, layers, file, prefix))
    if model_type in DSA_TYPES:
        base.update(dsa(f))
    spec = ModelSpec(**base)
    if spec.is_moe and spec.experts_per_token > spec.n_routed_experts:
        raise f._err("num_experts_per_tok", f"{spec.experts_per_token} exceeds the {spec.n_routed_experts} experts")
    return spec


def _mla(f: _Fields, cfg: Mapping[str, Any], model_type: str, layers: int) -> dict[str, Any]:
    """DeepSeek-V2/V3 and Kimi K2: MLA attention, fine-grained MoE with shared experts."""
    experts = f.int("n_routed_experts", 0, minimum=0)
    first_dense = f.int("first_k_dense_replace", 0, minimum=0)
    # transformers DeepseekV2/V3: MoE where layer_idx >= first_k_dense_replace (moe_layer_freq, 1 in every
    # published config, is not read by transformers and so not here either)
    moe = tuple(experts > 0 and i >= first_dense for i in range(layers))
    shared = f.int("n_shared_experts", 0, minimum=0)
    moe_inter = f.int("moe_intermediate_size") if experts else 0
    # noaux_tc routing keeps a float32 e_score_correction_bias per expert (DeepSeek-V3 / Kimi K2);
    # DeepSeek-V2's greedy / group_limited_greedy routing has none.
    score_bias = model_type != "deepseek_v2" or cfg.get("topk_method") == "noaux_tc"
    arch = {"deepseek_v2": "deepseek_v2", "deepseek_v32": "deepseek_v32", "glm_moe_dsa": "glm_moe_dsa"}
    nope, rope, v = f.int("qk_nope_head_dim"), f.int("qk_rope_head_dim"), f.int("v_head_dim")
    return dict(
        attention="mla", q_lora_rank=f.int("q_lora_rank", None), kv_lora_rank=f.int("kv_lora_rank"),
        qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=v, head_dim=nope + rope,
        o_bias=f.bool("attention_bias", False),
        architecture=arch.get(model_type, "deepseek_v3"),
        moe_layers=moe, n_routed_experts=experts, experts_per_token=f.int("num_experts_per_tok") if experts else 0,
        moe_intermediate_size=moe_inter, n_shared_experts=shared, shared_intermediate_size=shared * moe_inter,
        router_score_bias=bool(experts) and score_bias,
        mtp_layers=f.int("num_nextn_predict_layers", 0, minimum=0),
    )


def _qwen_moe(f: _Fields, model_type: str, layers: int) -> dict[str, Any]:
    """Qwen2-MoE / Qwen3-MoE: MoE where layer not in mlp_only_layers and (idx + 1) % decoder_sparse_step == 0."""
    experts = f.int("num_experts")
    step = f.int("decoder_sparse_step", 1)
    dense_only = set(f.int_list("mlp_only_layers"))
    moe = tuple(i not in dense_only and (i + 1) % step == 0 for i in range(layers))
    out: dict[str, Any] = dict(
        moe_layers=moe, n_routed_experts=experts, experts_per_token=f.int("num_experts_per_tok"),
        moe_intermediate_size=f.int("moe_intermediate_size"),
    )
    if model_type == "qwen3_moe":
        out.update(qk_norm=True, o_bias=f.bool("attention_bias", False))
    else:
        # Qwen2-MoE: q/k/v always carry a bias; one shared expert with its own width and a sigmoid gate.
        out.update(qkv_bias=True, shared_intermediate_size=f.int("shared_expert_intermediate_size", 0, minimum=0))
        out.update(n_shared_experts=1 if out["shared_intermediate_size"] else 0,
                   shared_expert_gate=bool(out["shared_intermediate_size"]))
    return out
