"""Run cases: build each layer once, check it against its reference, time it and each of its ops, and put the
planner's prediction beside every measurement (STYLE.md habit 8), storing every row as it finishes.

One row per timed thing: the whole layer (op mla_decode | mla_prefill | moe) and, with components on, each of
its stages alone (op = the planner op name(s) the stage implements). Fields: CONTRACT.md §8 plus percentiles,
weight/KV bytes apart, peak memory, achieved GB/s and FLOP/s, MBU/MFU, measured/predicted, path, reference error.
A failing case is recorded (oom | error) and the run goes on; a failing store write stops the run (StoreWriteError),
after every measurement already taken has been handed to the store, which keeps those it cannot write beside it.
"""

from __future__ import annotations

import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from kernels_bench import plan
from kernels_bench.mla import MLALayer, components, run
from kernels_bench.moe import MoEBlock
from kernels_bench.timing import Flusher, PeakMemory, Timing, measure
from planner.base.store import StoreWriteError
from planner.hardware.efficiency import Efficiency
from planner.perf.roofline import Machine

# reference tolerance per compute dtype: max |form A - form B| / max |B| (same weights, different association)
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, total: int, label: str = "", stream=None, enabled: bool = True):
        self.total, self.label, self.i, self.t0 = total, label, 0, time.time()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def step(self, what: str) -> None:
        if not self.enabled:
            return
        self.i += 1
        spent = time.time() - self.t0
        eta = spent / max(self.i - 1, 1) * (self.total - self.i + 1) if self.i > 1 else 0
        width = 24
        bar = "#" * (width * (self.i - 1) // max(self.total, 1))
        line = (f"{self.label}[{bar:<{width}}] {self.i}/{self.total} {spent:5.0f}s eta {eta:4.0f}s {what}")[:160]
        self.stream.write(("\r" + line.ljust(160)) if self.tty else line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write(("\r" if self.tty else "") + f"{self.label}{self.i} steps in "
                              f"{time.time() - self.t0:.0f}s".ljust(160 if self.tty else 0) + "\n")
            self.stream.flush()


def build_layer(case: plan.Case, device: torch.device, dtype: torch.dtype = torch.bfloat16):
    return MLALayer(case, device, dtype) if case.layer == "mla" else MoEBlock(case, device, dtype)


def _state(layer, case: plan.Case, device: torch.device, dtype: torch.dtype) -> tuple[dict, list, int]:
    """Inputs of one case: (state, stages, KV bytes allocated)."""
    gen = torch.Generator(device=device).manual_seed(zlib.crc32(case.name.encode()))
    h = plan.scenario(case).model.spec.hidden_size
    if case.layer == "mla":
        if case.phase == "decode":
            cache = layer.new_cache(case.tokens, case.context, gen)  # [B, S, c + r]
            x = torch.randn(case.tokens, h, device=device, generator=gen).to(dtype)  # [B, h]
            return layer.decode_state(x, cache), layer.decode_stages(), cache.untyped_storage().nbytes()
        cache = layer.new_cache(1, case.tokens, gen)  # [1, T, c + r]
        x = torch.randn(case.tokens, h, device=device, generator=gen).to(dtype)  # [T, h]
        return layer.prefill_state(x, cache), layer.prefill_stages(), cache.untyped_storage().nbytes()
    x = torch.randn(case.tokens, h, device=device, generator=gen).to(dtype)  # [T, h]
    return layer.state(x, gen), layer.stages(), 0


def _row(case: plan.Case, name: str, op: str, ops, t, m: Machine, alloc: dict, path: str, ref: float | None) -> dict:
    predicted, timed = plan.predict(ops, m)
    flop = sum(o.flops for o in ops)
    nbytes = sum(o.bytes for o in ops)
    med = t.median_s
    main = max(timed, key=lambda x: x.seconds) if timed else None
    acc = m.acc
    peak_dtype = max(ops, key=lambda o: o.flops).dtype if ops else "bf16"
    try:
        peak = acc.peak_flops(peak_dtype)
    except Exception:  # noqa: BLE001  (a dtype the device has no peak for)
        peak = acc.peak_flops("bf16")
    return {
        "case": name, "op": op, "status": "ok", "measured_s": med, "predicted_s": predicted, "flop": flop,
        "bytes": nbytes, **alloc, "p10_s": t.p10_s, "p90_s": t.p90_s, "samples_s": list(t.samples_s),
        "achieved_bytes_per_s": nbytes / med, "achieved_flop_per_s": flop / med,
        "mbu": nbytes / med / acc.memory_bandwidth_bytes_per_s, "mfu": flop / med / peak,
        "measured_over_predicted": med / predicted if predicted else None,
        "bound": main.bound if main else None, "path": path, "ref_error": ref, "group": case.group,
        "ops": [o.name for o in ops],
    }


@dataclass
class Unit:
    """One timed thing: a whole layer or one component of it, with its samples so far."""

    case: plan.Case
    name: str
    op: str
    ops: list  # planner op records
    fn: Callable[[], None]
    prep: Prepared
    row_id: int = 0
    samples: list = field(default_factory=list)


@dataclass
class Prepared:
    layer: object
    state: dict
    alloc: dict


def prepare(case: plan.Case, layer, device: torch.device, dtype: torch.dtype) -> tuple[Prepared, list]:
    """Inputs of one case, allocation accounting, and its timing units (layer first, then components)."""
    ops = plan.layer_ops(case)
    by_name = {o.name: o for o in ops}
    with PeakMemory(device) as pm:
        st, stages, kv_alloc = _state(layer, case, device, dtype)
        run(stages, st)
    tags = components(stages)
    covered = {n for tag in tags for n in tag}
    if covered != set(by_name):  # the planner's op list and the torch stages must describe the same layer
        raise RuntimeError(f"stages {sorted(covered)} differ from the planner's ops {sorted(by_name)}")
    w_pred, kv_pred = plan.predicted_weight_bytes(case), plan.predicted_kv_bytes(case)
    alloc = {"alloc_bytes": layer.weight_bytes() + kv_alloc, "predicted_alloc_bytes": w_pred + kv_pred,
             "weight_bytes": layer.weight_bytes(), "predicted_weight_bytes": w_pred,
             "kv_bytes": kv_alloc, "predicted_kv_bytes": kv_pred, "peak_bytes": pm.peak_bytes}
    prep = Prepared(layer, st, alloc)
    units = [Unit(case, case.name, case.op, ops, lambda: run(stages, st), prep)]
    if case.components:
        for tag in tags:
            units.append(Unit(case, f"{case.name}.{'+'.join(tag)}", "+".join(tag), [by_name[n] for n in tag],
                              lambda tag=tag: run(stages, st, only=tag), prep))
    return prep, units


def _failure(err: BaseException) -> tuple[str, str]:
    text = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
    oom = isinstance(err, MemoryError) or "out of memory" in str(err).lower() or "OutOfMemory" in type(err).__name__ \
        or "not enough memory" in str(err).lower()
    return ("oom" if oom else "error"), text


def _failed_row(case: plan.Case, status: str, text: str) -> dict:
    return {"case": case.name, "op": case.op, "status": status, "error": text, "measured_s": None,
            "predicted_s": None, "flop": None, "bytes": None, "alloc_bytes": None, "predicted_alloc_bytes": None,
            "group": case.group}


def _store_units(store, units: list[Unit], m: Machine, rows: dict) -> None:
    """Each unit's row into the store. When a write fails the store keeps the rest of the measurements beside it
    (planner/base/store.py), so every unit is still handed over before the failure goes up."""
    failed = None
    for u in units:
        try:
            rows[u.name] = _store_unit(store, u, m)
        except StoreWriteError as err:
            failed = failed or err
    if failed is not None:
        raise failed


def _store_unit(store, u: Unit, m: Machine) -> dict:
    row = _row(u.case, u.name, u.op, u.ops, Timing(tuple(u.samples)), m, u.prep.alloc, u.prep.layer.path,
               getattr(u.prep.layer, "ref_error", None))
    if u.op == "moe":
        row["experts_touched"] = u.prep.layer.touched(u.prep.state)
    store.finish_case(u.row_id, status="ok", error=None, path=row["path"], measured_s=row["measured_s"],
                      p10_s=row["p10_s"], p90_s=row["p90_s"], samples_json=row["samples_s"],
                      predicted_s=row["predicted_s"], flop=row["flop"], bytes=row["bytes"],
                      ops_json=[plan.op_record(o) for o in u.ops], alloc_bytes=row["alloc_bytes"],
                      predicted_alloc_bytes=row["predicted_alloc_bytes"], peak_bytes=row["peak_bytes"],
                      ref_error=row["ref_error"], result_json=row)
    return row


def run_cases(cases: list[plan.Case], device, acc, eff: Efficiency, store, run_id: int, timing: tuple,
              progress: Progress | None = None, dtype: torch.dtype = torch.bfloat16, builder=build_layer,
              rounds: int = 1) -> list[dict]:
    """Run every case, one store row per timed unit; a failing case becomes an oom/error row and the run goes on.

    rounds = 1: case after case (one layer in memory at a time: GPUs at full shapes). rounds > 1: every case is
    prepared first and the timed calls are dealt out in `rounds` passes over all units, so on a shared machine
    every case sees the same mix of quiet and busy periods (each pass updates the store)."""
    dev = torch.device(device.torch_device)
    m = plan.machine(acc, eff)
    flush = Flusher(dev)
    warmup, iters, budget = timing
    per_round = max(1, -(-iters // rounds))
    batches = [cases] if rounds > 1 else [[c] for c in cases]
    layers: dict = {}
    rows: dict[str, dict] = {}
    names: dict[str, list[str]] = {}  # case -> its row names in order (layer, then components)
    if progress:
        progress.total = len(cases) * rounds
    for batch in batches:
        units: list[Unit] = []
        for case in batch:
            names[case.name] = [case.name]
            params = {k: v for k, v in asdict(case).items() if k != "scale"} | {"scale": asdict(case.scale)}
            cid = store.start_case(run_id, case.name, case.op, case.group, params)
            try:
                layer = layers.get(case.build_key)
                if layer is None:
                    if rounds == 1:
                        layers.clear()
                        if dev.type == "cuda":
                            torch.cuda.empty_cache()
                    layer = builder(case, dev, dtype)
                    layer.ref_error = layer.reference_error()
                    layers[case.build_key] = layer
                    if layer.ref_error > TOLERANCE[dtype]:
                        what = "absorbed vs naive MLA" if case.layer == "mla" else "grouped vs gather-einsum MoE"
                        raise RuntimeError(f"reference check failed ({what}): relative error "
                                           f"{layer.ref_error:.3g} > {TOLERANCE[dtype]:g}")
                _, case_units = prepare(case, layer, dev, dtype)
            except (Exception, MemoryError) as err:  # noqa: BLE001  (recorded; the run goes on)
                status, text = _failure(err)
                layers.pop(case.build_key, None)
                store.finish_case(cid, status=status, error=text)
                rows[case.name] = _failed_row(case, status, text)
                continue
            case_units[0].row_id = cid
            names[case.name] = [u.name for u in case_units]
            for u in case_units[1:]:
                u.row_id = store.start_case(run_id, u.name, u.op, case.group, params)
            units += case_units
        for r in range(rounds):
            for case in batch:
                mine = [u for u in units if u.case is case]
                if not mine:
                    continue
                if progress:
                    progress.step(case.name + (f" (round {r + 1}/{rounds})" if rounds > 1 else ""))
                try:
                    for u in mine:
                        t = measure(u.fn, dev, warmup=warmup if r == 0 else 0, iters=per_round, before=flush,
                                    budget_s=budget)
                        u.samples += t.samples_s
                    _store_units(store, mine, m, rows)
                except StoreWriteError:
                    raise  # the store failed, not the case: the run stops (kernels_bench/cli.py says where)
                except (Exception, MemoryError) as err:  # noqa: BLE001
                    status, text = _failure(err)
                    for u in mine:
                        store.finish_case(u.row_id, status=status, error=text)
                        rows.pop(u.name, None)
                    rows[case.name] = _failed_row(case, status, text)
                    units = [u for u in units if u.case is not case]
    if progress:
        progress.done()
    return [rows[n] for case in cases for n in names.get(case.name, []) if n in rows]


LAYER_OPS = ("mla_decode", "mla_prefill", "moe")  # whole-layer rows; other ops are components of one
# what a row's kernel path means when its weights were dequantized to bf16 before the matmul: the device has no
# kernel for the format (fp8 on CPUs and pre-Hopper GPUs, int4 everywhere in plain torch), while the planner
# predicts the fused low-precision kernel an engine runs
EMULATED = ("emulated: {fmt} weights dequantized to bf16 before each matmul (no {fmt} kernel on this device); "
            "the prediction is the engine's fused {fmt} kernel, so measured/predicted here is not a planner error")
PARTS_SLACK = 1.10  # parts within 10% of their whole read as summing to it (timing noise on a shared CPU)


def summarize(rows: list[dict]) -> dict:
    """What a run's rows say at a glance: cases by status, the median measured/predicted per op kind (whole layers,
    bf16 apart from emulated formats), which rows are emulated, and the layers whose parts sum above their whole.

    Parts are timed alone, each after a cache flush (kernels_bench.timing.Flusher): inside the whole layer a stage
    finds its inputs (and on a CPU the dequantized weights' pages) warm, and on a GPU the launches overlap, so the
    parts may sum above the whole; `parts_over_whole` names those layers with both times."""
    layers = [r for r in rows if r["op"] in LAYER_OPS]
    status = {s: sum(r["status"] == s for r in layers) for s in ("ok", "oom", "error")}
    ok = [r for r in rows if r["status"] == "ok" and r.get("measured_over_predicted")]
    ratios: dict[str, list[float]] = {}
    for r in ok:
        if r["op"] in LAYER_OPS:
            key = r["op"] + (" (emulated)" if _emulated(r) else "")
            ratios.setdefault(key, []).append(r["measured_over_predicted"])
    parts: dict[str, float] = {}
    for r in ok:
        if r["op"] not in LAYER_OPS:
            whole = r["case"][: -len(r["op"]) - 1]
            parts[whole] = parts.get(whole, 0.0) + r["measured_s"]
    over = [{"case": r["case"], "whole_s": r["measured_s"], "parts_s": parts[r["case"]]}
            for r in ok if r["op"] in LAYER_OPS and parts.get(r["case"], 0) > PARTS_SLACK * r["measured_s"]]
    return {"cases": status,
            "median_measured_over_predicted": {k: {"median": statistics.median(v), "n": len(v)}
                                               for k, v in ratios.items()},
            "emulated": [r["case"] for r in ok if r["op"] in LAYER_OPS and _emulated(r)],
            "parts_over_whole": over}


def emulated_note(row: dict) -> str:
    """The note for a row whose weights were dequantized before the matmul ('' for a native row)."""
    if not _emulated(row):
        return ""
    fmt = next((f for f in ("fp8", "int4", "mxfp4", "nvfp4", "int8") if f in row["case"]), "low-precision")
    return EMULATED.format(fmt=fmt)


def _emulated(row: dict) -> bool:
    return "dequant" in (row.get("path") or "")
