"""Sizing workloads (`profiles/workloads/<name>.yaml`, CONTRACT.md §7): what must be served, how fast, and how
the hardware is paid for. Input of `python -m planner size`.

    model: kimi-k2.5                 # or models: [kimi-k2.5, deepseek-v3]
    weights: [int4-g32, gguf-ud-tq1_0]   # acceptable formats; omitted = every format the engines can load
    kv_cache: [bf16, fp8]            # omitted = [bf16, fp8]
    context_len: 131072              # longest request that must fit
    traffic: {requests_per_s: 2.0, input_len: 4000, output_len: 1000}   # or tokens_per_day / concurrency;
                                     # dataset: <profiles/datasets name> fills the lengths left out
    slo: {ttft_ms: 3000, tpot_ms: 50}
    purchase: buy                    # buy | rent | owned (hardware you have: capex 0, energy counted)
    prices: {h100-sxm: {purchase_usd: 25000, usd_per_gpu_hour: 2.1}}   # your quotes, over the profiles' prices
    electricity_usd_per_kwh: 0.12    # buy: energy price, PUE, years the purchase is written off over
    pue: 1.56
    amortization_years: 3
    budget: {capex_usd: 500000, usd_per_hour: null}
    api: kimi-k2.5                   # profiles/api/<name>.yaml, or {input_per_m_usd, output_per_m_usd}
    data_local: false                # true: data must stay on own hardware (rules the API out)
    objective: usd_per_m_tokens      # usd_per_m_tokens | usd_per_hour | capex | latency
    search: {classes: [gpu_server, workstation, apple, cpu_server], max_nodes: 2}

`load_workload(path)` reads and checks one file; unknown keys and impossible values raise a PlannerError naming
the file and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError, resolve_named
from planner.base.limits import (
    MAX_CONCURRENCY,
    MAX_PRICE_USD,
    MAX_REQUESTS_PER_S,
    MAX_TOKENS,
    MAX_TOKENS_PER_DAY,
)
from planner.base.yamlio import (
    check_keys,
    get_choice,
    get_number,
    get_percentile,
    get_str,
    load_document,
    require_mapping,
    sub_mapping,
)
from planner.deploy.datasets import load_dataset
from planner.deploy.engine_options import KERNEL_TABLES
from planner.deploy.engines import load_engine
from planner.hardware.accelerators import load_accelerator
from planner.hardware.systems import CLASSES, load_system
from planner.model.kv import KV_DTYPES
from planner.model.models import load_model
from planner.model.quant import load_format
from planner.sizing.api import ApiPrice, load_api

# Defaults when a buy workload leaves them out (the presets state them explicitly):
# 0.12 USD/kWh ~ EIA Electricity Monthly Update (data for September 2024): median state average revenue 11.94 c/kWh,
#   all sectors (https://www.eia.gov/electricity/monthly/update/end-use.php);
# PUE 1.56 = Uptime Institute Global Data Center Survey 2024 average annual PUE (1.58 in 2023,
#   https://intelligence.uptimeinstitute.com/resource/large-data-centers-are-mostly-more-efficient-analysis-confirms);
# 3 years: an assumption (the owner's write-off period), not a published number.
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.12
DEFAULT_PUE = 1.56
DEFAULT_AMORTIZATION_YEARS = 3.0
DEFAULT_KV = ("bf16", "fp8")
OBJECTIVES = ("usd_per_m_tokens", "usd_per_hour", "capex", "latency")
SECONDS_PER_DAY = 86_400

TOP_KEYS = ("name", "description", "model", "models", "weights", "kv_cache", "context_len", "traffic", "slo",
            "purchase", "prices", "electricity_usd_per_kwh", "pue", "amortization_years", "budget", "api", "data_local",
            "objective", "top", "search", "source", "notes", "kernel_tables")
TRAFFIC_KEYS = ("requests_per_s", "tokens_per_day", "concurrency", "input_len", "output_len", "prefix_cache_hit",
                "dataset")
SLO_KEYS = ("ttft_ms", "tpot_ms", "output_tokens_per_s_per_user", "percentile")
BUDGET_KEYS = ("capex_usd", "usd_per_hour")
SEARCH_KEYS = ("classes", "accelerators", "systems", "engines", "max_nodes")
PURCHASES = ("buy", "rent", "owned")
PRICE_KEYS = ("purchase_usd", "usd_per_gpu_hour")


@dataclass(frozen=True)
class Traffic:
    requests_per_s: float | None  # arrival rate (open loop)
    tokens_per_day: float | None  # input + output tokens per day (converted to a request rate)
    concurrency: float | None  # requests in flight (closed loop); sizes by users, not by rate
    input_len: int  # prompt tokens per request
    output_len: int  # generated tokens per request
    prefix_cache_hit: float  # fraction of prompt tokens served from a prefix cache

    @property
    def request_rate(self) -> float | None:
        """Requests per second the deployment must serve (None when traffic is given as concurrency)."""
        if self.requests_per_s is not None:
            return self.requests_per_s
        if self.tokens_per_day is not None:
            return self.tokens_per_day / SECONDS_PER_DAY / (self.input_len + self.output_len)
        return None

    @property
    def output_tokens_per_s(self) -> float | None:
        rate = self.request_rate
        return None if rate is None else rate * self.output_len

    def scaled(self, factor: float) -> Traffic:
        """The same traffic `factor` times larger (tests: more traffic never fewer replicas)."""
        mul = lambda v: None if v is None else v * factor  # noqa: E731
        return Traffic(mul(self.requests_per_s), mul(self.tokens_per_day), mul(self.concurrency), self.input_len,
                       self.output_len, self.prefix_cache_hit)


@dataclass(frozen=True)
class SizingWorkload:
    name: str
    file: str  # where it was read, for error messages
    models: tuple[str, ...]  # model profiles (or config paths) to size
    weights: tuple[str, ...] | None  # acceptable weight formats; None = all
    kv_cache: tuple[str, ...]  # acceptable KV dtypes
    context_len: int  # longest request (prompt + output) that must fit
    traffic: Traffic
    slo: tuple[tuple[str, float], ...]  # (key, value): ttft_ms, tpot_ms, output_tokens_per_s_per_user, percentile
    purchase: str  # buy | rent | owned (capex 0: energy only)
    electricity_usd_per_kwh: float
    pue: float  # facility power / IT power
    amortization_years: float
    budget_capex_usd: float | None
    budget_usd_per_hour: float | None
    api: ApiPrice | None
    data_local: bool
    objective: str
    top: int  # plans to report
    classes: tuple[str, ...]  # hardware classes searched
    accelerators: tuple[str, ...] | None  # restrict accelerator profiles; None = all
    systems: tuple[str, ...] | None  # restrict profiles/systems entries; None = all
    engines: tuple[str, ...] | None  # restrict engines; None = all that fit each class
    max_nodes: int  # largest multi-node replica of GPU servers
    prices: tuple[tuple[str, float | None, float | None], ...] = ()  # (gpu, purchase USD, USD per GPU-hour) overrides
    # auto (the default) | silicon: every plan on a GPU and engine with imported silicon kernel tables runs on them;
    # default: every plan on the default table alone (engine_options.kernel_tables; `size --kernel-tables` overrides)
    kernel_tables: str = "auto"

    def price_override(self, gpu: str) -> tuple[float | None, float | None]:
        """The workload's own (purchase USD, USD per GPU-hour) for `gpu`; (None, None) when it gives none."""
        for name, buy, rent in self.prices:
            if name == gpu:
                return buy, rent
        return None, None

    def slo_value(self, key: str) -> float | None:
        return dict(self.slo).get(key)


def load_workload(path: str | Path) -> SizingWorkload:
    file = str(path)
    return workload_from_mapping(load_document(path), file)


def _names(doc: Mapping, key: str, file: str, default: Any = None, prefix: str = "") -> tuple[str, ...] | None:
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise PlannerError("expected a name or a non-empty list of names", file=file, field=f"{prefix}{key}")
    return tuple(dict.fromkeys(value))


def workload_from_mapping(doc: Any, file: str) -> SizingWorkload:
    doc = require_mapping(doc, file)
    check_keys(doc, TOP_KEYS, file)
    for key in ("name", "description", "source", "notes"):
        get_str(doc, key, file, default=None)
    if doc.get("model") is not None and doc.get("models") is not None:
        raise PlannerError("give model or models, not both", file=file, field="models")
    models = _names(doc, "models", file) or _names(doc, "model", file)
    if not models:
        raise PlannerError("missing: name the model (model: kimi-k2.5) or models: [...]", file=file, field="model")

    for name in models:
        _resolve(load_model, name, file, "model")
    weights = _names(doc, "weights", file)
    for name in weights or ():
        _resolve(load_format, name, file, "weights")
    kv = _names(doc, "kv_cache", file, DEFAULT_KV)
    for dtype in kv:
        if dtype not in KV_DTYPES:
            raise PlannerError(f"unknown KV cache dtype {dtype!r}; known: {', '.join(KV_DTYPES)}", file=file,
                               field="kv_cache")
    traffic = _traffic(require_mapping(doc.get("traffic"), file, "traffic"), file)
    context = get_number(doc, "context_len", file, default=traffic.input_len + traffic.output_len, integer=True,
                         minimum=1, maximum=MAX_TOKENS)
    if context < traffic.input_len + traffic.output_len:
        raise PlannerError(f"{context:,} is shorter than one request (input_len {traffic.input_len:,} + output_len "
                           f"{traffic.output_len:,})", file=file, field="context_len")
    slo = sub_mapping(doc.get("slo"), "slo", SLO_KEYS, file)
    for key in ("ttft_ms", "tpot_ms", "output_tokens_per_s_per_user"):
        get_number(slo, key, file, prefix="slo.", default=None, minimum=1e-9)
    get_percentile(slo, file, prefix="slo.")
    purchase = get_choice(doc, "purchase", PURCHASES, file, default="buy")
    budget = sub_mapping(doc.get("budget"), "budget", BUDGET_KEYS, file)
    search = sub_mapping(doc.get("search"), "search", SEARCH_KEYS, file)
    classes = _names(search, "classes", file, CLASSES, "search.")
    for cls in classes:
        if cls not in CLASSES:
            raise PlannerError(f"unknown hardware class {cls!r}; known: {', '.join(CLASSES)}", file=file,
                               field="search.classes")
    objective = get_choice(doc, "objective", OBJECTIVES, file, default="usd_per_m_tokens")
    data_local = doc.get("data_local", False)
    if not isinstance(data_local, bool):
        raise PlannerError("expected true or false", file=file, field="data_local")
    return SizingWorkload(
        name=str(doc.get("name") or Path(file).stem), file=file, models=models, weights=weights, kv_cache=kv,
        context_len=context, traffic=traffic, slo=tuple((k, v) for k, v in slo.items() if v is not None),
        purchase=purchase,
        electricity_usd_per_kwh=get_number(doc, "electricity_usd_per_kwh", file,
                                           default=DEFAULT_ELECTRICITY_USD_PER_KWH, minimum=0, maximum=10),
        pue=get_number(doc, "pue", file, default=DEFAULT_PUE, minimum=1, maximum=5),
        amortization_years=get_number(doc, "amortization_years", file, default=DEFAULT_AMORTIZATION_YEARS,
                                      minimum=0.1, maximum=30),
        budget_capex_usd=get_number(budget, "capex_usd", file, prefix="budget.", default=None, minimum=0),
        budget_usd_per_hour=get_number(budget, "usd_per_hour", file, prefix="budget.", default=None, minimum=0),
        api=_api(doc.get("api"), file, traffic), data_local=data_local, objective=objective,
        top=get_number(doc, "top", file, default=5, integer=True, minimum=1, maximum=100),
        classes=classes, accelerators=_profiles(search, "accelerators", file),
        systems=_profiles(search, "systems", file), engines=_profiles(search, "engines", file),
        max_nodes=get_number(search, "max_nodes", file, prefix="search.", default=2, integer=True, minimum=1,
                             maximum=64),
        prices=_prices(doc.get("prices"), file),
        kernel_tables=get_choice(doc, "kernel_tables", KERNEL_TABLES, file, default="auto"),
    )


def _prices(value: Any, file: str) -> tuple[tuple[str, float | None, float | None], ...]:
    """`prices: {<gpu profile>: {purchase_usd: .., usd_per_gpu_hour: ..}}`: the buyer's quotes, used instead of the
    profile's prices (planner.sizing.cost) and named as the workload's in every plan's capex parts."""
    if value is None:
        return ()
    doc = require_mapping(value, file, "prices")
    out = []
    for gpu, entry in doc.items():
        _resolve(load_accelerator, gpu, file, f"prices.{gpu}")
        entry = require_mapping(entry, file, f"prices.{gpu}")
        check_keys(entry, PRICE_KEYS, file, f"prices.{gpu}.")
        if not entry:
            raise PlannerError("give purchase_usd and/or usd_per_gpu_hour", file=file, field=f"prices.{gpu}")
        buy, rent = (get_number(entry, key, file, prefix=f"prices.{gpu}.", default=None, minimum=1e-9,
                                maximum=MAX_PRICE_USD) for key in PRICE_KEYS)
        out.append((gpu, buy, rent))
    return tuple(out)


def _traffic(t: Mapping, file: str) -> Traffic:
    check_keys(t, TRAFFIC_KEYS, file, "traffic.")
    given = [k for k in ("requests_per_s", "tokens_per_day", "concurrency") if t.get(k) is not None]
    if len(given) != 1:
        raise PlannerError("give exactly one of requests_per_s, tokens_per_day, concurrency"
                           + (f" (got {', '.join(given)})" if given else ""), file=file, field="traffic")
    num = lambda key, **kw: get_number(t, key, file, prefix="traffic.", default=None, **kw)  # noqa: E731
    # a named benchmark dataset (planner.deploy.datasets) supplies the mean lengths the traffic leaves out
    dataset = None
    if t.get("dataset") is not None:

        dataset = _resolve(load_dataset, get_str(t, "dataset", file, prefix="traffic."), file, "traffic.dataset")
    tok = lambda key: get_number(t, key, file, prefix="traffic.", integer=True, minimum=1,  # noqa: E731
                                 maximum=MAX_TOKENS, default=getattr(dataset, key) if dataset else ...)
    # bounds: planner.base.limits (a larger load needs over a million GPUs, and `size` refused it naming a
    # field of its own candidates, hardware.nodes, that the workload does not have)
    traffic = Traffic(requests_per_s=num("requests_per_s", minimum=1e-12, maximum=MAX_REQUESTS_PER_S),
                      tokens_per_day=num("tokens_per_day", minimum=1e-12, maximum=MAX_TOKENS_PER_DAY),
                      concurrency=num("concurrency", integer=True, minimum=1, maximum=MAX_CONCURRENCY),
                      input_len=tok("input_len"), output_len=tok("output_len"),
                      prefix_cache_hit=get_number(t, "prefix_cache_hit", file, prefix="traffic.", default=0.0,
                                                  minimum=0, maximum=1))
    _bounded_load(traffic, file)
    return traffic


def _bounded_load(traffic: Traffic, file: str) -> None:
    """The request rate and the tokens a day it carries, within planner.base.limits (whichever field gave them)."""
    rate = traffic.request_rate
    if rate is None:
        return
    field = "traffic.requests_per_s" if traffic.requests_per_s is not None else "traffic.tokens_per_day"
    tokens = traffic.input_len + traffic.output_len
    if rate > MAX_REQUESTS_PER_S:
        raise PlannerError(f"{rate:,.0f} requests/s of {tokens:,} tokens each, over the planner's limit of "
                           f"{MAX_REQUESTS_PER_S:,.0f} requests/s", file=file, field=field)
    per_day = rate * tokens * SECONDS_PER_DAY
    if per_day > MAX_TOKENS_PER_DAY * (1 + 1e-9):  # tokens_per_day itself is checked where it is read
        raise PlannerError(f"{rate:,.4g} requests/s of {tokens:,} tokens each are {per_day:.3g} tokens a day, over "
                           f"the planner's limit of {MAX_TOKENS_PER_DAY:.0e}", file=file, field=field)


def _api(value: Any, file: str, traffic: Traffic) -> ApiPrice | None:
    if value is None:
        return None
    if isinstance(value, str):
        api = _resolve(load_api, value, file, "api")
    else:
        doc = require_mapping(value, file, "api")
        check_keys(doc, ("input_per_m_usd", "output_per_m_usd", "cached_input_per_m_usd", "source"), file, "api.")
        price = lambda key, default=...: get_number(doc, key, file, prefix="api.", default=default,  # noqa: E731
                                                    minimum=0, maximum=MAX_PRICE_USD)
        api = ApiPrice("inline", price("input_per_m_usd"), price("output_per_m_usd"),
                       price("cached_input_per_m_usd", None), get_str(doc, "source", file, prefix="api.", default=file))
    # the break-even volume is a replica's cost over the API's price per request: a free request has none
    hit = traffic.prefix_cache_hit if api.cached_input_per_m_usd is not None else 0.0
    billed_input = (1 - hit) * api.input_per_m_usd + hit * (api.cached_input_per_m_usd or 0.0)
    if traffic.input_len * billed_input + traffic.output_len * api.output_per_m_usd <= 0:
        raise PlannerError("the API's prices make this traffic's requests free (0 USD each): no plan can be "
                           "compared with it; give its prices", file=file, field="api")
    return api


def _profiles(search: Mapping, key: str, file: str) -> tuple[str, ...] | None:
    """search.accelerators / systems / engines: names of profiles that exist (a typo must not narrow the search)."""

    names = _names(search, key, file, prefix="search.")
    load = {"accelerators": load_accelerator, "systems": load_system, "engines": load_engine}[key]
    for k, name in enumerate(names or ()):
        _resolve(load, name, file, f"search.{key}[{k}]")
    return names


def _resolve(load, name: str, file: str, field: str):
    """A profile this workload names; every refusal, one from inside the profile's own file too, is reported as
    the workload's field (resolve_named would name the profile file instead: a change of message left open)."""
    return resolve_named(load, name, file, field, keep_profile_file=False)
