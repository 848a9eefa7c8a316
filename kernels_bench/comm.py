"""torch.distributed collectives under torchrun, beside the planner's link model (planner.perf.roofline.comm_time).

    python -m kernels_bench comm --nproc 2 --json     # starts torchrun itself: gloo on the CPU, NCCL on GPUs
    torchrun --nnodes N --nproc-per-node G --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
        -m kernels_bench comm --worker OUT.json       # multi-node: the same worker under torchrun's rendezvous

Message sizes are the planner's, from the op records of Kimi K2.5 (scaled as the CPU suites) on a TP/EP group of
the world size, at several token counts per GPU:
- all_reduce of comm.attn_allreduce bytes (the TP group's hidden states, bf16);
- MoE dispatch + combine (comm.ep_dispatch_combine): all_to_all_single with uneven splits drawn from random top-k
  routing: a token goes once to each other rank holding one of its experts, h bytes (fp8) out and 2h bytes (bf16)
  back, as planner.perf.ops.ep_bytes_per_token counts them (3h per copy).
Each iteration's time is the slowest rank's; rank 0 writes the samples, the launcher stores them (suite "comm").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from kernels_bench import plan
from kernels_bench.suites import CPU_SCALE
from planner.base.errors import PlannerError
from planner.perf.roofline import comm_time

TOKENS = (1, 16, 128, 1024)  # tokens per GPU
# Most ranks `comm --nproc` starts on one machine. GPUs: one rank per GPU torch sees (NCCL cannot put two ranks of
# one communicator on a GPU). CPU (gloo): each rank is a python with torch (~200 MB) timing the same collectives;
# above the core count ranks time-share cores and time each other, and 8 is one 8-GPU node's TP/EP group, the
# largest world the planner's intra-node link model describes. Multi-node worlds run under torchrun (see above).
MAX_CPU_NPROC = 8


def max_nproc(dev) -> int:
    if dev.kind == "cuda":
        return torch.cuda.device_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, min(MAX_CPU_NPROC, cores))  # two ranks always (the smallest world), even on one core


def _cases(world: int, scale: plan.Scale) -> list[tuple[str, plan.Case]]:
    out = []
    for t in TOKENS:
        out.append(("allreduce", plan.Case("mla", "decode", t * world, 1, tp=world, scale=scale, components=False)))
        out.append(("alltoall", plan.Case("moe", "decode", t, ep=world, scale=scale, components=False)))
    return out


def comm_op(kind: str, case: plan.Case):
    """The planner's collective op of the case (its comm_bytes are what one GPU sends)."""
    sc = plan.scenario(case)
    if kind == "allreduce":
        from planner.perf.steps import decode_ops
        ops = decode_ops(sc, case.tokens / case.tp, case.context)
        return next(o for o in ops if o.name == "comm.attn_allreduce")
    from planner.perf.ops import step_ops
    return next(o for o in step_ops(sc, case.phase, case.tokens, 1) if o.name == "comm.ep_dispatch_combine")


def _splits(case: plan.Case, rank: int, world: int, gen: torch.Generator) -> list[int]:
    """Tokens this rank sends to each rank: one copy per token per other rank holding one of its top-k experts."""
    spec = plan.scenario(case).model.spec
    e, k = spec.n_routed_experts, spec.experts_per_token
    ids = torch.stack([torch.randperm(e, generator=gen)[:k] for _ in range(case.tokens)])  # [T, k]
    owner = ids // -(-e // world)  # [T, k] rank holding each chosen expert
    return [0 if r == rank else int((owner == r).any(-1).sum()) for r in range(world)]


def worker(out_path: str, iters: int) -> None:
    import torch.distributed as dist

    from kernels_bench.timing import measure

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(dev)
    scale = plan.Scale() if cuda else CPU_SCALE
    gen = torch.Generator().manual_seed(rank)
    rows = []
    for kind, case in _cases(world, scale):
        op = comm_op(kind, case)
        h = plan.scenario(case).model.spec.hidden_size
        if kind == "allreduce":
            x = torch.ones(int(op.comm_bytes) // 2, dtype=torch.bfloat16, device=dev)
            fn, sent, splits = (lambda x=x: dist.all_reduce(x)), op.comm_bytes, []
        else:
            splits = _splits(case, rank, world, gen)
            recv = torch.empty(world, dtype=torch.int64, device=dev)
            dist.all_to_all_single(recv, torch.tensor(splits, dtype=torch.int64, device=dev))  # exchange sizes
            recv_splits = recv.cpu().tolist()
            d_in = torch.ones(sum(splits), h, dtype=torch.uint8, device=dev)  # fp8 dispatch payload
            d_out = torch.empty(sum(recv_splits), h, dtype=torch.uint8, device=dev)
            c_in = torch.ones(sum(recv_splits), h, dtype=torch.bfloat16, device=dev)  # bf16 combine payload
            c_out = torch.empty(sum(splits), h, dtype=torch.bfloat16, device=dev)

            def fn(d_in=d_in, d_out=d_out, c_in=c_in, c_out=c_out, s=splits, r=recv_splits):
                dist.all_to_all_single(d_out, d_in, r, s)
                dist.all_to_all_single(c_out, c_in, s, r)
            sent = 3 * h * sum(splits)
        t = measure(fn, dev, warmup=2, iters=iters, before=dist.barrier)
        samples = [None] * world
        dist.all_gather_object(samples, list(t.samples_s))
        slowest = [max(s[i] for s in samples) for i in range(len(samples[0]))]
        all_sent = [None] * world
        dist.all_gather_object(all_sent, (sent, splits))
        rows.append({"case": f"{kind}-t{case.tokens // (world if kind == 'allreduce' else 1)}-g{world}",
                     "op": kind, "samples_s": slowest, "sent_bytes_per_rank": [s for s, _ in all_sent],
                     "splits": [sp for _, sp in all_sent], "op_record": plan.op_record(op)})
    if rank == 0:
        Path(out_path).write_text(json.dumps({"world": world, "backend": dist.get_backend(), "rows": rows}))
    dist.destroy_process_group()


def comm_command(args) -> dict | None:
    if args.worker:
        worker(args.worker, args.iters)
        return None
    from kernels_bench.devices import select_device
    from planner.base.store import Store, run_lock, store_path
    from planner.hardware.efficiency import efficiency_for

    if args.nproc < 2:
        raise PlannerError("--nproc must be >= 2", field="--nproc")
    if args.iters < 1:
        raise PlannerError("--iters must be >= 1", field="--iters")
    path = store_path(args.store)
    dev = select_device(args.device, args.threads)
    limit = max_nproc(dev)
    if args.nproc > limit:
        raise PlannerError(f"{args.nproc} processes on this {dev.kind} machine: at most {limit} (one per "
                           f"{'GPU' if dev.kind == 'cuda' else 'core, 2 to 8'}; kernels_bench/comm.py "
                           "MAX_CPU_NPROC)", field="--nproc")
    with run_lock(path), Store(path) as store:
        return _comm_run(args, dev, store, efficiency_for)


def _comm_run(args, dev, store, efficiency_for) -> dict:
    """torchrun the workers, then store one run of their rows."""
    import statistics

    from kernels_bench.ceilings import measure_ceilings
    from kernels_bench.devices import accelerator_for, versions
    from kernels_bench.timing import Timing

    old = [r for r in store.runs(dev.name) if r["ceilings_json"]]
    ceil = json.loads(old[-1]["ceilings_json"]) if old else measure_ceilings(dev)
    acc = accelerator_for(dev, ceil)
    m = plan.machine(acc, efficiency_for(dev.name))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "comm.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
               "-m", "kernels_bench", "comm", "--worker", str(out), "--iters", str(args.iters)]
        env = dict(os.environ, OMP_NUM_THREADS=str(dev.threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode or not out.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise PlannerError(f"torchrun exited {proc.returncode}: {tail[:200]}")
        res = json.loads(out.read_text())
    rid = store.start_run(dev.as_json() | {"backend": res["backend"], "world": res["world"]}, "comm", ceil,
                          environment=versions())
    rows = []
    for r in res["rows"]:
        op = plan.op_from_record(r["op_record"])
        t = Timing(tuple(r["samples_s"]))
        predicted = comm_time(op, m)
        link = _link_seconds(op, acc)
        row = {"case": r["case"], "op": r["op"], "status": "ok", "measured_s": t.median_s, "p10_s": t.p10_s,
               "p90_s": t.p90_s, "predicted_s": predicted, "flop": 0, "bytes": op.comm_bytes,
               "sent_bytes_mean": statistics.fmean(r["sent_bytes_per_rank"]), "splits": r["splits"],
               "link_s": link, "alloc_bytes": None, "predicted_alloc_bytes": None, "samples_s": r["samples_s"]}
        cid = store.start_case(rid, r["case"], r["op"], r["op"], {"world": res["world"]})
        store.finish_case(cid, status="ok", error=None, path=res["backend"], measured_s=t.median_s, p10_s=t.p10_s,
                          p90_s=t.p90_s, samples_json=r["samples_s"], predicted_s=predicted, flop=0,
                          bytes=op.comm_bytes, ops_json=[r["op_record"]], result_json=row)
        rows.append(row)
    store.finish_run(rid)
    return {"device": dev.as_json(), "backend": res["backend"], "world": res["world"], "run_id": rid,
            "store": str(store.path), "runs": rows}


def _link_seconds(op, acc) -> float:
    """Seconds of the bytes at the full intra-node link (what the planner divides by its fraction)."""
    intra = acc.scale_up_bytes_per_s or (acc.host_link_bytes_per_s or 25e9)
    g = max(op.group, 1)
    factor = 2 * (g - 1) / g if op.comm == "allreduce" else 1.0
    return factor * op.comm_bytes / intra


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares t = a + b x with a >= 0, b > 0."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    a = my - b * mx
    if a < 0 or b <= 0:
        a = max(0.0, min(y for _, y in points) if b <= 0 else 0.0)
        b = max(sum(x * (y - a) for x, y in points) / max(sum(x * x for x, _ in points), 1e-30), 1e-12)
    return a, b


def fit_comm(store, run_id: int) -> dict:
    """Planner comm keys from one comm run: latency and fraction of the link, per collective."""
    rows = [json.loads(r["result_json"]) for r in store.cases([run_id], status="ok") if r["result_json"]]
    out = {}
    for kind, lat_key, frac_key in (("allreduce", "allreduce_latency_s", "allreduce_busbw_fraction"),
                                    ("alltoall", "alltoall_latency_s", "alltoall_nvlink_fraction")):
        pts = [(r["link_s"], r["measured_s"]) for r in rows if r["op"] == kind]
        if len(pts) >= 2:
            a, b = _line(pts)
            out[lat_key] = float(f"{a:.3g}")
            out[frac_key] = float(f"{min(1.5, 1 / b):.3g}")
    return out
