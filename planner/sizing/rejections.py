"""Why plans were rejected, counted by reason (CONTRACT.md §7 `rejected`), and by kind for a summary line.

Reasons that carry a measured number (TPOT, TTFT) are grouped per hardware and rendered once with the range
over the group, so that one class of plans gives one line: "8x H100 SXM: TPOT 61-75 ms at batch 1, above the
50 ms SLO".
"""

from __future__ import annotations

from collections import Counter, defaultdict

KINDS = ("engine or format", "weights exceed memory", "no price", "budget", "memory", "slo", "dominated", "plan")


def kind_of(reason: str) -> str:
    """Kind of a reason from its wording (the checks in planner/sizing/candidates.py and planner/sizing/search.py)."""
    if reason.startswith("weights ") and " exceed " in reason:
        return "weights exceed memory"
    if reason.startswith(("no purchase price", "no rental price", "no power figure", "no DRAM price",
                          "no host power")):
        return "no price"
    if "budget" in reason:
        return "budget"
    if "buys no speed" in reason:
        return "dominated"
    if reason.startswith(("fp8_ds_mla", "nvfp4 needs")) or "has no fp8 KV" in reason or "(DeepSeek-V4)" in reason:
        return "engine or format"
    return "memory"


class Rejections:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.kinds: Counter = Counter()
        self._slo: dict[tuple, list] = defaultdict(list)  # (hardware, metric, limit) -> [(value, note)]
        self._memory: dict[str, str] = {}  # where -> the reason line counting that group
        self._kind: dict[str, str] = {}  # reason -> its kind (as counted)

    def add(self, reason: str, kind: str | None = None, n: int = 1) -> None:
        self.counts[reason] += n
        self._kind.setdefault(reason, kind or kind_of(reason))
        self.kinds[self._kind[reason]] += n

    def absorb(self, other: Rejections) -> None:
        """Add the counts of another Rejections (a worker process's)."""
        self.counts.update(other.counts)
        self.kinds.update(other.kinds)
        for reason, kind in other._kind.items():
            self._kind.setdefault(reason, kind)
        for key, values in other._slo.items():
            self._slo[key] += values
        for where, key in other._memory.items():
            self._memory.setdefault(where, key)

    def merge(self, counter: Counter) -> None:
        for reason, n in counter.items():
            self.add(reason, n=n)

    def memory(self, where: str, reason: str) -> None:
        """A plan whose scenario does not fit; grouped by `where` (hardware, format, engine), first reason kept."""
        key = self._memory.setdefault(where, f"{where}: {reason.split('; ')[0]}")
        self.add(key, "memory")

    def plan(self, where: str, message: str) -> None:
        self.add(f"{where}: {message}", "plan")

    def slo(self, hardware: str, metric: str, value: float, limit: float, note: str = "") -> None:
        self._slo[(hardware, metric, limit)].append((value, note))
        self.kinds["slo"] += 1

    def rendered(self) -> dict[str, int]:
        out = Counter(self.counts)
        for (hardware, metric, limit), values in self._slo.items():
            lo, note = min(values)
            hi = max(v for v, _ in values)
            unit, scale = ("ms", 1e3) if metric in ("TPOT", "TTFT") else ("tokens/s", 1.0)
            span = f"{lo * scale:,.0f}" if round(lo * scale) == round(hi * scale) else \
                f"{lo * scale:,.0f}-{hi * scale:,.0f}"
            out[f"{hardware}: {metric} {span} {unit} at batch 1, above the {limit * scale:,.0f} {unit} SLO"
                + (f" ({note})" if note else "")] += len(values)
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def grouped(self, examples: int = 3) -> list[dict]:
        """Rejections by kind, most first: plans, distinct reasons, and the most frequent reasons as examples (a
        summary for readers; `rendered` lists every reason)."""
        by: dict[str, list] = defaultdict(list)
        for reason, n in self.rendered().items():
            by[self._kind.get(reason, "slo" if reason.endswith(" SLO") or " SLO (" in reason else "memory")].append(
                (reason, n))
        out = [{"kind": k, "plans": self.kinds[k], "reasons": len(by.get(k, ())),
                "examples": [f"{r} ({n:,})" for r, n in by.get(k, ())[:examples]]}
               for k in KINDS if self.kinds.get(k)]
        return sorted(out, key=lambda g: -g["plans"])

    def by_kind(self) -> dict[str, int]:
        return {k: self.kinds[k] for k in KINDS if self.kinds.get(k)}
