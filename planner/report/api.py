"""API price vs renting the report's plans: cost per million output tokens and the break-even daily volume, from
the sizing cost model (planner.sizing.cost) at each plan's own workload, rented around the clock:

    rent $/h        = GPUs x cloud $/GPU-h                                   (cost.rent_usd_per_hour)
    self $/M out    = rent $/h / (system output tokens/s x 3600) x 1e6       (prompt tokens ride along: the
                      workload's input_len is prefilled in the same steps)
    API $/M out     = API $ per request / output_len x 1e6                    (cost.api_usd_per_m_output)
    break-even      = rent $/day / API $ per output token   [output tokens per day]

Purchase, power and utilization below 100% are the sizing report's (`planner size`); this table answers for plans a
report names.
"""

from __future__ import annotations

from math import ceil

import pandas as pd

from planner.report.plans import Plan
from planner.sizing.api import ApiPrice
from planner.sizing.cost import api_usd_per_m_output, break_even_output_tokens_per_day, rent_usd_per_hour

SECONDS_PER_DAY = 86400


def api_price(api: dict) -> ApiPrice:
    """A report's inline `api:` mapping (prices in USD per million tokens) as the sizing model's ApiPrice."""
    cached = api.get("cached_input_per_m_usd")
    return ApiPrice("report", float(api["input_per_m_usd"]), float(api["output_per_m_usd"]),
                    float(cached) if isinstance(cached, (int, float)) else None, str(api.get("source") or ""))


def break_even_table(plans: list[Plan], api: dict) -> tuple[pd.DataFrame, list[str]]:
    """One row per plan that fits and has a rental price; lines for the plans left out and why."""
    price_api = api_price(api)
    rows, left_out = [], []
    for p in plans:
        sc = p.scenario
        if not p.fits:
            left_out.append(f"{p.name}: does not fit ({p.result['reason']})")
            continue
        gpus = sc.parallelism.gpus_per_replica * sc.parallelism.replicas
        rent = rent_usd_per_hour(sc.gpu, gpus) if sc.gpu else None
        tok_s = p.result["metrics"].get("system_output_tokens_per_s")
        if rent is None or not tok_s:
            left_out.append(f"{p.name}: no rental price in the {sc.gpu or 'host'} profile" if rent is None
                            else f"{p.name}: no output throughput (prefill-only workload)")
            continue
        usd_h, price = rent
        wl = sc.workload
        api_m = api_usd_per_m_output(price_api, wl.input_len, wl.output_len)
        per_day = tok_s * SECONDS_PER_DAY
        even = break_even_output_tokens_per_day(usd_h, api_m)
        rows.append({"plan": p.name, "input_len": wl.input_len, "output_len": wl.output_len,
                     "gpus": gpus, "usd_per_gpu_hour": price.usd, "price_date": price.date,
                     "price_source": price.source, "rent_usd_per_hour": usd_h,
                     "system_output_tokens_per_s": tok_s, "output_tokens_per_day_capacity": per_day,
                     "self_usd_per_m_output": usd_h / (tok_s * 3600) * 1e6, "api_usd_per_m_output": api_m,
                     "break_even_output_tokens_per_day": even, "break_even_utilization": even / per_day})
    return pd.DataFrame(rows), left_out


def daily_cost_curve(table: pd.DataFrame, api: dict, points: int = 40) -> pd.DataFrame:
    """Dollars per day vs output tokens per day: one API line per request shape (input, output tokens) of the
    plans' workloads, and each plan as whole replicas rented 24 h."""
    if table.empty:
        return pd.DataFrame(columns=["option", "output_tokens_per_day", "usd_per_day"])
    price_api = api_price(api)
    lo = 1e6
    hi = max(1e9, 4 * float(table["break_even_output_tokens_per_day"].max()))
    vols = [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]
    rows = []
    for (i, o), _ in table.groupby(["input_len", "output_len"], sort=False):
        api_m = api_usd_per_m_output(price_api, i, o)
        rows += [{"option": f"API, {i:,} in / {o:,} out tokens", "output_tokens_per_day": v,
                  "usd_per_day": v / 1e6 * api_m} for v in vols]
    for r in table.itertuples():
        for v in vols:
            replicas = max(1, ceil(v / r.output_tokens_per_day_capacity))
            rows.append({"option": r.plan, "output_tokens_per_day": v,
                         "usd_per_day": replicas * r.rent_usd_per_hour * 24})
    return pd.DataFrame(rows)
