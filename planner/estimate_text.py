"""`estimate` as a person reads it (the CLI's text output) and the launch command added to its answer.

Times in the unit a person reads (ms below 1 s, s below 1 min, min above) with a warning past a minute; GPU memory
in GB (1e9, datasheets) and GiB (2^30, nvidia-smi and allocators) side by side; one explaining line where per-user
speed and system throughput differ oddly. `--json` keeps the SI fields (planner.serving.estimate) and only gains
`engine_flags` and, for a model read from the Hub or weights read from a checkpoint file, `scenario.model_config` /
`scenario.weights_file` (planner.model.weights_file.add_sources). Top floor: it may import sizing (the flags),
which the serving floor must not.
"""

from __future__ import annotations

from planner.base.errors import PlannerError
from planner.base.escape import terminal
from planner.base.units import MINUTE_S, count, duration, gb, gb_gib, mb, rate
from planner.deploy.scenario import Scenario
from planner.hardware.accelerators import load_accelerator
from planner.model.weights_file import add_sources
from planner.sizing.flags import scenario_flags


def with_launch(sc: Scenario, doc: dict) -> dict:
    """`estimate`'s answer `doc` for `sc` plus `engine_flags`: the launch command of one engine group in the
    scenario's engine at the running batch the estimate served (planner.sizing.flags.scenario_flags; null where the
    planner has no command builder for the engine or the engine cannot load the weights); llama.cpp's tensor
    parallelism is named in the assumptions (profiles/engines/llamacpp.yaml)."""
    add_sources(doc, sc.model, sc.weights)  # a Hub id's revision, a checkpoint file's exact bytes
    doc["engine_flags"] = scenario_flags(sc, (doc.get("serving") or {}).get("running_per_group"))
    if sc.disaggregation is not None:  # one command per pool's worker, without the engine's P/D transfer flags
        pools = (sc.disaggregation.prefill, sc.disaggregation.decode)
        cmds = [(p, scenario_flags(p.scenario, None)) for p in pools]
        doc["engine_flags"] = "; ".join(f"{p.role} worker (x{p.workers}): {cmd}" for p, cmd in cmds if cmd) or None
        doc.setdefault("assumptions", []).append(
            "launch: each pool's worker as launched alone; add the engine's disaggregation flags (SGLang "
            "--disaggregation-mode prefill|decode, vLLM --kv-transfer-config, TensorRT-LLM cache_transceiver_config)")
    if sc.engine.name == "llamacpp" and sc.parallelism.tp > 1:
        doc.setdefault("assumptions", []).append(
            f"llama.cpp with tp {sc.parallelism.tp}: --split-mode row --tensor-split (each layer's matrices split by "
            "rows across the GPUs, llama.cpp tools/server README), the only tensor parallelism llama.cpp offers; "
            "its default --split-mode layer is a pipeline (pp) with one request's layers run one GPU after another")
    return doc


def text(doc: dict) -> str:
    """The estimate as a person reads it (cli `estimate` without --json)."""
    lines: list[str] = []
    out = lines.append
    m, c = doc["memory"], doc["capacity"]
    out(f"{terminal(doc['scenario']['name'])}: {'FITS' if doc['fits'] else 'DOES NOT FIT'}"
        + (f" - {terminal(doc['reason'])}" if doc["reason"] else ""))
    out(f"  per GPU: weights {gb(m['weights_bytes_per_gpu'])}, KV cache {gb(m['kv_cache_bytes_per_gpu'])}, "
        f"activations {gb(m['activation_bytes_per_gpu'])}, runtime {gb(m['runtime_bytes_per_gpu'])}, "
        f"free {gb(m['free_bytes_per_gpu'])} of {gb(m['capacity_bytes_per_gpu'])}")
    for role, pm in (m.get("pools") or {}).items():  # a disaggregated deployment: each pool's worker
        out(f"  {role} pool: {pm['workers']} worker(s) of {pm['gpus_per_worker']} GPU(s), per GPU weights "
            f"{gb(pm['weights_bytes_per_gpu'])}, KV cache {gb(pm['kv_cache_bytes_per_gpu'])}, free "
            f"{gb(pm['free_bytes_per_gpu'])}" + ("" if pm["fits"] else f" - {terminal(pm['reason'])}"))
    capacity = _capacity_line(doc)
    if capacity:
        out(f"  {capacity}")
    if m["host_bytes"]:
        out(f"  host RAM: {gb(m['host_bytes'])}")
    per_seq = c.get("kv_bytes_per_sequence_per_gpu")  # tokens' KV + what a request holds (windows, linear state)
    out(f"  KV tokens per GPU {count(c['kv_tokens_per_gpu'])}; max concurrency at "
        f"{count(c['context_len'])} tokens: {c['max_concurrency']:.2f}"
        + (f" ({gb(per_seq) if per_seq >= 1e9 else mb(per_seq)} per request per GPU)" if per_seq else ""))
    for key, val in doc["metrics"].items():
        if val is not None:
            out(f"  {key:32s} {_metric(key, val)}")
    for line in _speed_notes(doc):
        out(f"  {line}")
    bott = doc.get("bottleneck") or {}
    if any(bott.values()):
        out("  bottleneck: " + ", ".join(f"{k} {terminal(v)}" for k, v in bott.items() if v))
    sv = doc.get("serving") or {}
    if sv.get("mode") == "waves":
        out(f"  served as {sv['waves_per_group']:.3g} wave(s) of {sv['running_per_group']:,.0f} requests per engine "
            f"group (prefill {duration(sv['wave_prefill_ms'] / 1e3)}, "
            f"whole wave {duration(sv['wave_duration_ms'] / 1e3)}"
            + (f"; {sv['output_len_dist']} output lengths" if sv.get("output_len_dist", "fixed") != "fixed" else "")
            + ")")
    elif sv.get("mode") == "steady":
        out(f"  served as a steady state of {sv['running_per_group']:,.1f} running sequences per engine group"
            + (f" (queue {duration(sv['queue_ms'] / 1e3)})" if sv.get("queue_ms") else ""))
        if sv.get("arrivals") == "poisson":
            load = sv["prefill_load"]
            out(f"  random arrivals: {sv['requests_per_s_per_group']:,.2f} requests/s per engine group use "
                f"{load:.0%} of its prefill capacity"
                + (f", mean wait for prefill {duration(sv['prefill_wait_ms'] / 1e3)}" if load < 1 else
                   ": prompts arrive faster than it prefills them, the queue grows without bound"))
    if doc.get("simulation"):
        out(f"  {terminal(doc['simulation']['summary_line'])}")
    for note in doc.get("assumptions") or ():
        out(f"  assumed: {terminal(note)}")
    if doc.get("engine_flags"):
        out(f"  launch ({terminal(doc['scenario']['engine'])}, one engine group"
            + ("" if doc["fits"] else "; it does not fit as planned") + f"): {terminal(doc['engine_flags'])}")
    elif "engine_flags" in doc:
        out(f"  launch: no command line for engine {terminal(doc['scenario']['engine'])} with these weights")
    return "\n".join(lines)


def _metric(key: str, val: float) -> str:
    """One metric in the unit a person reads: times as ms / s / min, rates as tokens/s; the JSON keeps SI fields."""
    if key.endswith("_ms"):
        return duration(val / 1e3)
    if "tokens_per_s" in key:
        return rate(val)
    return f"{val:,.4g}"


def _capacity_line(doc: dict) -> str:
    """The GPU's memory in GB (1e9, datasheets) and GiB (2^30, nvidia-smi and allocators), and why a card sold as
    "80 GB" shows 85.5 GB: memory chips come in binary sizes (80 GiB), and the profile holds the driver's total."""
    gpu, total = doc["scenario"].get("gpu"), doc["memory"].get("capacity_bytes_per_gpu")
    if not gpu or not total:
        return ""
    try:
        a = load_accelerator(gpu)
    except PlannerError:
        return f"GPU memory: {gb_gib(total)}"
    line = f"{terminal(a.display_name)}: {gb_gib(total)}"
    if a.memory_bytes_basis == "driver":
        line += " (driver total, as nvidia-smi shows it in MiB)"
        if total > a.memory_capacity_gb * 1e9 * 1.01:
            line += (f"; sold as \"{a.memory_capacity_gb:g} GB\", a size its {a.memory_type or 'memory'} chips "
                     f"count in binary units (GiB), so the driver's total is above {a.memory_capacity_gb:g}e9 bytes")
    else:
        line += " (datasheet capacity)"
    return line


def _speed_notes(doc: dict) -> list[str]:
    """Warnings and one-line explanations where the metrics read oddly: a first token or a whole request above a
    minute; per-user speed above the system's per-GPU output; a system figure that includes a long prefill."""
    mt, notes = doc["metrics"], []
    for key, what in (("ttft_ms", "first token"), ("e2e_latency_ms", "whole request")):
        if (mt.get(key) or 0) > MINUTE_S * 1e3:
            notes.append(f"WARNING: the {what} takes {duration(mt[key] / 1e3)} ({key} {mt[key]:,.0f})")
    user, system = mt.get("output_tokens_per_s_per_user"), mt.get("system_output_tokens_per_s")
    gpus = doc["scenario"].get("gpus") or 0
    ttft, e2e = mt.get("ttft_ms") or 0, mt.get("e2e_latency_ms") or 0
    if user and system and gpus and user > system / gpus:
        notes.append(f"note: per-user speed ({rate(user)}) is one request's decode rate (1 / TPOT); the system "
                     f"figure ({rate(system)}, {rate(system / gpus)} per GPU) is all output over the whole request "
                     f"time, prefill included, spread over {gpus} GPU(s) serving "
                     f"{_running(doc)} request(s) at a time per engine group")
    elif user and system and e2e and ttft > 0.25 * e2e:
        notes.append(f"note: the system figure ({rate(system)}) includes each request's {duration(ttft / 1e3)} "
                     f"prefill ({ttft / e2e:.0%} of its {duration(e2e / 1e3)}); per-user speed ({rate(user)}) "
                     "counts the decode only")
    return notes


def _running(doc: dict) -> str:
    run = (doc.get("serving") or {}).get("running_per_group")
    return f"{run:,.3g}" if run else "few"
