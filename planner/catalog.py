"""What the planner knows: `python -m planner list [KIND] [--json]` lists the profiles of one kind (or of every
kind) by name, each with a one-line description taken from the profile itself.

The description is the profile's `description:` field, else its `display_name:` (or a report's `title:`), else
the first line of its leading comment, cut at the first sentence end. GPUs also carry vendor, memory and prices
(USD to buy, USD per GPU-hour to rent, null where no profile price is published); models their checkpoint repo,
native format and the formats with a published checkpoint (`published:`).
"""

from __future__ import annotations

from pathlib import Path

from planner.base.errors import PlannerError
from planner.base.escape import terminal
from planner.base.yamlio import PROFILES, load_document, profile_names
from planner.hardware.accelerators import load_accelerator

# kind -> (profile folder, what one entry is)
KINDS: dict[str, tuple[Path, str]] = {
    "models": (PROFILES / "models", "model configs (a name every command takes)"),
    "gpus": (PROFILES / "hardware", "accelerators (hardware.gpu)"),
    "hosts": (PROFILES / "hardware" / "hosts", "host machines: CPUs and DRAM (hardware.host)"),
    "formats": (PROFILES / "quant", "weight formats (weights:)"),
    "engines": (PROFILES / "engines", "serving engines (engine:)"),
    "workloads": (PROFILES / "workloads", "sizing workloads (python -m planner size)"),
    "datasets": (PROFILES / "datasets", "benchmark request sets (workload.dataset, traffic.dataset)"),
    "systems": (PROFILES / "systems", "server classes the sizing search builds plans on"),
}
MAX_DESCRIPTION = 120  # characters of a one-line description


def catalog(kind: str | None = None) -> dict:
    """{"kinds": {kind: {"folder", "what", "profiles": [{"name", "description", ...}]}}} for one kind or all."""
    if kind is not None and kind not in KINDS:
        raise PlannerError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}", field="kind")
    kinds = [kind] if kind else list(KINDS)
    out = {}
    for k in kinds:
        folder, what = KINDS[k]
        out[k] = {"folder": str(folder.relative_to(PROFILES.parent)), "what": what,
                  "profiles": [_entry(k, folder / f"{name}.yaml") for name in profile_names(folder)]}
    return {"kinds": out}


def _entry(kind: str, path: Path) -> dict:
    doc = load_document(path)
    doc = doc if isinstance(doc, dict) else {}
    row = {"name": path.stem, "description": _description(doc, path)}
    if kind == "gpus":
        acc = load_accelerator(path.stem)
        name = acc.display_name if acc.display_name.startswith(acc.vendor) else f"{acc.vendor} {acc.display_name}"
        row["description"] = _one_line(f"{name}, {acc.arch}, "
                                       f"{acc.memory_capacity_gb:g} GB {acc.memory_type or ''}".strip())
        row.update(vendor=acc.vendor, memory_gb=acc.memory_capacity_gb, purchase_usd=acc.purchase_usd,
                   usd_per_gpu_hour=acc.cloud_usd_per_gpu_hour)
    elif kind == "models":
        published = doc.get("published") or {}
        row.update(hf_repo=doc.get("hf_repo"), native_weights=doc.get("native_weights"),
                   published=sorted(published) if isinstance(published, dict) else [])
    elif kind == "formats":
        row.update(family=doc.get("family"))
    return row


def _description(doc: dict, path: Path) -> str:
    for key in ("description", "display_name", "title"):
        if isinstance(doc.get(key), str) and doc[key].strip():
            return _one_line(doc[key])
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip()
            cut = text.find(". ")
            return _one_line(text[: cut + 1] if cut > 0 else text)
        if line.strip():
            break
    return ""


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3].rstrip() + "..."


def table(doc: dict) -> str:
    """The human listing: per kind a header, then `name  description` rows (GPUs with memory and prices)."""
    lines = []
    for kind, block in doc["kinds"].items():
        lines.append(f"{kind} ({block['folder']}/): {block['what']}")
        width = max((len(p["name"]) for p in block["profiles"]), default=0)
        for p in block["profiles"]:
            extra = ""
            if kind == "gpus":
                buy = f"{p['purchase_usd']:,.0f} USD" if p["purchase_usd"] is not None else "unpriced"
                rent = f"{p['usd_per_gpu_hour']:,.2f} USD/GPU-h" if p["usd_per_gpu_hour"] is not None else "unpriced"
                extra = f"  [buy {buy}; rent {rent}]"
            elif kind == "models" and p["published"]:
                extra = f"  [published: {', '.join(p['published'])}]"
            lines.append(f"  {terminal(p['name']):{width}s}  {terminal(p['description'])}{extra}")
        lines.append("")
    return "\n".join(lines).rstrip()
