"""Step times for the serving simulator (planner.serving.sim): the step-time model of planner.perf.steps, evaluated
once per grid point and interpolated, so a run of thousands of steps costs a few dozen roofline evaluations.

One evaluation of `decode_step` costs about 1 ms (Kimi K2.5 on 8 x H200, this 2-core machine), `prefill_step` about
0.2 ms; a 1,000-request run takes about 20,000 steps, so every step cannot be evaluated. The table rests on two
properties of the roofline:

- context: a step's attention reads (decode) or computes (prefill) in proportion to the context, and every other
  op ignores it, so at a fixed batch the step time is linear in the context between two anchors (the roofline
  takes the max of compute and memory per op, so it is piecewise linear; the anchors span the run's contexts);
- batch and tokens: a grid of sizes 1, 2, 3, 4, 6, 8, 11, 16, ... (round(2^(k/2)), ratio sqrt(2)), linear
  interpolation between neighbours, plus the CUDA-graph limit and one above it as grid points, so the eager jump
  (planner.perf.steps.run_ops) is not smeared over an interval.

A mixed step (chunked prefill inside a decode step, vLLM and TRT-LLM) is a forward over the decode and prompt tokens
with the weights read once (planner.perf.steps.merge): its linear layers see b + T tokens, as a prefill of b + T
tokens does, and its attention adds the decode sequences' KV reads. So mixed(b, kv, T, c) = prefill(T + b, c) +
slope_kv(b) x kv, where slope_kv is the decode step's context slope. tests/test_sim.py checks it against
planner.perf.steps.mixed_step within 10%. APPROXIMATE: the b decode rows are counted at the prompt's context in
prefill(T + b, c) as well (b x c extra attention work; small while b << T).

A prefill batch of n prompt pieces with T tokens and token-weighted mean context c is prefill_step with one piece
of T tokens at context c (prompt_len - cached = T, cached = c - T/2, extrapolated linearly in c below T/2);
the lm_head of n - 1 more logits rows is left out (one row of T per piece: small).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from functools import lru_cache

from planner.deploy.scenario import Scenario
from planner.perf.steps import decode_step, prefill_step

GRID_MAX = 1 << 20  # largest batch or token count the grid reaches (round(2^(k/2)) up to 2^20)


def size_grid(limit: int | None) -> list[int]:
    """round(2^(k/2)) for k = 0, 1, ... (1, 1, 2, 3, 4, 6, 8, 11, 16, ...) deduplicated, plus `limit` and limit + 1
    (the CUDA-graph boundary) when given."""
    pts = {round(2 ** (k / 2)) for k in range(41)}
    if limit:
        pts |= {limit, limit + 1}
    return sorted(p for p in pts if p <= GRID_MAX)


@dataclass
class StepTable:
    """Step seconds of one scenario's engine group (one attention-TP group) for any batch composition."""

    sc: Scenario
    kv_lo: float  # context anchors (tokens): the run's shortest and longest contexts
    kv_hi: float
    _decode: dict = field(default_factory=dict)  # batch -> (seconds at kv_lo, seconds at kv_hi)
    _prefill: dict = field(default_factory=dict)  # tokens -> (seconds at context tokens/2, at tokens/2 + span)
    _slope: dict = field(default_factory=dict)  # batch -> decode_slope(batch), the simulator's hot path

    def __post_init__(self):
        eng = self.sc.engine
        self.kv_hi = max(self.kv_hi, self.kv_lo + 1.0)
        # the captured CUDA-graph sizes are grid points too: a padded step is timed at one (decode_slope)
        graphs = [b for b in eng.cuda_graph_sizes or () if eng.graphed(b, prefill=False)]
        self._dgrid = sorted(set(size_grid(eng.cuda_graph_max_batch)) | set(graphs))
        self._pgrid = size_grid(eng.graph_prefill_tokens or None)

    def _decode_at(self, b: int) -> tuple[float, float]:
        if b not in self._decode:
            t = self.sc.parallelism.tp
            self._decode[b] = (decode_step(self.sc, b / t, self.kv_lo).seconds,
                               decode_step(self.sc, b / t, self.kv_hi).seconds)
        return self._decode[b]

    def _prefill_at(self, n: int) -> tuple[float, float]:
        if n not in self._prefill:
            t, c0 = self.sc.parallelism.tp, n / 2
            c1 = c0 + (self.kv_hi - self.kv_lo)  # anchors one context span apart
            self._prefill[n] = (prefill_step(self.sc, n / t, n, 0.0).seconds,
                                prefill_step(self.sc, n / t, c1 + n / 2, c1 - n / 2).seconds)
        return self._prefill[n]

    @staticmethod
    def _interp(grid: list[int], at, x: float) -> tuple[float, float]:
        """Anchor pair at x, linear between the neighbouring grid points."""
        i = bisect_left(grid, x)
        if i < len(grid) and grid[i] == x or i == 0:
            return at(grid[min(i, len(grid) - 1)])
        if i == len(grid):
            return at(grid[-1])  # beyond the grid (over a million tokens in one step): held at its last point
        lo, hi = grid[i - 1], grid[i]
        a, b = at(lo), at(hi)
        w = (x - lo) / (hi - lo)
        return a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1])

    def decode_slope(self, b: float) -> tuple[float, float]:
        """(seconds at kv 0, seconds per context token) of a decode step of b sequences. A CUDA graph padded to a
        captured size p > b (Engine.graph_batch) runs p rows through every layer but attends over b sequences' KV
        (the padded rows have a context of 0 or 1 token: vLLM seq_lens 0, SGLang seq_len_fill_value 1): the base at
        p, the context slope at b. APPROXIMATE: the attention ops' small context-free part (the new tokens' KV
        writes) is counted at p."""
        hit = self._slope.get(b)
        if hit is None:
            span = self.kv_hi - self.kv_lo
            s0, s1 = self._interp(self._dgrid, self._decode_at, b)
            slope = (s1 - s0) / span
            p = self.sc.engine.graph_batch(b)
            if p != b:
                s0, s1 = self._interp(self._dgrid, self._decode_at, p)
            hit = self._slope[b] = (s0 - (s1 - s0) / span * self.kv_lo, slope)
        return hit

    def decode(self, b: float, kv: float) -> float:
        """One decode step of b sequences at mean context kv."""
        if b <= 0:
            return 0.0
        base, slope = self.decode_slope(b)
        return base + slope * kv

    def prefill(self, tokens: float, context: float) -> float:
        """One prefill step of `tokens` prompt tokens at token-weighted mean context `context`."""
        if tokens <= 0:
            return 0.0
        s0, s1 = self._interp(self._pgrid, self._prefill_at, tokens)
        return s0 + (s1 - s0) * (context - tokens / 2) / (self.kv_hi - self.kv_lo)

    def mixed(self, b: float, kv: float, tokens: float, context: float) -> float:
        """A decode step of b sequences at context kv with `tokens` prompt tokens at context `context` in it."""
        if tokens <= 0:
            return self.decode(b, kv)
        if b <= 0:
            return self.prefill(tokens, context)
        return self.prefill(tokens + b, context) + self.decode_slope(b)[1] * kv


def step_table(sc: Scenario, client) -> StepTable:
    """The step table of a simulated run (planner.serving.sim, planner.serving.disagg; `client` a
    planner.serving.client.Client): context anchors at half the mean prompt and the mean prompt + 1.5 answers.
    One per deployment and anchors, filled lazily: later runs reuse its evaluations, also runs of the same deployment
    under another workload with the same mean lengths (a concurrency sweep). Step times never read the workload
    (planner.perf builds op records from the model, format, hardware, parallel plan and engine alone), nor the
    scenario's labels, SLOs or measurements, so those are left out of the key."""
    key = replace(sc, name="", file="", workload=None, slo=(), measured=())
    return _cached_table(key, max(1.0, client.input.mean * 0.5), client.input.mean + client.output.mean * 1.5)


@lru_cache(maxsize=32)
def _cached_table(sc: Scenario, kv_lo: float, kv_hi: float) -> StepTable:
    return StepTable(sc, kv_lo, kv_hi)
