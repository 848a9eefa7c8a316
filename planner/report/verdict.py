"""Claim verdicts: the thresholds (in one place) and how sub-check findings combine into one verdict.

A claimed number c is compared with the planner's p by its deviation max(c/p, p/c) - 1 (symmetric, so
"half" and "double" are equally far); the reported "off by X%" is c/p - 1, signed (+: the claim is higher).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# deviation up to the first edge: confirmed; up to the second: "off by X%"; beyond: wrong
BANDS = {
    "exact": (0.05, 0.50),  # counts and bytes the planner computes exactly (tests pin them to the checkpoint)
    "modelled": (0.25, 1.00),  # speeds from the performance model (see docs/validation.md for its error)
}
RANK = {"not_checkable": 0, "confirmed": 1, "off": 2, "wrong": 3}


@dataclass(frozen=True)
class Finding:
    """What one planner check found about (part of) a claim."""

    kind: str  # confirmed | off | wrong | not_checkable
    off: float | None  # claimed / planner - 1 (None when not a number comparison)
    planner: str  # the planner's number, labelled
    reason: str  # one line
    calls: tuple[str, ...] = field(default=())  # planner functions this finding was computed with


def compare(claimed: float, planner: float, basis: str = "exact") -> tuple[str, float]:
    """(kind, claimed / planner - 1) for one number."""
    if planner == 0 or claimed == 0:
        return ("confirmed", 0.0) if claimed == planner else ("wrong", float("inf"))
    dev = max(claimed / planner, planner / claimed) - 1
    ok, far = BANDS[basis]
    return ("confirmed" if dev <= ok else "off" if dev <= far else "wrong"), claimed / planner - 1


def compare_range(lo: float, hi: float, planner: float, basis: str = "modelled") -> tuple[str, float]:
    """A claimed range is confirmed when the planner's number lies inside; else judged from the nearer bound."""
    if lo <= planner <= hi:
        return "confirmed", 0.0
    return compare(hi if planner > hi else lo, planner, basis)


def label(kind: str, off: float | None) -> str:
    if kind == "off":
        return f"off by {off:+.0%}"
    return {"confirmed": "confirmed", "wrong": "wrong", "not_checkable": "not checkable by the planner"}[kind]


@dataclass(frozen=True)
class Verdict:
    kind: str  # the worst checkable finding's kind, or not_checkable
    off: float | None
    text: str  # "confirmed" | "off by +6%" | "wrong" | "not checkable by the planner"
    planner: str
    reason: str
    calls: tuple[str, ...]


def combine(findings: list[Finding]) -> Verdict:
    """Worst checkable finding wins; parts the planner cannot check are named in the reason."""
    worst = max(findings, key=lambda f: (RANK[f.kind], abs(f.off or 0)))
    calls = tuple(dict.fromkeys(c for f in findings for c in f.calls))
    # the worst finding first, then other deviations; all reasons when everything is confirmed
    shown = [f for f in sorted(findings, key=lambda f: -RANK[f.kind]) if f.kind != "not_checkable"
             and (f.kind != "confirmed" or worst.kind == "confirmed")]
    lead = [f.reason for f in shown if f.reason]
    unchecked = [f.reason for f in findings if f.kind == "not_checkable" and worst.kind != "not_checkable"]
    reason = "; ".join(lead + [f"not checked: {r}" for r in unchecked])
    planner = "; ".join(f.planner for f in findings if f.planner)
    return Verdict(worst.kind, worst.off if worst.kind == "off" else None, label(worst.kind, worst.off), planner,
                   reason, calls)
