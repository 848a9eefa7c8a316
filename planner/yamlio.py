"""Safe, strict reading of YAML and JSON input files.

Every profile, scenario and config goes through `load_document`: size-limited before parsing,
safe loading only (yaml's SafeLoader or its libyaml twin; tags that would construct Python objects are
refused), and parse errors reported as one line with file, line and column. `check_keys` rejects unknown keys by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from planner.errors import PlannerError

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when built in: same rules, faster
MAX_INPUT_BYTES = 16 * 1024 * 1024  # no real profile, scenario or config.json comes near 16 MiB
MAX_NESTING = 64  # deeper documents are refused: no real input nests more than ~6 levels


def load_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON is a subset of YAML; `.json` uses the json module)."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise PlannerError("file not found", file=name)
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise PlannerError(f"file is {size:,} bytes, over the {MAX_INPUT_BYTES:,}-byte input limit", file=name)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PlannerError(f"not UTF-8 text (byte {err.start})", file=name) from None
    return parse_text(text, name, json_mode=path.suffix.lower() == ".json")


def parse_text(text: str, name: str, *, json_mode: bool = False) -> Any:
    """Parse YAML (or JSON) text; errors name `name` and the line."""
    if json_mode:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise PlannerError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", file=name) from None
    else:
        try:
            doc = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506  (a safe loader: no object construction)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problem = getattr(err, "problem", None) or type(err).__name__
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise PlannerError(f"invalid YAML{where}: {problem}", file=name) from None
        except RecursionError:
            raise PlannerError("document nests too deeply", file=name) from None
    _check_depth(doc, name)
    return doc


def _check_depth(doc: Any, name: str) -> None:
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise PlannerError(f"document nests deeper than {MAX_NESTING} levels", file=name)
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def require_mapping(doc: Any, file: str, field: str | None = None) -> dict:
    if not isinstance(doc, Mapping):
        kind = "empty" if doc is None else type(doc).__name__
        raise PlannerError(f"expected a mapping, got {kind}", file=file, field=field)
    return dict(doc)


def check_keys(doc: Mapping, allowed: Iterable[str], file: str, prefix: str = "") -> None:
    """Reject keys not in `allowed`, naming the first one and what is allowed."""
    allowed = list(allowed)
    for key in doc:
        if key not in allowed:
            raise PlannerError(
                f"unknown key (allowed: {', '.join(allowed)})", file=file, field=f"{prefix}{key}"
            )


def get_number(
    doc: Mapping,
    key: str,
    file: str,
    *,
    prefix: str = "",
    default: Any = ...,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
):
    """Read a finite number (or None when default is None and the key is absent/null)."""
    field = f"{prefix}{key}"
    if key not in doc or doc[key] is None:
        if default is ...:
            raise PlannerError("missing required number", file=file, field=field)
        return default
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlannerError(f"expected a number, got {type(value).__name__} {value!r}"[:160], file=file, field=field)
    if not math.isfinite(value):
        raise PlannerError(f"expected a finite number, got {value}", file=file, field=field)
    if integer and value != int(value):
        raise PlannerError(f"expected an integer, got {value}", file=file, field=field)
    if minimum is not None and value < minimum:
        raise PlannerError(f"must be >= {minimum:g}, got {value:g}", file=file, field=field)
    if maximum is not None and value > maximum:
        raise PlannerError(f"must be <= {maximum:g}, got {value:g}", file=file, field=field)
    return int(value) if integer else value


def get_str(doc: Mapping, key: str, file: str, *, prefix: str = "", default: Any = ...) -> Any:
    field = f"{prefix}{key}"
    if key not in doc or doc[key] is None:
        if default is ...:
            raise PlannerError("missing required text", file=file, field=field)
        return default
    value = doc[key]
    if not isinstance(value, str):
        raise PlannerError(f"expected text, got {type(value).__name__}", file=file, field=field)
    return value
