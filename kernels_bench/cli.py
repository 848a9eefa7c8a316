"""Command line: `python -m kernels_bench {discover,ceilings,run,calibrate,comm} ... [--json]` (CONTRACT.md §1, §8).

    python -m kernels_bench discover --json
    python -m kernels_bench run --suite smoke --device cpu --json       # progress on stderr, rows in the store
    python -m kernels_bench calibrate --json                            # fits and reports; writes nothing
    python -m kernels_bench calibrate --write                           # and writes profiles/calibration/<dev>.yaml
    python -m kernels_bench comm --nproc 2 --json                       # torchrun: all_reduce, uneven all_to_all

Bad input exits 2 with one line `error: ...` on stderr, never a traceback; `--json` prints one JSON document.
SIGTERM is handled like Ctrl-C: the run is marked `interrupted` in the store, its finished cases are kept; further
SIGINT/SIGTERM while it winds down are ignored (never a traceback). A store that fails a write ends the run with
exit 2 and one line saying where the measurements it did not take were kept (planner/base/store.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading

from planner.base.errors import PlannerError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise PlannerError(message)


def _common(p: argparse.ArgumentParser, device: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--store", default=None, help="SQLite results file (default bench_results/results.sqlite)")
    if device:
        p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: a GPU when torch sees one")
        p.add_argument("--threads", type=int, default=None, help="CPU threads (default 1, see README)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m kernels_bench", description="MLA/MoE kernel runs beside the planner's predictions")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = sub.add_parser("discover", help="devices seen (NVML for GPUs, /proc and torch for the CPU)")
    d.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    c = sub.add_parser("ceilings", help="copy bandwidth and GEMM FLOP/s per dtype")
    _common(c)
    c.add_argument("--size", choices=("smoke", "full"), default="smoke")
    r = sub.add_parser("run", help="MLA/MoE layer runs with the planner's prediction beside each")
    _common(r)
    r.add_argument("--suite", default="smoke", help="smoke | full")
    r.add_argument("--cases", default=None, metavar="REGEX", help="only cases whose name matches")
    r.add_argument("--no-components", action="store_true", help="time whole layers only")
    r.add_argument("--scale", default=None, metavar="H,HEADS,E,I", help="divisors of hidden size, heads, routed "
                   "experts and expert widths for every case (CPU suites: 7,1,12,8), or none for full shapes")
    r.add_argument("--iters", type=int, default=None, help="timed iterations per case (default: per suite)")
    r.add_argument("--rounds", type=int, default=None, help="interleaved passes over all cases (default: 3 on "
                   "the CPU, 1 on GPUs)")
    k = sub.add_parser("calibrate", help="fit efficiency curves from runs; --write: into "
                       "profiles/calibration/<device>.yaml")
    _common(k)
    k.add_argument("--run", type=int, action="append", default=None, help="run id(s) to fit (default: the latest "
                   "run of the device; one is run first when the store has none)")
    k.add_argument("--suite", default="smoke", help="suite to run when the store holds no run of the device")
    k.add_argument("--name", default=None, help="calibration name (default: the device name)")
    k.add_argument("--out", default=None, metavar="DIR|FILE.yaml",
                   help="write the calibration to DIR/<name>.yaml or to FILE.yaml (estimates read only "
                        "profiles/calibration/<device>.yaml)")
    k.add_argument("--write", action="store_true",
                   help="write profiles/calibration/<name>.yaml, which every estimate for that device then reads "
                        "(without --write or --out: fit and report, write nothing)")
    k.add_argument("--folds", type=int, default=5, help="cross-validation folds over case shapes")
    k.add_argument("--include-dequant", action="store_true",
                   help="also fit runs whose weights were dequantized before the matmul (not what engines run)")
    s = sub.add_parser("import-silicon", help="fit profiles/calibration/<gpu>-<engine>.yaml from aiconfigurator-core's "
                       "silicon op tables (kernels_bench/silicon.py; the `silicon` extra)")
    s.add_argument("--system", required=True, help="aiconfigurator system: h100_sxm, h200_sxm, b200_sxm, gb200, ...")
    s.add_argument("--engine", required=True, help="sglang, vllm or trtllm")
    s.add_argument("--version", default=None, help="engine version folder: that version's tables alone, written as "
                   "<gpu>-<engine>@<version>.yaml (engine_options.kernel_tables_version picks it); default: each table "
                   "dtype from the newest version holding it, <gpu>-<engine>.yaml")
    s.add_argument("--data", default=None, help=argparse.SUPPRESS)  # a systems/data root (tests' fixtures)
    s.add_argument("--out", default=None, help="folder for the YAML (default profiles/calibration/silicon)")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    f = sub.add_parser("fit-moe-stream", help="fit an engine's fused_moe_stream (fixed latency + bytes at a share of "
                       "HBM) from aiconfigurator-core's MoE tables, with leave-one-GPU-out errors "
                       "(kernels_bench/moe_stream.py; the `silicon` extra)")
    f.add_argument("--engine", default="vllm", help="sglang, vllm or trtllm (default vllm)")
    f.add_argument("--version", default=None, help="engine version folder (default: the newest per system)")
    f.add_argument("--data", default=None, help=argparse.SUPPRESS)  # a systems/data root (tests' fixtures)
    f.add_argument("--json", action="store_true", help="one JSON document on stdout")
    v = sub.add_parser("silicon-gpu-cv", help="leave one GPU out: each GPU's held-out silicon-table rows timed with "
                       "every other GPU's calibration of the same engine (kernels_bench/silicon_gpu_cv.py; the "
                       "`silicon` extra)")
    v.add_argument("--engine", default=None, help="sglang, vllm or trtllm (default: all three)")
    v.add_argument("--calibrations", default=None, help="folder of <gpu>-<engine>.yaml (default "
                   "profiles/calibration/silicon)")
    v.add_argument("--data", default=None, help=argparse.SUPPRESS)  # a systems/data root (tests' fixtures)
    v.add_argument("--json", action="store_true", help="one JSON document on stdout (default: the Markdown table "
                   "docs/silicon.md embeds)")
    m = sub.add_parser("comm", help="torch.distributed all_reduce and uneven all_to_all_single under torchrun")
    _common(m)
    m.add_argument("--nproc", type=int, default=2, help="processes torchrun starts")
    m.add_argument("--iters", type=int, default=10)
    m.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _device(args):
    from kernels_bench.devices import select_device

    if args.threads is not None and args.threads < 1:
        raise PlannerError("--threads must be >= 1")
    return select_device(args.device, args.threads)


def cmd_discover(args) -> dict:
    from kernels_bench.devices import discover

    return discover()


def cmd_ceilings(args) -> dict:
    from kernels_bench.ceilings import measure_ceilings
    from kernels_bench.devices import versions
    from planner.base.store import Store, run_lock, store_path

    path = store_path(args.store)
    dev = _device(args)
    ceil = measure_ceilings(dev, args.size)
    with run_lock(path), Store(path) as store:
        rid = store.start_run(dev.as_json(), "ceilings", ceil, environment=versions())
        store.finish_run(rid)
    return {"device": dev.as_json(), "ceilings": ceil, "run_id": rid, "store": str(store.path)}


def run_suite(args, dev=None) -> dict:
    from dataclasses import replace

    from kernels_bench.plan import scenario
    from kernels_bench.suites import TIMING, cases_for
    from planner.base.store import Store, run_lock, store_path

    path = store_path(args.store)
    dev = dev or _device(args)
    cases = cases_for(args.suite, dev.kind)
    if getattr(args, "cases", None):
        try:
            pattern = re.compile(args.cases)
        except re.error as err:
            raise PlannerError(f"bad regular expression: {err}", field="--cases") from None
        cases = [c for c in cases if pattern.search(c.name)]
        if not cases:
            raise PlannerError(f"no {args.suite} case matches {args.cases!r}", field="--cases")
    if getattr(args, "no_components", False):
        cases = [replace(c, components=False) for c in cases]
    if getattr(args, "scale", None):
        cases = [replace(c, scale=_scale(args.scale)) for c in cases]
    for c in cases:  # bad shapes are bad input: say so before anything runs
        scenario(c)
    warmup, iters, budget = TIMING[(dev.kind, args.suite)]
    for opt in ("iters", "rounds"):
        if getattr(args, opt, None) is not None and getattr(args, opt) < 1:
            raise PlannerError(f"--{opt} must be >= 1")
    iters = getattr(args, "iters", None) or iters
    with run_lock(path), Store(path) as store:
        return _run(args, dev, cases, store, (warmup, iters, budget))


def _run(args, dev, cases: list, store, timing: tuple) -> dict:
    """One run into an open store: ceilings, then the cases; the run's final status is always attempted."""
    from kernels_bench.ceilings import measure_ceilings, summary
    from kernels_bench.devices import accelerator_for, versions
    from kernels_bench.runner import Progress, run_cases, summarize
    from kernels_bench.suites import ROUNDS
    from planner.base.store import StoreWriteError
    from planner.hardware.efficiency import efficiency_for

    rid = store.start_run(dev.as_json(), args.suite, environment=versions())
    try:
        print(f"kernels_bench: {dev.display_name} ({dev.name}, {dev.threads} threads); ceilings ...", file=sys.stderr)
        ceil = measure_ceilings(dev, args.suite)
        store.set_ceilings(rid, ceil)
        print(f"kernels_bench: {summary(ceil)}", file=sys.stderr)
        acc = accelerator_for(dev, ceil)
        eff = efficiency_for(dev.name)
        rounds = getattr(args, "rounds", None) or ROUNDS[dev.kind]
        rows = run_cases(cases, dev, acc, eff, store, rid, timing, Progress(len(cases), "kernels_bench "),
                         rounds=rounds)
    except KeyboardInterrupt as err:
        _ignore_signals()
        if not store.mark(rid, "interrupted") and store.failed:
            raise StoreWriteError(store.failure(), file=str(store.path), field="--store") from None
        how = f" by {err}" if str(err) else ""
        raise PlannerError(f"interrupted{how}; finished cases of run {rid} are kept in {store.path}") from None
    except StoreWriteError:
        store.mark(rid, "failed")  # may not get in either; the line says where the measurements are
        raise StoreWriteError(store.failure(), file=str(store.path), field="--store") from None
    store.finish_run(rid)
    return {"device": dev.as_json(), "run_id": rid, "store": str(store.path), "suite": args.suite,
            "efficiency": list(eff.files), "ceilings": ceil, "runs": rows, "summary": summarize(rows)}


def _scale(text: str):
    from kernels_bench.plan import Scale

    if text == "none":
        return Scale()
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or min(parts) < 1:
        raise PlannerError(f"expected four positive integers H,HEADS,E,I or none, got {text!r}", field="--scale")
    return Scale(*parts)


def cmd_calibrate(args) -> dict:
    from kernels_bench.calibrate import calibrate

    return calibrate(args, _device(args), run_suite)


def cmd_fit_moe_stream(args) -> dict:
    from kernels_bench.moe_stream import fit_moe_stream

    return fit_moe_stream(args)


def cmd_import_silicon(args) -> dict:
    from kernels_bench.silicon import import_silicon

    return import_silicon(args)


def cmd_silicon_gpu_cv(args) -> dict:
    from kernels_bench.silicon_gpu_cv import gpu_cv

    return gpu_cv(args)


def cmd_comm(args) -> dict:
    from kernels_bench.comm import comm_command

    return comm_command(args)


def _text(cmd: str, doc: dict) -> str:
    if cmd == "run":
        lines = [f"{doc['device']['display_name']} ({doc['device']['name']}): run {doc['run_id']} in {doc['store']}",
                 f"{'case':58} {'status':6} {'measured':>10} {'predicted':>10} {'meas/pred':>9} {'GB/s':>7} "
                 f"{'GFLOP/s':>8} {'alloc=pred':>10}"]
        from kernels_bench.runner import emulated_note

        for r in doc["runs"]:
            if r["status"] != "ok":
                lines.append(f"{r['case'][:58]:58} {r['status']:6} {r['error']}")
                continue
            same = "yes" if r["alloc_bytes"] == r["predicted_alloc_bytes"] else "NO"
            lines.append(f"{r['case'][:58]:58} ok     {r['measured_s'] * 1e3:8.3f}ms {r['predicted_s'] * 1e3:8.3f}ms "
                         f"{r['measured_over_predicted']:9.2f} {r['achieved_bytes_per_s'] / 1e9:7.1f} "
                         f"{r['achieved_flop_per_s'] / 1e9:8.1f} {same:>10}" + (" *" if emulated_note(r) else ""))
        return "\n".join(lines + _run_summary(doc))
    if cmd == "calibrate":
        fit = (f"from {doc['n_fit']} runs; held-out error over {doc['n_holdout']} runs: median "
               f"{doc['holdout_median_abs_error']:.1%}, p90 {doc['holdout_p90_abs_error']:.1%}")
        if doc.get("written", True):
            return f"{doc['device']}: wrote {doc['file']} {fit}"
        return (f"{doc['device']}: fitted {fit}\nnot written: add --write to write {doc['file']} (every estimate "
                f"for {doc['device']} then reads it) or --out DIR|FILE.yaml to write it elsewhere")
    if cmd == "fit-moe-stream":
        from kernels_bench.moe_stream import text

        return text(doc)
    if cmd == "silicon-gpu-cv":
        from kernels_bench.silicon_gpu_cv import markdown

        return markdown(doc)
    return json.dumps(doc, indent=2)


def _run_summary(doc: dict) -> list[str]:
    """The lines under a run's table: cases by status, median measured/predicted per op kind, what the * rows are,
    and the layers whose parts sum above their whole (kernels_bench.runner.summarize)."""
    from kernels_bench.runner import emulated_note

    sm = doc.get("summary") or {}
    if not sm:
        return []
    c = sm["cases"]
    ratios = ", ".join(f"{k} {v['median']:.2f} ({v['n']})" for k, v in sm["median_measured_over_predicted"].items())
    lines = [f"summary: {sum(c.values())} cases: {c['ok']} ok, {c['oom']} oom, {c['error']} error; median "
             f"measured/predicted of whole layers (cases): {ratios or 'none'}"]
    notes = sorted({emulated_note(r) for r in doc["runs"] if r["status"] == "ok" and emulated_note(r)})
    lines += [f"* {n}" for n in notes]
    for p in sm["parts_over_whole"]:
        lines.append(f"parts above their whole: {p['case']} {p['whole_s'] * 1e3:.3f} ms whole, its parts "
                     f"{p['parts_s'] * 1e3:.3f} ms: each part is timed alone after a cache flush, inside the layer "
                     "its inputs are warm (and GPU launches overlap), so parts need not sum to the whole")
    return lines


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; `kill` or a job scheduler: the run is marked interrupted
_stopping = threading.Event()


def _stop(signum, frame):
    """The first SIGINT/SIGTERM stops the command; later ones (a key held down, a scheduler's repeats) are ignored
    while it records the interruption and prints its one line."""
    if _stopping.is_set():
        return
    _stopping.set()
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _ignore_signals() -> None:
    _stopping.set()


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """The command line. `exiting` (python -m kernels_bench): stop signals stay ignored after the command, until
    the interpreter exits; otherwise (tests, callers) the previous handlers come back."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        _stopping.clear()
        previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        return _main(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if exiting else handler)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        doc = {"discover": cmd_discover, "ceilings": cmd_ceilings, "run": run_suite, "calibrate": cmd_calibrate,
               "comm": cmd_comm, "import-silicon": cmd_import_silicon,
               "fit-moe-stream": cmd_fit_moe_stream, "silicon-gpu-cv": cmd_silicon_gpu_cv}[args.command](args)
    except PlannerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001  (files, torch, sqlite: still one line; KB_DEBUG=1 shows the traceback)
        if os.environ.get("KB_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 2
    if doc is None:  # a torchrun worker already wrote its result
        return 0
    print(json.dumps(doc) if args.json else _text(args.command, doc))
    return 0
