"""Quantization formats: per-tensor rules that map each tensor of the inventory to a storage type.

Storage types (`profiles/storage_types.yaml`) say how one tensor of shape (rows, cols) is laid out:
value bits per weight, scale blocks, per-tensor metadata, or a ggml block (weights, bytes). A
format (`profiles/quant/<name>.yaml`) is an ordered rule list (first match wins) over tensor roles,
parts and layer conditions, plus what happens to 1-D tensors. `mixed-<x>bpw` is synthesized:
routed experts at x bits per weight, everything else as in the native checkpoint.

bytes(tensor) = ceil(rows*cols*bits/8) + ceil(rows/br)*ceil(cols/bc)*scale_bytes + extra   (scaled types)
bytes(tensor) = rows * cols / block_weights * bytes_per_block                              (ggml types)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from math import ceil, prod
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.frozen import hash_once, state_without_hash
from planner.base.yamlio import (
    PROFILES,
    check_keys,
    get_number,
    get_str,
    is_file,
    load_document,
    profile_names,
    require_mapping,
)
from planner.model.inventory import TensorGroup, tensor_inventory
from planner.model.spec import ModelSpec
from planner.model.stored import ExactWeights

QUANT_DIR = PROFILES / "quant"
STORAGE_FILE = PROFILES / "storage_types.yaml"


@dataclass(frozen=True)
class StorageType:
    """How one tensor is stored."""

    name: str  # e.g. bf16, fp8_block128, int4_g32, Q4_K
    bits: float  # value bits per weight (scaled types) or bpw of the ggml block (info)
    scale_block: tuple[int, int] | None  # (rows, cols) covered by one scale; cols 0 = whole row
    scale_bytes: int  # bytes of one scale
    tensor_extra_bytes: int  # per-tensor metadata (compressed-tensors weight_shape, global scales)
    block_weights: int  # ggml: weights per block along cols (0 = not a ggml type)
    bytes_per_block: int  # ggml: bytes per block
    fallback: str | None  # ggml: type used when cols is not a multiple of block_weights (llama.cpp)
    compute: str  # dtype the matmul runs in on hardware with that unit: bf16 | fp8 | int8 | fp4 | mxfp4
    row_meta_bytes: int = 0  # ggml: bytes once per row before its blocks (ik_llama.cpp KS/KL/KT row scale)
    fork: str | None = None  # ggml types only a fork's ggml defines (ik_llamacpp); None: ggml-org's, or not ggml

    def tensor_bytes(self, shape: tuple[int, ...]) -> int:
        # vectors are one row; a conv1d kernel [channels, 1, width] is channels x 1 rows of width
        rows, cols = (1, shape[0]) if len(shape) == 1 else (prod(shape[:-1]), shape[-1])
        if self.block_weights:
            return rows * ((cols // self.block_weights) * self.bytes_per_block + self.row_meta_bytes)
        value = ceil(rows * cols * self.bits / 8)
        scales = 0
        if self.scale_block:
            br, bc = self.scale_block
            scales = ceil(rows / br) * ceil(cols / (bc or cols)) * self.scale_bytes
        return value + scales + self.tensor_extra_bytes

    def fits(self, shape: tuple[int, ...]) -> bool:
        return not self.block_weights or shape[-1] % self.block_weights == 0


@lru_cache(maxsize=1)
def storage_types() -> dict[str, StorageType]:
    file = str(STORAGE_FILE)
    doc = require_mapping(load_document(STORAGE_FILE), file)
    check_keys(doc, ("source", "types", "ggml_source", "ggml_types", "ggml_fallback", "ik_ggml_source",
                     "ik_ggml_types"), file)
    out: dict[str, StorageType] = {}
    for name, t in require_mapping(doc.get("types"), file, "types").items():
        pre = f"types.{name}."
        t = require_mapping(t, file, pre[:-1])
        check_keys(t, ("bits", "scale_block", "scale_bytes", "tensor_extra_bytes", "compute", "layout"), file, pre)
        block = t.get("scale_block")
        if block is not None and not (isinstance(block, list) and len(block) == 2):
            raise PlannerError("expected [rows, cols]", file=file, field=f"{pre}scale_block")
        out[name] = StorageType(
            name, get_number(t, "bits", file, prefix=pre, minimum=1), tuple(block) if block else None,
            get_number(t, "scale_bytes", file, prefix=pre, default=0, integer=True, minimum=0),
            get_number(t, "tensor_extra_bytes", file, prefix=pre, default=0, integer=True, minimum=0),
            0, 0, None, get_str(t, "compute", file, prefix=pre))
    fallback = require_mapping(doc.get("ggml_fallback") or {}, file, "ggml_fallback")
    ggml = [("ggml_types", None, n, t) for n, t in require_mapping(doc.get("ggml_types"), file, "ggml_types").items()]
    ik = require_mapping(doc.get("ik_ggml_types") or {}, file, "ik_ggml_types")
    for key, fork, name, t in ggml + [("ik_ggml_types", "ik_llamacpp", n, t) for n, t in ik.items()]:
        pre = f"{key}.{name}."
        t = require_mapping(t, file, pre[:-1])
        check_keys(t, ("block_weights", "bytes_per_block", "row_meta_bytes", "compute"), file, pre)
        bw = get_number(t, "block_weights", file, prefix=pre, integer=True, minimum=1)
        bpb = get_number(t, "bytes_per_block", file, prefix=pre, integer=True, minimum=1)
        out[name] = StorageType(name, 8 * bpb / bw, None, 0, 0, bw, bpb, fallback.get(name),
                                get_str(t, "compute", file, prefix=pre, default="bf16"),
                                get_number(t, "row_meta_bytes", file, prefix=pre, integer=True, default=0, minimum=0),
                                fork)
    return out


# ---------------------------------------------------------------- formats

RULE_KEYS = ("roles", "role_pattern", "parts", "type", "when", "note")
WHEN_KEYS = ("more_bits", "layer_lt_fraction", "layer_below", "dense_layer", "moe_layer", "min_experts",
             "max_experts", "min_gqa", "tied_embeddings", "every_nth")


@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...]  # exact roles matched (empty = any)
    role_pattern: str | None  # regex on the role
    parts: tuple[str, ...]  # parts matched (empty = any)
    when: tuple[tuple[str, Any], ...]  # layer/model conditions, all must hold
    type: str  # storage type name or "native"


@dataclass(frozen=True)
class QuantFormat:
    name: str  # profile name, e.g. int4-g32, gguf-q4_k_m
    family: str  # safetensors | gguf
    description: str  # one line for tables
    rules: tuple[Rule, ...]  # first match wins, for matrices
    matrix_default: str  # type for matrices no rule matches ("native" = checkpoint float dtype)
    vector_type: str  # type of 1-D tensors ("native" or f32)
    exclude_parts: tuple[str, ...]  # parts this format's files do not hold (GGUF: vision lives in mmproj)
    source: str  # where the layout comes from
    own_types: tuple[StorageType, ...] = ()  # types defined by the format itself (mixed-<x>bpw)
    # a checkpoint file standing in for this recipe (`weights: model.gguf`, planner.model.weights_file): its exact
    # bytes per tensor group replace the computed ones; the rules still give each tensor's storage and compute dtype
    exact: ExactWeights | None = None
    # (attn_k_b type, attn_v_b type): the GGUF holds DeepSeek's attn_kv_b [heads*(nope+v), kv_lora] beside its split
    # attn_k_b [heads*kv_lora, nope] and attn_v_b [heads*v, kv_lora] (ik_llama.cpp's convert, -mla 3 uses both);
    # their bytes are counted with attn_kv_b's group (as planner.model.weights_file does for a file's split tensors)
    mla_split: tuple[str, ...] = ()
    # engines that read this checkpoint layout (a loader of its own: SGLang's w4afp8); empty = every engine whose
    # profile loads the family (planner.deploy.engines.Engine.loads / type_refusal)
    engines: tuple[str, ...] = ()
    __hash__ = hash_once  # hashed once: inventory_bytes is cached per (format, model)
    __getstate__ = state_without_hash

    def _type(self, name: str) -> StorageType:
        for st in self.own_types:
            if st.name == name:
                return st
        return storage_types()[name]

    def storage_for(self, t: TensorGroup, spec: ModelSpec) -> StorageType:
        types = storage_types()
        if t.dtype != "native":  # a dtype the checkpoint keeps whatever the format (f32 score bias, i64 tid2eid)
            return types[t.dtype]
        if not t.is_matrix:
            return types[spec.native_dtype if self.vector_type == "native" else self.vector_type]
        chosen = self.matrix_default
        for rule in self.rules:
            if _matches(rule, t, spec):
                chosen = rule.type
                break
        return _fitted(self._type(spec.native_dtype if chosen == "native" else chosen), t.shape)

    def tensor_bytes(self, t: TensorGroup, spec: ModelSpec) -> int:
        """Stored bytes of tensor group `t` (all `t.count` tensors), scales and packing included."""
        if self.exact is not None:
            return _exact_bytes(self, spec)[t]
        split = 0
        if self.mla_split and t.role == "attn_kv_b":
            h, r = spec.num_heads, spec.kv_lora_rank
            split = sum(_fitted(self._type(n), shape).tensor_bytes(shape) for n, shape in
                        zip(self.mla_split, ((h * r, spec.qk_nope_head_dim), (h * spec.v_head_dim, r)), strict=True))
        return (self.storage_for(t, spec).tensor_bytes(t.shape) + split) * t.count

    @property
    def forks(self) -> frozenset[str]:
        """ggml forks whose own types the format names (ik_llamacpp): only engines reading them load it."""
        names = {r.type for r in self.rules} | {self.matrix_default, self.vector_type, *self.mla_split}
        return frozenset(self._type(n).fork for n in names if n != "native" and self._type(n).fork)

    def inventory_bytes(self, spec: ModelSpec) -> tuple[int, ...]:
        """tensor_bytes of every group of `tensor_inventory(spec)`, in its order (cached per format and model: the
        memory model places every tensor of every plan the sizing search tries)."""
        if self.exact is not None:
            _exact_bytes(self, spec)  # read for this model
            return self.exact.group_bytes
        return _inventory_bytes(self, spec)


def _fitted(st: StorageType, shape: tuple[int, ...]) -> StorageType:
    """`st`, or the type llama.cpp falls back to when the tensor's cols are not a multiple of its block."""
    types = storage_types()
    while not st.fits(shape):  # llama.cpp: "tensor cols N are not divisible by M, required for TYPE"
        st = types[st.fallback or "Q8_0"] if st.fallback != st.name else types["F16"]
    return st


@lru_cache(maxsize=512)
def _inventory_bytes(fmt: QuantFormat, spec: ModelSpec) -> tuple[int, ...]:
    return tuple(fmt.tensor_bytes(t, spec) for t in tensor_inventory(spec))


@lru_cache(maxsize=64)
def _exact_bytes(fmt: QuantFormat, spec: ModelSpec) -> dict[TensorGroup, int]:
    """A checkpoint's bytes by tensor group; only for the model whose inventory they were read against."""
    groups = tensor_inventory(spec)
    if len(groups) != len(fmt.exact.group_bytes):
        raise PlannerError(f"{fmt.exact.path} was read for {fmt.exact.model}, not {spec.name}", field="weights")
    return dict(zip(groups, fmt.exact.group_bytes, strict=True))


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp src/llama-quant.cpp use_more_bits: first and last eighth of layers, and every third in between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _matches(rule: Rule, t: TensorGroup, spec: ModelSpec) -> bool:
    if rule.roles and t.role not in rule.roles:
        return False
    if rule.role_pattern and not re.fullmatch(rule.role_pattern, t.role):
        return False
    if rule.parts and t.part not in rule.parts:
        return False
    return all(_condition(key, val, t, spec) for key, val in rule.when)


def _condition(key: str, val: Any, t: TensorGroup, spec: ModelSpec) -> bool:
    """One `when:` entry. Boolean keys hold when the fact equals `val`; numeric keys are thresholds."""
    n = spec.num_layers
    i = t.layer if t.layer is not None else 0
    moe = t.layer is not None and (t.layer >= n or spec.moe_layers[t.layer])  # MTP layers are MoE layers
    if key == "more_bits":
        return use_more_bits(i, n) == bool(val)
    if key == "dense_layer":
        return (t.layer is not None and not moe) == bool(val)
    if key == "moe_layer":
        return moe == bool(val)
    if key == "tied_embeddings":
        return spec.tie_word_embeddings == bool(val)
    if key == "layer_lt_fraction":
        return i < int(n * val)  # llama.cpp compares with integer division (i_layer < n_layer/16)
    if key == "layer_below":
        return i < val
    if key == "min_experts":
        return spec.n_routed_experts >= val
    if key == "max_experts":
        return spec.n_routed_experts <= val
    if key == "min_gqa":
        return spec.num_heads // spec.num_kv_heads >= val
    return i % val[0] == val[1]  # every_nth: [n, r]


def _rule(doc: Any, file: str, field: str) -> Rule:
    doc = require_mapping(doc, file, field)
    check_keys(doc, RULE_KEYS, file, field + ".")
    when = require_mapping(doc.get("when") or {}, file, f"{field}.when")
    check_keys(when, WHEN_KEYS, file, f"{field}.when.")
    type_ = get_str(doc, "type", file, prefix=field + ".")
    if type_ != "native" and type_ not in storage_types():
        raise PlannerError(f"unknown storage type {type_!r}", file=file, field=f"{field}.type")
    return Rule(tuple(doc.get("roles") or ()), doc.get("role_pattern"), tuple(doc.get("parts") or ()),
                tuple(when.items()), type_)


def list_formats() -> list[str]:
    return profile_names(QUANT_DIR)


_MIXED = re.compile(r"mixed-(\d+(?:\.\d+)?)bpw")


@lru_cache(maxsize=128)
def load_format(name: str) -> QuantFormat:
    """A format by profile name or path; `mixed-<x>bpw` is built from its name."""
    m = _MIXED.fullmatch(name)
    if m:
        bits = float(m.group(1))
        if not 1.0 <= bits <= 16.0:
            raise PlannerError(f"mixed bits per weight must be within 1-16, got {bits:g}", field="weights")
        st = StorageType(f"mixed_{bits:g}bpw", bits, None, 0, 0, 0, 0, None, "bf16")
        rule = Rule(("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), None, (), (), st.name)
        return QuantFormat(name, "safetensors", f"routed experts at an average {bits:g} bits per weight, "
                           "the rest as the native checkpoint", (rule,), "native", "native", (),
                           "mixed recipe: an average over the quantized tensors (CONTRACT.md §6)", (st,))
    # a name is a file stem in profiles/quant/ (`../quant/int4-g32` would leave the folder); a path ends in .yaml
    path = Path(name) if name.endswith((".yaml", ".yml")) else None if "/" in name or "\\" in name \
        else QUANT_DIR / f"{name}.yaml"
    if path is None or not is_file(path):
        raise PlannerError(f"unknown weight format {name!r}; known: {', '.join(list_formats())}, mixed-<x>bpw",
                           field="weights")
    file = str(path)
    doc = require_mapping(load_document(path), file)
    check_keys(doc, ("source", "description", "family", "rules", "matrix_default", "vector_type",
                     "exclude_parts", "notes", "mla_split", "engines"), file)
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise PlannerError("expected a list", file=file, field="rules")
    family = get_str(doc, "family", file)
    if family not in ("safetensors", "gguf"):
        raise PlannerError("expected safetensors or gguf", file=file, field="family")
    default = get_str(doc, "matrix_default", file, default="native")
    vector = get_str(doc, "vector_type", file, default="native")
    split = require_mapping(doc.get("mla_split") or {}, file, "mla_split")
    check_keys(split, ("attn_k_b", "attn_v_b"), file, "mla_split.")
    split = tuple(get_str(split, k, file, prefix="mla_split.") for k in ("attn_k_b", "attn_v_b")) if split else ()
    for field, val in (("matrix_default", default), ("vector_type", vector), *(("mla_split", v) for v in split)):
        if val != "native" and val not in storage_types():
            raise PlannerError(f"unknown storage type {val!r}", file=file, field=field)
    return QuantFormat(
        path.stem, family, get_str(doc, "description", file), tuple(_rule(r, file, f"rules[{k}]") for k, r in
                                                                    enumerate(rules)),
        default, vector, tuple(doc.get("exclude_parts") or ()), get_str(doc, "source", file), mla_split=split,
        engines=_engines(doc, file))


def _engines(doc: Mapping[str, Any], file: str) -> tuple[str, ...]:
    """`engines: [sglang, ...]`: the engines that load this layout (none given: any engine of its family)."""
    names = doc.get("engines") or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PlannerError("expected a list of engine profile names", file=file, field="engines")
    return tuple(names)


def native_format_name(config: Mapping[str, Any], spec: ModelSpec, file: str | None = None) -> str:
    """The format the official checkpoint stores, read from config.json's quantization_config."""
    nested = isinstance(config.get("text_config"), Mapping)
    cfg = config["text_config"] if nested else config
    key = "text_config.quantization_config" if nested and "quantization_config" in cfg else "quantization_config"
    q = cfg.get("quantization_config") or config.get("quantization_config")
    if q is not None and not isinstance(q, Mapping):  # a quantized checkpoint must not pass for a bf16 one
        raise PlannerError(f"expected a mapping, got {type(q).__name__}", file=file, field=key)
    if isinstance(q, Mapping):
        method = q.get("quant_method")
        if method == "fp8" and q.get("weight_block_size") == [128, 128]:
            # DeepSeek-V4: UE8M0 block scales and MXFP4 routed experts where expert_dtype is fp4 (vLLM
            # DeepseekV4FP8Config; transformers folds the top-level expert_dtype into quantization_config)
            fp4 = (q.get("expert_dtype") or cfg.get("expert_dtype")) == "fp4"
            return "mxfp4-fp8-block128" if fp4 and q.get("scale_fmt") == "ue8m0" else "fp8-block128"
        if method == "mxfp4":
            return "mxfp4"
        if method == "w4afp8":  # SGLang W4AFP8 (novita/Deepseek-V3.1-W4AFP8): INT4 experts, FP8 linears
            return "w4afp8"
        groups = q.get("config_groups")
        if method == "compressed-tensors" and not isinstance(groups, Mapping):
            raise PlannerError("expected a mapping of quantization groups", file=file, field=f"{key}.config_groups")
        if method == "compressed-tensors":
            for group in groups.values():
                w = group.get("weights") if isinstance(group, Mapping) else None
                if not isinstance(w, Mapping):
                    continue
                size = w.get("group_size")
                # 4-bit floats in groups of 32 with uint8 (E8M0) scales are MXFP4 (Kimi-K3: format
                # mxfp4-pack-quantized, weights type float, scale_dtype torch.uint8)
                if w.get("num_bits") == 4 and w.get("type") == "float" and size == 32:
                    return "mxfp4"
                if w.get("num_bits") == 4 and w.get("strategy") == "group" and type(size) is int \
                        and size in (32, 64, 128):
                    return f"int4-g{size}"
                if w.get("num_bits") == 4 and w.get("type") == "int" and w.get("strategy") == "channel":
                    return "int4-channel"
    return spec.native_dtype if spec.native_dtype in ("bf16", "fp16") else "bf16"
