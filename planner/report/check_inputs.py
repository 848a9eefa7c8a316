"""What a claim check reads: the context every check gets (Ctx) and typed readers for a check's options.

A wrong type or value is a one-line PlannerError naming the report file and the option
(`sections[9].claims_audit.checks.size-int4[1].claimed`). Used by model_checks.py and deployment_checks.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.base.errors import PlannerError, resolve_named
from planner.base.yamlio import get_number, get_str
from planner.model.models import load_model
from planner.report.spec import model_ref


@dataclass
class Ctx:
    """What every check sees: the report's defaults and a log of the planner calls made."""

    model: str  # default model reference
    workloads: Mapping[str, Mapping]
    file: str  # report file (error messages)
    field: str = ""  # "sections[9].claims_audit.checks.size-int4[1]"
    calls: list[str] = dataclasses.field(default_factory=list)

    def call(self, what: str) -> None:
        self.calls.append(what)


def need(opts: Mapping, key: str, ctx: Ctx) -> Any:
    if opts.get(key) is None:
        raise PlannerError("missing", file=ctx.file, field=f"{ctx.field}.{key}")
    return opts[key]


def number(opts: Mapping, key: str, ctx: Ctx, default: Any = ..., **limits) -> Any:
    """A finite number >= 0 (claimed values, counts); `integer=True`, `minimum`, `maximum` as yamlio.get_number.
    Text that reads as a number counts: YAML 1.1 loads `1.04e12` (no exponent sign) as a string."""
    value = opts.get(key)
    if isinstance(value, str):
        try:
            opts = {key: float(value)}
        except ValueError:
            pass
    return get_number(opts, key, ctx.file, prefix=f"{ctx.field}.", default=default,
                      **{"minimum": 0, "maximum": 1e18, **limits})


def name(opts: Mapping, key: str, ctx: Ctx, default: Any = ...) -> Any:
    value = get_str(opts, key, ctx.file, prefix=f"{ctx.field}.", default=default)
    if value == "":
        raise PlannerError("expected a name, got ''", file=ctx.file, field=f"{ctx.field}.{key}")
    return value


def flag(opts: Mapping, key: str, ctx: Ctx, default: Any = ...) -> bool:
    value = opts.get(key)
    if value is None:
        if default is ...:
            raise PlannerError("missing", file=ctx.file, field=f"{ctx.field}.{key}")
        return default
    if not isinstance(value, bool):
        raise PlannerError(f"expected true or false, got {value!r}"[:120], file=ctx.file, field=f"{ctx.field}.{key}")
    return value


def named_model(opts: Mapping, ctx: Ctx, key: str = "model"):
    """The model the option `key` names; for `model`, the report's default model when the option is absent."""
    ref = name(opts, key, ctx, None) if key == "model" else name(opts, key, ctx)
    return resolve_named(load_model, model_ref(ref or ctx.model), ctx.file, f"{ctx.field}.{key}")
