"""MLA attention of one decoder layer on one TP rank in torch: naive prefill, weight-absorbed decode.

Shapes (Kimi K2.5 / DeepSeek-V3: h 7168, q_lora 1536, latent c 512, rope r 64, nope dn 128, v dv 128;
Hl = heads / tp; B sequences, S cached tokens each, T prompt tokens):
    x [T, h] -norm-> q_a [T, q_lora] -norm-> q_b [T, Hl, dn + r]
    x [T, h] -> kv_a [T, c + r] = latent c_kv [T, c] (RMSNorm) | shared rope key k_pe [T, r]; both go to the cache
    naive (prefill):   kv_b(c_kv) [T, Hl, dn + dv]; causal SDPA of q [Hl, T, dn + r], k [Hl, T, dn + r], v [Hl, T, dv]
    absorbed (decode): q_lat = q_nope W_UK [B, Hl, c]; scores over the latent cache [B, S, c + r];
                       o_lat [B, Hl, c]; o = o_lat W_UV [B, Hl, dv]
    o_proj: [T, Hl dv] -> [T, h]
W_UK [Hl, dn, c] and W_UV [Hl, dv, c] are views of kv_b [Hl (dn + dv), c] (dequantized when stored quantized).
The forward is a list of stages, each tagged with the planner op(s) it implements, so a stage can be timed alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kernels_bench import plan
from kernels_bench.qformats import QWeight, linear, quantize, try_enable_scaled_mm
from kernels_bench.timing import storage_bytes
from planner.deploy.placement import MLA_REPLICATED

Stage = tuple[tuple[str, ...], Callable[[dict], None]]
ROW_PARALLEL = {"attn_output"}  # input features split by TP; other TP-split matrices split their output rows


def random_weight(shape: tuple[int, ...], storage: str, device: torch.device, gen: torch.Generator,
                  chunk: int = 8) -> QWeight:
    """N(0, 1/in) weight stored as `storage`; stacked [E, out, in] weights are quantized `chunk` experts at a time."""
    def make(s):
        return torch.randn(s, generator=gen, device=device, dtype=torch.float32).mul_(s[-1] ** -0.5)
    if len(shape) < 3 or shape[0] <= chunk:
        return quantize(make(shape), storage)
    first = quantize(make((chunk, *shape[1:])), storage)
    full = {k: torch.empty((shape[0], *t.shape[1:]), dtype=t.dtype, device=device) for k, t in first.tensors.items()}
    for k, t in first.tensors.items():
        full[k][:chunk] = t
    for e in range(chunk, shape[0], chunk):
        part = quantize(make((min(chunk, shape[0] - e), *shape[1:])), storage)
        for k, t in part.tensors.items():
            full[k][e:e + t.shape[0]] = t
    return QWeight(storage, shape, full)


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


def rope_tables(positions: torch.Tensor, dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim)  # [r/2]
    ang = positions.float()[:, None] * inv[None, :]  # [T, r/2]
    return ang.cos(), ang.sin()


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate halves of the last dim; x [..., T, (heads,) r] with cos/sin [T, r/2] broadcast over heads."""
    half = x.shape[-1] // 2
    if x.dim() == cos.dim() + 1:  # [..., T, heads, r]
        cos, sin = cos[:, None, :], sin[:, None, :]
    a, b = x[..., :half].float(), x[..., half:].float()
    return torch.cat([a * cos - b * sin, a * sin + b * cos], -1).to(x.dtype)


class MLALayer:
    """Weights of one TP rank's MLA attention, built from the planner's inventory and storage choice."""

    def __init__(self, case: plan.Case, device: torch.device, dtype: torch.dtype = torch.bfloat16, seed: int = 0):
        sc = plan.scenario(case)
        s = sc.model.spec
        self.case, self.device, self.dtype = case, device, dtype
        self.tp = case.tp
        self.hl = s.num_heads // case.tp
        self.c, self.r, self.dn, self.dv = s.kv_lora_rank, s.qk_rope_head_dim, s.qk_nope_head_dim, s.v_head_dim
        self.q_lora = s.q_lora_rank
        cfg = plan.router_config(case)
        self.eps, self.theta = cfg["rms_norm_eps"], cfg["rope_theta"]
        self.scale = (self.dn + self.r) ** -0.5  # softmax scale 1/sqrt(qk_head_dim)
        gen = torch.Generator(device=device).manual_seed(seed)
        self.w: dict[str, QWeight] = {}
        self.paths: dict[str, str] = {}
        for t in plan.layer_tensors(case):
            if t.role.endswith(".bias"):
                raise ValueError(f"{case.model}: attention biases are not built by kernels_bench")
            shape = t.shape
            if t.is_matrix and t.role not in MLA_REPLICATED:
                out, inn = shape
                shape = (out, inn // case.tp) if t.role in ROW_PARALLEL else (out // case.tp, inn)
            storage = plan.storage_of(case, t)
            if t.is_matrix:
                self.w[t.role] = random_weight(shape, storage, device, gen)
                self.paths[t.role] = try_enable_scaled_mm(self.w[t.role], device)
            else:  # norm weights: ones
                self.w[t.role] = quantize(torch.ones(shape, device=device), storage)

    # ---------------------------------------------------------------- bookkeeping

    @property
    def path(self) -> str:
        """How the matmuls ran: native, scaled_mm, or dequant (dequantize-then-matmul) for any weight."""
        kinds = set(self.paths.values())
        return "dequant" if any(k.startswith("dequant") for k in kinds) else ("scaled_mm" if "scaled_mm" in kinds
                                                                             else "native")

    def tensors(self) -> list[torch.Tensor]:
        return [t for q in self.w.values() for t in q.tensors.values()]

    def weight_bytes(self) -> int:
        return storage_bytes(self.tensors())

    def new_cache(self, batch: int, tokens: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """Latent cache [B, S, c + r] filled with normal values (as if earlier tokens had been written)."""
        return torch.randn(batch, tokens, self.c + self.r, device=self.device, dtype=self.dtype, generator=gen)

    def _kvb(self) -> torch.Tensor:
        w = self.w["attn_kv_b"].dequant(self.dtype)  # [Hl (dn + dv), c]
        return w.view(self.hl, self.dn + self.dv, self.c)  # [Hl, dn + dv, c]

    # ---------------------------------------------------------------- stages shared by both forms

    def _norm(self, st: dict) -> None:
        st["xn"] = rms_norm(st["x"], self.w["attn_norm"].tensors["weight"], self.eps)  # [T, h]

    def _q_a(self, st: dict) -> None:
        cq = linear(st["xn"], self.w["attn_q_a"])  # [T, q_lora]
        st["cq"] = rms_norm(cq, self.w["attn_q_a_norm"].tensors["weight"], self.eps)

    def _q_b(self, st: dict) -> None:
        st["q"] = linear(st["cq"], self.w["attn_q_b"]).view(-1, self.hl, self.dn + self.r)  # [T, Hl, dn + r]

    def _q(self, st: dict) -> None:  # models without q_lora_rank
        st["q"] = linear(st["xn"], self.w["attn_q"]).view(-1, self.hl, self.dn + self.r)  # [T, Hl, dn + r]

    def _kv_a(self, st: dict) -> None:
        kv = linear(st["xn"], self.w["attn_kv_a_mqa"])  # [T, c + r]
        c_kv = rms_norm(kv[:, :self.c], self.w["attn_kv_a_norm"].tensors["weight"], self.eps)  # [T, c]
        k_pe = rope(kv[:, self.c:], st["cos"], st["sin"])  # [T, r]
        cache, pos = st["cache"], st["pos"]  # cache [B, S, c + r]
        if st["decode"]:  # one new token per sequence at position pos
            cache[:, pos, :self.c] = c_kv
            cache[:, pos, self.c:] = k_pe
        else:  # one sequence, prompt tokens at positions 0..T-1
            cache[0, :c_kv.shape[0], :self.c] = c_kv
            cache[0, :c_kv.shape[0], self.c:] = k_pe

    def _o_proj(self, st: dict) -> None:
        st["out"] = linear(st["o"].reshape(st["o"].shape[0], -1), self.w["attn_output"])  # [T, h]

    def _q_stages(self) -> list[Stage]:
        if self.q_lora:
            return [(("attn.q_a_proj",), self._q_a), (("attn.q_b_proj",), self._q_b)]
        return [(("attn.q_proj",), self._q)]

    # ---------------------------------------------------------------- absorbed decode

    def _absorb_q(self, st: dict) -> None:
        w_uk = self._kvb()[:, :self.dn, :]  # [Hl, dn, c]
        q_nope = st["q"][..., :self.dn].transpose(0, 1)  # [Hl, B, dn]
        st["q_lat"] = torch.bmm(q_nope, w_uk).transpose(0, 1)  # [B, Hl, c]

    def _attend_latent(self, st: dict) -> None:
        q_pe = rope(st["q"][..., self.dn:], st["cos"], st["sin"])  # [B, Hl, r]
        qc = torch.cat([st["q_lat"], q_pe], -1)  # [B, Hl, c + r]
        cache = st["cache"]  # [B, S, c + r]
        # cache-major products stream the cache contiguously (2x faster on CPU than [B, Hl, S] = q @ cache^T);
        # the output product runs over all c + r columns (a strided c-slice is 3x slower) and keeps the first c
        scores = torch.bmm(cache, qc.transpose(1, 2)).float() * self.scale  # [B, S, Hl]
        p = torch.softmax(scores, 1).to(self.dtype)
        st["o_lat"] = torch.bmm(p.transpose(1, 2), cache)[..., :self.c]  # [B, Hl, c]

    def _absorb_v(self, st: dict) -> None:
        w_uv = self._kvb()[:, self.dn:, :]  # [Hl, dv, c]
        o = torch.bmm(st["o_lat"].transpose(0, 1), w_uv.transpose(1, 2))  # [Hl, B, dv]
        st["o"] = o.transpose(0, 1)  # [B, Hl, dv]

    def decode_stages(self) -> list[Stage]:
        return [(("attn.norm",), self._norm), *self._q_stages(), (("attn.kv_a_proj",), self._kv_a),
                (("attn.absorb_uk_uv",), self._absorb_q), (("attn.mla_decode",), self._attend_latent),
                (("attn.absorb_uk_uv",), self._absorb_v), (("attn.o_proj",), self._o_proj)]

    def decode_state(self, x: torch.Tensor, cache: torch.Tensor) -> dict:
        """x [B, h] new tokens at the last cache position; cache [B, S, c + r]."""
        pos = cache.shape[1] - 1
        cos, sin = rope_tables(torch.tensor([pos], device=self.device), self.r, self.theta)  # [1, r/2]
        return {"x": x, "cache": cache, "pos": pos, "cos": cos, "sin": sin, "decode": True}

    # ---------------------------------------------------------------- naive prefill

    def _kv_b(self, st: dict) -> None:
        t = st["x"].shape[0]
        c_kv = st["cache"][0, :t, :self.c]  # [T, c]
        st["kv"] = linear(c_kv, self.w["attn_kv_b"]).view(t, self.hl, self.dn + self.dv)  # [T, Hl, dn + dv]

    def _attend_naive(self, st: dict) -> None:
        t = st["x"].shape[0]
        q = st["q"]  # [T, Hl, dn + r]
        q = torch.cat([q[..., :self.dn], rope(q[..., self.dn:], st["cos"], st["sin"])], -1)
        k_pe = st["cache"][0, :t, self.c:]  # [T, r] (roped when written)
        k = torch.cat([st["kv"][..., :self.dn], k_pe[:, None, :].expand(t, self.hl, self.r)], -1)  # [T, Hl, dn + r]
        v = st["kv"][..., self.dn:]  # [T, Hl, dv]
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [Hl, T, .]
        if self.device.type == "cuda":  # flash kernels: 4-D, one head dim (vLLM pads V the same way)
            q, k, v = q[None], k[None], F.pad(v, (0, self.dn + self.r - self.dv))[None]
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)  # [(1,) Hl, T, dv (padded)]
        st["o"] = o.reshape(-1, o.shape[-2], o.shape[-1])[..., :self.dv].transpose(0, 1)  # [T, Hl, dv]

    def prefill_stages(self) -> list[Stage]:
        return [(("attn.norm",), self._norm), *self._q_stages(), (("attn.kv_a_proj",), self._kv_a),
                (("attn.kv_b_proj",), self._kv_b), (("attn.mla_prefill",), self._attend_naive),
                (("attn.o_proj",), self._o_proj)]

    def prefill_state(self, x: torch.Tensor, cache: torch.Tensor) -> dict:
        """x [T, h] prompt of one sequence; cache [1, >= T, c + r]."""
        cos, sin = rope_tables(torch.arange(x.shape[0], device=self.device), self.r, self.theta)  # [T, r/2]
        return {"x": x, "cache": cache, "pos": 0, "cos": cos, "sin": sin, "decode": False}

    # ---------------------------------------------------------------- reference

    def naive_decode(self, st: dict) -> torch.Tensor:
        """Decode by decompressing the whole cache (no absorption): the reference for the absorbed form."""
        cache = st["cache"]  # [B, S, c + r]
        b, s = cache.shape[:2]
        kv = linear(cache[..., :self.c], self.w["attn_kv_b"]).view(b, s, self.hl, self.dn + self.dv)  # [B, S, Hl, .]
        k = torch.cat([kv[..., :self.dn], cache[:, :, None, self.c:].expand(b, s, self.hl, self.r)], -1)
        q = torch.cat([st["q"][..., :self.dn], rope(st["q"][..., self.dn:], st["cos"], st["sin"])], -1)  # [B, Hl, .]
        o = F.scaled_dot_product_attention(q[:, :, None, :], k.transpose(1, 2), kv[..., self.dn:].transpose(1, 2),
                                           scale=self.scale)  # [B, Hl, 1, dv]
        return linear(o.reshape(b, -1), self.w["attn_output"])  # [B, h]

    def reference_error(self, batch: int = 2, tokens: int = 64, seed: int = 1) -> float:
        """max |absorbed - naive| / max |naive| for one decode step over a random cache."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        x = torch.randn(batch, self.w["attn_norm"].shape[0], device=self.device, generator=gen).to(self.dtype)
        st = self.decode_state(x, self.new_cache(batch, tokens, gen))
        run(self.decode_stages(), st)
        ref = self.naive_decode(st).float()
        return float((st["out"].float() - ref).abs().max() / ref.abs().max().clamp(min=1e-30))


def run(stages: list[Stage], st: dict, only: tuple[str, ...] | None = None) -> None:
    """Run the stages in order (only those tagged `only`, when given)."""
    for ops, fn in stages:
        if only is None or ops == only:
            fn(st)


def components(stages: list[Stage]) -> list[tuple[str, ...]]:
    """Distinct stage tags in order: the ops a component case times together."""
    seen: list[tuple[str, ...]] = []
    for ops, _ in stages:
        if ops not in seen:
            seen.append(ops)
    return seen
