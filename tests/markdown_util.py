"""Markdown checks shared by the report and output robustness tests."""


def live_pipes(line: str) -> int:
    """Table pipes of a Markdown line: `|` not escaped by a backslash (which may itself be escaped)."""
    n, k = 0, 0
    while k < len(line):
        if line[k] == "\\":
            k += 2
            continue
        n += line[k] == "|"
        k += 1
    return n
