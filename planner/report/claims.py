"""Claims audit: every claim of a claims file gets one verdict row, computed by planner checks.

The claims file (e.g. ../shared/reference/kimi-k25-guide-claims.yaml) holds `claims: [{id, claim}]`;
the report's `claims_audit.checks` maps each id to a list of checks (planner.report.checks) with the
claimed numbers read from the claim's text. A claim with no checks is reported as not checkable, with
that reason, so no claim is ever left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from planner.base.errors import PlannerError
from planner.base.yamlio import check_keys, get_str, is_file, load_document, require_mapping
from planner.report.check_inputs import Ctx
from planner.report.checks import run_check
from planner.report.spec import resolve_path
from planner.report.verdict import Finding, Verdict, combine

CLAIM_KEYS = ("id", "claim", "source", "note")


def load_claims(path: str) -> tuple[str, list[dict]]:
    file = str(resolve_path(path))
    doc = require_mapping(load_document(file), file)
    check_keys(doc, ("schema_version", "claims", "source"), file)
    items = doc.get("claims")
    if not isinstance(items, list) or not items:
        raise PlannerError("expected a non-empty list of claims", file=file, field="claims")
    out, seen = [], set()
    for k, item in enumerate(items):
        item = require_mapping(item, file, f"claims[{k}]")
        check_keys(item, CLAIM_KEYS, file, f"claims[{k}].")
        cid = get_str(item, "id", file, prefix=f"claims[{k}].")
        if cid in seen:
            raise PlannerError(f"duplicate claim id {cid!r}", file=file, field=f"claims[{k}].id")
        seen.add(cid)
        out.append({"id": cid, "claim": get_str(item, "claim", file, prefix=f"claims[{k}].")})
    return file, out


def audit(options: Mapping[str, Any], model: str, workloads: Mapping, report_file: str, field: str) -> tuple[
        pd.DataFrame, str]:
    """(one verdict row per claim, the claims file path)."""
    claims_path = options.get("claims")
    if not isinstance(claims_path, str) or not is_file(resolve_path(claims_path)):
        raise PlannerError(f"expected the path of a claims file, got {claims_path!r}"[:200], file=report_file,
                           field=f"{field}.claims")
    file, claims = load_claims(claims_path)
    checks = require_mapping(options.get("checks") or {}, report_file, f"{field}.checks")
    ids = {c["id"] for c in claims}
    for cid in checks:
        if cid not in ids:
            raise PlannerError(f"no claim {cid!r} in {file}", file=report_file, field=f"{field}.checks.{cid}")
    rows = []
    for c in claims:
        verdict = claim_verdict(checks.get(c["id"]), Ctx(model, workloads, report_file), f"{field}.checks.{c['id']}")
        rows.append({"id": c["id"], "claim": c["claim"], "verdict": verdict.text, "kind": verdict.kind,
                     "off": verdict.off, "planner": verdict.planner, "reason": verdict.reason,
                     "computed_by": "; ".join(verdict.calls)})
    return pd.DataFrame(rows), file


def claim_verdict(check_list: Any, ctx: Ctx, field: str) -> Verdict:
    if check_list is None:
        return combine([Finding("not_checkable", None, "", "no planner check configured for this claim")])
    if isinstance(check_list, Mapping):
        check_list = [check_list]
    if not isinstance(check_list, list) or not check_list:
        raise PlannerError("expected a list of checks", file=ctx.file, field=field)
    findings = []
    for k, opts in enumerate(check_list):
        ctx.field = f"{field}[{k}]"
        findings.append(run_check(opts, ctx))
    return combine(findings)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    order = ("confirmed", "off", "wrong", "not_checkable")
    counts = table["kind"].value_counts()
    return {k: int(counts.get(k, 0)) for k in order}
