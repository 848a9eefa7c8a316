"""Prices as data (issue 21): every profile price carries a date and a source; a workload's `prices:` override the
profiles'; `purchase: owned` costs energy only."""

from __future__ import annotations

import pytest

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, load_document, profile_names
from planner.hardware.accelerators import load_accelerator
from planner.sizing.search import size
from planner.sizing.workload import workload_from_mapping

BASE = {"model": "kimi-k2.5", "context_len": 8192, "traffic": {"requests_per_s": 0.5, "input_len": 2000,
                                                                 "output_len": 500},
        "slo": {"ttft_ms": 5000, "tpot_ms": 80}, "weights": ["int4-g32"], "kv_cache": ["fp8"],
        "search": {"classes": ["gpu_server"], "accelerators": ["h200-sxm"], "max_nodes": 1}}


def wl(**over):
    return workload_from_mapping({**BASE, **over}, "test-workload.yaml")


@pytest.mark.parametrize("gpu", profile_names(PROFILES / "hardware"))
def test_every_price_has_a_date_and_a_source(gpu):
    doc = load_document(PROFILES / "hardware" / f"{gpu}.yaml")
    for key, entry in (doc.get("prices") or {}).items():
        assert entry.get("date"), (gpu, key)
        assert entry["source"] in doc["sources"], (gpu, key)


def test_priced_gpus_span_vendors_buy_and_rent():
    accs = [load_accelerator(g) for g in profile_names(PROFILES / "hardware")]
    assert {a.vendor for a in accs if a.purchase} >= {"NVIDIA", "AMD", "Apple"}
    assert {a.vendor for a in accs if a.cloud} >= {"NVIDIA", "AMD"}
    assert sum(a.purchase is not None for a in accs) >= 10 and sum(a.cloud is not None for a in accs) >= 12


def test_workload_prices_override_the_profile():
    base = size(wl(purchase="rent"))
    own = size(wl(purchase="rent", prices={"h200-sxm": {"usd_per_gpu_hour": 1.0}}))
    assert base["plans"] and own["plans"]
    p = own["plans"][0]
    assert p["cost"]["usd_per_hour"] == pytest.approx(p["hardware"]["gpus_per_replica"] * p["replicas"] * 1.0)
    assert "prices.h200-sxm" in p["cost"]["capex_parts"][0]["source"]
    bought = size(wl(purchase="buy", prices={"h200-sxm": {"purchase_usd": 1000}}))
    assert bought["plans"][0]["cost"]["capex_usd_per_replica"] == pytest.approx(
        1000 * bought["plans"][0]["hardware"]["gpus_per_replica"])


def test_owned_costs_energy_only():
    doc = size(wl(purchase="owned"))
    c = doc["plans"][0]["cost"]
    assert c["capex_usd"] == 0 and c["usd_per_hour"] == pytest.approx(c["energy_usd_per_hour"]) and c["power_w"] > 0


@pytest.mark.parametrize("prices, field", [
    ({"no-such-gpu": {"purchase_usd": 1}}, "prices.no-such-gpu"),
    ({"h200-sxm": {"cost": 1}}, "prices.h200-sxm."),
    ({"h200-sxm": {}}, "prices.h200-sxm"),
    ({"h200-sxm": {"purchase_usd": -5}}, "prices.h200-sxm.purchase_usd"),
])
def test_bad_price_override_names_the_field(prices, field):
    with pytest.raises(PlannerError) as err:
        wl(prices=prices)
    assert field in str(err.value)
