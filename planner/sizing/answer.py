"""The `size` answer: ranked plans at the workload's operating point (metrics, SLO margins, capacity, cost, engine
flags), Pareto fronts (cost vs throughput, cost vs latency), rejections, API break-even, and
the readable table the CLI prints without --json.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from planner.base.units import duration
from planner.hardware.accelerators import load_accelerator as acc
from planner.model.models import load_model
from planner.perf.steps import decode_step
from planner.serving.arrivals import percentile_metric
from planner.serving.point import prefill_alone, replica_groups
from planner.serving.serve import serve_metrics
from planner.sizing.by_type import hw_type
from planner.sizing.capacity import running_for
from planner.sizing.cost import break_even
from planner.sizing.fits import lines as fits_lines
from planner.sizing.fitting import build
from planner.sizing.flags import flags_for
from planner.sizing.pareto import columns, distinct, fronts
from planner.sizing.rejections import kind_of

NOTES = (
    "metrics are the planner's serving model at the operating point (traffic / replicas); an SLO with a "
    "percentile is checked there under random (Poisson) arrivals (planner.serving.arrivals), the vectorized screen "
    "checks means",
    "capacity and ranking: a vectorized estimate screens every plan, the scalar serving model re-evaluates the "
    "best and every Pareto point (exact: true)",
    "buy: capex = priced parts only (capex_excludes lists the rest), written off linearly over "
    "amortization_years; energy at datasheet maximum power x PUE",
)


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def prefill_share(sc, running: float, t) -> float:
    """Fraction of GPU time a request spends in prefill: its prompt's prefill (compute, the same whether alone or
    mixed into decode steps) against its share of the decode steps it runs in (step time / running batch)."""
    _, prefill_s = prefill_alone(sc)
    batch = max(running, 1.0)
    decode_s = t.output_len * decode_step(sc, batch / sc.parallelism.tp, sc.workload.mean_kv_len).seconds / batch
    return prefill_s / (prefill_s + decode_s)


def plan_dict(row, rank: int, wl) -> dict:
    """One ranked plan at the workload's operating point."""
    cand, sc, t = row.cand, row.sc, wl.traffic
    g = replica_groups(sc)
    users = t.concurrency
    r_op = row.extra.get("running_op") or running_for(sc, row.cap, t.output_tokens_per_s / row.replicas)
    dep = build(cand, wl, replicas=row.replicas, concurrency=r_op * g * row.replicas)
    # production traffic arrives at random times: steady state (per-GPU memory is that of one replica)
    metrics, bottleneck, _ = serve_metrics(dep, row.mem, steady=True, curve=False)
    out_served = metrics["system_output_tokens_per_s"] if users is not None else t.output_tokens_per_s
    req = out_served / t.output_len
    in_served = req * t.input_len
    share = prefill_share(dep, r_op, t)
    usd_h = row.usd_per_hour
    per_m = lambda usd, tokens_s: usd / (tokens_s * 3600) * 1e6 if tokens_s > 0 else None  # noqa: E731
    slo = {}
    pct = wl.slo_value("percentile")
    for key, limit in wl.slo:
        # a latency SLO at a percentile is compared with the serving model's value there (planner.serving.arrivals)
        key_at = percentile_metric(key, pct) if pct is not None and key in ("ttft_ms", "tpot_ms") else key
        if key == "percentile" or metrics.get(key_at) is None:
            continue
        value = metrics[key_at]
        margin = (value - limit) / limit if key == "output_tokens_per_s_per_user" else (limit - value) / limit
        slo[key] = {"limit": limit, "value": value, "margin": margin}
    sim = row.extra.get("simulation")
    if sim:  # latencies as the simulation found them (it judges the SLO); throughput stays the closed forms'
        metrics.update({k: v for k, v in sim["metrics"].items() if v is not None and k.startswith(("ttft", "tpot"))})
        if metrics.get("tpot_ms"):
            metrics["output_tokens_per_s_per_user"] = 1e3 / metrics["tpot_ms"]
    for key, v in (sim or {}).get("slo", {}).items():  # the serving simulator's verdict (planner.sizing.simulated)
        lim, val = v["limit"], v["value"]
        margin = (val - lim) / lim if key == "output_tokens_per_s_per_user" else (lim - val) / lim
        slo[key] = {"limit": lim, "value": val, "margin": margin, "source": "simulation",
                    **({"percentile": v["percentile"]} if "percentile" in v else {})}
    hw = cand.hw
    host = None if hw.host is None else {"cpu": hw.host.cpu.name, "sockets": hw.host.sockets,
                                         "memory_gb": hw.host.memory_bytes / 1e9,
                                         "dram": f"{hw.host.dram_kind.lower()}-{hw.host.dram_mt_per_s:g}"}
    energy = row.cost.power_w * row.replicas / 1e3 * wl.pue * wl.electricity_usd_per_kwh if wl.purchase != "rent" \
        else None
    return {
        "rank": rank, "model": cand.model,
        "hardware": {"label": hw.label(), "class": hw.system.cls, "system": hw.system.name, "gpu": hw.gpu,
                     "gpus_per_node": hw.gpus_per_node if hw.gpu else 0, "nodes": hw.nodes,
                     "gpus_per_replica": hw.gpus if hw.gpu else 0,
                     "gpus_total": hw.gpus * row.replicas if hw.gpu else 0, "host": host},
        "weights": cand.weights, "kv_cache": cand.kv_cache, "engine": cand.engine,
        "checkpoint": {"published": cand.published, "repo": load_model(cand.model).checkpoint(cand.weights),
                       "note": "" if cand.published else "needs your own quantization: no published checkpoint "
                                                          f"of {cand.model} in {cand.weights}"},
        "parallelism": {"tp": cand.tp, "ep": cand.ep, "pp": cand.pp, "dp_attention": cand.dp,
                        "expert_layers_on_cpu": cand.offload_layers, "plan": cand.plan},
        "replicas": row.replicas,
        "metrics": {k: _finite(v) for k, v in metrics.items()},
        "bottleneck": bottleneck,
        "slo": slo,
        "served": {"requests_per_s": req, "output_tokens_per_s": out_served, "input_tokens_per_s": in_served,
                   "running_per_group": r_op},
        "capacity": {"running_per_group": row.cap.running, "engine_groups_per_replica": g,
                     "output_tokens_per_s_per_replica": row.cap.out_per_s,
                     "requests_per_s_per_replica": row.cap.out_per_s / t.output_len,
                     "tpot_ms_at_capacity": row.cap.tpot_s * 1e3, "ttft_ms_at_capacity": row.cap.ttft_s * 1e3,
                     "utilization": out_served / (row.cap.out_per_s * row.replicas), "exact": row.cap.exact},
        "memory": {"weights_bytes_per_gpu": row.mem.weights_bytes_per_gpu,
                   "kv_cache_bytes_per_gpu": row.mem.kv_cache_bytes_per_gpu, "host_bytes": row.mem.host_bytes,
                   "kv_tokens_per_gpu": row.mem.kv_tokens_per_gpu},
        "cost": {"purchase": wl.purchase, "usd_per_hour": usd_h, "usd_per_hour_per_replica": row.cost.usd_per_hour,
                 "capex_usd": row.capex, "capex_usd_per_replica": row.cost.capex_usd,
                 "usd_per_m_output_tokens": per_m(usd_h, out_served),
                 "usd_per_m_tokens": per_m(usd_h, out_served + in_served),
                 "split": {"prefill_time_share": share, "usd_per_m_input_tokens": per_m(usd_h * share, in_served),
                           "usd_per_m_output_tokens": per_m(usd_h * (1 - share), out_served)},
                 "power_w": row.cost.power_w * row.replicas, "energy_usd_per_hour": energy,
                 "capex_parts": [{"part": p, "usd": u * row.replicas, "source": s} for p, u, s in row.cost.parts],
                 "capex_excludes": list(row.cost.excludes)},
        "flags": flags_for(cand, wl, row.cap.running),
        "simulation": sim,
    }


def by_hardware(rows, wl, missed: dict | None = None) -> list[dict]:
    """The best plan of each hardware type, ranked by the workload's objective (a screened estimate unless `exact`;
    the ranked plans above are re-evaluated exactly); then each priced type with no plan meeting the workload
    (`missed`: type -> why, and its closest miss), `rank` None, so a buyer sees every priced type; those whose
    closest miss is priced (by_type.best_effort) carry `best_effort_rank`, by cost per million output tokens."""
    best: dict[str, object] = {}
    for r in sorted(rows, key=lambda r: r.key(wl.objective)):
        best.setdefault(hw_type(r.cand), r)
    out = [{"rank": k + 1, "hardware_type": name, "meets_slo": True, "reason": "", **_entry(r)}
           for k, (name, r) in enumerate(best.items())]
    unmet = [(name, why) for name, why in (missed or {}).items() if name not in best]
    unmet.sort(key=lambda kv: (kv[1].get("ratio", math.inf), kv[0]))
    efforts = sorted((why["best_effort"]["usd_per_m_output_tokens"], name) for name, why in unmet
                     if why.get("best_effort"))
    effort_rank = {name: k + 1 for k, (_, name) in enumerate(efforts)}
    for name, why in unmet:
        out.append({"rank": None, "hardware_type": name, "meets_slo": False, "vendor": why.get("vendor"),
                    "hardware": why.get("hardware"), "reason": why["reason"], "best": why.get("best"),
                    "best_effort": why.get("best_effort"), "best_effort_rank": effort_rank.get(name)})
    return out


def _entry(r) -> dict:
    """One plan's line in the per-hardware and per-tier summaries."""
    a = acc(r.cand.hw.gpu) if r.cand.hw.gpu else None
    return {"vendor": a.vendor if a else None, "hardware": r.cand.hw.label(), "weights": r.cand.weights,
            "kv_cache": r.cand.kv_cache, "engine": r.cand.engine, "plan": r.cand.plan, "replicas": r.replicas,
            "usd_per_hour": r.usd_per_hour, "capex_usd": r.capex,
            "usd_per_m_output_tokens": _finite(r.usd_per_m_output), "tpot_ms": r.tpot_op_s * 1e3,
            "exact": r.cap.exact}


TIERS = ("one workstation", "one node", "a cluster")


def tier_of(row) -> str:
    """Budget tier of a plan: a workstation or Apple machine, one server node, or several nodes (a multi-node
    replica or several replicas)."""
    if row.cand.hw.system.cls in ("workstation", "apple"):
        return "one workstation" if row.replicas == 1 else "a cluster"
    return "one node" if row.cand.hw.nodes * row.replicas == 1 else "a cluster"


def by_tier(rows, wl) -> dict[str, dict]:
    """The best plan of each budget tier (TIERS) by the workload's objective, as `by_hardware` writes a plan."""
    best: dict[str, object] = {}
    for r in sorted(rows, key=lambda r: r.key(wl.objective)):
        best.setdefault(tier_of(r), r)
    return {tier: {**_entry(r), "nodes": r.cand.hw.nodes * r.replicas, "class": r.cand.hw.system.cls,
                   "published": r.cand.published} for tier in TIERS if (r := best.get(tier)) is not None}


_PROFILE = re.compile(r"profiles/(hardware|systems)/([\w.+-]+)\.yaml")


def unpriced(rej) -> dict:
    """Candidates rejected for a missing price, and the GPU and system profiles that lack it."""
    n, gpus, systems = 0, set(), set()
    for reason, count in rej.counts.items():
        if kind_of(reason) != "no price":
            continue
        n += count
        m = _PROFILE.search(reason)
        if m:
            (gpus if m.group(1) == "hardware" else systems).add(m.group(2))
    return {"candidates": n, "gpus": sorted(gpus), "systems": sorted(systems)}


def document(wl, rows, exact, rej, stats, seconds: float, missed: dict | None = None) -> dict:
    plans = [plan_dict(r, k + 1, wl) for k, r in enumerate(distinct(exact)[:wl.top])]
    t = wl.traffic
    return {
        "workload": {"name": wl.name, "file": wl.file, "models": list(wl.models), "context_len": wl.context_len,
                     "traffic": {"requests_per_s": t.request_rate, "concurrency": t.concurrency,
                                 "input_len": t.input_len, "output_len": t.output_len,
                                 "output_tokens_per_s": t.output_tokens_per_s},
                     "slo": dict(wl.slo), "purchase": wl.purchase, "objective": wl.objective,
                     "data_local": wl.data_local, "kernel_tables": wl.kernel_tables},
        "plans": plans,
        "by_hardware": by_hardware(rows, wl, missed),
        "by_tier": by_tier(rows, wl),
        "unpriced": unpriced(rej),
        "rejected": rej.rendered(),
        "rejected_by_kind": rej.by_kind(),
        "rejected_grouped": rej.grouped(),
        "pareto": {name: [{k: _finite(v) for k, v in columns(rows[i]).items()} for i in f]
                   for name, f in fronts(rows).items()},
        "api_break_even": break_even(plans, wl),
        "summary": {**stats, "rejected": sum(rej.by_kind().values()), "seconds": seconds},
        "notes": list(NOTES),
    }


def _money(x) -> str:
    return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def table(doc: dict) -> str:
    """The readable answer: top plans with cost, SLO margins and flags; API comparison; Pareto; rejections."""
    w, t = doc["workload"], doc["workload"]["traffic"]
    load = f"requests in flight {t['concurrency']:g}" if t["concurrency"] is not None else \
        f"{t['requests_per_s']:,.3g} requests/s"
    slo = ", ".join(f"{k} {v:g}" for k, v in w["slo"].items()) or "no SLO"
    lines = [f"{w['name']}: {', '.join(w['models'])}, {load} x ({t['input_len']:,} in + {t['output_len']:,} out "
             f"tokens), context {w['context_len']:,}; {slo}; {w['purchase']}; objective {w['objective']}"
             + ("; default kernel table only" if w.get("kernel_tables") == "default"
                else "; silicon kernel tables where imported")]
    up = doc.get("unpriced") or {}
    if up.get("candidates"):
        lines.append(f"  unpriced: {up['candidates']:,} candidate plans had no {w['purchase']} price and were left out"
                     + (f"; GPUs: {', '.join(up['gpus'])}" if up["gpus"] else "")
                     + (f"; systems: {', '.join(up['systems'])}" if up["systems"] else "")
                     + " (add prices: in the workload, or to the profiles)")
    if not doc["plans"]:
        lines.append("  no plan meets the workload" + (" among the plans searched before the time budget ran out"
                                                       if doc["summary"].get("partial") else ""))
    if doc.get("fits"):
        lines += fits_lines(doc["fits"])
    rows = []
    for p in doc["plans"]:
        c, m = p["cost"], p["metrics"]
        margins = " ".join(f"{k.replace('_ms', '')} {v['value']:,.0f}/{v['limit']:g} ({v['margin']:+.0%})"
                           for k, v in p["slo"].items()) or f"TPOT {m['tpot_ms']:,.1f} ms"
        rows.append({"#": p["rank"], "model": p["model"], "hardware": p["hardware"]["label"],
                     "weights": p["weights"] + ("" if p["checkpoint"]["published"] else "*"), "kv": p["kv_cache"],
                     "engine": p["engine"], "plan": p["parallelism"]["plan"], "repl": p["replicas"],
                     "USD/h": _money(c["usd_per_hour"]), "capex USD": _money(c["capex_usd"]),
                     "USD/M out": _money(c["usd_per_m_output_tokens"]),
                     "USD/M in|out": f"{_money(c['split']['usd_per_m_input_tokens'])}|"
                                     f"{_money(c['split']['usd_per_m_output_tokens'])}",
                     "util": f"{p['capacity']['utilization']:.0%}",
                     "power kW": f"{c['power_w'] / 1e3:,.1f}" if c["power_w"] else "-",
                     "SLO value/limit (margin)": margins})
    if rows:
        lines.append(pd.DataFrame(rows).to_string(index=False))
        if any(not p["checkpoint"]["published"] for p in doc["plans"]):
            lines.append("  * needs your own quantization: nobody publishes this model's checkpoint in that format "
                         "(plans on published checkpoints rank first)")
        sims = [p for p in doc["plans"] if p.get("simulation")]
        if sims:
            added = [f"#{p['rank']} +{p['simulation']['added_replicas']}" for p in sims
                     if p["simulation"]["added_replicas"]]
            lines.append("  SLO values from the serving simulator (one replica's share of the traffic)"
                         + (f"; replicas it added where the closed forms fell short: {', '.join(added)}"
                            if added else ""))
        for p in doc["plans"]:
            lines.append(f"  #{p['rank']} flags:")
            lines += [f"    {eng}: {cmd}" for eng, cmd in p["flags"].items() if cmd]
            if p["cost"]["capex_excludes"]:
                lines.append(f"    capex excludes: {'; '.join(p['cost']['capex_excludes'])}")
    ranked = [h for h in doc.get("by_hardware", ()) if h["rank"] is not None]
    if ranked:
        lines.append(f"Best plan per hardware type ({len(ranked)} types meet the workload; * = estimate):")
        lines.append(pd.DataFrame([{
            "#": h["rank"], "type": h["hardware_type"], "hardware": h["hardware"], "weights": h["weights"],
            "engine": h["engine"], "plan": h["plan"], "repl": h["replicas"], "USD/h": _money(h["usd_per_hour"]),
            "capex USD": _money(h["capex_usd"]), "USD/M out": _money(h["usd_per_m_output_tokens"]) +
            ("" if h["exact"] else "*"), "TPOT ms": f"{h['tpot_ms']:,.1f}"} for h in ranked]).to_string(index=False))
    unmet = [h for h in doc.get("by_hardware", ()) if h["rank"] is None]
    if unmet:
        lines.append(f"Priced hardware types with no plan meeting the workload ({len(unmet)}; closest first):")
        lines += [f"  - {h['reason']}" for h in unmet]
        effort = sorted((h for h in unmet if h.get("best_effort")), key=lambda h: h["best_effort_rank"])
        if effort:
            lines.append("Best effort on those types, for a buyer who accepts the missed SLO (their closest plan, one "
                         "request in flight per engine group; * = needs your own quantization):")
            lines.append(pd.DataFrame([{
                "#": h["best_effort_rank"], "type": h["hardware_type"], "hardware": e["hardware"],
                "weights": e["weights"] + ("" if e["published"] else "*"), "engine": e["engine"], "plan": e["plan"],
                "TTFT": duration(e["ttft_ms"] / 1e3), "TPOT ms": f"{e['tpot_ms']:,.1f}",
                "repl": f"{e['replicas']:,}", "USD/h": _money(e["usd_per_hour"]),
                "USD/M out": _money(e["usd_per_m_output_tokens"])}
                for h in effort if (e := h["best_effort"])]).to_string(index=False))
    lines.append(_api_line(doc["api_break_even"]))
    for name, recs in doc["pareto"].items():
        if recs:
            df = pd.DataFrame(recs)[["model", "hardware", "weights", "kv_cache", "engine", "plan",
                                     "usd_per_hour_per_replica",
                                     "output_tokens_per_s_per_replica", "usd_per_m_output_tokens", "tpot_ms"]]
            lines.append(f"Pareto front, {name.replace('_', ' ')} ({len(recs)} plans):")
            lines.append(df.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    s = doc["summary"]
    kinds = ", ".join(f"{k} {n:,}" for k, n in doc["rejected_by_kind"].items())
    lines.append(f"Searched {s['candidates']:,} plans in {s['seconds']:.2f} s: {s['feasible']:,} meet the workload, "
                 f"{s['rejected']:,} rejected ({kinds})")
    if s.get("partial"):
        left = s["not_searched"]
        lines.append(f"PARTIAL ANSWER: the time budget ran out before {len(left):,} model/hardware combinations were "
                     "searched (raise --time-budget, or narrow search: classes, accelerators, max_nodes):")
        lines += [f"  not searched: {line}" for line in left[:10]]
        if len(left) > 10:
            lines.append(f"  ... {len(left) - 10} more (--json lists all)")
    for reason, n in list(doc["rejected"].items())[:15]:
        lines.append(f"  {n:6,}  {reason}")
    if len(doc["rejected"]) > 15:
        lines.append(f"  ... {len(doc['rejected']) - 15} more reasons (--json lists all)")
    return "\n".join(lines)


def _api_line(api: dict) -> str:
    if not api["available"]:
        return f"API: not considered ({api.get('reason', '')}); answer: {api['answer']}"
    a = api["api"]
    line = (f"API ({a['name']}: {a['input_per_m_usd']:g} in / {a['output_per_m_usd']:g} out USD per M tokens): "
            f"answer {api['answer']}")
    if api.get("api_usd_per_day") is not None:
        line += f"; this workload: API {api['api_usd_per_day']:,.0f} USD/day vs plan #1 {api['plan_usd_per_day']:,.0f}"
    if api.get("break_even_tokens_per_day"):
        line += f"; break-even {api['break_even_tokens_per_day']:,.0f} tokens/day"
    elif api.get("reason"):
        line += f"; {api['reason']}"
    return line
