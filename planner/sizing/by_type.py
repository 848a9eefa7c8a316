"""Hardware types in the `size` answer (answer.by_hardware): the type of a plan, which types the search tried and
how close each came to the SLO, and why each priced type without a plan meeting the workload has none (its closest
miss at one request in flight, no plan fitting memory, or no configuration passing the static checks), with that
closest miss priced as a best effort (a Mac that prefills a chat prompt in 13 s instead of 3 s is still a ranked
answer for a buyer who can wait: its cost per million tokens and the replicas the traffic needs).
"""

from __future__ import annotations

import math

from planner.base.units import duration
from planner.hardware.accelerators import load_accelerator
from planner.sizing.candidates import hardware_options, systems_for
from planner.sizing.capacity import replicas_for
from planner.sizing.cost import unit_cost
from planner.sizing.workload import SizingWorkload


def hw_type(cand) -> str:
    """A plan's hardware type: its GPU profile, or the system for CPU-only plans."""
    return cand.hw.gpu or cand.hw.kind_label


def closer(tried: dict, kind: str, slo: dict | None, labels=()) -> None:
    """Record that hardware type `kind` was tried (its hardware `labels`), keeping its closest SLO miss."""
    entry = tried.setdefault(kind, {"labels": set(), "slo": None})
    entry["labels"].update(labels)
    if slo is not None and slo["limit"] > 0:
        old = entry["slo"]
        if old is None or slo["value"] / slo["limit"] < old["value"] / old["limit"]:
            entry["slo"] = slo


def miss_reason(wl, display: str, slo: dict | None, memory: str = "") -> tuple[str, float]:
    """(why a hardware type has no plan meeting the workload, closeness: the closest miss's value / SLO limit)."""
    if slo is None:
        return f"{display}: no plan fits memory" + (f" ({memory})" if memory else ""), math.inf
    key = {"TTFT": "ttft_ms", "TPOT": "tpot_ms"}.get(slo["metric"], slo["metric"])
    ratio = slo["value"] / slo["limit"] if slo["limit"] else math.inf
    where = f"{slo['hardware']}, {slo['weights']}, {slo['engine']} {slo['plan']}"
    pct = wl.slo_value("percentile")
    if ratio <= 1:  # the mean at batch 1 meets it: the percentile under random arrivals does not
        return (f"{display}: no plan meets {key} {slo['limit'] * 1e3:g}{f' at p{pct:g}' if pct else ''} under load "
                f"(mean {duration(slo['value'])} at 1 request in flight, {where})"), ratio
    return (f"{display}: no plan meets {key} {slo['limit'] * 1e3:g} (best {duration(slo['value'])} at 1 request "
            f"in flight, {where})"), ratio


def best_effort(wl: SizingWorkload, slo: dict | None) -> dict | None:
    """What a type's closest SLO miss would serve and cost for a buyer who accepts its slower answer: one request
    in flight per engine group (the batch the miss was measured at), replicas for the workload's traffic at that
    rate, USD per million output tokens as planner.sizing.search.Row prices a plan. None without a priced miss."""
    if not slo or not slo.get("out_per_s"):
        return None
    replicas = replicas_for(wl.traffic.output_tokens_per_s, wl.traffic.concurrency, slo["groups"], slo["out_per_s"])
    return {"hardware": slo["hardware"], "weights": slo["weights"], "engine": slo["engine"], "plan": slo["plan"],
            "published": slo.get("published", True), "in_flight_per_replica": slo["groups"],
            "ttft_ms": slo["ttft_s"] * 1e3, "tpot_ms": slo["tpot_s"] * 1e3, "replicas": replicas,
            "usd_per_hour": slo["usd_per_hour"] * replicas, "capex_usd": slo["capex_usd"] * replicas,
            "usd_per_m_output_tokens": slo["usd_per_hour"] / (slo["out_per_s"] * 3600) * 1e6}


def missed_types(wl: SizingWorkload, rej, tried: dict, partial: bool = False) -> dict[str, dict]:
    """Every priced hardware type of the search with why it may have no plan meeting the workload (by_hardware
    drops those that have one): its closest SLO miss, or no plan fitting memory, or no configuration passing the
    static checks (the weights exceed the largest one, or no engine and format run there). A `partial` search
    (its time budget ran out) names only the types it tried."""
    largest: dict[str, object] = {}
    for system in systems_for(wl):
        for hw in hardware_options(system, wl):
            if isinstance(unit_cost(hw, wl), str):  # unpriced: listed by `unpriced`
                continue
            kind = hw.gpu or hw.kind_label
            if kind not in largest or hw.gpus > largest[kind].gpus:
                largest[kind] = hw
    out = {}
    for kind, hw in largest.items():
        a = load_accelerator(hw.gpu) if hw.gpu else None
        display = a.display_name if a else hw.kind_label
        entry = tried.get(kind)
        if entry is None and partial:
            continue
        if entry is None:
            mem = a.memory_bytes * hw.gpus if a else hw.host.memory_bytes
            reason, ratio = (f"{display}: no configuration passed the static checks (largest searched {hw.label()}, "
                             f"{mem / 1e9:,.0f} GB: the weights exceed it, or no engine runs a format there)"), math.inf
            slo = None
        else:
            slo = entry["slo"]
            memory = next((r for r in rej.counts for lb in sorted(entry["labels"])
                           if r.startswith(f"{lb}, ")), "")
            reason, ratio = miss_reason(wl, display, slo, memory)
        out[kind] = {"vendor": a.vendor if a else None, "hardware": slo["hardware"] if slo else hw.label(),
                     "reason": reason, "ratio": ratio, "best": slo, "best_effort": best_effort(wl, slo)}
    return out
