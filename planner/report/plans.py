"""The deployments a report shows: report `plans:` entries -> scenarios -> one `estimate` each.

A plan that cannot be read (bad scenario) stops the report with the file and field at fault; a plan that
does not fit is kept, with the planner's reason, so the memory section can show why.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import get_number, get_str, load_document, require_mapping
from planner.deploy.scenario import Scenario
from planner.deploy.scenario_file import scenario_from_mapping
from planner.model.models import load_model
from planner.report.spec import ReportSpec, model_ref, resolve_path
from planner.serving.estimate import estimate


@dataclass(frozen=True)
class Plan:
    name: str  # label in tables and legends
    scenario: Scenario
    result: dict  # planner.serving.estimate.estimate(scenario)

    @property
    def fits(self) -> bool:
        return bool(self.result["fits"])


def _with_workload(doc: dict, wl: Any, spec: ReportSpec) -> dict:
    if isinstance(wl, str):
        doc["workload"] = dict(spec.workloads[wl])
    elif wl is not None:
        doc["workload"] = wl
    return doc


def _template_docs(template: Mapping, spec: ReportSpec, field: str) -> list[tuple[str, dict]]:
    hw = require_mapping(template.get("hardware") or {}, spec.file, f"{field}.hardware")
    gpu = get_str(hw, "gpu", spec.file, prefix=f"{field}.hardware.", default=None)
    if not spec.hardware and not gpu:
        raise PlannerError("a template needs the report's `hardware` list or a hardware.gpu", file=spec.file,
                           field=field)
    count = lambda key: get_number(hw, key, spec.file, prefix=f"{field}.hardware.", default=1,  # noqa: E731
                                   integer=True, minimum=1)
    n = count("gpus_per_node") * count("nodes")  # for the plan's name; the scenario loader checks the rest
    out = []
    gpus = [gpu] if gpu else list(spec.hardware)
    model = get_str(template, "model", spec.file, prefix=f"{field}.", default=None)
    models = [model] if model else list(spec.models)
    for m in models:
        try:
            native = load_model(model_ref(m)).native_weights
        except PlannerError as err:
            if err.file:
                raise
            raise PlannerError(err.message, file=spec.file, field=f"{field}.model") from None
        for gpu in gpus:
            doc = copy.deepcopy(dict(template))
            doc["model"] = model_ref(m)
            if doc.get("weights") in (None, "native"):
                doc["weights"] = native
            doc["hardware"] = {**hw, "gpu": gpu}
            name = f"{m} {doc['weights']} {n}x {gpu}"
            doc["name"] = name
            out.append((name, doc))
    return out


def scenario_docs(spec: ReportSpec) -> list[tuple[str, str, dict]]:
    """(file label, field, scenario mapping) for every plan of the report, templates expanded."""
    out = []
    for k, entry in enumerate(spec.plans):
        field = f"plans[{k}]"
        if "scenario" in entry:
            ref = entry["scenario"]
            if not isinstance(ref, str):
                raise PlannerError("expected a scenario file path", file=spec.file, field=f"{field}.scenario")
            path = resolve_path(ref)
            doc = require_mapping(load_document(path), str(path))
            if entry.get("name"):
                doc["name"] = entry["name"]
            doc.setdefault("name", path.stem)
            out.append((str(path), "", _with_workload(doc, entry.get("workload"), spec)))
        elif "template" in entry:
            template = require_mapping(entry["template"], spec.file, f"{field}.template")
            for j, (_, doc) in enumerate(_template_docs(template, spec, f"{field}.template")):
                out.append((spec.file, f"{field}.template[{j}]", _with_workload(doc, template.get("workload"), spec)))
        else:
            doc = copy.deepcopy(dict(entry))
            if isinstance(doc.get("model"), str):
                doc["model"] = model_ref(doc["model"])
            wl = doc.pop("workload", None)
            doc.setdefault("name", f"plan {k + 1}")
            out.append((spec.file, field, _with_workload(doc, wl, spec)))
    return out


def load_plans(spec: ReportSpec) -> list[Plan]:
    plans = []
    for file, field, doc in scenario_docs(spec):
        label = f"{file}: {field}" if field else file
        sc = scenario_from_mapping(doc, label)
        plans.append(Plan(sc.name, sc, estimate(sc)))
    names = [p.name for p in plans]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise PlannerError(f"two plans are named {dup!r}; give one a `name`", file=spec.file, field="plans")
    return plans


def pick(plans: list[Plan], names: Any, file: str, field: str) -> list[Plan]:
    """The plans a section option names (all when it names none)."""
    if names is None:
        return plans
    if isinstance(names, str):
        names = [names]
    by_name = {p.name: p for p in plans}
    for n in names:
        if n not in by_name:
            raise PlannerError(f"no plan named {n!r} (plans: {', '.join(by_name)})", file=file, field=field)
    return [by_name[n] for n in names]
