"""One escaping layer per output kind: CSV cells, Markdown text, terminal text.

Every string that comes from an input (a report title, a plan or case name, a cited source, a folder name)
passes through the function for the output it is written to, at the point where it is written:

- `csv_cell` / `csv_frame`: a cell a spreadsheet would evaluate as a formula (first character `=`, `+`, `-`, `@`,
  tab or carriage return, OWASP "CSV injection") gets a leading `'`, unless it is a number. Numbers (numeric
  values, and text such as `-1.5e3`) are written unchanged.
- `md_text`: Markdown that can only be read as text. HTML is escaped (`<`, `>`, `&`: no tag, comment, autolink or
  entity survives), backslashes and table pipes are escaped, line ends become spaces (a value never starts a new
  line, so it cannot start a block or a link definition, nor break a table row), and a `]` that would close a link
  or an image (`](`, `][`, `]:`) is escaped, so `[t](javascript:...)` and `![t](http://...)` stay text. Other
  punctuation (`(`, `)`, `!`, `*`, `_`, backticks) is left as typed: without `](` it cannot link, load or break
  anything, and escaping it would rewrite every snake_case name and parenthesis in the planner's own reports.
- `md_code`: an inline code span around text that may itself hold backticks (a command line with input paths).
- `md_link_text`: text inside `[...]` (an image's alt text): every bracket escaped.
- `terminal`: text for a human-readable printer. C0 and C1 control characters (ESC, BEL, CR, ...), DEL, Unicode line
  separators and bidirectional overrides are shown as `\\x1b`-style escapes, as the CLI's error lines do, so a name
  cannot move the cursor, retitle the window, clear the screen or reorder what is shown. `terminal_lines` does the
  same to a whole printout but keeps its line breaks.
"""

from __future__ import annotations

import html
import numbers
import re

import pandas as pd

# ---------------------------------------------------------------- CSV

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection: first characters a spreadsheet evaluates
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: object) -> object:
    """The value with a leading `'` when a spreadsheet would read it as a formula; numbers and None unchanged."""
    if value is None or isinstance(value, (numbers.Number, bool)):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return value


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells and column names are safe to open in a spreadsheet (numbers untouched)."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) for c in out.columns]
    return out


# ---------------------------------------------------------------- Markdown

_LINE_ENDS = re.compile(r"\r\n|[\r\n]")  # CommonMark line endings
_LINK_CLOSE = re.compile(r"\](?=[(\[:])")  # `](` inline link/image, `][` reference, `]:` definition


def _md_base(text: object) -> str:
    """HTML, backslashes and table pipes escaped; line ends made spaces."""
    text = html.escape(str(text), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    return _LINE_ENDS.sub(" ", text)


def md_text(text: object) -> str:
    """Markdown that renders as exactly this text (see the module docstring for what is escaped and why)."""
    return _LINK_CLOSE.sub(r"\\]", _md_base(text))


def md_link_text(text: object) -> str:
    """Text between `[` and `]` (an image's alt text): as md_text, with every bracket escaped."""
    return _md_base(text).replace("[", "\\[").replace("]", "\\]")


def md_code(text: object) -> str:
    """An inline code span showing `text` literally, for a paragraph (not a table cell): a backtick fence longer
    than any run inside, line ends as spaces."""
    text = _LINE_ENDS.sub(" ", str(text))
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ---------------------------------------------------------------- terminal

# C0 controls, DEL, C1 controls (U+009B is an 8-bit CSI), line/paragraph separators, bidirectional marks,
# embeddings, overrides and isolates
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def terminal(text: object) -> str:
    """One field for a terminal: every control character shown as its escape (`\\x1b`, `\\x07`, `\\n`)."""
    return _CONTROLS.sub(_shown, str(text))


def terminal_lines(text: object) -> str:
    """A whole printout for a terminal: as `terminal`, but its own line breaks kept."""
    return _CONTROLS_BUT_NEWLINE.sub(_shown, str(text))

