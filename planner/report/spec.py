"""Report files (`profiles/reports/<name>.yaml`): what one report shows, read by one strict loader.

    title: "Kimi K2.5 ..."                       # required
    description: "..."                          # optional intro paragraph
    source: "..."                               # citation for published numbers this file holds (claimed values)
    models: [kimi-k2.5]                         # profile names or config.json paths (first = the report's model)
    formats: all | [int4-g32, bf16, ...]        # weight formats compared (default: all profiles)
    kv_cache: [bf16, fp8]                       # KV dtypes compared
    hardware: [h200-sxm, h100-sxm, mi300x]      # accelerator set (plan templates expand over it)
    workloads: {chat: {phase: serve, input_len: 4000, output_len: 1000}}   # CONTRACT.md §2 workload keys
    plans:                                      # deployments the memory, speed and cost sections show
      - scenario: profiles/scenarios/x.yaml     # a scenario file (optionally `workload: <name>` to override)
      - {name: ..., model: ..., hardware: ...}  # an inline scenario (CONTRACT.md §2)
      - template: {engine: vllm, hardware: {gpus_per_node: 8}, parallelism: {tp: 8}, workload: chat}
                                                # one scenario per model x hardware (weights default: native)
    sections: [verdict, model_card, {kv_vs_context: {max_context: 262144}}, ...]   # in order; options per section
                                                # sizing: {workload: ..., rates: [0.5, 5, 50]} sizes each rate
                                                # family: {models: [...], deployments: [...]} (planner/report/family.py)

Relative paths are relative to the project root (the folder holding `profiles/`), so `../shared/...`
names the shared folder beside the checkout. Unknown keys, sections or options are errors naming
file and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import PROFILES, check_keys, get_str, load_document, require_mapping
from planner.deploy.scenario_file import WORKLOAD_KEYS
from planner.hardware.accelerators import load_accelerator
from planner.model.kv import KV_DTYPES
from planner.model.models import load_model
from planner.model.quant import list_formats, load_format

ROOT = PROFILES.parent
REPORTS_DIR = PROFILES / "reports"
TOP_KEYS = ("title", "description", "source", "models", "formats", "kv_cache", "hardware", "workloads", "plans",
            "sections")
PLAN_KEYS = ("scenario", "template", "workload", "name")
# section -> allowed option keys (the one place a new section or option is declared)
SECTIONS: dict[str, tuple[str, ...]] = {
    "verdict": (),  # reads the sizing and claims_audit sections' options (planner/report/verdict_section.py)
    "model_card": (),
    "weights_by_format": ("formats",),
    "memory_per_gpu": ("plans",),
    "kv_vs_context": ("max_context", "dtypes"),
    "throughput_latency": ("plans",),
    "roofline": ("plan", "batches", "results"),
    "sizing": ("workload", "rates"),
    "api_break_even": ("api", "plans"),
    "validation": ("cases",),
    "claims_audit": ("claims", "checks"),
    "family": ("models", "formats", "kv_cache", "contexts", "deployments", "workload"),  # planner/report/family.py
    "assumptions": (),
}


@dataclass(frozen=True)
class SectionSpec:
    kind: str  # a key of SECTIONS
    options: Mapping[str, Any]  # validated against SECTIONS[kind]
    field: str  # "sections[3]" for error messages


@dataclass(frozen=True)
class ReportSpec:
    file: str  # the report file, for error messages
    name: str  # file stem
    title: str
    description: str
    source: str
    models: tuple[str, ...]  # model references as written
    formats: tuple[str, ...]  # weight format profile names
    kv_dtypes: tuple[str, ...]
    hardware: tuple[str, ...]  # accelerator profile names
    workloads: Mapping[str, Mapping[str, Any]]  # name -> CONTRACT.md §2 workload mapping
    plans: tuple[Mapping[str, Any], ...]  # raw plan entries (resolved by planner.report.plans)
    sections: tuple[SectionSpec, ...]


def resolve_path(ref: str) -> Path:
    """A path from a report file: absolute, or relative to the project root."""
    path = Path(ref)
    return path if path.is_absolute() else ROOT / path


_ABSOLUTE = re.compile(r"(?<![\w.])/(?:tmp|home|work|var|private|Users|root|mnt)/[^\s`'\",;|)<>]*")


def public_text(text: str) -> str:
    """`text` without this machine's paths: the project root and its parent become relative ('', '../'), the
    temporary folder its name's tail (reports are shared; a path says nothing to their reader)."""
    out = str(text)
    for prefix, short in ((str(ROOT) + "/", ""), (str(ROOT.parent) + "/", "../")):
        out = out.replace(prefix, short)
    return _ABSOLUTE.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], out)


def _names(doc: Mapping, key: str, file: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None:
        if default is None:
            raise PlannerError("missing required list", file=file, field=key)
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise PlannerError("expected a non-empty list of names", file=file, field=key)
    return tuple(value)


def _check_refs(spec_models: tuple[str, ...], formats: tuple[str, ...], hardware: tuple[str, ...], kv: tuple[str, ...],
                file: str) -> None:
    for field, names, load in (("models", spec_models, load_model), ("formats", formats, load_format),
                               ("hardware", hardware, load_accelerator)):
        for k, name in enumerate(names):
            try:
                load(name)
            except PlannerError as err:
                raise PlannerError(err.message, file=file, field=f"{field}[{k}]") from None
    for k, d in enumerate(kv):
        if d not in KV_DTYPES:
            raise PlannerError(f"unknown KV cache dtype {d!r}; known: {', '.join(KV_DTYPES)}", file=file,
                               field=f"kv_cache[{k}]")


def model_ref(name: str) -> str:
    """What load_model takes for a report's model entry (paths resolved against the project root)."""
    return str(resolve_path(name)) if "/" in name or name.endswith(".json") else name


def _sections(doc: Mapping, file: str) -> tuple[SectionSpec, ...]:
    items = doc.get("sections")
    if not isinstance(items, list) or not items:
        raise PlannerError("expected a non-empty list of sections", file=file, field="sections")
    out = []
    for k, item in enumerate(items):
        field = f"sections[{k}]"
        if isinstance(item, str):
            kind, options = item, {}
        elif isinstance(item, Mapping) and len(item) == 1:
            kind, options = next(iter(item.items()))
            options = require_mapping(options or {}, file, f"{field}.{kind}")
        else:
            raise PlannerError("expected a section name or {name: {options}}", file=file, field=field)
        if kind not in SECTIONS:
            raise PlannerError(f"unknown section {kind!r} (known: {', '.join(SECTIONS)})", file=file, field=field)
        check_keys(options, SECTIONS[kind], file, f"{field}.{kind}.")
        options = {key: _option(key, value, file, f"{field}.{kind}.{key}") for key, value in options.items()}
        out.append(SectionSpec(kind, options, f"{field}.{kind}"))
    return tuple(out)


# what each section option holds (checked here, so a section never meets a value of the wrong type)
OPTION_KINDS = {"formats": "names", "plans": "names", "dtypes": "names", "plan": "name", "max_context": "tokens",
                "batches": "numbers", "rates": "numbers", "results": "path", "cases": "path", "claims": "path",
                "workload": "path or mapping", "api": "mapping", "checks": "mapping", "models": "names",
                "kv_cache": "name", "contexts": "token list", "deployments": "mappings"}


def _option(key: str, value: Any, file: str, field: str) -> Any:
    """A section option of the right type (a single name becomes a one-name list); unknown names are errors."""
    kind = OPTION_KINDS[key]
    if value is None:
        return None
    if kind == "names" and isinstance(value, str):
        value = [value]
    ok = {"names": isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value),
          "name": isinstance(value, str) and bool(value),
          "path": isinstance(value, str) and bool(value),
          "path or mapping": isinstance(value, Mapping) or (isinstance(value, str) and bool(value)),
          "mapping": isinstance(value, Mapping),
          "tokens": type(value) is int and 1 <= value <= 10**8,
          "token list": isinstance(value, list) and bool(value) and all(
              type(v) is int and 1 <= v <= 10**8 for v in value),
          "mappings": isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value),
          "numbers": isinstance(value, list) and bool(value) and all(
              type(v) in (int, float) and math.isfinite(v) and 0 < v <= 10**8 for v in value)}[kind]
    if not ok:
        want = {"names": "a name or a non-empty list of names", "tokens": "a whole number of tokens (1 to 1e8)",
                "numbers": "a non-empty list of positive numbers",
                "token list": "a non-empty list of whole numbers of tokens (1 to 1e8)",
                "mappings": "a non-empty list of mappings"}.get(kind, f"a {kind}")
        raise PlannerError(f"expected {want}, got {value!r}"[:200], file=file, field=field)
    if key == "kv_cache" and value not in KV_DTYPES:
        raise PlannerError(f"unknown KV cache dtype {value!r}; known: {', '.join(KV_DTYPES)}", file=file, field=field)
    if key in ("formats", "dtypes", "models"):
        for k, name in enumerate(value):
            try:
                if key == "formats":
                    load_format(name)
                elif key == "models":
                    load_model(model_ref(name))
                elif name not in KV_DTYPES:
                    raise PlannerError(f"unknown KV cache dtype {name!r}; known: {', '.join(KV_DTYPES)}")
            except PlannerError as err:
                raise PlannerError(err.message, file=file, field=f"{field}[{k}]") from None
    return value


def _workloads(doc: Mapping, file: str) -> dict[str, dict]:
    raw = require_mapping(doc.get("workloads") or {}, file, "workloads")
    out = {}
    for name, w in raw.items():
        w = require_mapping(w, file, f"workloads.{name}")
        check_keys(w, WORKLOAD_KEYS, file, f"workloads.{name}.")
        out[str(name)] = w
    return out


def _plans(doc: Mapping, file: str, workloads: Mapping[str, Any]) -> tuple[dict, ...]:
    items = doc.get("plans") or []
    if not isinstance(items, list):
        raise PlannerError("expected a list of plans", file=file, field="plans")
    out = []
    for k, item in enumerate(items):
        field = f"plans[{k}]"
        item = require_mapping(item, file, field)
        if "scenario" in item or "template" in item:
            check_keys(item, PLAN_KEYS, file, f"{field}.")
        wl = item.get("workload")
        if isinstance(wl, str) and wl not in workloads:
            raise PlannerError(f"unknown workload {wl!r} (report workloads: {', '.join(workloads) or 'none'})",
                               file=file, field=f"{field}.workload")
        if isinstance(item.get("template"), Mapping) and isinstance(item["template"].get("workload"), str):
            if item["template"]["workload"] not in workloads:
                raise PlannerError(f"unknown workload {item['template']['workload']!r}", file=file,
                                   field=f"{field}.template.workload")
        out.append(item)
    return tuple(out)


def load_report_spec(path: str | Path) -> ReportSpec:
    """Read and check a report file (profile name under profiles/reports/ or a path)."""
    text = str(path)
    p = Path(text) if text.endswith((".yaml", ".yml")) or "/" in text else REPORTS_DIR / f"{text}.yaml"
    file = str(p)
    doc = require_mapping(load_document(p), file)
    check_keys(doc, TOP_KEYS, file)
    models = _names(doc, "models", file)
    fmt_raw = doc.get("formats")
    formats = tuple(list_formats()) if fmt_raw in (None, "all") else _names(doc, "formats", file)
    kv = _names(doc, "kv_cache", file, ("bf16", "fp8"))
    hardware = _names(doc, "hardware", file, ())
    _check_refs(tuple(model_ref(m) for m in models), formats, hardware, kv, file)
    workloads = _workloads(doc, file)
    return ReportSpec(
        file=file, name=p.stem, title=get_str(doc, "title", file), description=get_str(doc, "description", file,
                                                                                      default=""),
        source=get_str(doc, "source", file, default=""), models=models, formats=formats, kv_dtypes=kv,
        hardware=hardware, workloads=workloads, plans=_plans(doc, file, workloads), sections=_sections(doc, file))
