"""Snapshot the planner's outputs on every shipped input, to show a refactor changed nothing.

    python scripts/snapshot_outputs.py DIR            # writes DIR/<command>--<input>.json (+ report files)
    python scripts/snapshot_outputs.py --compare A B [RTOL]  # exit 1 and list the files that differ (numbers in JSON
                                                      # may differ by RTOL, relative)

Inputs: every `profiles/scenarios/*.yaml` (estimate), `profiles/workloads/*.yaml` (size), the validation cases
(`../shared/validation/public_cases.yaml` and `tests/data/*cases*.yaml` where present), every
`profiles/reports/*.yaml` (report --no-png: report.md and CSVs) and `inspect` of every model profile. Each
command runs in this process through `planner.cli.main`, exactly as a user runs it, so the snapshot does not depend
on where inside `planner/` a function lives. Timing fields (`seconds`, `*elapsed*`, `*_wall_s`) and temporary paths are
blanked before writing, since they change from run to run, and so are module paths named in notes.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOLATILE = re.compile(r"(elapsed|wall_s|^seconds$|generated_at|build_s|_time_s$)")
# module paths named in notes (planner.arrivals, planner.serving.arrivals) are where code lives, not an output
MODULE = re.compile(r"\bplanner(\.[a-z_]+)+")


def _scrub(doc, tmp: str):
    if isinstance(doc, dict):
        return {k: ("<volatile>" if VOLATILE.search(k) else _scrub(v, tmp)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_scrub(v, tmp) for v in doc]
    if isinstance(doc, str):
        return _text(doc, tmp)
    return doc


def _text(text: str, tmp: str) -> str:
    text = text.replace(tmp, "<tmp>") if tmp else text
    return MODULE.sub("planner.<module>", text.replace(str(ROOT), "<checkout>"))


def _run(argv: list[str]) -> tuple[int, str, str]:
    from planner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def snapshot(dest: Path) -> None:
    """Paths are given relative to the checkout (run from it), so two checkouts give comparable snapshots."""
    import os

    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    jobs: list[tuple[str, list[str]]] = []
    for f in sorted((Path("profiles/models")).glob("*.yaml")):
        jobs.append((f"inspect--{f.stem}", ["inspect", f.stem, "--json"]))
    for f in sorted((Path("profiles/scenarios")).glob("*.yaml")):
        jobs.append((f"estimate--{f.stem}", ["estimate", str(f), "--json"]))
    for f in sorted((Path("profiles/workloads")).glob("*.yaml")):
        jobs.append((f"size--{f.stem}", ["size", str(f), "--json", "--time-budget", "0"]))  # whole searches
    cases = [Path("../shared/validation/public_cases.yaml"), *sorted((Path("tests/data")).glob("*cases*.yaml"))]
    for f in cases:
        if f.exists():
            jobs.append((f"validate--{f.stem}", ["validate", str(f), "--json"]))
    for name, argv in jobs:
        rc, out, err = _run(argv)
        doc = json.loads(out) if rc == 0 and out.strip() else {"rc": rc, "stderr": err}
        (dest / f"{name}.json").write_text(json.dumps(_scrub(doc, ""), indent=1, sort_keys=True) + "\n")
        print(f"{name}: rc {rc}", file=sys.stderr)
    for f in sorted((Path("profiles/reports")).glob("*.yaml")):
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp) / "r"
            rc, out, err = _run(["report", str(f), "--out", str(out_dir), "--no-png", "--json"])
            doc = json.loads(out) if rc == 0 and out.strip() else {"rc": rc, "stderr": err}
            (dest / f"report--{f.stem}.json").write_text(json.dumps(_scrub(doc, tmp), indent=1, sort_keys=True))
            if out_dir.exists():
                for part in sorted(out_dir.iterdir()):
                    if part.suffix in (".md", ".csv"):
                        text = _text(part.read_text(), tmp)
                        (dest / f"report--{f.stem}--{part.name}").write_text(text)
        print(f"report {f.stem}: rc {rc}", file=sys.stderr)


def _close(x, y, rtol: float) -> bool:
    """JSON documents equal up to a relative tolerance on numbers (same keys, same strings)."""
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k], rtol) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_close(u, v, rtol) for u, v in zip(x, y, strict=True))
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        return abs(x - y) <= rtol * max(abs(x), abs(y))
    return x == y


def compare(a: Path, b: Path, rtol: float = 0.0) -> int:
    """Byte-identical outputs; with `rtol`, JSON outputs may differ in numbers by that relative amount."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    same, close, bad = [], [], []
    for n in names:
        if not (a / n).exists() or not (b / n).exists():
            bad.append(n)
        elif (a / n).read_bytes() == (b / n).read_bytes():
            same.append(n)
        elif rtol and n.endswith(".json") and _close(json.loads((a / n).read_text()), json.loads((b / n).read_text()),
                                                     rtol):
            close.append(n)
        else:
            bad.append(n)
    for n in close:
        print(f"within rtol {rtol:g}: {n}")
    for n in bad:
        print(f"differs: {n}")
    print(f"{len(same)} of {len(names)} outputs identical" + (f", {len(close)} within rtol {rtol:g}" if rtol else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) == 5 else 0.0))
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    snapshot(Path(sys.argv[1]))
