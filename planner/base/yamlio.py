"""Safe, strict reading of YAML and JSON input files.

Every profile, scenario and config goes through `load_document`: size-limited before parsing,
safe loading only (yaml's SafeLoader or its libyaml twin; tags that would construct Python objects are
refused), and parse errors reported as one line with file, line and column. A key given twice in one mapping is
refused (JSON and YAML alike: the parsers would keep the last silently), a leading byte-order mark is dropped (JSON
and YAML alike), and YAML numbers follow the YAML 1.2 core schema (`1e3` is a number; `1:30` is text, not 90 as
YAML 1.1's base 60 read it; `0777` is refused as ambiguous, YAML 1.1 octal 511 or YAML 1.2 decimal 777). A path
that is not a regular file is named for what it is (a folder, a FIFO, a device, a symbolic-link loop).

Whatever the parser or the safe constructor raises (`!!int 'abc'`, a 5,000-digit integer, JSON nested 100,000
deep) is such an error too, and so are documents whose YAML aliases expand past MAX_NODES values ("billion
laughs") or whose text holds lone surrogates.
`check_keys` rejects unknown keys by name. The limits are planner.base.limits'.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from planner.base.errors import PlannerError
from planner.base.limits import MAX_INPUT_BYTES, MAX_NESTING, MAX_NODES

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when built in: same rules, faster
_INT, _FLOAT, _MERGE = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:merge"
# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): decimal, 0o octal and 0x hex integers;
# floats with an optional exponent, .inf and .nan. No base 60, no 0b, no underscores (YAML 1.1 had them all).
_CORE_INT = re.compile(r"[-+]?[0-9]+\Z|0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z"
                         r"|[-+]?\.(?:inf|Inf|INF)\Z|\.(?:nan|NaN|NAN)\Z")
# the one profiles root: <checkout>/profiles (planner/base/yamlio.py -> planner/base -> planner -> checkout)
PROFILES = Path(__file__).resolve().parents[2] / "profiles"


class StrictLoader(_BASE_LOADER):
    """The safe loader with YAML 1.2 core-schema numbers and no key given twice in one mapping.

    Keys a merge (`<<: *base`) brings in may be overridden, as YAML intends; only keys written twice are refused."""

    yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in rules if tag not in (_INT, _FLOAT)]
                               for first, rules in _BASE_LOADER.yaml_implicit_resolvers.items()}

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if not getattr(node, "keys_checked", False):  # before a merge adds its keys (a node may be merged twice)
            node.keys_checked = True
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice in one mapping",
                                                            key_node.start_mark)
                seen.add(key)
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if not _CORE_INT.match(text):
            raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not an integer", node.start_mark)
        if digits[:2] == "0o":
            return sign * int(digits[2:], 8)
        if digits[:2] == "0x":
            return sign * int(digits[2:], 16)
        if len(digits) > 1 and digits[0] == "0":
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r}: a leading zero reads as octal in YAML 1.1 and decimal in YAML 1.2; write "
                f"{sign * int(digits)} or 0o{digits.lstrip('0') or '0'}", node.start_mark)
        return sign * int(digits)


StrictLoader.add_implicit_resolver(_INT, _CORE_INT, list("-+0123456789"))
StrictLoader.add_implicit_resolver(_FLOAT, _CORE_FLOAT, list("-+.0123456789"))
StrictLoader.add_constructor(_INT, StrictLoader.construct_yaml_int)
SAFE_LOADER = StrictLoader


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are all different (json.loads would keep the last of two silently)."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice!r} given twice in one object")
    return out


def file_problem(path: str | Path) -> str:
    """Why `path` cannot be read as an input file, in words: not found, a folder, a FIFO, a device, a socket, a
    symbolic-link loop, a broken link, a name no file can have."""
    try:
        mode = os.stat(path).st_mode
    except ValueError:
        return "not a file name (NUL byte)"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop, not a file"
        if err.errno == errno.ENOENT and os.path.islink(path):
            return "a broken symbolic link (its target does not exist)"
        if err.errno == errno.ENOENT:
            return "file not found"
        return f"cannot read: {err.strerror or type(err).__name__}"
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return f"{what}, not a regular file"
    return "not a regular file"


def is_file(path: str | Path) -> bool:
    """Path.is_file that says False, rather than raising, for names no file can have (too long, NUL bytes)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


_NAMES: dict[Path, tuple[int, tuple[str, ...]]] = {}


def profile_names(directory: Path) -> list[str]:
    """Names of the profiles in `directory` (its YAML files' stems), sorted. Listed again only when the folder's
    modification time changes (a file added, removed or renamed there): the sizing search asks per hardware, model
    and engine, and listing a folder of profiles costs more than a stat."""
    try:
        stamp = directory.stat().st_mtime_ns
    except OSError:
        stamp = -1
    hit = _NAMES.get(directory)
    if hit is None or hit[0] != stamp or stamp == -1:
        hit = _NAMES[directory] = (stamp, tuple(sorted(p.stem for p in directory.glob("*.yaml"))))
    return list(hit[1])


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
        raise PlannerError(file_problem(path), file=name)
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
    """Parse YAML (or JSON) text; errors name `name` and the line. A leading byte-order mark is dropped."""
    text = text.removeprefix("\ufeff")
    if json_mode:
        try:
            doc = json.loads(text, object_pairs_hook=_json_object)
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


def sub_mapping(value: Any, key: str, allowed: Iterable[str], file: str) -> dict:
    """The mapping under `key` of an input (a scenario's parallelism, a workload's traffic, ...): absent or null is
    empty; anything but a mapping, or a key not in `allowed`, is an error naming `key`."""
    if value is None:
        return {}
    sub = require_mapping(value, file, key)
    check_keys(sub, allowed, file, f"{key}.")
    return sub


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


def get_percentile(doc: Mapping, file: str, *, prefix: str = "", key: str = "percentile") -> float | None:
    """A percentile strictly between 0 and 100, or None when absent: p0 is the fastest request and p100 the slowest
    of an unbounded tail, neither a latency a deployment can promise."""
    value = get_number(doc, key, file, prefix=prefix, default=None)
    if value is not None and not 0 < value < 100:
        raise PlannerError(f"must be between 0 and 100, both excluded, got {value:g}", file=file,
                           field=f"{prefix}{key}")
    return value


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
