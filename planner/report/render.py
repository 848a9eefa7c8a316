"""Writers: sections -> one self-contained index.html (one inline plotly.js, no network) and report.md.

Every string from YAML, configs or planner messages is HTML-escaped here (titles, paragraphs, table cells,
notes), so a model named `<script>` shows as text; report.md gets the same strings through
planner.base.escape.md_text, so `[t](javascript:...)` or `![t](http://...)` in a title stays text.
Tables are shown with units at the edges: byte columns in GB (1e9 B), per-token and per-request sizes in bytes,
fractions in percent; the CSV files keep the raw SI numbers.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone

import pandas as pd
import plotly.offline

from planner.base.escape import md_code, md_link_text, md_text
from planner.report.sections import Section
from planner.report.spec import ReportSpec

MAX_ROWS_SHOWN = 80  # longer tables: first rows on the page, all of them in the CSV
PERCENT = ("fraction", "utilization", "error")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.7em;margin-bottom:.2em} h2{margin-top:2.2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav ol{columns:2;font-size:.95em} .meta{color:#666;font-size:.9em}
.fig{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:14px 0;padding:4px}
table{border-collapse:collapse;font-size:.82em;margin:10px 0;background:#fff;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f3} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:8px 0;font-size:.9em}
tr.confirmed td:nth-child(3){background:#e3f6e5} tr.off td:nth-child(3){background:#fff3cd}
tr.wrong td:nth-child(3){background:#fbe0e0} tr.not_checkable td:nth-child(3){background:#eee}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: object, column: str) -> tuple[str, bool]:
    """(display text, numeric?) of one table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, float)):
        if "bytes" in column and _in_bytes(column):
            return (f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"), True
        if "bytes" in column:
            return f"{value / 1e9:,.1f}", True
        if column.endswith(PERCENT):
            return f"{value:+.1%}" if column.endswith("error") else f"{value:.1%}", True
        if isinstance(value, int) or float(value).is_integer():
            return f"{int(value):,}", True
        return (f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"), True
    return str(value), False


def _in_bytes(column: str) -> bool:
    """Per-token and per-request sizes (kilobytes to megabytes) stay in bytes; 0.0 GB would say nothing."""
    return "bytes_per_token" in column or "bytes_per_request" in column


def _header(column: str) -> str:
    return column.replace("bytes", "B" if _in_bytes(column) else "GB").replace("_", " ")


def display_rows(df: pd.DataFrame) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    cols = [c for c in df.columns if c != "kind"]
    records = df[cols].head(MAX_ROWS_SHOWN).itertuples(index=False)
    rows = [[_cell(v, c) for c, v in zip(cols, rec, strict=True)] for rec in records]
    return [_header(c) for c in cols], rows


def html_table(caption: str, df: pd.DataFrame, csv_name: str) -> str:
    heads, rows = display_rows(df)
    kinds = list(df["kind"]) if "kind" in df.columns else [None] * len(df)
    out = [f"<table><caption>{esc(caption)} <a href=\"{esc(csv_name)}\">(CSV)</a></caption><thead><tr>"]
    out += [f"<th>{esc(h)}</th>" for h in heads] + ["</tr></thead><tbody>"]
    for kind, row in zip(kinds[:len(rows)], rows, strict=True):
        out.append(f"<tr class=\"{esc(kind)}\">" if kind else "<tr>")
        out += [f"<td class=\"num\">{esc(v)}</td>" if num else f"<td>{esc(v)}</td>" for v, num in row]
        out.append("</tr>")
    out.append("</tbody></table>")
    if len(df) > MAX_ROWS_SHOWN:
        out.append(f"<p class=\"meta\">first {MAX_ROWS_SHOWN} of {len(df)} rows; all in {esc(csv_name)}</p>")
    return "".join(out)


def html_report(spec: ReportSpec, sections: list[Section], csv_names: dict, command: str) -> str:
    """The whole page; figures share one inline copy of plotly.js."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_fig = sum(len(s.figures) for s in sections)
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
             f"<title>{esc(spec.title)}</title><style>{CSS}</style>",
             f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script></head>",
             f"<body data-figures=\"{n_fig}\"><main><h1>{esc(spec.title)}</h1>",
             f"<p class=\"meta\">Generated {esc(when)} by <code>{esc(command)}</code>. Every number is computed by "
             "the planner; units: GB = 1e9 bytes.</p>"]
    if spec.description:
        parts.append(f"<p>{esc(spec.description)}</p>")
    parts.append("<nav><ol>" + "".join(f"<li><a href=\"#{esc(s.key)}\">{esc(s.title)}</a></li>" for s in sections)
                 + "</ol></nav>")
    n = 0
    for s in sections:
        parts.append(f"<section id=\"{esc(s.key)}\"><h2>{esc(s.title)}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in s.paragraphs]
        parts += [f"<div class=\"note\">{esc(n)}</div>" for n in s.notes]
        for _slug, caption, fig in s.figures:
            n += 1  # ids are generated: names from YAML never reach attributes or scripts unescaped
            div = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=f"fig-{n}",
                              config={"displaylogo": False, "responsive": True})
            parts.append(f"<div class=\"fig\" title=\"{esc(caption)}\">{div}</div>")
        for slug, caption, df, shown in s.tables:
            if shown:
                parts.append(html_table(caption, df, csv_names[slug]))
            else:
                parts.append(f"<p class=\"meta\">{esc(caption)}: <a href=\"{esc(csv_names[slug])}\">"
                             f"{esc(csv_names[slug])}</a> ({len(df)} rows)</p>")
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _md(text: object) -> str:
    """Markdown-safe text (planner.base.escape.md_text): HTML, backslashes, table pipes and link/image brackets
    escaped, line ends (CommonMark: LF, CR, CRLF) made spaces so a value never breaks its table row."""
    return md_text(text)


def md_table(df: pd.DataFrame) -> list[str]:
    heads, rows = display_rows(df)
    lines = ["| " + " | ".join(_md(h) for h in heads) + " |",
             "|" + "|".join("---:" if any(r[i][1] for r in rows) else "---" for i in range(len(heads))) + "|"]
    lines += ["| " + " | ".join(_md(v) for v, _ in row) + " |" for row in rows]
    return lines


def markdown_report(spec: ReportSpec, sections: list[Section], csv_names: dict, png_names: dict, png_note: str,
                    command: str) -> str:
    out = [f"# {_md(spec.title)}", "", f"Generated by {md_code(command)}; GB = 1e9 bytes. "
           "The interactive version is index.html beside this file.", ""]
    if spec.description:
        out += [_md(spec.description), ""]
    if png_note:
        out += [f"> {_md(png_note)}", ""]
    for s in sections:
        out += [f"## {_md(s.title)}", ""]
        out += [p for para in s.paragraphs for p in (_md(para), "")]
        out += [p for n in s.notes for p in (f"> {_md(n)}", "")]
        for slug, caption, _ in s.figures:
            if slug in png_names:
                out += [f"![{md_link_text(caption)}]({png_names[slug]})", ""]
        for slug, caption, df, shown in s.tables:
            out += [f"**{_md(caption)}** ([CSV]({csv_names[slug]}), {len(df)} rows)", ""]
            if shown and not df.empty:
                out += md_table(df) + [""]
    return "\n".join(out)
