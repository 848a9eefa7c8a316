"""Formatting at the edges: SI units inside, labels here. GB = 1e9 B (datasheets, bandwidth),
GiB = 2^30 B (allocator numbers); always labelled. Times in the unit a person reads: ms below a second,
s below a minute, min above (`duration`)."""

GB = 1e9
GIB = 2**30
MINUTE_S = 60.0


def gb(nbytes: float, digits: int = 1) -> str:
    """'297.6 GB' (decimal gigabytes)."""
    return f"{nbytes / GB:,.{digits}f} GB"


def mb(nbytes: float, digits: int = 1) -> str:
    """'39.5 MB' (decimal megabytes: one request's linear-attention or window state)."""
    return f"{nbytes / 1e6:,.{digits}f} MB"


def gib(nbytes: float, digits: int = 2) -> str:
    """'554.27 GiB' (binary gibibytes)."""
    return f"{nbytes / GIB:,.{digits}f} GiB"


def gb_gib(nbytes: float) -> str:
    """'85.5 GB = 79.6 GiB': both where a reader compares a datasheet's GB with what nvidia-smi or an allocator
    shows (GiB)."""
    return f"{gb(nbytes)} = {gib(nbytes, 1)}"


def count(n: float) -> str:
    """'1,026,408,232,448' for exact counts; '1.03 T' style is left to reports."""
    return f"{n:,.0f}"


def duration(seconds: float) -> str:
    """'21.1 ms', '4.20 s', '10.3 min': ms below 1 s, s below 1 min, minutes above (hours past 2 h)."""
    s = abs(seconds)
    if s < 1e-3:
        return f"{seconds * 1e6:,.0f} us"
    if s < 1:
        return f"{seconds * 1e3:,.{1 if s < 0.1 else 0}f} ms"
    if s < MINUTE_S:
        return f"{seconds:,.{2 if s < 10 else 1}f} s"
    if s < 2 * 3600:
        return f"{seconds / MINUTE_S:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def rate(per_s: float, what: str = "tokens") -> str:
    """'1,046 tokens/s', '17.3 tokens/s', '0.42 tokens/s': three significant figures at most, thousands grouped."""
    v = abs(per_s)
    digits = 0 if v >= 100 else 1 if v >= 10 else 2
    return f"{per_s:,.{digits}f} {what}/s"
