"""What a plan costs: capex and USD per hour of one replica (buy: purchase written off over the amortization
years + power x PUE x electricity price; rent: USD per GPU-hour), USD per million tokens at the traffic served,
and the break-even daily volume against a pay-per-token API (`profiles/api/<name>.yaml`).

Prices come from the profiles only (accelerators: profiles/hardware/<gpu>.yaml `prices`; CPU, DRAM and platform:
profiles/systems/<name>.yaml). A price a plan needs but no profile holds rejects the plan with a reason naming the
file; parts nobody priced (server chassis, board, PSU) are listed under `capex_excludes`, never invented.
Power is the datasheet maximum (TDP) of every device: an upper estimate of the energy bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.base.yamlio import PROFILES
from planner.hardware.accelerators import Price, load_accelerator
from planner.sizing.api import ApiPrice
from planner.sizing.workload import SECONDS_PER_DAY, SizingWorkload

HOURS_PER_YEAR = 8766  # 365.25 days


@dataclass(frozen=True)
class UnitCost:
    """One replica's hardware: what it costs to own (or rent) and run."""

    capex_usd: float  # purchase price of the parts priced in the profiles (0 when rented)
    usd_per_hour: float  # amortized capex + energy (buy) or rental (rent)
    power_w: float  # datasheet maximum of the accelerators (and host, when known); 0 when unknown and rented
    parts: tuple[tuple[str, float, str], ...]  # (part, USD, source) of the capex
    excludes: tuple[str, ...]  # parts no profile prices (not in capex_usd)


def unit_cost(hw, wl: SizingWorkload) -> UnitCost | str:
    """Cost of one replica of `hw` (planner.sizing.candidates.Hardware), or the reason it cannot be priced.
    `purchase: owned` is hardware already paid for: capex 0, the energy bill only (as bought hardware's)."""
    if wl.purchase == "owned":
        return _owned(hw, wl)
    return _buy(hw, wl) if wl.purchase == "buy" else _rent(hw, wl)


def _gpu_price(gpu: str, wl: SizingWorkload, rent: bool) -> Price | None:
    """The workload's own price for `gpu` when it gives one (prices:), else the accelerator profile's."""
    buy_usd, rent_usd = wl.price_override(gpu)
    usd = rent_usd if rent else buy_usd
    if usd is not None:
        return Price(usd, None, f"{Path(wl.file).name} prices.{gpu}", "the workload's price")
    acc = load_accelerator(gpu)
    return acc.cloud if rent else acc.purchase


def _owned(hw, wl: SizingWorkload) -> UnitCost:
    power, excludes = 0.0, []
    if hw.gpu is not None:
        acc = load_accelerator(hw.gpu)
        if acc.power_w is None:
            excludes.append(f"{acc.display_name} energy: no power figure in profiles/hardware/{hw.gpu}.yaml")
        power += (acc.power_w or 0.0) * hw.gpus
    if hw.host is not None and hw.system.cls in ("workstation", "cpu_server"):
        power += hw.system.host_power_w or 0.0
    elif hw.system.cls == "gpu_server" and hw.system.host_power_w is not None:
        power += hw.system.host_power_w * hw.nodes
    hourly = power / 1e3 * wl.pue * wl.electricity_usd_per_kwh
    return UnitCost(0.0, hourly, power, ((f"{hw.label()} (owned)", 0.0, "purchase: owned"),), tuple(excludes))


def _rent(hw, wl: SizingWorkload) -> UnitCost | str:
    sys = hw.system
    own_rate = hw.gpu is not None and wl.price_override(hw.gpu)[1] is not None  # beats a whole-machine price
    if sys.cloud_per_hour is not None and not own_rate:
        return UnitCost(0.0, sys.cloud_per_hour.usd * hw.nodes, 0.0,
                        ((f"{sys.display_name} rental", sys.cloud_per_hour.usd, sys.cloud_per_hour.source),), ())
    if hw.gpu is None or sys.cls in ("workstation", "apple"):
        return f"no rental price for {hw.kind_label} in {_rel(sys.file)}"
    acc = load_accelerator(hw.gpu)
    price = _gpu_price(hw.gpu, wl, rent=True)
    if price is None:
        return f"no rental price in profiles/hardware/{hw.gpu}.yaml"
    return UnitCost(0.0, price.usd * hw.gpus, (acc.power_w or 0.0) * hw.gpus,
                    ((f"{hw.gpus}x {acc.display_name} at {price.usd:g} USD/GPU-h", price.usd * hw.gpus,
                      price.source),), ())


def _buy(hw, wl: SizingWorkload) -> UnitCost | str:
    sys = hw.system
    parts, excludes = [], []
    power = 0.0
    if hw.gpu is not None:
        acc = load_accelerator(hw.gpu)
        price = _gpu_price(hw.gpu, wl, rent=False)
        if price is None:
            return f"no purchase price in profiles/hardware/{hw.gpu}.yaml"
        if acc.power_w is None:
            return f"no power figure in profiles/hardware/{hw.gpu}.yaml (energy cost unknown)"
        parts.append((f"{hw.gpus}x {acc.display_name}", price.usd * hw.gpus, price.source))
        power += acc.power_w * hw.gpus
    if hw.host is not None and sys.cls in ("workstation", "cpu_server"):
        if sys.cpu is None:
            return f"no purchase price for the {hw.host.cpu.display_name} CPU in {_rel(sys.file)}"
        if sys.dram_per_gb is None:
            return f"no DRAM price in {_rel(sys.file)}"
        if sys.host_power_w is None:
            return f"no host power figure in {_rel(sys.file)} (energy cost unknown)"
        parts.append((f"{hw.host.sockets}x {hw.host.cpu.display_name}", sys.cpu.usd * hw.host.sockets, sys.cpu.source))
        gb = hw.host.memory_bytes / 1e9
        parts.append((f"{gb:,.0f} GB {hw.host.dram_kind}", sys.dram_per_gb.usd * gb, sys.dram_per_gb.source))
        power += sys.host_power_w
    if sys.platform is not None:
        parts.append((f"{sys.display_name} platform", sys.platform.usd * hw.nodes, sys.platform.source))
    elif sys.cls != "apple":
        excludes.append(f"{sys.display_name} platform (board, chassis, PSU, storage{', NICs' if hw.nodes > 1 else ''})"
                        f": no price in {_rel(sys.file)}")
    if sys.cls == "gpu_server" and sys.host_power_w is None:
        excludes.append("host CPUs, fans and NICs in the energy bill")
    elif sys.cls == "gpu_server":
        power += sys.host_power_w * hw.nodes
    capex = sum(p[1] for p in parts)
    hourly = capex / (wl.amortization_years * HOURS_PER_YEAR) + power / 1e3 * wl.pue * wl.electricity_usd_per_kwh
    return UnitCost(capex, hourly, power, tuple(parts), tuple(excludes))


def _rel(file: str) -> str:
    try:
        return str(Path(file).resolve().relative_to(PROFILES.parent))
    except ValueError:
        return file


def api_usd_per_request(api: ApiPrice, input_len: float, output_len: float, prefix_cache_hit: float = 0.0) -> float:
    """What one request costs at the API: input_len prompt tokens (prefix-cache hits at the cached-input price when
    the API has one) and output_len generated tokens."""
    hit = prefix_cache_hit if api.cached_input_per_m_usd is not None else 0.0
    per_input = (1 - hit) * api.input_per_m_usd + hit * (api.cached_input_per_m_usd or 0.0)
    return (input_len * per_input + output_len * api.output_per_m_usd) / 1e6


def api_usd_per_m_output(api: ApiPrice, input_len: float, output_len: float, prefix_cache_hit: float = 0.0) -> float:
    """API dollars per million output tokens of requests shaped so (their prompts billed too)."""
    return api_usd_per_request(api, input_len, output_len, prefix_cache_hit) / max(output_len, 1) * 1e6


def rent_usd_per_hour(gpu: str, gpus: int) -> tuple[float, Price] | None:
    """Renting `gpus` GPUs at the accelerator profile's cloud price: (USD per hour, the price), or None."""
    price = load_accelerator(gpu).cloud
    return None if price is None else (price.usd * gpus, price)


def break_even_output_tokens_per_day(usd_per_hour: float, api_usd_per_m_out: float) -> float:
    """Output tokens per day above which hardware paid around the clock costs less than the API."""
    return usd_per_hour * 24 / (api_usd_per_m_out / 1e6)


def break_even(plans: list[dict], wl: SizingWorkload) -> dict:
    """API comparison for the best plan: the daily volume above which owning/renting it beats the API, and the
    answer for this workload's volume. A data-local workload never gets the API as answer."""
    out: dict = {"available": False, "answer": None}
    best = plans[0] if plans else None
    if wl.data_local:
        out["reason"] = "data_local: true keeps the data on own hardware; the API is ruled out"
    elif wl.api is None:
        out["reason"] = "the workload names no API prices (api:)"
    else:
        out.update(available=True, api={"name": wl.api.name, "input_per_m_usd": wl.api.input_per_m_usd,
                                        "output_per_m_usd": wl.api.output_per_m_usd,
                                        "cached_input_per_m_usd": wl.api.cached_input_per_m_usd,
                                        "source": wl.api.source})
    tokens_per_request = wl.traffic.input_len + wl.traffic.output_len
    if best is not None:
        day = best["served"]["requests_per_s"] * SECONDS_PER_DAY
        out.update(plan_rank=1, workload_requests_per_day=day, workload_tokens_per_day=day * tokens_per_request,
                   plan_usd_per_day=best["cost"]["usd_per_hour"] * 24)
    if not out["available"]:
        out["answer"] = "self-hosted" if best is not None else "none"
        return out
    t = wl.traffic
    per_request = api_usd_per_request(wl.api, t.input_len, t.output_len, t.prefix_cache_hit)
    if per_request <= 0:  # the workload loader refuses such prices; a workload built in code may not have
        out.update(available=False, answer="self-hosted" if best is not None else "none",
                   reason="the API prices make every request free: no break-even to compute")
        return out
    out["api_usd_per_m_output_tokens_equivalent"] = per_request / wl.traffic.output_len * 1e6
    if best is None:
        out["answer"] = "api"
        out["reason"] = "no plan meets the workload"
        return out
    api_day = out["workload_requests_per_day"] * per_request
    replica_day = best["cost"]["usd_per_hour_per_replica"] * 24
    capacity_day = best["capacity"]["requests_per_s_per_replica"] * SECONDS_PER_DAY
    out["api_usd_per_day"] = api_day
    # self-hosting pays a whole replica per day; the API pays per request: equal at replica_day / per_request
    volume = replica_day / per_request
    if volume <= capacity_day:
        out["break_even_requests_per_day"] = volume
        out["break_even_tokens_per_day"] = volume * tokens_per_request
        out["break_even_output_tokens_per_day"] = volume * wl.traffic.output_len
    else:
        out["break_even_requests_per_day"] = None
        out["break_even_tokens_per_day"] = None
        out["reason"] = (f"even fully used, one replica ({capacity_day:,.0f} requests/day) costs "
                         f"{replica_day / capacity_day / wl.traffic.output_len * 1e6:,.2f} USD per M output tokens, "
                         f"the API {out['api_usd_per_m_output_tokens_equivalent']:,.2f}")
    out["answer"] = "self-hosted" if out["plan_usd_per_day"] <= api_day else "api"
    return out
