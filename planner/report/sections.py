"""Report sections: each takes the report spec and its options and returns text, figures and tables.

Numbers come from planner calls (through planner.report.tables, claims, api, external); this module only
chooses what to show and words it. A section whose data does not exist yet says so in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from planner.base.errors import PlannerError
from planner.base.units import gb
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import Model, load_model
from planner.model.quant import load_format
from planner.report import figures as F
from planner.report import tables as T
from planner.report.api import break_even_table, daily_cost_curve
from planner.report.claims import audit, verdict_counts
from planner.report.external import bench_points, hardware_types_table, sizing_range, sizing_table
from planner.report.family import family_of
from planner.report.plans import Plan, load_plans, pick
from planner.report.spec import ReportSpec, SectionSpec, model_ref, resolve_path
from planner.report.verdict import BANDS
from planner.report.verdict_section import DEFAULT_FORMATS, fit_table, tier_table, wrong_claims
from planner.serving.validate import validate


@dataclass
class Section:
    key: str  # anchor and file-name prefix, e.g. "memory-per-gpu"
    title: str
    paragraphs: list[str] = field(default_factory=list)  # plain text (escaped by the writers)
    figures: list[tuple[str, str, go.Figure]] = field(default_factory=list)  # (slug, caption, figure)
    tables: list[tuple[str, str, pd.DataFrame, bool]] = field(default_factory=list)  # (slug, caption, df, shown)
    notes: list[str] = field(default_factory=list)  # what is missing or approximate here


@dataclass
class Context:
    spec: ReportSpec
    scratch: Path  # temporary folder of this build (never part of the output)
    used_sources: dict = field(default_factory=dict)  # "what" -> citation, gathered for the assumptions section
    cache: dict = field(default_factory=dict)  # results two sections share (sizing runs, the claims audit)

    def options_of(self, kind: str) -> tuple[dict, str] | None:
        """(options, field) of the report's first section of `kind`, or None."""
        sec = next((sec for sec in self.spec.sections if sec.kind == kind), None)
        return None if sec is None else (dict(sec.options), sec.field)

    def sizing_runs(self, opts: dict, where: str) -> list:
        """The sizing search at each traffic rate of a sizing section's options (planner.report.external), once."""
        key = ("sizing", where)
        if key not in self.cache:
            self.cache[key] = sizing_range(opts["workload"], opts.get("rates"), f"{self.spec.file}: {where}.workload")
        return self.cache[key]

    def claims(self, opts: dict, where: str) -> tuple[pd.DataFrame, str]:
        """The claims audit (planner.report.claims) of a claims_audit section's options, once."""
        key = ("claims", where)
        if key not in self.cache:
            self.cache[key] = audit(opts, self.spec.models[0], self.spec.workloads, self.spec.file, where)
        return self.cache[key]

    @cached_property
    def models(self) -> list[Model]:
        return [load_model(model_ref(m)) for m in self.spec.models]

    @cached_property
    def plans(self) -> list[Plan]:
        return load_plans(self.spec)


def model_card(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("model-card", "Model card")
    params, active = T.params_table(ctx.models), T.active_table(ctx.models)
    for row in active.itertuples():
        s.paragraphs.append(
            f"{row.model}: {row.total_params:,} parameters in the language model, {row.active_params_per_token:,} "
            f"active per token ({row.active_fraction:.2%}); vision tower {row.vision_params:,}, MTP layers "
            f"{row.mtp_params:,}; official checkpoint format {row.native_weights}.")
    for m in ctx.models:
        kinds = m.spec.layer_kind_counts
        s.paragraphs.append(f"{m.name}: {m.spec.num_layers} layers; attention " + ", ".join(
            f"{n} {k}" for k, n in kinds["attention"].items()) + "; feed-forward " + ", ".join(
            f"{n} {k}" for k, n in kinds["ffn"].items()) + ".")
        s.figures.append((f"params-{m.name}", f"Parameters of {m.name} by component", F.params_treemap(params, m.name)))
        ctx.used_sources[f"model {m.name}"] = m.source
    s.figures.append(("active-vs-total", "Total vs active parameters per token", F.active_vs_total(active)))
    s.tables += [("params-by-component", "Parameters by part and component", params, True),
                 ("params-active", "Total and active parameters", active, True),
                 ("layer-kinds", "Layers per attention and feed-forward kind", T.layer_kinds_table(ctx.models), True)]
    return s


def weights_by_format(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("weights-by-format", "Weights by format")
    formats = list(opts.get("formats") or ctx.spec.formats)
    weights, skipped = T.weights_table(ctx.models, formats)
    totals = T.weights_totals(weights)
    s.paragraphs.append("Stored bytes of the checkpoint in each weight format (quantization scales and packing "
                        "included, vision and MTP parts where the format's files hold them), per component.")
    for m in ctx.models:
        s.figures.append((f"weights-{m.name}", f"Weight bytes of {m.name} per format", F.weights_bars(weights, m.name)))
    s.tables += [("weights-total", "Stored weight bytes per format", totals, True),
                 ("weights-by-component", "Stored weight bytes per format and component", weights, False)]
    s.notes += [f"not sized: {line}" for line in skipped]
    for name in formats:
        ctx.used_sources[f"format {name}"] = load_format(name).source
    return s


def memory_per_gpu(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("memory-per-gpu", "Memory per GPU")
    plans = pick(ctx.plans, opts.get("plans"), ctx.spec.file, f"{where}.plans")
    mem = T.memory_table(plans)
    s.paragraphs.append("Fullest GPU of each plan: weights as the engine shards them, the KV cache pool the engine "
                        "allocates, activation workspace, runtime (CUDA context, NCCL, graphs) and what stays free.")
    for p in plans:
        if not p.fits:
            s.paragraphs.append(f"{p.name} does not fit: {p.result['reason']}")
    s.figures.append(("memory", "Memory per GPU of each plan", F.memory_bars(mem)))
    s.tables.append(("memory", "Memory per GPU", mem, True))
    return s


def kv_vs_context(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("kv-vs-context", "KV cache vs context")
    dtypes = list(opts.get("dtypes") or ctx.spec.kv_dtypes)
    kv = T.kv_table(ctx.models, dtypes, opts.get("max_context"))
    top = kv.sort_values("context_tokens").groupby(["model", "layout"], sort=False).tail(1)
    kinds = pd.concat([T.kv_kinds_table(ctx.models, d) for d in dtypes], ignore_index=True)
    for m in ctx.models:
        try:  # per token and per request, by attention kind (hybrid models hold a part whatever the length)
            s.paragraphs.append(f"{m.name} ({dtypes[0]} KV cache): {kv_by_kind(m.spec, dtypes[0]).words()}.")
        except PlannerError as err:
            s.notes.append(f"{m.name}: {err}")
        rows = top[top["model"] == m.name]
        own = rows[~rows["layout"].str.startswith("MHA")]
        mha = rows[rows["layout"].str.startswith("MHA")]
        if not own.empty and not mha.empty:
            a, b = own.iloc[0], mha.iloc[0]
            s.paragraphs.append(f"{m.name}: one {a.context_tokens:,}-token sequence holds {gb(a.bytes_per_sequence)} "
                                f"as {a.layout} vs {gb(b.bytes_per_sequence)} as {b.layout} "
                                f"({b.bytes_per_sequence / a.bytes_per_sequence:.1f}x).")
    s.figures.append(("kv-vs-context", "KV cache of one sequence vs context", F.kv_lines(kv)))
    s.tables += [("kv-by-layer-kind", "KV cache per token (past any window) and held per request, by attention kind",
                  kinds, True),
                 ("kv-at-max-context", "KV cache per token and at the longest context", top, True),
                 ("kv-vs-context", "KV cache per sequence vs context", kv, False)]
    return s


def throughput_latency(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("throughput-latency", "Throughput vs latency")
    plans = [p for p in pick(ctx.plans, opts.get("plans"), ctx.spec.file, f"{where}.plans") if p.fits]
    s.paragraphs.append("Decode throughput per GPU against speed per user as the running batch doubles up to what "
                        "memory and the engine allow; each plan at its own workload.")
    s.figures.append(("throughput-latency", "Throughput vs latency", F.throughput_latency(T.curve_table(plans))))
    s.tables += [("plan-metrics", "Serving metrics of each plan (largest batch that fits)",
                  T.plan_metrics_table(pick(ctx.plans, opts.get("plans"), ctx.spec.file, f"{where}.plans")), True),
                 ("throughput-curves", "Throughput-latency points", T.curve_table(plans), False)]
    for p in plans:
        for a in p.result.get("assumptions") or []:
            s.notes.append(f"{p.name}: {a}")
    return s


def roofline(ctx: Context, opts: dict, where: str) -> Section:

    s = Section("roofline", "Roofline")
    fitting = [p for p in ctx.plans if p.fits and p.scenario.gpu]
    if opts.get("plan"):
        plan = pick(ctx.plans, opts["plan"], ctx.spec.file, f"{where}.plan")[0]
    elif fitting:
        plan = fitting[0]
    else:
        s.notes.append("no plan fits on a GPU: nothing to place on a roofline")
        return s
    if not plan.fits or not plan.scenario.gpu:
        raise PlannerError(f"plan {plan.name!r} does not fit on a GPU", file=ctx.spec.file, field=f"{where}.plan")
    max_b = max(1.0, plan.result["capacity"]["max_batch_per_gpu"])
    batches = [float(b) for b in opts.get("batches") or [1, max_b]]
    points = T.roofline_points(plan, batches)
    ceilings = T.roofline_ceilings(plan.scenario.gpu)
    measured, why = bench_points(resolve_path(opts.get("results") or "bench_results/results.sqlite"))
    s.paragraphs.append(f"Every GPU op of one decode step of {plan.name} at {', '.join(f'{b:g}' for b in batches)} "
                        "sequences per GPU, at the FLOP/s the planner's roofline gives it (efficiencies included).")
    if why:
        s.notes.append(why)
    s.figures.append(("roofline", f"Roofline of {plan.name}", F.roofline(points, ceilings, measured)))
    s.tables += [("roofline-ops", "Decode ops on the roofline", points, False),
                 ("roofline-ceilings", "Ceilings", ceilings, True)]
    if measured is not None:
        s.tables.append(("roofline-measured", "kernels_bench runs", measured, True))
    return s


def sizing(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("sizing", "Sizing")
    if opts.get("workload") is None:
        raise PlannerError("missing (a workload file or mapping, CONTRACT.md §7)", file=ctx.spec.file,
                           field=f"{where}.workload")
    tables, types, grouped = [], [], {}
    for rate, doc, why in ctx.sizing_runs(opts, where):
        at = "" if rate is None else f" at {rate:g} requests/s"
        if doc is None:
            s.notes.append(f"{why}{at}: no sizing table")
            continue
        table = sizing_table(doc)
        if rate is not None:
            table.insert(0, "requests_per_s", rate)
        tables.append(table)
        kinds = hardware_types_table(doc)
        if rate is not None and not kinds.empty:
            kinds.insert(0, "requests_per_s", rate)
        types.append(kinds)
        sm = doc.get("summary") or {}
        s.paragraphs.append(f"{at.strip() or 'the workload'}: {sm.get('feasible', len(table)):,} feasible plans of "
                            f"{sm.get('candidates', 0):,} searched; the {len(table)} best ranked below.")
        for g in doc.get("rejected_grouped") or []:
            grouped.setdefault(g["kind"], []).append((rate, g))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not table.empty:
        s.figures.append(("sizing-pareto", "Cost vs latency of the ranked plans at each traffic rate",
                          F.sizing_pareto(table)))
    s.tables.append(("sizing-plans", "Ranked plans", table, True))
    kinds = pd.concat(types, ignore_index=True) if types else pd.DataFrame()
    if not kinds.empty:
        s.tables.append(("sizing-hardware-types", "Best plan per hardware type (where none meets the SLO: why, and "
                         "its closest plan priced as a best effort)", kinds, True))
    # rejections grouped by reason kind with counts (every reason is in `planner size --json`)
    rows = [_rejected_row(kind, items) for kind, items in grouped.items()]  # one row per kind of reason
    if rows:
        s.tables.append(("sizing-rejected", "Rejected plans by kind of reason", pd.DataFrame(rows), True))
    return s


def verdict(ctx: Context, opts: dict, where: str) -> Section:
    """One screen: cheapest way per budget tier and traffic, what fits where, the claims found wrong."""
    model = ctx.models[0].name
    s = Section("verdict", f"Verdict: {model}")
    sized = ctx.options_of("sizing")
    runs = ctx.sizing_runs(*sized) if sized and sized[0].get("workload") is not None else []
    wl = dict(sized[0]["workload"]) if sized and isinstance(sized[0].get("workload"), dict) else {}
    context = int(wl.get("context_len") or 131072)
    if runs:
        first = next((d for _, d, _ in runs if d is not None), None)
        w = first["workload"] if first else {}
        slo = ", ".join(f"{k} {v:g}" for k, v in (w.get("slo") or {}).items()) or "no SLO"
        s.paragraphs.append(f"Cheapest way to serve {model} per budget tier ({w.get('purchase', '')}: "
                            f"USD per million output tokens at the traffic served, {slo}, context "
                            f"{context:,}); * = no published checkpoint in that format (your own quantization).")
        s.tables.append(("verdict-tiers", "Cheapest plan per budget tier and traffic",
                         tier_table([(r, d) for r, d, _ in runs]), True))
    else:
        s.notes.append("no sizing section: no cost per tier")
    formats = list(wl.get("weights") or DEFAULT_FORMATS)
    gpus = list(ctx.spec.hardware) or ["h200-sxm", "h100-sxm"]
    s.tables.append(("verdict-fits", f"Fewest GPUs that hold {model} with one {context:,}-token request",
                     fit_table(model_ref(ctx.spec.models[0]), formats, gpus, context), True))
    audited = ctx.options_of("claims_audit")
    if audited:
        table, _ = ctx.claims(*audited)
        bad = wrong_claims(table)
        s.paragraphs.append(f"The audit found {len(bad)} of {len(table)} claims wrong or off (claims audit below).")
        s.tables.append(("verdict-claims", "Claims the audit found wrong or off", bad, True))
    return s


def api_break_even(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("api-break-even", "API break-even")
    api = dict(opts.get("api") or {})
    for key in ("input_per_m_usd", "output_per_m_usd"):
        if not isinstance(api.get(key), (int, float)):
            raise PlannerError("expected a price in USD per million tokens", file=ctx.spec.file,
                               field=f"{where}.api.{key}")
    plans = pick(ctx.plans, opts.get("plans"), ctx.spec.file, f"{where}.plans")
    table, left = break_even_table(plans, api)
    s.paragraphs.append(f"API at ${api['input_per_m_usd']:g} per million input and ${api['output_per_m_usd']:g} per "
                        "million output tokens vs renting each plan around the clock at its profile's rental price "
                        "(planner throughput at the plan's workload). Purchase, power and utilization below 100% "
                        "belong to sizing.")
    if not table.empty:
        curve = daily_cost_curve(table, api)
        s.figures.append(("api-break-even", "Dollars per day: API vs renting", F.daily_cost(curve)))
        for r in table.itertuples():
            s.paragraphs.append(f"{r.plan}: ${r.self_usd_per_m_output:.2f} per million output tokens at full load "
                                f"vs ${r.api_usd_per_m_output:.2f} through the API; renting wins above "
                                f"{r.break_even_output_tokens_per_day / 1e6:,.0f} M output tokens per day "
                                f"({r.break_even_utilization:.0%} of its capacity).")
            ctx.used_sources[f"rental price {r.plan}"] = f"{r.price_source} ({r.price_date})"
    s.tables.append(("api-break-even", "API vs renting", table, True))
    s.notes += [f"left out: {line}" for line in left]
    if api.get("source"):
        ctx.used_sources["API prices"] = str(api["source"])
    return s


def validation(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("validation", "Validation against published measurements")
    path = resolve_path(str(opts.get("cases") or "../shared/validation/public_cases.yaml"))
    if not path.is_file():
        s.notes.append(f"no validation cases at {path}: table not available")
        return s
    report = validate(path)
    sm = report["summary"]
    table = T.validation_table(report)
    if sm["n"]:
        s.paragraphs.append(f"{sm['n']} comparisons: median |error| {sm['median_abs_error']:.0%}, p90 |error| "
                            f"{sm['p90_abs_error']:.0%}; error = predicted / measured - 1.")
    s.figures.append(("validation", "Predicted vs measured", F.validation_scatter(table)))
    s.tables.append(("validation", "Predicted vs measured, per case", table, True))
    ctx.used_sources["validation cases"] = str(path)
    return s


def claims_audit(ctx: Context, opts: dict, where: str) -> Section:

    s = Section("claims-audit", "Claims audit")
    table, file = ctx.claims(opts, where)
    counts = verdict_counts(table)
    s.paragraphs.append(f"{len(table)} claims from {file}: {counts['confirmed']} confirmed, {counts['off']} off, "
                        f"{counts['wrong']} wrong, {counts['not_checkable']} not checkable by the planner.")
    s.paragraphs.append("Verdicts compare the claimed number c with the planner's p by max(c/p, p/c) - 1: "
                        + "; ".join(f"{basis} quantities confirmed within {a:.0%}, off up to {b:.0%}, wrong beyond"
                                    for basis, (a, b) in BANDS.items())
                        + ". 'off by X%' is c/p - 1. The last column names the planner calls behind each verdict.")
    s.tables.append(("claims-audit", "Verdict per claim", table.drop(columns=["off"]), True))
    ctx.used_sources["claims"] = file
    return s


def family(ctx: Context, opts: dict, where: str) -> Section:
    """A model beside its relatives: weights per format, KV per request at long context, fit and speed on the same
    deployments (planner.report.family computes and words it)."""
    f = family_of(ctx.spec, opts, where)
    s = Section("family", f.title, [f.intro, *f.verdicts], notes=[f"not sized: {n}" for n in f.notes])
    s.tables += [("family-weights", "Stored weight bytes per format", f.weights, True),
                 ("family-kv", f"{f.kv_cache} KV cache of one request (all layers, one copy before any TP split)", f.kv,
                  True),
                 ("family-deployments", "Each model's official checkpoint on each deployment at the section's "
                  "workload", f.deployments, True)]
    return s


def assumptions(ctx: Context, opts: dict, where: str) -> Section:
    s = Section("assumptions", "Assumptions and sources")
    for p in ctx.plans:
        sc = p.scenario
        ctx.used_sources.setdefault(f"engine {sc.engine.name}", sc.engine.source)
        if sc.accelerator is not None:
            acc = sc.accelerator
            ctx.used_sources.setdefault(f"accelerator {sc.gpu}", "; ".join(dict.fromkeys(acc.sources.values())))
        for a in p.result.get("assumptions") or []:
            s.paragraphs.append(f"{p.name}: {a}")
    s.paragraphs += [
        "Exact: parameter counts, stored bytes of the official checkpoints, KV bytes per token (tests pin them).",
        "Approximate: GGUF recipes (rules reproducing llama.cpp's per-tensor choice, within 3% of published sizes), "
        "activation and runtime memory (engine presets), speeds (roofline with published efficiencies; see the "
        "validation section for the error), rental prices (dated quotes in the hardware profiles).",
        f"Report file: {ctx.spec.file}" + (f"; its published numbers: {ctx.spec.source}" if ctx.spec.source else ""),
    ]
    table = pd.DataFrame([{"what": k, "source": v} for k, v in ctx.used_sources.items()])
    s.tables.append(("sources", "Where every number comes from", table, True))
    return s


BUILDERS = {"verdict": verdict, "model_card": model_card, "weights_by_format": weights_by_format,
            "memory_per_gpu": memory_per_gpu,
            "kv_vs_context": kv_vs_context, "throughput_latency": throughput_latency, "roofline": roofline,
            "sizing": sizing, "api_break_even": api_break_even, "validation": validation,
            "claims_audit": claims_audit, "family": family, "assumptions": assumptions}


def build_sections(ctx: Context) -> list[Section]:
    """Sections in the report's order; assumptions last among equals so it sees every source used."""
    order = sorted(range(len(ctx.spec.sections)), key=lambda k: ctx.spec.sections[k].kind == "assumptions")
    built: dict[int, Section] = {}
    for k in order:
        sec: SectionSpec = ctx.spec.sections[k]
        built[k] = BUILDERS[sec.kind](ctx, dict(sec.options), sec.field)
    return [built[k] for k in range(len(ctx.spec.sections))]


def _rejected_row(kind: str, items: list) -> dict:
    """One kind of rejection over the traffic rates it appeared at: its counts, per rate where they differ."""
    same = len({(g["plans"], g["reasons"], tuple(g["examples"])) for _, g in items}) == 1

    def each(key):
        return items[0][1][key] if same else " | ".join(f"{g[key]:,}" for _, g in items)

    examples = items[0][1]["examples"] if same else dict.fromkeys(e for _, g in items for e in g["examples"][:2])
    return {"reason": kind, "requests_per_s": ", ".join("-" if r is None else f"{r:g}" for r, _ in items),
            "plans": each("plans"), "distinct_reasons": each("reasons"), "most_frequent": "; ".join(examples)}
