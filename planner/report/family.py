"""The family section: a model beside its relatives on the same hardware, so a buyer sees what the next model needs.

    - family:
        models: [kimi-k2.5, kimi-k2.6, kimi-k3]     # the first is the one the others are compared with
        formats: [int4-g32, mxfp4, bf16]            # weight formats shown (default: every format one of them publishes)
        kv_cache: bf16                              # KV cache dtype of the KV rows and the deployments (default bf16)
        contexts: [262144, 1048576]                 # one request at each length (default 256K and 1M)
        deployments:                                # scenarios without a model (CONTRACT.md §2 keys below)
          - {name: 8x H200, hardware: {gpu: h200-sxm, gpus_per_node: 8}, parallelism: {tp: 8}, engine: vllm}
        workload: chat                              # a report workload or a mapping (default: the report's first)

Every number is a planner call:
- weights: stored bytes per format, scales and packing, vision and MTP parts included (planner.model.inspect, as
  `planner inspect` and the weights_by_format section), each marked with the checkpoint someone publishes in that
  format (planner.model.models.Model.checkpoint) or `*` where you would quantize it yourself (as sizing marks it);
- KV cache of one request at each context: what every token adds and what a request holds whatever its length
  (linear-attention state, full windows), all layers, one copy before any TP split (planner.model.kv_kinds):
  bytes_per_token x L + bytes_per_request, exact for L past every window; past the model's max_position_embeddings
  the row says 'beyond its context';
- each deployment with each model in its official checkpoint's format (or the deployment's `weights`) at the
  workload: fit with the planner's one-line reason, TPOT, tokens/s per user and prefill (planner.serving.estimate,
  the same call as `planner estimate`);
- one sentence per relative: what it needs beyond the first model, worded from the three tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from planner.base.errors import PlannerError
from planner.base.units import gb
from planner.base.yamlio import check_keys, require_mapping
from planner.deploy.scenario_file import WORKLOAD_KEYS, scenario_from_mapping
from planner.model.inspect import weights_bytes_by_part
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import Model, load_model
from planner.model.quant import load_format
from planner.report.spec import ReportSpec, model_ref
from planner.serving.estimate import estimate

DEFAULT_CONTEXTS = (262144, 1048576)  # 256K and 1M tokens (binary thousands, as max_position_embeddings)
# what a deployment may set (CONTRACT.md §2 without model and workload, which the section gives)
DEPLOYMENT_KEYS = ("name", "weights", "hardware", "parallelism", "offload", "engine", "engine_options", "speculative")
OWN_QUANTIZATION = "* none published: your own quantization"
SPEED_COLUMNS = ("tpot_ms", "output_tokens_per_s_per_user", "prefill_tokens_per_s_per_gpu", "ttft_ms")


@dataclass(frozen=True)
class Family:
    """The section's tables (tidy, SI units) and its words."""

    title: str  # "kimi-k2.5 and its family: kimi-k2.6, kimi-k3"
    intro: str  # what the tables show, the workload stated
    kv_cache: str  # KV cache dtype of the KV rows and the deployments
    weights: pd.DataFrame  # format, model, weights_bytes, checkpoint
    kv: pd.DataFrame  # model, context_tokens, kv_bytes_per_token, state_bytes_per_request, kv_bytes_at_context, layers,
    # note ('beyond its context' past max_position_embeddings)
    deployments: pd.DataFrame  # model, deployment, weights, fits, per-GPU memory, speeds, reason
    verdicts: tuple[str, ...]  # one sentence per relative of the first model
    notes: tuple[str, ...]  # formats a model cannot be stored in, KV dtypes it cannot take


def weights_rows(models: list[Model], formats: list[str]) -> tuple[list[dict], list[str]]:
    """Stored bytes of every model in every format, format by format so relatives sit side by side."""
    rows, notes = [], []
    for name in formats:
        fmt = load_format(name)
        for m in models:
            try:
                stored = sum(weights_bytes_by_part(m, fmt).values())
            except PlannerError as err:
                notes.append(f"{m.name} / {name}: {err}")
                continue
            repo = m.checkpoint(name)
            rows.append({"format": name, "model": m.name, "weights_bytes": stored,
                         "checkpoint": repo or OWN_QUANTIZATION})
    return rows, notes


def kv_rows(models: list[Model], dtype: str, contexts: list[int]) -> tuple[list[dict], list[str]]:
    """One request of each context per model: per-token growth, fixed state, their total (or beyond its context)."""
    rows, notes = [], []
    for m in models:
        try:
            kv = kv_by_kind(m.spec, dtype)
        except PlannerError as err:
            notes.append(f"{m.name}: {err}")
            continue
        longest = m.spec.max_context
        for n in contexts:
            beyond = longest is not None and n > longest
            rows.append({"model": m.name, "context_tokens": n, "kv_bytes_per_token": kv.bytes_per_token,
                         "state_bytes_per_request": kv.bytes_per_request,
                         "kv_bytes_at_context": None if beyond else kv.bytes_per_token * n + kv.bytes_per_request,
                         "layers": " + ".join(f"{k.layers} {k.attention_kind}" for k in kv.kinds),
                         "note": f"beyond its context ({longest:,} tokens)" if beyond else ""})
    return rows, notes


def deployment_name(doc: Mapping) -> str:
    """'8x h200-sxm (tp8 pp2)' from a deployment's hardware and parallelism when it has no `name`."""
    hw, par = doc.get("hardware") or {}, doc.get("parallelism") or {}
    n = int(hw.get("gpus_per_node") or 1) * int(hw.get("nodes") or 1)
    plan = " ".join(f"{k.replace('_attention', '')}{v}" for k, v in par.items() if isinstance(v, int) and v > 1)
    return f"{n}x {hw.get('gpu') or 'cpu'}" + (f" ({plan})" if plan else "")


def deployment_rows(refs: list[str], deployments: list[Mapping], kv_cache: str, workload: Mapping, file: str,
                    where: str) -> list[dict]:
    """Each model (load_model reference) on each deployment at the workload: planner.serving.estimate, its fit,
    memory and speeds."""
    rows = []
    for k, dep in enumerate(deployments):
        field = f"{where}.deployments[{k}]"
        dep = require_mapping(dep, file, field)
        check_keys(dep, DEPLOYMENT_KEYS, file, f"{field}.")
        label = str(dep.get("name") or deployment_name(dep))
        if any(r["deployment"] == label for r in rows):
            raise PlannerError(f"two deployments are named {label!r}; give one a `name`", file=file, field=field)
        for ref in refs:
            m = load_model(ref)
            weights = dep.get("weights") or m.native_weights
            doc = {**dep, "name": f"{m.name} {weights} {label}", "model": ref,
                   "weights": weights, "kv_cache": kv_cache, "workload": dict(workload)}
            result = estimate(scenario_from_mapping(doc, f"{file}: {field}"))
            mem, met = result["memory"], result["metrics"]
            rows.append({"model": m.name, "deployment": label,
                         "weights": weights + ("" if m.checkpoint(weights) else "*"), "fits": bool(result["fits"]),
                         "weights_bytes_per_gpu": mem["weights_bytes_per_gpu"],
                         "kv_cache_bytes_per_gpu": mem["kv_cache_bytes_per_gpu"],
                         "max_concurrency": result["capacity"]["max_concurrency"],
                         **{c: met[c] if result["fits"] else None for c in SPEED_COLUMNS},
                         "reason": result["reason"]})
    return rows


def family_of(spec: ReportSpec, opts: Mapping, where: str) -> Family:
    """The family section of report `spec` from its options (checked types: planner.report.spec); defaults as the
    module docstring says; a missing deployment list or an unknown workload is an error naming file and field."""
    refs = [model_ref(m) for m in opts.get("models") or spec.models]
    names = [load_model(r).name for r in refs]
    if len(set(names)) < 2 or len(set(names)) < len(names):
        raise PlannerError(f"expected two or more different models (a model and its relatives), got {names}"[:200],
                           file=spec.file, field=f"{where}.models")
    wl = opts.get("workload") or next(iter(spec.workloads), None)
    if isinstance(wl, str) and wl not in spec.workloads:
        raise PlannerError(f"unknown workload {wl!r} (report workloads: {', '.join(spec.workloads) or 'none'})",
                           file=spec.file, field=f"{where}.workload")
    if wl is None:
        raise PlannerError("missing (a workload mapping; the report names none)", file=spec.file,
                           field=f"{where}.workload")
    if not opts.get("deployments"):
        raise PlannerError("missing (a list of deployments: hardware, parallelism, engine)", file=spec.file,
                           field=f"{where}.deployments")
    workload = dict(spec.workloads[wl] if isinstance(wl, str) else wl)
    check_keys(workload, WORKLOAD_KEYS, spec.file, f"{where}.workload.")
    formats = list(opts.get("formats") or dict.fromkeys(f for r in refs for f, _ in load_model(r).published))
    return family_view(refs, formats, opts.get("kv_cache") or "bf16", list(opts.get("contexts") or DEFAULT_CONTEXTS),
                       list(opts["deployments"]), workload, f"workload {wl}: " if isinstance(wl, str) else "the load ",
                       spec.file, where)


def family_view(refs: list[str], formats: list[str], kv_cache: str, contexts: list[int],
                deployments: list[Mapping], workload: Mapping, label: str, file: str, where: str) -> Family:
    """The three tables of the family section and what each relative needs beyond the first model (`refs`: what
    load_model takes; `label` names the workload in words; `file` and `where` name the report and the section in
    errors)."""
    models = [load_model(r) for r in refs]
    names = [m.name for m in models]
    weights, w_notes = weights_rows(models, formats)
    kv, kv_notes = kv_rows(models, kv_cache, contexts)
    deps = deployment_rows(refs, deployments, kv_cache, workload, file, where)
    tables = (pd.DataFrame(weights, columns=["format", "model", "weights_bytes", "checkpoint"]), pd.DataFrame(kv),
              pd.DataFrame(deps))
    verdicts = tuple(verdict(models[0], m, *tables) for m in models[1:])
    intro = (f"{', '.join(names)} on the same hardware: stored weights per format (* = no published checkpoint, "
             f"your own quantization), the {kv_cache} KV cache one request holds at each context, and each model's "
             f"official checkpoint on each deployment at {label}"
             + ", ".join(f"{k} {v}" for k, v in workload.items()) + ". Bytes are exact; speeds are the planner's "
             "estimates (roofline with published efficiencies, see the validation section for their error).")
    return Family(f"{names[0]} and its family: {', '.join(names[1:])}", intro, kv_cache, *tables, verdicts,
                  tuple(w_notes + kv_notes))


def _cell(df: pd.DataFrame, **match: Any) -> pd.Series | None:
    hit = df
    for key, value in match.items():
        hit = hit[hit[key] == value]
    return None if hit.empty else hit.iloc[0]


def _list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"


def verdict(base: Model, other: Model, weights: pd.DataFrame, kv: pd.DataFrame, deps: pd.DataFrame) -> str:
    """One sentence: what `other` needs beyond `base` in weight memory, deployments, KV cache and speed."""
    a = _cell(weights, model=base.name, format=base.native_weights)
    b = _cell(weights, model=other.name, format=other.native_weights)
    mine = deps[deps["model"] == other.name].set_index("deployment")
    theirs = deps[deps["model"] == base.name].set_index("deployment")
    same_kv = kv[kv["model"] == other.name].drop(columns="model").reset_index(drop=True).equals(
        kv[kv["model"] == base.name].drop(columns="model").reset_index(drop=True))
    same_deps = mine.drop(columns=["model", "weights"]).equals(theirs.drop(columns=["model", "weights"]))
    if a is not None and b is not None and a.weights_bytes == b.weights_bytes and same_kv and same_deps:
        return (f"{other.name} needs nothing beyond {base.name}: the same {gb(b.weights_bytes)} of "
                f"{other.native_weights} weights, the same KV cache per request and the same fit and speed on every "
                "deployment shown.")
    parts = []
    if a is not None and b is not None:
        ratio = b.weights_bytes / a.weights_bytes
        parts.append(f"{ratio:.1f}x the weight memory of {base.name} ({gb(b.weights_bytes)} {other.native_weights} "
                     f"vs {gb(a.weights_bytes)} {base.native_weights})")
    lost = [d for d in theirs.index if theirs.loc[d, "fits"] and d in mine.index and not mine.loc[d, "fits"]]
    ok = [d for d in mine.index if mine.loc[d, "fits"]]
    head = "; ".join(parts)
    if lost:
        head += (f", so it does not fit on {_list(lost)}, where {base.name} does, "
                 + (f"and fits on {_list(ok)}" if ok else "nor on any deployment shown"))
    parts = [head, _kv_words(base, other, kv)]
    both = [d for d in ok if d in theirs.index and theirs.loc[d, "fits"]]
    if both:
        d = both[0]
        parts.append(f"on {d} it decodes at {mine.loc[d, 'output_tokens_per_s_per_user']:,.1f} tokens/s per user "
                     f"vs {theirs.loc[d, 'output_tokens_per_s_per_user']:,.1f}")
    return f"{other.name} needs " + "; ".join(p for p in parts if p) + "."


def _kv_words(base: Model, other: Model, kv: pd.DataFrame) -> str:
    """KV cache per request at the longest context both reach, and the contexts only `other` reaches."""
    if kv.empty:
        return ""
    mine, theirs = kv[kv["model"] == other.name], kv[kv["model"] == base.name]
    shared = [n for n in mine["context_tokens"] if _reaches(mine, n) and _reaches(theirs, n)]
    words = []
    if shared:
        n = max(shared)
        x, y = _cell(mine, context_tokens=n), _cell(theirs, context_tokens=n)
        state = f" ({gb(x.state_bytes_per_request, 2)} of it fixed state)" if x.state_bytes_per_request else ""
        words.append(f"per {n:,}-token request its KV cache holds {gb(x.kv_bytes_at_context)}{state} vs "
                     f"{gb(y.kv_bytes_at_context)}")
    extra = [n for n in mine["context_tokens"] if _reaches(mine, n) and not _reaches(theirs, n)]
    if extra:
        n = max(extra)
        words.append(f"it reaches {n:,} tokens ({gb(_cell(mine, context_tokens=n).kv_bytes_at_context)} per "
                     f"request), beyond {base.name}'s {base.spec.max_context:,}")
    return ", and ".join(words)


def _reaches(rows: pd.DataFrame, n: int) -> bool:
    row = _cell(rows, context_tokens=n)
    return row is not None and pd.notna(row.kv_bytes_at_context)
