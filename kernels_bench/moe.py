"""The MoE block of one layer on one GPU in torch: DeepSeek/Kimi router, routed experts, shared expert.

Router (DeepSeek-V3 noaux_tc, Kimi K2): scores = sigmoid(x W_g^T) [T, E]; choice = scores + e_score_correction_bias;
group-limited top-k when n_group > 1; weights = scores at the chosen experts, normalized (norm_topk_prob) and
times routed_scaling_factor.
Routed experts (SwiGLU, El = ceil(E / ep) local): (token, expert) pairs sorted by expert, tokens gathered [P, h],
gate/up grouped GEMMs [P, I], silu(g) * u, down grouped GEMM [P, h], weighted scatter-add back to tokens.
Grouped GEMMs run `torch._grouped_mm` where torch has it (else a per-expert loop; `grouped_path` says which);
quantized experts are dequantized for the experts a step touches first. The reference is a gather-einsum over
each pair's own expert weights.
Routing for timing: random per iteration (uniform k-subsets, or Zipf popularity with exponent `skew` over a fixed
random expert order), drawn ahead for the stage's T x ep tokens; the pairs landing on the local experts are run.
The router still runs every iteration (its cost is real); its choice is replaced by the drawn one.
"""

from __future__ import annotations

from itertools import count

import torch
import torch.nn.functional as F

from kernels_bench import plan
from kernels_bench.mla import Stage, random_weight, rms_norm
from kernels_bench.qformats import QWeight, linear, quantize, try_enable_scaled_mm
from kernels_bench.timing import storage_bytes

HAS_GROUPED_MM = hasattr(torch, "_grouped_mm")
N_ROUTINGS = 4  # distinct random routings cycled through the timed iterations


class MoEBlock:
    def __init__(self, case: plan.Case, device: torch.device, dtype: torch.dtype = torch.bfloat16, seed: int = 0,
                 grouped: str = "auto"):
        sc = plan.scenario(case)
        s = sc.model.spec
        self.case, self.device, self.dtype = case, device, dtype
        self.e, self.k = s.n_routed_experts, s.experts_per_token
        self.local = -(-(self.e + sc.parallelism.redundant_experts) // case.ep)  # ceil: the fullest EP rank
        self.cfg = plan.router_config(case)
        self.use_grouped = HAS_GROUPED_MM if grouped == "auto" else grouped == "grouped_mm"
        gen = torch.Generator(device=device).manual_seed(seed)
        self.w: dict[str, QWeight] = {}
        self.paths: dict[str, str] = {}
        for t in plan.layer_tensors(case):
            if t.role.endswith(".bias"):
                raise ValueError(f"{case.model}: router/expert biases are not built by kernels_bench")
            storage = plan.storage_of(case, t)
            if t.component == "routed_experts":
                self.w[t.role] = random_weight((self.local, *t.shape), storage, device, gen)
            elif t.is_matrix:
                self.w[t.role] = random_weight(t.shape, storage, device, gen)
                self.paths[t.role] = try_enable_scaled_mm(self.w[t.role], device)
            elif t.role == "exp_probs_b":  # score-correction bias: small, as trained ones are
                self.w[t.role] = quantize(0.01 * torch.randn(t.shape, generator=gen, device=device), storage)
            else:
                self.w[t.role] = quantize(torch.ones(t.shape, device=device), storage)
        self.inter = self.w["ffn_gate_exps"].shape[-2]

    # ---------------------------------------------------------------- bookkeeping

    @property
    def path(self) -> str:
        experts = "native" if self.w["ffn_gate_exps"].native else "dequant"
        others = "dequant" if any(p.startswith("dequant") for p in self.paths.values()) else "native"
        grouped = "grouped_mm" if self.use_grouped else "loop"
        return f"{grouped}+{'dequant' if 'dequant' in (experts, others) else 'native'}"

    def tensors(self) -> list[torch.Tensor]:
        return [t for q in self.w.values() for t in q.tensors.values()]

    def weight_bytes(self) -> int:
        return storage_bytes(self.tensors())

    # ---------------------------------------------------------------- routing

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Router on normed x [T, h] -> expert ids [T, k], weights [T, k] (DeepSeek-V3 noaux_tc)."""
        logits = linear(x, self.w["ffn_gate_inp"]).float()  # [T, E]
        scores = logits.sigmoid() if self.cfg["scoring_func"] == "sigmoid" else logits.softmax(-1)
        choice = scores + self.w["exp_probs_b"].tensors["weight"].float() if "exp_probs_b" in self.w else scores
        g = self.cfg["n_group"]
        if g > 1:  # keep the topk_group groups with the best sum of their top-2 scores
            t = choice.shape[0]
            group_score = choice.view(t, g, -1).topk(2, -1).values.sum(-1)  # [T, g]
            keep = torch.zeros_like(group_score).scatter_(1, group_score.topk(self.cfg["topk_group"], -1).indices, 1)
            choice = choice.masked_fill(keep.repeat_interleave(self.e // g, 1) == 0, float("-inf"))
        ids = choice.topk(self.k, -1).indices  # [T, k]
        w = scores.gather(1, ids)  # [T, k]
        if self.cfg["norm_topk_prob"]:
            w = w / w.sum(-1, keepdim=True).clamp(min=1e-20)
        return ids, w * self.cfg["routed_scaling_factor"]

    def draw_routing(self, tokens: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random routing of `tokens` stage tokens: ids [T, k] over all E experts, weights [T, k]."""
        if self.case.skew > 0:  # Zipf popularity over a fixed random order of the experts
            order = torch.randperm(self.e, generator=gen, device=self.device)
            pop = (torch.arange(self.e, device=self.device, dtype=torch.float32) + 1) ** -self.case.skew
            probs = torch.empty_like(pop).scatter_(0, order, pop)
        else:
            probs = torch.ones(self.e, device=self.device)
        ids = torch.multinomial(probs.expand(tokens, self.e), self.k, replacement=False, generator=gen)  # [T, k]
        w = torch.rand(tokens, self.k, generator=gen, device=self.device) + 0.5
        return ids, w / w.sum(-1, keepdim=True) * self.cfg["routed_scaling_factor"]

    def local_pairs(self, ids: torch.Tensor, w: torch.Tensor) -> dict:
        """(token, local expert, weight) of the pairs this EP rank (experts 0..El-1) computes."""
        tok = torch.arange(ids.shape[0], device=ids.device).repeat_interleave(self.k)  # [T k]
        ids, w = ids.reshape(-1), w.reshape(-1)
        mine = ids < self.local
        return {"tok": tok[mine], "ids": ids[mine], "w": w[mine].to(self.dtype)}

    # ---------------------------------------------------------------- experts

    def _grouped(self, xs: torch.Tensor, role: str, counts: torch.Tensor) -> torch.Tensor:
        """xs [P, in] sorted by expert, counts [El] -> [P, out] through each pair's expert."""
        qw = self.w[role]
        if qw.native:
            w, used = qw.tensors["weight"].to(xs.dtype), counts  # [El, out, in] (a copy only for fp32 checks)
        else:  # dequantize only the experts this step touches
            touched = counts.nonzero().flatten()
            w, used = qw.dequant(self.dtype, touched), counts[touched]  # [Et, out, in]
        if self.use_grouped:
            offs = torch.cumsum(used, 0).to(torch.int32)  # [groups] group ends
            return torch._grouped_mm(xs, w.transpose(1, 2), offs=offs)  # [P, out]
        out = xs.new_empty(xs.shape[0], w.shape[1])
        start = 0
        for e, n in enumerate(used.tolist()):
            if n:
                out[start:start + n] = F.linear(xs[start:start + n], w[e])
            start += n
        return out

    def routed(self, x_src: torch.Tensor, pairs: dict) -> torch.Tensor:
        """Routed experts over `pairs` of source tokens x_src [Ts, h] -> [Ts, h]."""
        order = torch.argsort(pairs["ids"], stable=True)  # align: sort pairs by expert
        tok, w = pairs["tok"][order], pairs["w"][order]
        counts = torch.bincount(pairs["ids"], minlength=self.local)  # [El]
        xs = x_src.index_select(0, tok)  # [P, h] gather (permute)
        a = F.silu(self._grouped(xs, "ffn_gate_exps", counts)) * self._grouped(xs, "ffn_up_exps", counts)  # [P, I]
        y = self._grouped(a, "ffn_down_exps", counts)  # [P, h]
        return torch.zeros_like(x_src).index_add_(0, tok, y * w[:, None])  # [Ts, h] weighted scatter (unpermute)

    def reference(self, x_src: torch.Tensor, pairs: dict) -> torch.Tensor:
        """Gather-einsum: each pair multiplies its own expert's dequantized weights (no sorting, no grouping)."""
        uniq, inv = torch.unique(pairs["ids"], return_inverse=True)  # dequantize only the experts used
        g = self.w["ffn_gate_exps"].dequant(self.dtype, uniq)[inv]  # [P, I, h]
        u = self.w["ffn_up_exps"].dequant(self.dtype, uniq)[inv]  # [P, I, h]
        d = self.w["ffn_down_exps"].dequant(self.dtype, uniq)[inv]  # [P, h, I]
        xs = x_src[pairs["tok"]]  # [P, h]
        a = F.silu(torch.einsum("ph,pih->pi", xs, g)) * torch.einsum("ph,pih->pi", xs, u)  # [P, I]
        y = torch.einsum("pi,phi->ph", a, d) * pairs["w"][:, None]  # [P, h]
        return torch.zeros_like(x_src).index_add_(0, pairs["tok"], y)

    # ---------------------------------------------------------------- stages

    def _norm(self, st: dict) -> None:
        st["xn"] = rms_norm(st["x"], self.w["ffn_norm"].tensors["weight"], self.cfg["rms_norm_eps"])  # [T, h]

    def _router(self, st: dict) -> None:
        st["ids"], st["rw"] = self.route(st["xn"])

    def _routed(self, st: dict) -> None:
        pairs = st["routings"][next(st["turn"]) % len(st["routings"])] if st.get("routings") else \
            self.local_pairs(st["ids"], st["rw"])
        x_src = st["xn"] if self.case.ep == 1 else st["x_stage"]
        st["routed"] = self.routed(x_src, pairs)

    def _shared(self, st: dict) -> None:
        xn = st["xn"]
        if "ffn_gate_shexp" not in self.w:
            st["out"] = st["routed"][: xn.shape[0]]
            return
        a = F.silu(linear(xn, self.w["ffn_gate_shexp"])) * linear(xn, self.w["ffn_up_shexp"])  # [T, Is]
        y = linear(a, self.w["ffn_down_shexp"])  # [T, h]
        st["out"] = y + st["routed"][: xn.shape[0]] if self.case.ep == 1 else y  # EP: routed output goes back by comm

    def stages(self) -> list[Stage]:
        st: list[Stage] = [(("attn.ffn_norm",), self._norm), (("moe.router",), self._router),
                           (("moe.experts", "moe.permute_act"), self._routed)]
        if "ffn_gate_shexp" in self.w:
            st.append((("moe.shared",), self._shared))
        else:
            st.append((("moe.permute_act",), self._shared))
        return st

    def state(self, x: torch.Tensor, gen: torch.Generator, random_routing: bool = True) -> dict:
        """x [T, h] this GPU's tokens; with EP the stage's other tokens are drawn too (x_stage [T ep, h])."""
        st: dict = {"x": x, "turn": count()}
        stage_tokens = x.shape[0] * self.case.ep
        if self.case.ep > 1:
            st["x_stage"] = torch.randn(stage_tokens, x.shape[1], device=self.device, generator=gen).to(self.dtype)
        if random_routing:
            st["routings"] = [self.local_pairs(*self.draw_routing(stage_tokens, gen)) for _ in range(N_ROUTINGS)]
        return st

    def reference_error(self, tokens: int = 4, seed: int = 1) -> float:
        """max |grouped - gather-einsum| / max |reference| with the router's own choice on `tokens` tokens."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        x = torch.randn(tokens, self.w["ffn_norm"].shape[0], device=self.device, generator=gen).to(self.dtype)
        xn = rms_norm(x, self.w["ffn_norm"].tensors["weight"], self.cfg["rms_norm_eps"])
        ids, w = self.route(xn)
        pairs = self.local_pairs(ids, w)
        ref = self.reference(xn, pairs).float()
        got = self.routed(xn, pairs).float()
        return float((got - ref).abs().max() / ref.abs().max().clamp(min=1e-30))

    def touched(self, st: dict) -> float:
        """Mean local experts the drawn routings touch (the planner predicts this:
        planner.perf.ops.distinct_experts)."""
        rs = st.get("routings") or []
        return sum(len(torch.unique(r["ids"])) for r in rs) / max(len(rs), 1)
