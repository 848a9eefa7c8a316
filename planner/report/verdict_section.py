"""The report's first section: a one-screen verdict for the report's model, from the other sections' planner calls.

- the cheapest way to run it per budget tier (API, one workstation, one node, a cluster) at each traffic rate the
  sizing section sizes (planner.sizing.answer.by_tier; the API at the workload's prices per million output tokens);
- what fits where: per weight format and GPU type, the fewest GPUs whose memory holds the weights and one request of
  the sizing workload's context (the scalar memory model, planner.deploy.memory);
- the claims the audit found wrong (planner.report.claims, computed once for both sections).
"""

from __future__ import annotations

import pandas as pd

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.hardware.accelerators import load_accelerator
from planner.sizing.answer import TIERS

GPU_COUNTS = (1, 2, 4, 8, 16)  # a node holds 8; 16 = two nodes with pipeline parallelism between them
DEFAULT_FORMATS = ("int4-g32", "fp8-block128", "gguf-ud-q2_k_xl")


def _money(x) -> str:
    return "-" if x is None else f"{x:,.2f}"


def tier_table(runs: list[tuple[float, dict | None]]) -> pd.DataFrame:
    """One row per budget tier: per traffic rate, the cheapest plan and its USD per million output tokens."""
    rows = []
    for tier in ("API", *TIERS):
        row = {"tier": tier}
        for rate, doc in runs:
            col = f"{rate:g} req/s"
            if doc is None:
                row[col] = "sizing refused"
            elif tier == "API":
                api = doc.get("api_break_even") or {}
                usd = api.get("api_usd_per_m_output_tokens_equivalent")
                row[col] = f"{_money(usd)} USD/M out (prompts included)" if usd else api.get("reason", "not given")
            else:
                p = (doc.get("by_tier") or {}).get(tier)
                row[col] = "none meets the workload (SLO, memory or price)" if p is None else (
                    f"{p['hardware']}{' x' + str(p['replicas']) if p['replicas'] > 1 else ''}, {p['weights']}"
                    f"{'' if p['published'] else '*'}, {p['engine']}: {_money(p['usd_per_m_output_tokens'])} USD/M "
                    f"out, TPOT {p['tpot_ms']:,.0f} ms")
        rows.append(row)
    return pd.DataFrame(rows)


def _fewest(model: str, weights: str, gpu: str, context: int) -> str:
    """The fewest GPUs (GPU_COUNTS) of `gpu` that hold `model` in `weights` with one `context`-token request."""
    engine = "llamacpp" if weights.startswith("gguf-") else "vllm"
    last = ""
    for n in GPU_COUNTS:
        per_node = min(n, 8)
        nodes = max(1, n // 8)
        try:
            sc = make_scenario(model, weights=weights, kv_cache="bf16", gpu=gpu, gpus_per_node=per_node, nodes=nodes,
                               parallelism={"tp": per_node, "pp": nodes}, engine=engine,
                               workload={"phase": "serve", "input_len": 1024, "output_len": 1024,
                                         "context_len": context})
            mem = memory_report(sc)
        except PlannerError as err:
            last = err.message
            continue
        if mem.fits:
            return f"{n} ({mem.free_bytes_per_gpu / 1e9:,.0f} GB free per GPU)"
        last = mem.reason
    return f"no ({GPU_COUNTS[-1]}: {last.split(';')[0]})" if last else "no"


def fit_table(model: str, formats: list[str], gpus: list[str], context: int) -> pd.DataFrame:
    """Format x GPU type: the fewest GPUs that hold the weights and one request of `context` tokens (bf16 KV)."""
    rows = []
    for fmt in formats:
        row = {"weights": fmt}
        for gpu in gpus:
            row[load_accelerator(gpu).display_name] = _fewest(model, fmt, gpu, context)
        rows.append(row)
    return pd.DataFrame(rows)


def wrong_claims(table: pd.DataFrame) -> pd.DataFrame:
    """The claims the audit judged wrong or off, with the planner's number."""
    bad = table[table["kind"].isin(["wrong", "off"])]
    keep = [c for c in ("id", "claim", "verdict", "planner") if c in bad.columns]
    return bad[keep].reset_index(drop=True)

