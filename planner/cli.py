"""Command line: `python -m planner {inspect,estimate,validate,size,report,list} ... [--json]` (CONTRACT.md §1).

Each command imports its own modules when it runs, so `estimate` does not pay for pandas and plotly.

Bad input exits 2 with one line `error: <file>: <field>: <what>` on stderr, never a traceback. The human-readable
printers show names from input files through planner.base.escape.terminal: a control character (ESC, BEL, ...) is
printed as its escape (`\\x1b`), never sent to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from planner.base.errors import PlannerError
from planner.base.escape import terminal, terminal_lines
from planner.base.units import count, gb


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise PlannerError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m planner", description="Capacity planner for MoE LLMs")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    i = sub.add_parser("inspect", help="parameter and byte accounting of one model")
    i.add_argument("model", help="profile name, config.json, or a folder holding config.json")
    i.add_argument("--weights", help="weight format (default: the checkpoint's native format)")
    i.add_argument("--kv-cache", default="bf16", help="KV cache dtype: bf16 | fp16 | fp8 | fp8_ds_mla")
    i.add_argument("--json", action="store_true", help="print one JSON document")
    e = sub.add_parser("estimate", help="memory fit, capacity and performance of one scenario")
    e.add_argument("scenario", help="scenario YAML (CONTRACT.md §2)")
    e.add_argument("--json", action="store_true", help="print one JSON document")
    e.add_argument("--kernel-tables", choices=("default", "silicon"), default=None,
                   help="default: the default kernel table alone; silicon: the engine's kernel tables measured on "
                        "this GPU (the default wherever they were imported; engine_options.kernel_tables, "
                        "docs/silicon.md)")
    v = sub.add_parser("validate", help="estimate every case of a file and compare with the measured values")
    v.add_argument("cases", help="YAML with `cases:` (scenarios with `measured:`), "
                                 "e.g. ../shared/validation/public_cases.yaml")
    v.add_argument("--json", action="store_true", help="print one JSON document")
    v.add_argument("--markdown", metavar="FILE", help="also write the per-case table as Markdown to FILE (without "
                   "--kernel-tables: and a section of the cases the silicon kernel tables change, on the default "
                   "table alone)")
    v.add_argument("--kernel-tables", choices=("default", "silicon"), default=None,
                   help="default: every case on the default kernel table alone; silicon: every aggregated case whose "
                        "GPU and engine have imported silicon kernel tables on them, which is also the default "
                        "(engine_options.kernel_tables)")
    r = sub.add_parser("report", help="YAML-driven report: DIR/index.html, DIR/report.md, DIR/*.csv")
    r.add_argument("report", help="report YAML (profiles/reports/), e.g. profiles/reports/kimi-k2.5.yaml")
    r.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: new, empty or made by the planner (then replaced atomically)")
    r.add_argument("--no-png", action="store_true", help="skip the PNG export (report.md then has no figures)")
    r.add_argument("--json", action="store_true", help="print the build summary as one JSON document")
    z = sub.add_parser("size", help="pre-purchase sizing: cheapest plans that meet a workload, with cost and flags")
    z.add_argument("workload", help="workload YAML (CONTRACT.md §7), e.g. profiles/workloads/kimi-k2.5-chat.yaml")
    z.add_argument("--json", action="store_true", help="print one JSON document")
    z.add_argument("--kernel-tables", choices=("default", "silicon"), default=None,
                   help="default: every plan on the default kernel table alone; silicon: every plan on a GPU and "
                        "engine with imported silicon kernel tables on them, which is also the default (overrides "
                        "the workload's kernel_tables)")
    z.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="stop searching after S seconds and answer with what was found, saying what was left out "
                        "(default 15; 0 = no limit)")
    ls = sub.add_parser("list", help="the profiles the planner knows, one line each: models, gpus, hosts, ...")
    ls.add_argument("kind", nargs="?", help="models | gpus | hosts | formats | engines | workloads | datasets | "
                                            "systems (default: all)")
    ls.add_argument("--json", action="store_true", help="print one JSON document")
    c = sub.add_parser("compare", help="a benchmark result file (vLLM, SGLang, aiperf, llama-bench) beside the "
                                       "planner's prediction for the same workload")
    c.add_argument("result", help="result file; the tool is recognised by content")
    for flag, kind, what in (("--scenario", str, "scenario YAML giving hardware, plan, engine, weights, model"),
                             ("--gpu", str, "accelerator profile"), ("--gpus", int, "GPUs per node"),
                             ("--host", str, "host profile (CPU-only or offload runs)"), ("--engine", str, "engine"),
                             ("--model", str, "model (default: the file's)"), ("--weights", str, "weight format"),
                             ("--tp", int, "tensor parallel"), ("--ep", int, "expert parallel")):
        c.add_argument(flag, type=kind, help=what)
    c.add_argument("--store", default=None, help="SQLite results file the comparison is kept in (default "
                                                 "bench_results/results.sqlite; the dashboard's Validation page)")
    c.add_argument("--no-store", action="store_true", help="do not keep the comparison in the result store")
    c.add_argument("--calibrate", metavar="NAME", help="write measured/predicted per metric as the correction NAME "
                                                       "(profiles/calibration/user/NAME.yaml), applied only to "
                                                       "scenarios with `correction: NAME`")
    c.add_argument("--json", action="store_true", help="print one JSON document")
    s = sub.add_parser("silicon", help="estimate aiconfigurator-core's silicon serving runs (silicon_sample.csv) "
                                       "and report TTFT/TPOT error by model, GPU, engine and concurrency")
    s.add_argument("csv", nargs="?", help="the CSV (default: the installed aiconfigurator-core's)")
    s.add_argument("--sample", type=int, help="evaluate every Nth mapped row")
    s.add_argument("--jobs", type=int, help="processes to estimate in (default: every CPU)")
    s.add_argument("--kernel-tables", choices=("default", "silicon"), default=None,
                   help="default: every row on the default kernel table alone; silicon: every aggregated row whose GPU "
                        "and engine have imported silicon kernel tables on them, which is also the default "
                        "(engine_options.kernel_tables)")
    s.add_argument("--markdown", metavar="FILE", help="also write the per-group tables as Markdown to FILE")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def cmd_compare(args: argparse.Namespace) -> dict:
    from planner.base.store import store_path
    from planner.compare.keep import calibrate, keep
    from planner.compare.run import Deployment, compare
    from planner.deploy.correction import correction_path

    store = None if args.no_store else store_path(args.store)  # names checked before the work
    if args.calibrate is not None:
        correction_path(args.calibrate, args.result, "--calibrate")
    doc = compare(args.result, Deployment(scenario=args.scenario, model=args.model, weights=args.weights,
                                          engine=args.engine, gpu=args.gpu, gpus=args.gpus, host=args.host,
                                          tp=args.tp, ep=args.ep, calibrate=args.calibrate))
    if args.calibrate is not None:
        doc["calibration"] = calibrate(args.calibrate, doc)
    if store is not None:
        doc["stored"] = keep(doc, store)
    return doc


def print_compare(doc: dict) -> None:
    from planner.compare.keep import lines
    from planner.compare.run import table

    print("\n".join([table(doc), *lines(doc)]))


def cmd_inspect(args: argparse.Namespace) -> dict:
    from planner.model.inspect import inspect_model
    from planner.model.models import load_model
    from planner.model.quant import load_format

    if args.model.endswith(".gguf"):  # a GGUF file or split part: exact bytes from its header
        from planner.model.gguf_file import inspect_gguf

        return inspect_gguf(args.model)
    weights = _safetensors_files(args.model)
    if weights == "only":
        from planner.model.safetensors_file import inspect_safetensors

        return inspect_safetensors(args.model)
    model = load_model(args.model)
    fmt = load_format(args.weights or model.native_weights)
    doc = inspect_model(model, fmt, args.kv_cache)
    if weights == "beside":  # a downloaded model folder: the checkpoint's exact bytes beside the config's accounting
        from planner.model.safetensors_file import inspect_safetensors

        doc["checkpoint"] = inspect_safetensors(args.model)
    return doc


def _safetensors_files(path: str) -> str:
    """"only" for a .safetensors file, an index, or a folder of them without config.json; "beside" for a folder
    holding both; "" otherwise."""
    if path.endswith((".safetensors", ".safetensors.index.json")):
        return "only"
    try:
        names = os.listdir(path) if os.path.isdir(path) else []
    except (OSError, ValueError):
        names = []
    if not any(n.endswith(".safetensors") for n in names):
        return ""
    return "beside" if "config.json" in names else "only"


def cmd_estimate(args: argparse.Namespace) -> dict:
    from planner.deploy.scenario_file import load_scenario
    from planner.estimate_text import with_launch
    from planner.perf.steps import with_kernel_tables
    from planner.serving.estimate import estimate

    sc = with_kernel_tables(load_scenario(args.scenario), args.kernel_tables)
    return with_launch(sc, estimate(sc))


def cmd_validate(args: argparse.Namespace) -> dict:
    """Validate the cases; with --markdown also write the table (planner.base.outputs.write_file: never through a
    link, never over a folder, a device, the cases file or a file that `validate --markdown` did not write)."""
    from planner.base.outputs import write_file
    from planner.serving.validate import is_markdown, markdown, validate

    if args.markdown:  # refuse a bad output place before the (long) run
        _check_markdown_place(args)
    report = validate(args.cases, args.kernel_tables)
    if args.markdown:
        # the default run's page also shows the cases the silicon tables change on the default table alone
        other = validate(args.cases, "default") if args.kernel_tables is None else None
        write_file(args.markdown, markdown(report, args.cases, args.kernel_tables, other), field="--markdown",
                   inputs=[args.cases], ours=is_markdown)
    return report


def _check_markdown_place(args: argparse.Namespace) -> None:
    from planner.base.outputs import file_refusal, target
    from planner.serving.validate import is_markdown

    why = file_refusal(target(args.markdown), [args.cases], is_markdown)
    if why:
        raise PlannerError(why, file=args.markdown, field="--markdown")


def cmd_silicon(args: argparse.Namespace) -> dict:
    """Silicon validation (planner.serving.silicon); --markdown written as `validate --markdown` writes."""
    from planner.base.outputs import file_refusal, target, write_file
    from planner.serving.silicon import default_csv, run
    from planner.serving.silicon_report import is_markdown, markdown

    path = args.csv or default_csv()
    if args.markdown and (why := file_refusal(target(args.markdown), [path], is_markdown)):
        raise PlannerError(why, file=args.markdown, field="--markdown")
    doc = run(path, sample=args.sample, jobs=args.jobs, kernel_tables=args.kernel_tables)
    if args.markdown:
        tables = "" if args.kernel_tables is None else f" --kernel-tables {args.kernel_tables}"
        cmd = f"python -m planner silicon{'' if args.csv is None else ' ' + path}{tables} --markdown {args.markdown}"
        write_file(args.markdown, markdown(doc, cmd), field="--markdown", inputs=[path], ours=is_markdown)
    return doc


def print_silicon(doc: dict) -> None:
    from planner.serving.silicon_report import table

    print(table(doc))


def cmd_report(args: argparse.Namespace) -> dict:
    from planner.report.build import build_report

    return build_report(args.report, args.out, png=not args.no_png)


def print_report(doc: dict) -> None:
    from planner.report.build import summary_text

    print(summary_text(doc))


def cmd_size(args: argparse.Namespace) -> dict:
    from planner.sizing.search import DEFAULT_BUDGET_S, size
    from planner.sizing.workload import load_workload

    budget = DEFAULT_BUDGET_S if args.time_budget is None else args.time_budget
    if budget < 0 or budget != budget or budget == float("inf"):
        raise PlannerError(f"expected a number of seconds >= 0, got {args.time_budget}", field="--time-budget")
    wl = load_workload(args.workload)
    if args.kernel_tables:
        wl = replace(wl, kernel_tables=args.kernel_tables)
    return size(wl, budget_s=budget or None, progress=_progress_line if sys.stderr.isatty() else None)


def _progress_line(done: int, total: int) -> None:
    """`size` progress on a terminal: one line, rewritten in place (stderr; --json keeps stdout one document)."""
    sys.stderr.write(f"\rsearching: {done:,} of {total:,} candidate groups" + ("\n" if done + 1 >= total else ""))
    sys.stderr.flush()


def cmd_list(args: argparse.Namespace) -> dict:
    from planner.catalog import catalog

    return catalog(args.kind)


def print_list(doc: dict) -> None:
    from planner.catalog import table

    print(table(doc))


def print_size(doc: dict) -> None:
    from planner.sizing.answer import table

    print(terminal_lines(table(doc)))  # names from the workload file: no control character reaches the terminal


def print_validate(doc: dict) -> None:
    from planner.serving.validate import table

    print(table(doc))


def print_inspect(doc: dict) -> None:
    from planner.model.safetensors_file import table as files_table

    if "files" in doc:  # a GGUF or safetensors header inspection
        print(files_table(doc))
        return
    p = doc["params"]
    print(f"{terminal(doc['model'])}  ({terminal(doc['architecture'])}, {terminal(doc['source'][:100])})")
    print(f"  parameters      total {count(p['total'])}   active/token {count(p['active_per_token'])}"
          f"   mtp {count(p['mtp'])}   vision {count(p['vision'])}")
    for comp, n in p["by_component"].items():
        print(f"    {comp:16s} {count(n):>20s}")
    print(f"  weights ({terminal(doc['weights'])})  {count(doc['weights_bytes'])} B = {gb(doc['weights_bytes'], 2)}")
    for part, b in doc["weights_bytes_by_part"].items():
        print(f"    {part:16s} {count(b):>20s} B")
    for name, row in doc["storage_types"].items():
        print(f"    as {name:13s} {count(row['params']):>20s} params {gb(row['bytes'], 2):>12s}")
    kv = doc["kv_cache_bytes_per_token"]
    mha = doc["kv_cache_mha_equivalent_bytes_per_token"]
    kinds = doc.get("kv_cache_bytes_per_token_per_layer_by_kind")  # Gemma 4: each attention kind its own
    per_layer = f"{count(kinds['full'])} B per full layer, {count(kinds['sliding'])} B per sliding layer, " \
        f"{count(doc['kv_cache_sliding_window'])}-token window" if kinds else \
        f"{count(doc['kv_cache_bytes_per_token_per_layer'])} B per layer"
    if doc.get("kv_cache_indexed_layers"):  # MiniMax-M3: an index key beside K and V on its block-sparse layers
        per_layer += f" + {count(doc['kv_cache_indexer_bytes_per_token_per_layer'])} B index key on " \
            f"{doc['kv_cache_indexed_layers']} layers"
    if doc.get("kv_cache_compressed"):  # DeepSeek-V4: compressed layers, and the windows held per request
        per_layer = ", ".join(f"{k['layers']} layers x {k['bytes_per_entry']} B per {k['tokens_per_entry']} tokens"
                              for k in doc["kv_cache_compressed"]) \
            + f"; + {count(doc['state_bytes_per_request'])} B per request: windows and compressor state"
    print(f"  KV cache ({terminal(doc['kv_cache'])})  {count(kv)} B/token ({per_layer}); "
          f"MHA-equivalent {count(mha)} B/token ({mha / kv:.1f}x)")
    kinds, fixed = doc.get("kv_cache_by_layer_kind") or [], doc.get("kv_cache_bytes_per_request_fixed") or 0
    if len(kinds) > 1 or fixed:  # hybrid: what grows with the context and what each request holds apart
        num = lambda v: count(v) if float(v).is_integer() else f"{v:,.2f}"  # noqa: E731  (V4: 4.5625 B per token)
        print(f"    one request of L tokens: {num(doc['kv_cache_bytes_per_token_past_window'])} B x L "
              f"+ {count(fixed)} B (past the windows)")
        for k in kinds:
            print(f"    {k['layers']:>4} {k['attention_kind']:12s} {num(k['bytes_per_token_per_layer']):>8s} B/token "
                  f"{count(k['bytes_per_request_per_layer']):>12s} B/request per layer: {k['cached']}")
    if doc.get("checkpoint"):
        print(files_table(doc["checkpoint"]))


def print_estimate(doc: dict) -> None:
    from planner.estimate_text import text

    print(text(doc))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        doc = {"inspect": cmd_inspect, "estimate": cmd_estimate, "validate": cmd_validate,
               "report": cmd_report, "size": cmd_size, "list": cmd_list,
               "compare": cmd_compare, "silicon": cmd_silicon}[args.command](args)
        if args.json:
            json.dump(doc, sys.stdout, indent=2, allow_nan=False)
            sys.stdout.write("\n")
        else:
            {"inspect": print_inspect, "estimate": print_estimate, "validate": print_validate,
             "report": print_report, "size": print_size, "list": print_list,
             "compare": print_compare, "silicon": print_silicon}[args.command](doc)
        return 0
    except PlannerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `| head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  the CLI never shows a traceback; name the failure in one line
        print(f"error: internal {type(err).__name__}: {err}"[:500].replace("\n", " "), file=sys.stderr)
        return 3
