"""Pay-per-token API prices (`profiles/api/<name>.yaml`), the alternative a plan's cost is compared with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, check_keys, get_str, profile_names, profile_path, require_mapping
from planner.hardware.accelerators import _price, _top

API_DIR = PROFILES / "api"
_API_KEYS = ("kind", "display_name", "provider", "model", "prices", "notes", "sources")


@dataclass(frozen=True)
class ApiPrice:
    name: str  # profile name or "inline"
    input_per_m_usd: float  # USD per million prompt tokens (cache miss)
    output_per_m_usd: float  # USD per million generated tokens
    cached_input_per_m_usd: float | None  # USD per million prompt tokens served from the provider's cache
    source: str  # citation



def list_apis() -> list[str]:
    return profile_names(API_DIR)


@lru_cache(maxsize=16)
def load_api(name: str) -> ApiPrice:
    """API prices per million tokens from profiles/api/<name>.yaml."""
    path = profile_path(API_DIR, name, "API profile", "api")
    doc, file, sources = _top(Path(path), "api", _API_KEYS)
    for key in ("display_name", "provider", "model", "notes"):
        get_str(doc, key, file, default=None)
    prices = require_mapping(doc.get("prices"), file, "prices")
    check_keys(prices, ("input_per_m_usd", "output_per_m_usd", "cached_input_per_m_usd"), file, "prices.")
    found = {k: _price(prices, k, file, sources) for k in ("input_per_m_usd", "output_per_m_usd",
                                                           "cached_input_per_m_usd")}
    for key in ("input_per_m_usd", "output_per_m_usd"):
        if found[key] is None:
            raise PlannerError("missing required price", file=file, field=f"prices.{key}")
    cached = found["cached_input_per_m_usd"]
    return ApiPrice(name, found["input_per_m_usd"].usd, found["output_per_m_usd"].usd,
                    cached.usd if cached else None, found["output_per_m_usd"].source)
