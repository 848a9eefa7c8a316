"""Physical checks on a silicon run before it is evaluated (planner.serving.silicon.to_case): a run whose measured
rate the deployment its row records cannot have served is skipped with the reason, not scored.

Aggregated rows record one engine instance (tp, attention DP, EP) and no replica count. A closed loop of C requests
that each take E2E seconds completes C / E2E requests per second, and each request's prompt costs at least
2 x (active parameters) x (prompt tokens) FLOP in its linear layers alone (attention, decode and every other kernel
add to that). No GPU runs those matmuls faster than its maximum achievable matmul FLOPS (MAMF, measured: 73-78% of
the dense datasheet peak on H100/H200/B200, profiles/hardware/*.yaml from stas00's ml-engineering tables), so a run
whose prompts alone need more than the GPUs' MAMF at their fastest dtype ran on more GPUs than the row says.
Example (aiconfigurator-core 0.12.0): nvidia_qwen3_32b_nvfp4_..._agg_15000x500_c416_tp2 measures 719 ms TTFT and
13.7 ms TPOT: 416 requests per 7.6 s, 15,000-token prompts, 2.7 times the two B200s' dense FP4 peak.

Every bound is taken on the safe side: the shortest prompt the client draws (L x the range ratio for the lengths
InferenceMAX's client spreads), E2E = TTFT + OSL x TPOT (one TPOT more than the run's), the highest peak of any dtype
the GPU has, and the larger of its MAMF fractions (1 where none is measured).
"""

from __future__ import annotations

from functools import lru_cache

from planner.deploy.scenario import Scenario
from planner.model.inventory import active_params_per_token

# a skipped row's reason (silicon.MAPPING "skipped"; the rows are listed under docs/silicon_serving.md's "Rows not
# evaluated")
BEYOND_ONE = ("more than one replica: the measured rate needs more than the recorded GPUs' achievable matmul peak for "
              "its prompts alone")


def prompt_compute_ratio(sc: Scenario, concurrency: int, shortest_prompt: float, osl: int, ttft_ms: float,
                         tpot_ms: float) -> float:
    """The prompts' linear-layer FLOP rate the measured run implies, over the recorded GPUs' achievable peak."""
    e2e = (ttft_ms + osl * tpot_ms) / 1e3
    need = concurrency / e2e * shortest_prompt * 2 * _active_params(sc.model.spec)
    acc = sc.accelerator
    peak = max((v for v in acc.peak_flops_by_dtype.values() if v), default=0.0)
    mamf = max((f for f in (acc.fraction("mamf_bf16"), acc.fraction("mamf_fp8")) if f), default=1.0)
    return need / (peak * min(mamf, 1.0) * sc.total_gpus) if peak else 0.0


@lru_cache(maxsize=64)
def _active_params(spec) -> int:
    """planner.model.inventory.active_params_per_token, once per model spec (thousands of rows share a few dozen)."""
    return active_params_per_token(spec)


def beyond_one_replica(sc: Scenario, concurrency: int, shortest_prompt: float, osl: int, ttft_ms: float,
                       tpot_ms: float) -> str:
    """The skip reason of an aggregated run its recorded deployment cannot have served, else ""."""
    ratio = prompt_compute_ratio(sc, concurrency, shortest_prompt, osl, ttft_ms, tpot_ms)
    return BEYOND_ONE if ratio > 1.0 else ""
