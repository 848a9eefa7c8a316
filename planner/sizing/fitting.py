"""Memory fit of sizing candidates: each candidate's scenario (make_scenario), the scalar memory model
once per distinct plan, and the two searches memory asks for:
- the KV dtypes of one plan, smallest first: once one does not fit, the larger ones do not either;
- hosts that differ only in RAM size: with GPUs, the fewest MoE layers in host RAM that let the GPUs hold the
  rest (llama.cpp --n-cpu-moe), then the smallest RAM that holds what is left; CPU only, the smallest RAM.
Rejected candidates are counted in a planner.sizing.rejections.Rejections.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from planner.base.errors import PlannerError
from planner.deploy.memory import MemoryReport, memory_report
from planner.deploy.scenario import Scenario
from planner.model.kv import kv_layout
from planner.model.models import load_model
from planner.sizing.candidates import Candidate
from planner.sizing.rejections import Rejections
from planner.sizing.workload import SizingWorkload


def build(cand: Candidate, wl: SizingWorkload, replicas: int = 1, concurrency: float | None = None) -> Scenario:
    """The candidate's scenario (make_scenario checks the plan)."""
    return cand.scenario(wl, replicas, concurrency)


def _where(cand: Candidate) -> str:
    return f"{cand.hw.label()}, {cand.weights}, {cand.engine}"


def _fit(cand: Candidate, wl: SizingWorkload, rej: Rejections) -> tuple[Scenario, MemoryReport] | None:
    try:
        sc = build(cand, wl)
    except PlannerError as err:
        rej.plan(_where(cand), f"{err.field + ': ' if err.field else ''}{err.message}")
        return None
    return sc, memory_report(sc)


def memory_groups(pool: list) -> list[tuple[str, list]]:
    """Candidates that share a memory search: the KV dtypes of one plan ("kv", smallest KV first: once one does not
    fit, the larger ones do not either), or the RAM sizes of one host ("host", smallest first)."""
    by_host: dict[Candidate, list] = defaultdict(list)
    by_kv: dict[Candidate, list] = defaultdict(list)
    for cand, cost in pool:
        if cand.hw.host is not None:
            by_host[replace(cand, hw=replace(cand.hw, host=None))].append((cand, cost))
        else:
            by_kv[replace(cand, kv_cache="")].append((cand, cost))
    for items in by_kv.values():
        spec = load_model(items[0][0].model).spec
        items.sort(key=lambda item: kv_layout(spec, item[0].kv_cache).bytes_per_token_full)
    for items in by_host.values():
        items.sort(key=lambda item: item[0].hw.host.memory_bytes)
    return [("kv", items) for items in by_kv.values()] + [("host", items) for items in by_host.values()]


def fit_group(kind: str, items: list, wl: SizingWorkload, rej: Rejections):
    """Yield (candidate, cost, scenario, memory) for every candidate of one group that fits; count the others."""
    if kind == "host":
        yield from _smallest_host(items, wl, rej)
        return
    failed = ""
    for cand, cost in items:
        if failed:
            rej.memory(_where(cand), failed)
            continue
        fitted = _fit(cand, wl, rej)
        if fitted and fitted[1].fits:
            yield cand, cost, *fitted
        elif fitted:
            failed = fitted[1].reason
            rej.memory(_where(cand), failed)


def _smallest_host(items: list, wl: SizingWorkload, rej: Rejections):
    """Hosts differing only in RAM size. With GPUs: the fewest MoE layers in host RAM that let the GPUs hold the
    rest, then the smallest RAM that holds what is left (the GPU-side report is the same for every RAM size that
    holds it). CPU only: the smallest RAM that holds weights, KV cache and activations. More RAM buys no speed."""
    cand0 = items[-1][0]
    if cand0.hw.gpu is None:
        chosen = None
        for cand, cost in items:
            fitted = _fit(cand, wl, rej)
            if fitted and fitted[1].fits:
                chosen = (cand, cost, *fitted)
                break
            if fitted:
                rej.memory(_where(cand), fitted[1].reason)
    else:
        got = _fewest_offloaded(cand0, wl, rej)
        if got is None:
            for cand, _ in items[:-1]:  # the largest was counted by _fewest_offloaded
                rej.memory(_where(cand), "the GPUs cannot hold the non-expert weights and the KV cache")
            return
        layers, sc0, mem = got
        chosen = None
        for cand, cost in items:
            ram = cand.hw.host.memory_bytes
            if mem.host_bytes <= ram:
                cand = replace(cand, offload_layers=layers)
                chosen = (cand, cost, replace(sc0, host=cand.hw.host, name=cand.name), mem)
                break
            rej.memory(_where(cand), f"offloaded weights need {mem.host_bytes / 1e9:,.1f} GB of host RAM, the host "
                                     f"has {ram / 1e9:,.1f} GB")
    if chosen is None:
        return
    yield chosen
    ram = chosen[0].hw.host.memory_bytes
    for bigger, _ in items:
        if bigger.hw.host.memory_bytes > ram:
            rej.add(f"{_where(bigger).split(' + ')[0]}: host RAM above {ram / 1e9:,.0f} GB buys no speed",
                    "dominated")


def _fewest_offloaded(cand: Candidate, wl: SizingWorkload, rej: Rejections):
    """(layers, scenario, memory) with the fewest MoE layers' experts in host RAM that fit the GPUs, or None.
    Starts from a linear estimate between all-on-GPU and all-offloaded, then steps to the boundary."""
    n_moe = load_model(cand.model).spec.num_moe_layers
    cache: dict[int, tuple | None] = {}

    def fit(n: int):
        if n not in cache:
            cache[n] = _fit(replace(cand, offload_layers=n), wl, rej)
        return cache[n]

    top = fit(n_moe)
    if top is None or not top[1].fits:
        if top is not None:
            rej.memory(_where(cand), top[1].reason)
        return None
    if n_moe == 0:
        return 0, *top
    bottom = fit(0)
    if bottom is not None and bottom[1].fits:
        return 0, *bottom
    # GPU bytes fall about linearly with offloaded layers: start where the GPU's headroom runs out
    spare = top[1].capacity_bytes - top[1].weights_bytes_per_gpu - top[1].kv_cache_bytes_per_gpu \
        - top[1].activation_bytes_per_gpu - top[1].runtime_bytes_per_gpu
    per_layer = max(1.0, (bottom[1].weights_bytes_per_gpu - top[1].weights_bytes_per_gpu) / n_moe) if bottom else 1.0
    n = min(n_moe, max(1, n_moe - int(spare / per_layer)))
    while n < n_moe and not (fit(n) and fit(n)[1].fits):
        n += 1
    while n > 1 and fit(n - 1) and fit(n - 1)[1].fits:
        n -= 1
    return n, *fit(n)
