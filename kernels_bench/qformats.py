"""Weight storage in torch, byte for byte as the planner counts it (planner/model/quant.py,
profiles/storage_types.yaml).

    bf16          weight bf16 [out, in]
    fp8_block128  weight float8_e4m3fn [out, in] + weight_scale_inv float32 [ceil(out/128), ceil(in/128)]
                  (DeepSeek-V3 README_WEIGHTS.md: a weight is fp8 x the scale of its 128x128 block)
    int4_g32      weight_packed int32 [out, in/8] + weight_scale bf16 [out, in/32] + weight_shape int32 [2]
                  (compressed-tensors pack-quantized, symmetric: nibble = q + 8, value j of a word in bits 4j..4j+3)
    f32 / fp16    plain tensors (router score-correction bias; fp16 checkpoints)

Leading dimensions ([E, out, in] for the stacked routed experts of one layer) are carried through; the
stacked int4 `weight_shape` is int32 [E, 2], i.e. 8 B per expert as the planner counts per tensor.
Matmuls dequantize first (`QWeight.dequant`); fp8 uses `torch._scaled_mm` with block scales where
`fp8_scaled_mm_ok` says the GPU takes it (Hopper+), and `linear` reports which path ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import torch
import torch.nn.functional as F

FP8_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
FP8_BLOCK = 128  # DeepSeek/Kimi weight_block_size [128, 128]
INT4_GROUP = 32  # Kimi K2.5 compressed-tensors group_size
INT4_PER_WORD = 8  # 8 nibbles in one int32
STORAGES = ("bf16", "fp16", "f32", "fp8_block128", "int4_g32")
_TORCH = {"bf16": torch.bfloat16, "fp16": torch.float16, "f32": torch.float32}


@dataclass
class QWeight:
    """One (possibly stacked) weight in its storage format."""

    storage: str  # one of STORAGES
    shape: tuple[int, ...]  # logical [..., out, in]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> stored tensor
    scaled_mm: bool = False  # fp8 matmuls through torch._scaled_mm (set by the layer when the GPU supports it)

    def nbytes(self) -> int:
        """Bytes of everything stored (values, scales, shape metadata)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    @property
    def native(self) -> bool:
        """True when a matmul runs on the stored dtype without a dequantization pass."""
        return self.storage in ("bf16", "fp16", "f32") or (self.storage == "fp8_block128" and self.scaled_mm)

    def dequant(self, dtype: torch.dtype = torch.bfloat16, index: torch.Tensor | None = None) -> torch.Tensor:
        """Dense weight [..., out, in]; `index` selects along the leading (expert) dim first."""
        pick = (lambda t: t) if index is None else (lambda t: t.index_select(0, index))
        if self.storage in _TORCH:
            return pick(self.tensors["weight"]).to(dtype)
        if self.storage == "fp8_block128":
            return _fp8_dequant(pick(self.tensors["weight"]), pick(self.tensors["weight_scale_inv"]), dtype)
        return _int4_dequant(pick(self.tensors["weight_packed"]), pick(self.tensors["weight_scale"]), dtype)


def quantize(w: torch.Tensor, storage: str) -> QWeight:
    """Store a float weight [..., out, in] as `storage`."""
    shape = tuple(w.shape)
    if storage in _TORCH:
        return QWeight(storage, shape, {"weight": w.to(_TORCH[storage]).contiguous()})
    if storage == "fp8_block128":
        q, s = _fp8_quant(w)
        return QWeight(storage, shape, {"weight": q, "weight_scale_inv": s})
    if storage == "int4_g32":
        packed, scale = _int4_quant(w)
        meta = torch.tensor(shape[-2:], dtype=torch.int32, device=w.device).expand(*shape[:-2], 2).contiguous()
        return QWeight(storage, shape, {"weight_packed": packed, "weight_scale": scale, "weight_shape": meta})
    raise ValueError(f"storage {storage!r} not supported by kernels_bench (known: {', '.join(STORAGES)})")


def _blocks(w: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Zero-pad [..., out, in] to whole 128x128 blocks: [..., ob, 128, ib, 128]."""
    out, inn = w.shape[-2:]
    ob, ib = ceil(out / FP8_BLOCK), ceil(inn / FP8_BLOCK)
    padded = F.pad(w, (0, ib * FP8_BLOCK - inn, 0, ob * FP8_BLOCK - out))
    return padded.reshape(*w.shape[:-2], ob, FP8_BLOCK, ib, FP8_BLOCK), ob, ib


def _fp8_quant(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out, inn = w.shape[-2:]
    blocks, _, _ = _blocks(w.float())  # [..., ob, 128, ib, 128]
    scale = blocks.abs().amax(dim=(-3, -1)).clamp(min=1e-12) / FP8_MAX  # [..., ob, ib]
    q = (blocks / scale[..., :, None, :, None]).to(torch.float8_e4m3fn)  # [..., ob, 128, ib, 128]
    q = q.reshape(*w.shape[:-2], scale.shape[-2] * FP8_BLOCK, scale.shape[-1] * FP8_BLOCK)
    if q.shape[-2:] != (out, inn):  # drop the padding (clone: a row slice would keep the padded storage)
        q = q[..., :out, :inn].clone()
    return q.contiguous(), scale.contiguous()


def _fp8_dequant(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    out, inn = q.shape[-2:]
    if out % FP8_BLOCK == 0 and inn % FP8_BLOCK == 0:  # no padding: scale broadcast over a block view
        blocks = q.reshape(*q.shape[:-2], out // FP8_BLOCK, FP8_BLOCK, inn // FP8_BLOCK, FP8_BLOCK)
        return (blocks.to(dtype) * scale[..., :, None, :, None].to(dtype)).reshape(q.shape)
    full = scale.repeat_interleave(FP8_BLOCK, -2)[..., :out, :].repeat_interleave(FP8_BLOCK, -1)[..., :inn]
    return (q.to(torch.float32) * full).to(dtype)  # [..., out, in]


def _int4_quant(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out, inn = w.shape[-2:]
    if inn % INT4_GROUP:
        raise ValueError(f"int4_g32 needs in_features divisible by {INT4_GROUP}, got {inn}")
    groups = w.float().reshape(*w.shape[:-1], inn // INT4_GROUP, INT4_GROUP)  # [..., out, in/32, 32]
    scale = (groups.abs().amax(-1).clamp(min=1e-12) / 7.0).to(torch.bfloat16)  # [..., out, in/32]
    q = torch.round(groups / scale.float()[..., None]).clamp(-8, 7).to(torch.int64) + 8  # nibbles 0..15
    q = q.reshape(*w.shape[:-1], inn // INT4_PER_WORD, INT4_PER_WORD)  # [..., out, in/8, 8]
    shifts = torch.arange(0, 32, 4, device=w.device, dtype=torch.int64)  # value j -> bits 4j..4j+3
    words = (q << shifts).sum(-1)  # [..., out, in/8] as unsigned 32-bit values in int64
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # two's complement int32
    return words.contiguous(), scale.contiguous()


def _int4_dequant(packed: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    shifts = torch.arange(0, 32, 4, device=packed.device, dtype=torch.int32)
    nib = (packed.unsqueeze(-1) >> shifts) & 0xF  # [..., out, in/8, 8]
    vals = (nib.to(torch.int8) - 8).reshape(*packed.shape[:-1], packed.shape[-1] * INT4_PER_WORD)  # [..., out, in]
    groups = vals.reshape(*vals.shape[:-1], scale.shape[-1], INT4_GROUP).to(dtype)  # [..., out, in/32, 32]
    return (groups * scale.to(dtype)[..., None]).reshape(vals.shape)


# ---------------------------------------------------------------- matmuls

def fp8_scaled_mm_ok(device: torch.device) -> bool:
    """torch._scaled_mm with fp8 inputs needs compute capability 8.9 or newer (Ada, Hopper, Blackwell)."""
    if device.type != "cuda" or not hasattr(torch, "_scaled_mm"):
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


def _fp8_act(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token, per 128 channels (DeepGEMM's activation scaling): x [M, K] -> e4m3 [M, K], scales [M, K/128]."""
    m, k = x.shape
    g = x.float().reshape(m, k // FP8_BLOCK, FP8_BLOCK)  # [M, K/128, 128]
    s = g.abs().amax(-1).clamp(min=1e-12) / FP8_MAX  # [M, K/128]
    return (g / s[..., None]).to(torch.float8_e4m3fn).reshape(m, k), s


def _scaled_mm(x: torch.Tensor, w: QWeight) -> torch.Tensor:
    """[M, K] x fp8 [N, K] with 1x128 activation and 128x128 weight block scales (PyTorch blockwise scaling)."""
    xq, xs = _fp8_act(x)
    ws = w.tensors["weight_scale_inv"]  # [N/128, K/128]; its transpose [K/128, N/128] is column-major as required
    return torch._scaled_mm(xq, w.tensors["weight"].t(), scale_a=xs.t().contiguous().t(), scale_b=ws.t(),
                            out_dtype=torch.bfloat16)  # [M, N]


def linear(x: torch.Tensor, w: QWeight) -> torch.Tensor:
    """x [..., in] @ W^T -> [..., out]: native dtype, fp8 _scaled_mm when enabled, else dequantize-then-matmul."""
    if w.storage == "fp8_block128" and w.scaled_mm:
        flat = x.reshape(-1, x.shape[-1])
        return _scaled_mm(flat, w).reshape(*x.shape[:-1], w.shape[-2])
    return F.linear(x, w.dequant(x.dtype))


def try_enable_scaled_mm(w: QWeight, device: torch.device) -> str:
    """Turn on _scaled_mm for an fp8 weight when the GPU supports it and it agrees with the dequantized matmul.

    Returns the path the weight's matmuls take: "native", "scaled_mm" or "dequant" (with the reason when a
    _scaled_mm attempt failed)."""
    if w.storage != "fp8_block128":
        return "native" if w.native else "dequant"
    if not fp8_scaled_mm_ok(device) or w.shape[-1] % FP8_BLOCK or w.shape[-2] % FP8_BLOCK or len(w.shape) != 2:
        return "dequant"
    x = torch.randn(64, w.shape[-1], device=device, dtype=torch.bfloat16)
    try:
        got = _scaled_mm(x, w).float()
    except (RuntimeError, TypeError) as err:  # blockwise scaling not in this torch/cuBLAS
        return f"dequant (scaled_mm: {str(err).splitlines()[0][:80]})"
    ref = F.linear(x, w.dequant()).float()
    if (got - ref).abs().max() > 0.1 * ref.abs().max():
        return "dequant (scaled_mm disagreed with the dequantized matmul)"
    w.scaled_mm = True
    return "scaled_mm"
