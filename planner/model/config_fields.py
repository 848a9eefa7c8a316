"""Reading Hugging Face config fields with one-line errors that name the file and the field (used by
planner.model.spec and planner.model.families)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.base.errors import PlannerError
from planner.base.limits import CONFIG_LIMITS, MAX_CONFIG_INT


class Fields:
    """Reads config fields with errors that name the file and the field."""

    def __init__(self, cfg: Mapping[str, Any], file: str, prefix: str = ""):
        self.cfg, self.file, self.prefix = cfg, file, prefix

    def _err(self, key: str, msg: str) -> PlannerError:
        return PlannerError(msg, file=self.file, field=f"{self.prefix}{key}")

    def int(self, key: str, default: Any = ..., *, minimum: int = 1) -> Any:
        value = self.cfg.get(key)
        if value is None:
            if default is ...:
                raise self._err(key, "missing required field")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self._err(key, f"expected an integer, got {value!r}"[:120])
        if value < minimum:
            raise self._err(key, f"must be >= {minimum}, got {value}")
        limit = CONFIG_LIMITS.get(key, MAX_CONFIG_INT)
        if value > limit:  # planner.base.limits says why each limit is where it is
            raise self._err(key, f"{value:,} is over the planner's limit of {limit:,}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._err(key, f"expected true/false, got {value!r}"[:120])
        return value

    def int_list(self, key: str) -> list[int]:
        value = self.cfg.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self._err(key, "expected a list of integers")
        return value


def config_dtype(cfg: Mapping[str, Any]) -> str:
    raw = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(raw), "bf16")
