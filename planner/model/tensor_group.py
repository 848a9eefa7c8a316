"""One group of same-shaped checkpoint tensors (TensorGroup) and the helpers the tensor inventories build groups with
(planner.model.inventory for decoder layers, planner.model.inventory_blocks for the block-structured hybrids).

Shapes are (out_features, in_features) for matrices (the in-dimension is where quantization blocks run, llama.cpp's
ne[0]) and (n,) for vectors (norms, biases, sinks).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class TensorGroup:
    """`count` tensors of one shape, role and placement."""

    name: str  # checkpoint-style name, `{L}` = layer index, `{E}` = expert index
    role: str  # GGUF-style tensor role, e.g. attn_q_b, ffn_up_exps, attn_norm
    component: str  # one of COMPONENTS (vision tensors: "vision")
    part: str  # language | mtp | vision
    layer: int | None  # decoder layer index (MTP layers continue after the last language layer)
    shape: tuple[int, ...]  # (out, in) for matrices, (n,) for vectors
    count: int = 1  # identical tensors in this group (routed experts of one layer)
    dtype: str = "native"  # native = checkpoint's float dtype; f32 / i64 whatever the format (score bias, tid2eid)

    @property
    def numel(self) -> int:
        return prod(self.shape) * self.count

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2


def linear(out: list, name: str, role: str, comp: str, part: str, layer: int | None,
           rows: int, cols: int, bias: bool = False, count: int = 1) -> None:
    out.append(TensorGroup(f"{name}.weight", role, comp, part, layer, (rows, cols), count))
    if bias:
        out.append(TensorGroup(f"{name}.bias", f"{role}.bias", comp, part, layer, (rows,), count))


def norm(out: list, name: str, role: str, comp: str, part: str, layer: int | None, n: int) -> None:
    out.append(TensorGroup(f"{name}.weight", role, comp, part, layer, (n,)))


def mlp(out: list, prefix: str, roles: tuple[str, str, str], comp: str, part: str, i: int,
        h: int, inter: int, bias: bool = False, count: int = 1, gated: bool = True) -> None:
    """A gated MLP (SwiGLU: gate, up, down), or up and down only where not `gated` (Nemotron-H's relu2)."""
    gate, up, down = roles
    if gated:
        linear(out, f"{prefix}.gate_proj", gate, comp, part, i, inter, h, bias, count)
    linear(out, f"{prefix}.up_proj", up, comp, part, i, inter, h, bias, count)
    linear(out, f"{prefix}.down_proj", down, comp, part, i, h, inter, bias, count)
