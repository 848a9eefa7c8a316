"""Safe, strict reading of YAML and JSON input files.

Every profile, scenario and config goes through `load_document`: size-limited before parsing,
safe loading only (yaml's SafeLoader or its libyaml twin; tags that would construct Python objects are
refused), and parse errors reported as one line with file, line and column. Whatever the parser or the
safe constructor raises (`!!int 'abc'`, a 5,000-digit integer, JSON nested 100,000 deep) is such an error too, and
so are documents whose YAML aliases expand past MAX_NODES values ("billion laughs") or whose text holds lone
surrogates. `check_keys` rejects unknown keys by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from planner.base.errors import PlannerError

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when built in: same rules, faster
MAX_INPUT_BYTES = 16 * 1024 * 1024  # no real profile, scenario or config.json comes near 16 MiB
MAX_NESTING = 64  # deeper documents are refused: no real input nests more than ~6 levels
MAX_NODES = 1_000_000  # values after alias expansion; the largest real input (a validate file) holds ~10,000
# the one profiles root: <checkout>/profiles (planner/base/yamlio.py -> planner/base -> planner -> checkout)
PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def is_file(path: str | Path) -> bool:
    """Path.is_file that says False, rather than raising, for names no file can have (too long, NUL bytes)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def profile_names(directory: Path) -> list[str]:
    """Names of the profiles in `directory` (its YAML files' stems), sorted."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def profile_path(directory: Path, name: Any, kind: str, field: str) -> Path:
    """`directory/<name>.yaml` for a profile an input names; a name no profile file has is refused, listing the
    known names (`kind` says what was asked for: engine, system, dataset, ...)."""
    path = directory / f"{name}.yaml" if isinstance(name, str) and "/" not in name else None
    if path is None or not is_file(path):
        known = ", ".join(profile_names(directory))
        raise PlannerError(f"unknown {kind} {name!r}; known: {known}", field=field)
    return path


def load_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file (JSON is a subset of YAML; `.json` uses the json module)."""
    path = Path(path)
    name = str(path)
    if not is_file(path):
        raise PlannerError("file not found", file=name)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise PlannerError(f"file is {size:,} bytes, over the {MAX_INPUT_BYTES:,}-byte input limit", file=name)
        with path.open("rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)  # a file that grew after stat() is still cut at the limit
    except OSError as err:
        raise PlannerError(f"cannot read: {err.strerror or type(err).__name__}", file=name) from None
    if len(raw) > MAX_INPUT_BYTES:
        raise PlannerError(f"file is over the {MAX_INPUT_BYTES:,}-byte input limit", file=name)
    try:
        text = raw.decode("utf-8")
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
        except RecursionError:
            raise PlannerError("document nests too deeply", file=name) from None
        except ValueError as err:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
            raise PlannerError(f"invalid JSON: {str(err).split(';')[0]}", file=name) from None
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
        except Exception as err:  # noqa: BLE001  the safe constructor's own failures: !!int 'abc', !!timestamp 'x',
            # an integer of more digits than Python converts; all are bad input, none a planner fault
            raise PlannerError(f"invalid YAML: cannot construct a value ({type(err).__name__}: "
                               f"{str(err).split(';')[0]})"[:300], file=name) from None
    _check_document(doc, name)
    return doc


def _check_document(doc: Any, name: str) -> None:
    """Nesting depth, total values after alias expansion, and text that UTF-8 can encode (no lone surrogates)."""
    stack = [(doc, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise PlannerError(f"document expands to more than {MAX_NODES:,} values (YAML aliases?)", file=name)
        if depth > MAX_NESTING:
            raise PlannerError(f"document nests deeper than {MAX_NESTING} levels", file=name)
        if isinstance(node, Mapping):
            stack.extend((k, depth + 1) for k in node if isinstance(k, str))
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as err:
                raise PlannerError(f"text holds an invalid character {node[err.start]!r} (lone surrogate)",
                                   file=name) from None


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


def get_choice(doc: Mapping, key: str, allowed: tuple[str, ...], file: str, *, prefix: str = "",
               default: Any = ...) -> Any:
    """Text that must be one of `allowed`."""
    value = get_str(doc, key, file, prefix=prefix, default=default)
    if value not in allowed:
        raise PlannerError(f"expected one of {', '.join(allowed)}, got {value!r}", file=file, field=f"{prefix}{key}")
    return value


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
