"""kernels_bench: reference checks, storage formats, planner-exact bytes, discovery fallback, the results store,
calibration output the planner loads, torchrun collectives, the CLI's one-line errors and gpu_check.sh.

Fast on CPU (tiny scaled-down Kimi K2.5 shapes); `slow` runs the real smoke suite and gpu_check.sh's CPU path;
`gpu` needs CUDA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from kernels_bench import plan
from kernels_bench.devices import accelerator_for, discover, select_device
from kernels_bench.mla import MLALayer, run
from kernels_bench.moe import MoEBlock
from kernels_bench.qformats import FP8_BLOCK, quantize
from kernels_bench.runner import TOLERANCE, run_cases
from kernels_bench.suites import CPU_SCALE, cases_for
from planner.base.errors import PlannerError
from planner.base.store import Store
from planner.hardware.efficiency import _read, efficiency_for
from planner.model.quant import storage_types

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
TINY = plan.Scale(hidden=14, heads=1, experts=24, inter=16)  # Kimi K2.5: h 512, 16 experts of width 128
CEILINGS = {"copy_bytes_per_s": 10e9, "gemm_flops_per_s": {"bf16": 5e11, "fp32": 1e11, "fp8": 2e11, "int4": 2e11},
            "gemm_paths": {}, "copy_bytes": 0, "gemm_n": 0, "threads": 1}
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernels_bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


# ---------------------------------------------------------------- storage formats

@pytest.mark.parametrize("shape", [(300, 256), (4, 256, 512), (576, 1024)])
@pytest.mark.parametrize("storage", ["bf16", "fp8_block128", "int4_g32"])
def test_storage_round_trip_and_planner_bytes(shape, storage):
    w = torch.randn(shape) * 0.05
    q = quantize(w, storage)
    per_matrix = storage_types()[storage].tensor_bytes(shape[-2:])
    experts = shape[0] if len(shape) == 3 else 1
    assert q.nbytes() == per_matrix * experts  # byte for byte as planner/model/quant.py counts it
    err = (q.dequant(torch.float32) - w).abs().max() / w.abs().max()
    assert err < {"bf16": 0.01, "fp8_block128": 0.07, "int4_g32": 0.08}[storage]


def test_fp8_block_scales_shape_and_values():
    w = torch.randn(300, 200)
    q = quantize(w, "fp8_block128")
    assert q.tensors["weight"].dtype == torch.float8_e4m3fn and q.tensors["weight"].shape == (300, 200)
    assert q.tensors["weight_scale_inv"].shape == (3, 2) and q.tensors["weight_scale_inv"].dtype == torch.float32
    block = w[:FP8_BLOCK, :FP8_BLOCK]
    assert torch.isclose(q.tensors["weight_scale_inv"][0, 0], block.abs().max() / 448)


def test_int4_packing_layout():
    """compressed-tensors pack-quantized: nibble = q + 8, value j of a word in bits 4j..4j+3, bf16 scale per 32."""
    w = torch.zeros(1, 32)
    w[0, :8] = torch.arange(8.0)  # group amax 7 -> scale 1 -> q = w
    q = quantize(w, "int4_g32")
    word = sum((8 + j) << (4 * j) for j in range(8))
    assert q.tensors["weight_packed"].shape == (1, 4) and q.tensors["weight_packed"].dtype == torch.int32
    assert q.tensors["weight_packed"][0, 0].item() == word - 2**32  # two's complement of 0xFEDCBA98
    assert q.tensors["weight_scale"].tolist() == [[1.0]] and q.tensors["weight_shape"].tolist() == [1, 32]
    assert torch.equal(q.dequant(torch.float32), w)


# ---------------------------------------------------------------- reference checks

@pytest.mark.parametrize("weights", ["bf16", "fp8-block128"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mla_absorbed_equals_naive(weights, dtype):
    layer = MLALayer(plan.Case("mla", "decode", 2, 64, weights=weights, tp=8, scale=TINY), CPU, dtype)
    assert layer.reference_error() < TOLERANCE[dtype]


def test_mla_prefill_last_token_equals_decode():
    layer = MLALayer(plan.Case("mla", "prefill", 16, tp=8, scale=TINY), CPU, torch.float32)
    x = torch.randn(16, 512)
    cache = layer.new_cache(1, 16)
    pre = layer.prefill_state(x, cache)
    run(layer.prefill_stages(), pre)
    dec = layer.decode_state(x[-1:], cache.clone())
    run(layer.decode_stages(), dec)
    assert torch.allclose(pre["out"][-1], dec["out"][0], atol=1e-4 * dec["out"].abs().max().item())


@pytest.mark.parametrize("weights", ["bf16", "fp8-block128", "int4-g32"])
@pytest.mark.parametrize("grouped", ["grouped_mm", "loop"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_moe_grouped_equals_gather_einsum(weights, grouped, dtype):
    if grouped == "grouped_mm" and not hasattr(torch, "_grouped_mm"):
        pytest.skip("torch has no _grouped_mm")
    block = MoEBlock(plan.Case("moe", "decode", 4, weights=weights, scale=TINY), CPU, dtype, grouped=grouped)
    assert block.reference_error(tokens=8) < TOLERANCE[dtype]


def test_router_group_limited_topk_and_scaling():
    """DeepSeek-V3: 8 groups, top-4 groups, top-8 experts; weights normalized then x routed_scaling_factor 2.5."""
    case = plan.Case("moe", "decode", 4, model="deepseek-v3", scale=plan.Scale(hidden=14, experts=4, inter=16))
    block = MoEBlock(case, CPU, torch.float32)
    assert block.cfg["n_group"] == 8 and block.cfg["topk_group"] == 4
    ids, w = block.route(torch.randn(32, 512))
    assert ids.shape == (32, 8)
    groups = ids // (block.e // 8)
    assert all(len(set(row)) <= 4 for row in groups.tolist())
    assert torch.allclose(w.sum(-1), torch.full((32,), 2.5))


def test_skewed_routing_touches_fewer_experts():
    gen = torch.Generator().manual_seed(0)
    uniform = MoEBlock(plan.Case("moe", "decode", 16, scale=CPU_SCALE), CPU)
    skewed = MoEBlock(plan.Case("moe", "decode", 16, skew=1.5, scale=CPU_SCALE), CPU)
    n = lambda b: sum(len(torch.unique(b.draw_routing(16, gen)[0])) for _ in range(20))  # noqa: E731
    assert n(skewed) < n(uniform)


# ---------------------------------------------------------------- runs: bytes equal the planner's

def _device():
    return select_device("cpu", 1)


def test_smoke_run_bytes_equal_planner(tmp_path):
    cases = [plan.Case("mla", "decode", 2, 256, tp=8, scale=CPU_SCALE),
             plan.Case("mla", "prefill", 64, weights="fp8-block128", tp=8, scale=CPU_SCALE),
             plan.Case("moe", "decode", 8, weights="int4-g32", scale=CPU_SCALE),
             plan.Case("moe", "decode", 8, weights="fp8-block128", ep=4, skew=1.2, scale=CPU_SCALE)]
    dev = _device()
    store = Store(tmp_path / "r.sqlite")
    rid = store.start_run(dev.as_json(), "test", CEILINGS)
    rows = run_cases(cases, dev, accelerator_for(dev, CEILINGS), efficiency_for(None), store, rid, (0, 2, None))
    assert [r["status"] for r in rows if "." not in r["op"]] == ["ok"] * 4
    for r in rows:
        assert r["alloc_bytes"] == r["predicted_alloc_bytes"] and r["weight_bytes"] == r["predicted_weight_bytes"]
        assert r["kv_bytes"] == r["predicted_kv_bytes"]
        assert r["measured_s"] > 0 and r["predicted_s"] > 0 and r["flop"] >= 0 and r["bytes"] > 0
        assert len(r["samples_s"]) == 2
    assert rows[0]["kv_bytes"] == 2 * 256 * 576 * 2  # B x S x (512 + 64) bf16
    assert {r["op"] for r in rows} >= {"mla_decode", "mla_prefill", "moe", "attn.mla_decode", "moe.router"}
    stored = store.cases([rid], status="ok")
    assert len(stored) == len(rows) and all(json.loads(s["samples_json"]) for s in stored)


def test_every_smoke_case_weight_bytes_equal_planner():
    seen = {}
    for case in cases_for("smoke", "cpu"):
        if case.build_key not in seen:
            layer = (MLALayer if case.layer == "mla" else MoEBlock)(case, CPU)
            seen[case.build_key] = layer.weight_bytes()
        assert seen[case.build_key] == plan.predicted_weight_bytes(case), case.name


def test_full_shape_planner_bytes_match_checkpoint_layout():
    """Full Kimi K2.5 layer: the per-GPU bytes the planner predicts for what the GPU suite allocates."""
    moe = plan.Case("moe", "decode", 1, weights="int4-g32")
    # 384 experts x 3 x (2048 x 7168 / 2 packed + 2048 x 224 x 2 scales + 8 shape) + router, bias, shared, norm
    expert = 2048 * 7168 // 2 + 2048 * 224 * 2 + 8
    shared = 3 * 2048 * 7168 * 2
    assert plan.predicted_weight_bytes(moe) == 384 * 3 * expert + 384 * 7168 * 2 + 384 * 4 + shared + 7168 * 2
    mla = plan.Case("mla", "decode", 64, 131072)
    assert plan.predicted_kv_bytes(mla) == 64 * 131072 * 1152


# ---------------------------------------------------------------- store: failures are recorded, the run goes on

def test_store_records_failures_and_continues(tmp_path):
    good = plan.Case("moe", "decode", 2, scale=TINY, components=False)
    boom = replace(good, tokens=3)
    oom = replace(good, tokens=5)

    def builder(case, device, dtype):
        if case.tokens == 3:
            raise RuntimeError("injected failure")
        if case.tokens == 5:
            raise MemoryError("injected")
        return MoEBlock(case, device, dtype)

    dev = _device()
    store = Store(tmp_path / "r.sqlite")
    rid = store.start_run(dev.as_json(), "test", CEILINGS)
    rows = run_cases([boom, oom, good], dev, accelerator_for(dev, CEILINGS), efficiency_for(None), store, rid,
                     (0, 1, None), builder=lambda c, d, t: builder(c, d, t))
    assert [r["status"] for r in rows] == ["error", "oom", "ok"]
    stored = store.cases([rid])
    assert [s["status"] for s in stored] == ["error", "oom", "ok"]
    assert "injected failure" in stored[0]["error"]
    # a case the process never finished stays on record
    cid = store.start_case(rid, "killed", "moe", "g", {})
    assert store.cases([rid])[-1]["status"] == "error" and cid


# ---------------------------------------------------------------- discovery

def test_discover_cpu_fallback_without_driver(monkeypatch):
    import pynvml

    def no_driver():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    found = discover()
    assert found["gpus"] == [] and found["gpu_note"].startswith("NVML")
    assert found["default"] == "cpu"
    cpu = found["cpu"]
    assert cpu["logical_cpus"] >= 1 and cpu["memory_bytes"] > 0 and isinstance(cpu["isa"], list)
    dev = select_device(None, 1)
    assert dev.kind == "cpu" and dev.name.startswith("cpu-")


def test_discover_cli_json():
    out = cli("discover", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "cpu" in doc and "gpus" in doc


# ---------------------------------------------------------------- calibration

def _synthetic_store(path: Path) -> tuple[Store, object]:
    """Runs whose 'measured' times are the planner's under a known table (memory fractions x0.4), with noise."""
    dev = _device()
    acc = accelerator_for(dev, CEILINGS)
    base = efficiency_for(None)
    truth = replace(base, ops={k: replace(v, memory=replace(v.memory, points=tuple((m, f * 0.4) for m, f in
                                                                                     v.memory.points)))
                               for k, v in base.ops.items()})
    store = Store(path)
    rid = store.start_run(dev.as_json(), "smoke", CEILINGS)
    gen = torch.Generator().manual_seed(0)
    for case in [c for c in cases_for("smoke", "cpu") if c.weights == "bf16"]:
        ops = plan.layer_ops(case)
        rows = [(case.name, case.op, ops)] + [(f"{case.name}.{o.name}", o.name, [o]) for o in ops]
        for name, op, sub in rows:
            t = plan.predict(sub, plan.machine(acc, truth))[0] * float(1 + 0.05 * torch.randn(1, generator=gen))
            cid = store.start_case(rid, name, op, case.group, {})
            store.finish_case(cid, status="ok", path="grouped_mm+native", measured_s=t,
                              ops_json=[plan.op_record(o) for o in sub])
    store.finish_run(rid)
    return store, dev


def test_calibrate_writes_a_file_the_planner_loads(tmp_path):
    from kernels_bench.calibrate import calibrate

    store, dev = _synthetic_store(tmp_path / "r.sqlite")
    args = Namespace(store=str(store.path), run=None, suite="smoke", name="cpu-test", out=str(tmp_path), folds=3,
                     include_dequant=False)
    doc = calibrate(args, dev, run_suite=None)
    assert set(doc) >= {"device", "file", "n_fit", "n_holdout", "holdout_median_abs_error", "holdout_p90_abs_error"}
    path = tmp_path / "cpu-test.yaml"
    eff = _read(path, efficiency_for(None))  # the planner's own loader accepts it
    assert eff.device == "cpu-test" and set(eff.ops) >= {"gemm", "grouped_gemm", "attention_decode"}
    assert doc["n_holdout"] > 0 and doc["holdout_median_abs_error"] < 0.15


def test_calibrate_writes_only_when_asked(tmp_path, monkeypatch):
    """Issue 21: a fit alone writes nothing (every CPU estimate reads profiles/calibration/<device>.yaml); --write
    writes there, --out FILE.yaml writes that file."""
    import kernels_bench.calibrate as cal

    monkeypatch.setattr(cal, "CAL_DIR", tmp_path / "calibration")
    store, dev = _synthetic_store(tmp_path / "r.sqlite")
    args = Namespace(store=str(store.path), run=None, suite="smoke", name="cpu-test", out=None, folds=3,
                     include_dequant=False, write=False)
    doc = cal.calibrate(args, dev, run_suite=None)
    assert doc["written"] is False and doc["file"].endswith("cpu-test.yaml") and not (tmp_path / "calibration").exists()
    doc = cal.calibrate(replace_ns(args, write=True), dev, run_suite=None)
    assert doc["written"] is True and (tmp_path / "calibration" / "cpu-test.yaml").is_file()
    doc = cal.calibrate(replace_ns(args, out=str(tmp_path / "mine.yaml")), dev, run_suite=None)
    assert doc["written"] is True and _read(tmp_path / "mine.yaml", efficiency_for(None)).device == "cpu-test"


def replace_ns(ns: Namespace, **changes) -> Namespace:
    return Namespace(**(vars(ns) | changes))


def test_run_summary_counts_medians_emulation_and_parts():
    from kernels_bench.cli import _run_summary
    from kernels_bench.runner import summarize

    def row(case, op, measured, ratio, path="grouped_mm+native"):
        return {"case": case, "op": op, "status": "ok", "measured_s": measured, "predicted_s": measured / ratio,
                "measured_over_predicted": ratio, "path": path}

    rows = [row("moe-decode-t4-bf16", "moe", 0.015, 1.1), row("moe-decode-t4-bf16.moe.shared", "moe.shared", 0.001, 1),
            row("moe-decode-t4-int4-g32", "moe", 0.0394, 60, "grouped_mm+dequant"),
            row("moe-decode-t4-int4-g32.moe.experts", "moe.experts", 0.0496, 70, "grouped_mm+dequant"),
            row("mla-decode-b1-ctx1024-bf16-tp8", "mla_decode", 0.008, 0.9),
            row("mla-decode-b8-ctx1024-bf16-tp8", "mla_decode", 0.01, 1.3),
            {"case": "moe-prefill-t4096-bf16", "op": "moe", "status": "oom", "error": "out of memory"}]
    sm = summarize(rows)
    assert sm["cases"] == {"ok": 4, "oom": 1, "error": 0}
    assert sm["median_measured_over_predicted"]["moe (emulated)"] == {"median": 60, "n": 1}
    assert sm["median_measured_over_predicted"]["mla_decode"]["median"] == pytest.approx(1.1)
    assert sm["emulated"] == ["moe-decode-t4-int4-g32"]
    assert sm["parts_over_whole"] == [{"case": "moe-decode-t4-int4-g32", "whole_s": 0.0394, "parts_s": 0.0496}]
    text = "\n".join(_run_summary({"runs": rows, "summary": sm}))
    assert "5 cases: 4 ok, 1 oom, 0 error" in text and "moe (emulated) 60.00 (1)" in text
    assert "int4 weights dequantized to bf16" in text and "not a planner error" in text
    assert "moe-decode-t4-int4-g32 39.400 ms whole, its parts 49.600 ms" in text


# ---------------------------------------------------------------- CLI, comm, gpu_check.sh

@pytest.mark.parametrize("args, message", [
    (("run", "--suite", "nope", "--device", "cpu"), "unknown suite"),
    (("run", "--device", "tpu"), "invalid choice"),
    (("run", "--suite", "smoke", "--device", "cpu", "--cases", "no-such-case"), "no smoke case matches"),
    (("calibrate", "--device", "cpu", "--run", "999"), "not in"),
    (("run", "--device", "cpu", "--threads", "0"), "--threads"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    from kernels_bench.cli import main

    assert main([*args, "--store", str(tmp_path / "r.sqlite")]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert out.out == "" and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.err


def test_comm_torchrun_two_processes(tmp_path):
    out = cli("comm", "--device", "cpu", "--nproc", "2", "--iters", "3", "--json", "--store",
              str(tmp_path / "r.sqlite"), timeout=180)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["world"] == 2 and doc["backend"] == "gloo"
    a2a = [r for r in doc["runs"] if r["op"] == "alltoall"]
    assert {r["op"] for r in doc["runs"]} == {"allreduce", "alltoall"}
    assert all(r["measured_s"] > 0 and r["predicted_s"] > 0 for r in doc["runs"])
    assert all(len(s) == 2 for r in a2a for s in r["splits"])  # per-rank send splits (uneven in general)


def test_gpu_check_script_steps():
    script = ROOT / "kernels_bench" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=ENV | {"DRY_RUN": "1"},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    for step in ("discover", "ceilings", "run --suite", "calibrate"):
        assert step in out.stderr


@pytest.mark.slow
def test_smoke_suite_cli(tmp_path):
    out = cli("run", "--suite", "smoke", "--device", "cpu", "--json", "--store", str(tmp_path / "r.sqlite"),
              timeout=600)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["runs"]
    assert rows and all(r["status"] == "ok" for r in rows)
    assert all(r["alloc_bytes"] == r["predicted_alloc_bytes"] for r in rows)


@pytest.mark.slow
def test_gpu_check_cpu_path(tmp_path):
    env = ENV | {"OUT": str(tmp_path / "out"), "STORE": str(tmp_path / "r.sqlite"), "CAL_OUT": str(tmp_path)}
    out = subprocess.run(["bash", str(ROOT / "kernels_bench" / "gpu_check.sh")], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "held-out median" in out.stdout
    assert list(tmp_path.glob("cpu-*.yaml"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_gpu_reference_checks():
    dev = torch.device("cuda")
    for weights in ("bf16", "fp8-block128", "int4-g32"):
        block = MoEBlock(plan.Case("moe", "decode", 4, weights=weights, scale=TINY), dev)
        assert block.reference_error(tokens=8) < TOLERANCE[torch.bfloat16]
    layer = MLALayer(plan.Case("mla", "decode", 2, 64, weights="fp8-block128", tp=8, scale=TINY), dev)
    assert layer.reference_error() < TOLERANCE[torch.bfloat16]


@pytest.mark.parametrize("entry, field", [
    ({"compute_by_dtype": {"fp5": 0.5}}, "ops.gemm.compute_by_dtype.fp5"),
    ({"compute_by_dtype": {"fp4": [[64, 2.0]]}}, "ops.gemm.compute_by_dtype.fp4"),
])
def test_a_calibration_with_a_bad_dtype_curve_is_refused_with_its_field(tmp_path, entry, field):
    import yaml

    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({"device": "x", "ops": {"gemm": entry}}))
    with pytest.raises(PlannerError) as err:
        _read(path, efficiency_for(None))
    assert err.value.field == field and str(path) in str(err.value)


def test_a_calibration_overlay_keeps_the_dtype_curves_it_does_not_restate(tmp_path):
    import yaml

    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({"device": "x", "ops": {"gemm": {"compute": 0.5}}}))
    base = efficiency_for(None)
    eff = _read(path, base)
    assert eff.ops["gemm"].compute_for("fp4") == base.ops["gemm"].compute_for("fp4")
    assert eff.ops["gemm"].compute_for("bf16").at(1000) == 0.5
