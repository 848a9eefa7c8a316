"""Shared settings of the hypothesis property tests (tests/test_robustness_*properties.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                    HealthCheck.data_too_large])


def twice(default: int, slow: int, *strategies):
    """The property as two tests: `default` examples in `make test`, `slow` examples under `-m slow`."""
    def wrap(fn):
        fast = settings(max_examples=default, **COMMON)(given(*strategies)(fn))
        big = pytest.mark.slow(settings(max_examples=slow, **COMMON)(given(*strategies)(fn)))
        return fast, big
    return wrap
