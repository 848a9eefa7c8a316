"""An engine's measured all-reduce as a silicon calibration's `comm.allreduce_by_gpus` (kernels_bench import-silicon).

aiconfigurator-core's `comm/<engine>/<version>/custom_allreduce_perf.parquet` times the engine's own tensor-parallel
all-reduce of a BF16 tensor (`message_size` elements, 128 to 512 Mi; latency in ms) among 2, 4 and 8 GPUs of one node
(ai-dynamo/aiconfigurator collector/network/collect_all_reduce.py: `message_size` is the element count of a
[tokens, 4,096] input). vLLM's and SGLang's collectors time each size twice, replayed in a CUDA graph and eagerly
(`backend` vllm_graph / vllm_eager, sglang_graph / sglang_eager); the planner times steps under CUDA graphs, so the
graph rows are read. TensorRT-LLM's rows (`kernel_source` TRTLLM, its AllReduce op with the automatic strategy) have
no backend column; GB300's newest also time MNNVL one- and two-shot kernels, which are left out.

The engine picks its algorithm by size (one-shot below a few hundred KB, two-shot, then NCCL: vLLM's custom
all-reduce, SGLang's, TRT-LLM's AUTO strategy), so the time is not one latency plus bytes over one bandwidth: on B200
vLLM 4 GPUs take 7.8 us for 64 KB, 19 us for 1 MB and 365 us for 128 MB, where the default table's model
(profiles/calibration/default.yaml comm: 12 us + 2 (g - 1) / g x bytes over the bus bandwidth) gives 12, 14
and 292. The calibration keeps the measured points per GPU count (planner.hardware.allreduce.AllReduceTable reads them
log-linearly); its error is reported leave-one-size-out (each inner size predicted from the table without it)
beside the default model's on the same rows.
"""

from __future__ import annotations

from pathlib import Path

from kernels_bench import plan
from kernels_bench.silicon_fit import error_stats
from kernels_bench.silicon_tables import _versions
from planner.base.errors import PlannerError
from planner.hardware.accelerators import load_accelerator
from planner.hardware.allreduce import AllReduceTable
from planner.hardware.efficiency import efficiency_for

TABLE = "custom_allreduce_perf"
COLUMNS = ("num_gpus", "message_size", "latency", "allreduce_dtype")
ELEMENT_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4}
GRAPH_BACKENDS = ("vllm_graph", "sglang_graph")
TRTLLM_KERNEL = "TRTLLM"


def find_allreduce(root: Path, system: str, engine: str,
                   version: str | None = None) -> tuple[Path, dict[int, AllReduceTable]] | None:
    """The engine's newest custom_allreduce_perf.parquet on `system` (or `version`'s) with CUDA-graph rows, and its
    tables per GPU count (the median where a size repeats); None without one."""
    folder = root / system / "comm" / engine
    for v in [version] if version else reversed(_versions(folder)):
        path = folder / v / f"{TABLE}.parquet"
        if path.is_file() and (tables := _tables(_rows(path))):
            return path, tables
    return None


def _rows(path: Path):
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise PlannerError(f"cannot read the all-reduce table: {err}".splitlines()[0], file=str(path)) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise PlannerError("not aiconfigurator's custom_allreduce_perf schema", file=str(path), field=missing[0])
    if "backend" in df.columns:
        df = df[df.backend.isin(GRAPH_BACKENDS)]
    elif "kernel_source" in df.columns:
        df = df[df.kernel_source == TRTLLM_KERNEL]
    return df[df.allreduce_dtype.isin(ELEMENT_BYTES) & (df.message_size > 0) & (df.latency > 0) & (df.num_gpus >= 2)]


def _tables(df) -> dict[int, AllReduceTable]:
    """Per GPU count with two sizes or more, (message bytes, seconds) of the rows (the median where a size repeats)."""
    df = df.assign(nbytes=df.message_size * df.allreduce_dtype.map(ELEMENT_BYTES), seconds=df.latency * 1e-3)
    out = {}
    for g, rows in df.groupby("num_gpus"):
        pts = rows.groupby("nbytes").seconds.median().sort_index()
        if len(pts) >= 2:
            out[int(g)] = AllReduceTable(int(g), tuple((float(b), float(t)) for b, t in pts.items()))
    return out


def summary(tables: dict[int, AllReduceTable], gpu: str) -> dict:
    """fit.tables' entry: leave-one-size-out |error| of the table's own reading, beside the default table's comm
    model on the same rows (each inner size of each GPU count)."""
    acc = load_accelerator(gpu)
    own, default = [], []
    for g, t in tables.items():
        inner = t.points[1:-1]
        linked = plan.link_allreduce_seconds(acc, efficiency_for(None), g, [b for b, _ in inner])
        for i, ((b, s), model) in enumerate(zip(inner, linked, strict=True), start=1):
            own.append(AllReduceTable(g, t.points[:i] + t.points[i + 1:]).seconds(b) / s - 1)
            default.append(model / s - 1)
    return {"n_fit": sum(len(t.points) for t in tables.values()), "n_holdout": len(own),
            "holdout": "leave one message size out", **error_stats(own, "holdout_"), **error_stats(default, "default_")}


def comm_doc(tables: dict[int, AllReduceTable]) -> dict:
    """The calibration's `comm` section: {allreduce_by_gpus: {GPUs: [[bytes, seconds], ...]}}."""
    return {"allreduce_by_gpus": {g: [[int(b), float(f"{s:.4g}")] for b, s in t.points]
                                  for g, t in sorted(tables.items())}}
