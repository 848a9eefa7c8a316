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
from operator import attrgetter

_KEY = "_hash_once"
_GETTERS: dict[type, attrgetter] = {}  # per class: its fields' values as a tuple (dataclasses.fields is slow)


def hash_once(self) -> int:
    h = self.__dict__.get(_KEY)
    if h is None:
        cls = type(self)
        get = _GETTERS.get(cls)
        if get is None:
            names = [f.name for f in fields(self)]
            get = _GETTERS[cls] = attrgetter(*names) if len(names) > 1 else \
                (lambda obj: tuple(getattr(obj, n) for n in names))  # attrgetter of one name gives no tuple
        h = hash(get(self))
        object.__setattr__(self, _KEY, h)
    return h


def state_without_hash(self) -> dict:
    return {k: v for k, v in self.__dict__.items() if k != _KEY}
