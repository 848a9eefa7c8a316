"""Formatting at the edges: SI units inside, labels here. GB = 1e9 B (datasheets, bandwidth),
GiB = 2^30 B (allocator numbers); always labelled."""

GB = 1e9
GIB = 2**30


def gb(nbytes: float, digits: int = 1) -> str:
    """'297.6 GB' (decimal gigabytes)."""
    return f"{nbytes / GB:,.{digits}f} GB"


def gib(nbytes: float, digits: int = 2) -> str:
    """'554.27 GiB' (binary gibibytes)."""
    return f"{nbytes / GIB:,.{digits}f} GiB"


def count(n: float) -> str:
    """'1,026,408,232,448' for exact counts; '1.03 T' style is left to reports."""
    return f"{n:,.0f}"
