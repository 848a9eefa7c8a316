"""`python -m planner report REPORT.yaml --out DIR`: build every section, write DIR atomically and safely.

Writes go to a fresh temporary folder beside DIR (`.DIR.tmp-<pid>-<random>`); only when index.html,
report.md, every CSV and PNG are complete is DIR swapped for it (the old DIR is renamed aside, the new
one renamed in, the old one removed). An interrupted run leaves DIR as it was (or, killed in the instant
between the two renames, no DIR at all), never a half report behind a complete-looking index. Reports to
different folders share nothing; leftovers of killed runs are removed by the next build of the same DIR.

DIR is replaced only when the planner made it (planner.base.outputs: the marker file `.planner-output`, or a
report folder written before markers existed, see `_old_report`); a folder with other files, a symbolic link,
`.`/`..` and the folder holding REPORT.yaml are refused with one line and left as they are. Every CSV goes
through planner.base.escape.csv_frame (no cell a spreadsheet would run as a formula).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from planner.base.escape import csv_frame, terminal
from planner.base.outputs import write_folder
from planner.report.render import html_report, markdown_report
from planner.report.sections import Context, Section, build_sections
from planner.report.spec import load_report_spec, public_text

PNG_WIDTH = 1100


def chromium_path() -> str | None:
    """Debian's chromium for kaleido and tests: $PLANNER_CHROMIUM, else chromium on PATH, else None."""
    env = os.environ.get("PLANNER_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def export_pngs(items: list[tuple[Path, object]]) -> str:
    """Write each figure as PNG through kaleido (one browser for all); '' on success, else why not."""
    if not items:
        return ""
    try:
        import kaleido
    except ImportError:
        return "PNG figures not exported: kaleido is not installed (pip install kaleido)"
    kopts: dict = {"mathjax": False, "n": min(4, len(items))}  # no CDN MathJax: the export stays offline
    path = chromium_path()
    if path:
        kopts["path"] = path
    specs = [{"fig": fig, "path": str(p), "opts": {"format": "png", "width": PNG_WIDTH,
                                                   "height": fig.layout.height or 460}} for p, fig in items]
    try:
        errors = kaleido.write_fig_from_object_sync(specs, kopts=kopts)
    except Exception as err:  # noqa: BLE001  no browser, crashed browser: the HTML report still stands
        return f"PNG figures not exported: {type(err).__name__}: {err}"[:300].replace("\n", " ")
    if errors:
        return f"PNG figures not exported: {errors[0]}"[:300].replace("\n", " ")
    missing = [p.name for p, _ in items if not p.is_file()]
    return f"PNG figures not exported: {', '.join(missing)} missing" if missing else ""


def _unique_keys(sections: list[Section]) -> None:
    seen: dict[str, int] = {}
    for s in sections:
        n = seen.get(s.key, 0) + 1
        seen[s.key] = n
        if n > 1:
            s.key = f"{s.key}-{n}"


def _file_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "x"


def write_outputs(tmp: Path, spec, sections: list[Section], png: bool, command: str) -> dict:
    csv_names, png_names, pngs = {}, {}, []
    for s in sections:
        for slug, _caption, df, _shown in s.tables:
            name = _file_slug(f"{s.key}--{slug}") + ".csv"
            csv_frame(df).to_csv(tmp / name, index=False)
            csv_names[slug] = name
        for slug, _caption, fig in s.figures:
            name = _file_slug(f"{s.key}--{slug}") + ".png"
            png_names[slug] = name
            pngs.append((tmp / name, fig))
    note = export_pngs(pngs) if png else "PNG figures not exported (--no-png)"
    if note:
        png_names = {}
    (tmp / "report.md").write_text(markdown_report(spec, sections, csv_names, png_names, note, command))
    # index.html last: its presence in DIR means everything beside it is complete
    (tmp / "index.html").write_text(html_report(spec, sections, csv_names, command))
    return {"csv": len(csv_names), "png": len(png_names), "png_note": note,
            "figures": sum(len(s.figures) for s in sections)}


REPORT_FILES = ("index.html", "report.md")


def _old_report(folder: Path) -> bool:
    """A report folder written before the marker existed: only index.html, report.md, CSVs and PNGs, and an
    index.html that says the planner generated it (so replacing it loses nothing but an old report)."""
    try:
        names = os.listdir(folder)
        if "index.html" not in names or not all(
                (n in REPORT_FILES or n.endswith((".csv", ".png"))) and (folder / n).is_file()
                and not (folder / n).is_symlink() for n in names):
            return False
        page = (folder / "index.html").read_bytes()[:16 << 20]
    except OSError:
        return False
    return b'<p class="meta">Generated ' in page and b"by <code>python -m planner report " in page


def build_report(report: str | Path, out: str | Path, *, png: bool = True) -> dict:
    """Build the report described by `report` into folder `out`; returns a summary for the terminal."""
    t0 = time.perf_counter()
    spec = load_report_spec(report)
    out_arg = str(out)
    built: dict = {}

    def fill(tmp: Path) -> None:
        ctx = Context(spec, Path(tempfile.mkdtemp(prefix="scratch-", dir=tmp)))
        sections = build_sections(ctx)
        _unique_keys(sections)
        shutil.rmtree(ctx.scratch)
        for s in sections:
            _scrub(s)
        command = public_text(f"python -m planner report {report} --out {out_arg}")
        built.update(sections=sections, counts=write_outputs(tmp, spec, sections, png, command))

    out = write_folder(out_arg, fill, field="--out", inputs=[spec.file], legacy=_old_report)
    sections, counts = built["sections"], built["counts"]
    summary = {"report": spec.file, "title": spec.title, "out": str(out), "index": str(out / "index.html"),
               "sections": [s.title for s in sections], "seconds": round(time.perf_counter() - t0, 2), **counts,
               "notes": [f"{s.title}: {n}" for s in sections for n in s.notes
                         if "not available" in n or "no kernels_bench" in n or "refused" in n]}
    for s in sections:
        for slug, _c, df, _shown in s.tables:
            if slug == "claims-audit":
                summary["claims"] = {k: int(n) for k, n in df["kind"].value_counts().items()}
    return summary


def _scrub(s: Section) -> None:
    """No machine path in a section's text or tables (planner.report.spec.public_text)."""
    s.paragraphs = [public_text(p) for p in s.paragraphs]
    s.notes = [public_text(n) for n in s.notes]
    for k, (slug, caption, df, shown) in enumerate(s.tables):
        df = df.copy()
        for col in df.columns:
            if not pd.api.types.is_numeric_dtype(df[col]):
                df[col] = df[col].map(lambda v: public_text(v) if isinstance(v, str) else v)
        s.tables[k] = (slug, public_text(caption), df, shown)


def summary_text(doc: dict) -> str:
    """The build summary for a terminal: the title, notes and paths with control characters shown escaped."""
    lines = [terminal(doc["title"]), f"  built in {doc['seconds']:.1f} s: {len(doc['sections'])} sections, "
             f"{doc['figures']} figures, {doc['png']} PNG, {doc['csv']} CSV"]
    if doc.get("claims"):
        lines.append("  claims: " + ", ".join(f"{n} {terminal(k)}" for k, n in doc["claims"].items()))
    if doc.get("png_note"):
        lines.append(f"  {terminal(doc['png_note'])}")
    lines += [f"  {terminal(n)}" for n in doc["notes"]]
    lines.append(f"  open: {terminal(doc['index'])}")
    return "\n".join(lines)
