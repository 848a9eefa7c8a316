"""Frozen dataclasses that are hashed often (a scenario, a model spec, a weight format key the planner's caches) hash
their fields once and keep the result; equality stays field-wise, as the dataclass defines it.

    @dataclass(frozen=True)
    class Spec:
        ...
        __hash__ = hash_once
        __getstate__ = state_without_hash

A hash is only valid in the process that computed it (string hashes are seeded per process), so pickling drops it.
"""

from __future__ import annotations

from dataclasses import fields

_KEY = "_hash_once"


def hash_once(self) -> int:
    h = self.__dict__.get(_KEY)
    if h is None:
        h = hash(tuple(getattr(self, f.name) for f in fields(self)))
        object.__setattr__(self, _KEY, h)
    return h


def state_without_hash(self) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != _KEY}
