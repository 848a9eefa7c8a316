"""The per-table error listing of docs/silicon.md, read from the committed silicon calibrations' fit.tables (what
`python -m kernels_bench import-silicon` recorded): `python -m kernels_bench.silicon_table` prints it as Markdown."""

from __future__ import annotations

from planner.hardware.efficiency import silicon_fit_tables

GPU_ORDER = ("h200-sxm", "b200", "h100-sxm", "gb200")
ENGINE_ORDER = ("sglang", "vllm", "trtllm")
COLUMNS = (("holdout", "held out, surfaces"), ("curves", "curves alone"), ("default", "default table"),
           ("cv", "CV leave-model-shape-out"), ("wide_ep", "EP > 8 held out"),
           ("device_bound", "held out above the host floor (n)"))


def _pair(entry: dict, key: str) -> str:
    med = entry.get(f"{key}_median_abs_error")
    if med is None:
        return ""
    out = f"{med * 100:.0f} / {entry[f'{key}_p90_abs_error'] * 100:.0f}"
    return f"{out} ({entry['n_holdout_device_bound']})" if key == "device_bound" else out


def rows() -> list[tuple[str, str, str, dict]]:
    """(gpu, engine, table.dtype, fit.tables entry) of every committed calibration, in the page's order."""
    out = [(*stem.rpartition("-")[::2], name.replace("_perf", ""), entry) for stem, name, entry in silicon_fit_tables()]
    rank = lambda seq, x: seq.index(x) if x in seq else len(seq)  # noqa: E731
    return sorted(out, key=lambda r: (rank(GPU_ORDER, r[0]), r[0], rank(ENGINE_ORDER, r[1]), r[2]))


def markdown() -> str:
    head = "| GPU | engine | table.dtype | rows fit / held out | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]
    for gpu, engine, name, e in rows():
        cells = [gpu.removesuffix("-sxm").upper(), engine, name, f"{e.get('n_fit')} / {e.get('n_holdout')}"]
        lines.append("| " + " | ".join(cells + [_pair(e, k) for k, _ in COLUMNS]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
