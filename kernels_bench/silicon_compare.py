"""The imported silicon tables beside local kernels_bench runs, for the same shapes (issue 19, item 4).

For every case of kernels_bench's GPU suite (full-size Kimi K2.5 MLA decode / prefill and routed-expert layers, one
GPU: kernels_bench.suites.cuda_cases) this lists one layer's time as the planner gives it on
- the default table (profiles/calibration/default.yaml under the GPU's committed overlay) and
- the engine's imported silicon calibration for that GPU (profiles/calibration/silicon/<gpu>-<engine>.yaml: the
  engine's kernels as aiconfigurator-core measured them, fitted by `kernels_bench import-silicon`),
each as `estimate` runs that engine on that GPU (planner.perf.steps.machine of the case's one-GPU scenario with
engine_options.kernel_tables default / silicon: the engine's own TP fused-MoE curves, W4A16 experts on the int4 curve,
the kernel-variant surfaces), and, where the results store holds a finished local run of that case on that GPU
(`kernels_bench run --device cuda`), the time it measured and the prediction stored with it (kernels_bench's own,
on the GPU's default table). The op records are kernels_bench.plan's (the planner's own), timed by
planner.perf.roofline.time_op. Torch-free, so the dashboard's server process can call it.
"""

from __future__ import annotations

from functools import lru_cache

from kernels_bench import plan, suites
from planner.base.errors import PlannerError
from planner.deploy.scenario import make_scenario
from planner.perf.roofline import Machine
from planner.perf.steps import machine, silicon_tables


def calibrations() -> list[tuple[str, str]]:
    """(gpu, engine) of every committed default silicon import (planner.perf.steps.silicon_tables), sorted."""
    return [tuple(stem.rpartition("-")[::2]) for stem in silicon_tables()]


def side_by_side(gpu: str, engine: str, local: list[dict] = ()) -> list[dict]:
    """One row per GPU-suite case: case, op, default_ms, silicon_ms, silicon_over_default, and from the newest
    finished ok local run of the case on `gpu` (rows of planner.base.store.finished_cases: run, device, case, status,
    measured_s, predicted_s): local_run, local_ms, local_predicted_ms, local_over_silicon (None without one)."""
    measured: dict[str, dict] = {}
    for row in local:
        if row.get("device") == gpu and row.get("status") == "ok" and (row.get("measured_s") or 0) > 0:
            if row["case"] not in measured or row["run"] > measured[row["case"]]["run"]:
                measured[row["case"]] = row
    out = []
    for case in suites.cuda_cases("full"):
        ops = plan.layer_ops(case)
        got = measured.get(case.name)
        row = {"case": case.name, "op": case.op, "default_ms": None, "silicon_ms": None, "silicon_over_default": None,
               "local_run": got["run"] if got else None, "local_ms": got["measured_s"] * 1e3 if got else None,
               "local_predicted_ms": got["predicted_s"] * 1e3 if got and got.get("predicted_s") else None,
               "local_over_silicon": None, "note": ""}
        try:
            t_default, _ = plan.predict(ops, _machine(case, gpu, engine, "default"))
            t_silicon, _ = plan.predict(ops, _machine(case, gpu, engine, "silicon"))
        except PlannerError as err:  # the engine does not run this format (the scenario's check says why)
            row["note"] = err.message
            out.append(row)
            continue
        row |= {"default_ms": t_default * 1e3, "silicon_ms": t_silicon * 1e3,
                "silicon_over_default": t_silicon / t_default if t_default > 0 else None,
                "local_over_silicon": got["measured_s"] / t_silicon if got and t_silicon > 0 else None}
        out.append(row)
    return out


@lru_cache(maxsize=256)
def _machine(case: plan.Case, gpu: str, engine: str, tables: str) -> Machine:
    """The roofline machine `estimate` times this case's GPU with, for `engine` on `tables` (default | silicon)."""
    par, gpus = ({"tp": case.tp}, case.tp) if case.layer == "mla" else (
        {"tp": 1, "dp_attention": case.ep, "ep": case.ep}, case.ep)
    sc = make_scenario(case.model, weights=case.weights, kv_cache=case.kv_cache, gpu=gpu, gpus_per_node=gpus,
                       parallelism=par, engine=engine, engine_options={"kernel_tables": tables},
                       name=case.name, file=f"kernels_bench case {case.name}")
    return machine(sc)
