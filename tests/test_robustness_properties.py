"""Robustness 1/4: invariants of the planner under generated inputs (hypothesis).

Every property runs twice: a few examples in `make test`, many under `make test-slow` (`-m slow`); the counts are
in docs/robustness.md. Generated inputs: Hugging Face configs of every supported model_type (odd sizes included),
every weight format and KV dtype, every shipped model on generated hardware, parallel plans, engines and workloads,
accelerators with more memory or bandwidth (profile copies scaled by a factor), hosts with more DRAM channels,
and sizing workloads.

Invariants (issue 8): component parameters sum to the total; bytes are never negative; more GPUs never leave less
free memory; a longer context never needs fewer KV bytes; a plan that fits still fits with more memory; more
bandwidth never slows decode; offloading more expert layers never speeds decode; sizing never returns a plan that
does not fit or misses its SLO (tests/test_robustness_sizing_properties.py). Plus: every estimate is a JSON
document without NaN or infinity (`--json`).
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import assume, event
from hypothesis import strategies as st

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario_file import scenario_from_mapping
from planner.hardware.accelerators import HARDWARE_DIR
from planner.model.inspect import inspect_model, weights_bytes_by_component
from planner.model.inventory import (
    COMPONENTS,
    active_params_per_token,
    params_by_component,
    params_by_part,
    tensor_inventory,
)
from planner.model.kv import kv_layout
from planner.model.models import Model, list_models, load_model
from planner.model.quant import list_formats, load_format
from planner.model.spec import model_spec_from_config
from planner.perf.steps import decode_step
from planner.serving.estimate import estimate
from tests.properties_util import twice

TMP = Path(tempfile.mkdtemp(prefix="robustness-props-"))
atexit.register(shutil.rmtree, TMP, True)
REL = 1e-9  # float noise allowed in "never more / never less" comparisons

MODELS = list_models()
MOE_MODELS = [m for m in MODELS if load_model(m).spec.is_moe]
FORMATS = list_formats() + ["mixed-2.5bpw", "mixed-1.58bpw"]
# accelerators with published tensor peaks (l20, rtx-6000-ada and three Apple chips have none: every
# estimate on them stops at the roofline, see test_estimate_without_tensor_peaks_still_reports_memory)
GPUS = ["h100-sxm", "h200-sxm", "b200", "a100-sxm-80gb", "h20", "mi300x", "l40s", "rtx-4090", "rtx-5090",
        "apple-m3-ultra"]
ENGINES = ["vllm", "sglang", "trtllm", "llamacpp", "ktransformers", "mlx", "ideal", "deepseek-internal"]
FACTORS = [1.1, 1.25, 1.5, 2.0, 3.0, 4.0]


# ---------------------------------------------------------------- generated Hugging Face configs

def _dims(d):
    heads = d(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128]))
    kv = d(st.sampled_from([h for h in (1, 2, 3, 4, 8, 16, 32, 64, 128) if heads % h == 0]))
    return dict(vocab_size=d(st.integers(1, 300_000)), hidden_size=d(st.integers(heads, 16_384)),
                num_hidden_layers=d(st.integers(1, 128)), num_attention_heads=heads, num_key_value_heads=kv,
                intermediate_size=d(st.integers(1, 65_536)), tie_word_embeddings=d(st.booleans()),
                attention_bias=d(st.booleans()), max_position_embeddings=d(st.sampled_from([None, 4096, 131072])))


@st.composite
def hf_configs(d):
    """Configs of all 11 supported model_types with independent (often odd) sizes."""
    mt = d(st.sampled_from(["deepseek_v3", "kimi_k2", "kimi_k25", "deepseek_v2", "qwen3_moe", "qwen2_moe", "mixtral",
                            "llama", "qwen3", "gpt_oss", "glm4_moe"]))
    c = _dims(d)
    layers = c["num_hidden_layers"]
    experts = d(st.integers(1, 512))
    topk = d(st.integers(1, min(experts, 16)))
    if mt in ("deepseek_v3", "kimi_k2", "kimi_k25", "deepseek_v2"):
        c.update(num_key_value_heads=c["num_attention_heads"], kv_lora_rank=d(st.sampled_from([16, 64, 512, 1000])),
                 q_lora_rank=d(st.sampled_from([None, 24, 1536])), qk_nope_head_dim=d(st.sampled_from([8, 128, 100])),
                 qk_rope_head_dim=d(st.sampled_from([8, 64, 30])), v_head_dim=d(st.sampled_from([8, 128, 90])),
                 n_routed_experts=d(st.sampled_from([0, experts])), num_experts_per_tok=topk,
                 moe_intermediate_size=d(st.integers(1, 4096)), n_shared_experts=d(st.integers(0, 3)),
                 first_k_dense_replace=d(st.integers(0, layers + 1)),
                 num_nextn_predict_layers=d(st.integers(0, 2)))
        if mt == "deepseek_v2":
            c["topk_method"] = d(st.sampled_from(["greedy", "noaux_tc"]))
        if mt == "kimi_k25":
            vision = None if d(st.booleans()) else {
                "vt_hidden_size": d(st.integers(8, 1152)), "vt_intermediate_size": d(st.integers(8, 4304)),
                "vt_num_hidden_layers": d(st.integers(1, 27)), "patch_size": d(st.integers(1, 14)),
                "init_pos_emb_height": d(st.integers(1, 64)), "init_pos_emb_width": d(st.integers(1, 64)),
                "merge_kernel_size": [d(st.integers(1, 3)), d(st.integers(1, 3))],
                "text_hidden_size": c["hidden_size"]}
            return {"model_type": "kimi_k25", "text_config": {**c, "model_type": "kimi_k2"}, "vision_config": vision}
    elif mt in ("qwen3_moe", "qwen2_moe"):
        c.update(num_experts=experts, num_experts_per_tok=topk, moe_intermediate_size=d(st.integers(1, 4096)),
                 decoder_sparse_step=d(st.integers(1, 3)),
                 mlp_only_layers=d(st.lists(st.integers(0, layers - 1), max_size=3, unique=True)))
        if mt == "qwen3_moe":
            c["head_dim"] = d(st.sampled_from([16, 64, 128]))
        else:
            c["shared_expert_intermediate_size"] = d(st.integers(0, 20_480))
    elif mt == "mixtral":
        c.update(num_local_experts=experts, num_experts_per_tok=topk)
    elif mt == "llama":
        c.update(mlp_bias=d(st.booleans()))
    elif mt == "qwen3":
        c.update(head_dim=d(st.sampled_from([16, 64, 128])))
    elif mt == "gpt_oss":
        c.update(num_local_experts=experts, num_experts_per_tok=topk, head_dim=d(st.sampled_from([16, 64])),
                 sliding_window=d(st.integers(1, 4096)),
                 layer_types=[d(st.sampled_from(["sliding_attention", "full_attention"])) for _ in range(layers)])
    elif mt == "glm4_moe":
        c.update(n_routed_experts=experts, num_experts_per_tok=topk, moe_intermediate_size=d(st.integers(1, 4096)),
                 head_dim=d(st.sampled_from([16, 128])), n_shared_experts=d(st.integers(0, 2)),
                 first_k_dense_replace=d(st.integers(0, layers)), use_qk_norm=d(st.booleans()))
    c["model_type"] = mt
    return c


def _spec(config):
    return model_spec_from_config(json.loads(json.dumps(config)), name="gen", file="gen.json")


def _params_sum_to_total(config, fmt_name, kv):
    spec = _spec(config)
    by, parts = params_by_component(spec), params_by_part(spec)
    assert set(by) == set(COMPONENTS) and all(v >= 0 for v in by.values())
    assert sum(by.values()) == parts["language"]
    assert 0 <= active_params_per_token(spec) <= parts["language"]
    assert all(t.numel >= 0 for t in tensor_inventory(spec))
    model = Model("gen", spec, "bf16", "gen.json", "gen.json")
    try:
        doc = inspect_model(model, load_format(fmt_name), kv)
    except PlannerError as err:  # fp8_ds_mla on a model without the 512 + 64 MLA latent: refused by name
        assert err.field == "kv_cache" and kv == "fp8_ds_mla"
        return
    assert doc["params"]["total"] == parts["language"]
    assert doc["weights_bytes"] == sum(doc["weights_bytes_by_part"].values()) >= 0
    assert all(b >= 0 for b in doc["weights_bytes_by_part"].values())
    assert sum(weights_bytes_by_component(model, load_format(fmt_name)).values()) == \
        doc["weights_bytes_by_part"]["language"]
    assert sum(r["params"] for r in doc["storage_types"].values()) == sum(
        t.numel for t in tensor_inventory(spec) if t.part not in load_format(fmt_name).exclude_parts)
    assert doc["kv_cache_bytes_per_token"] >= 0 and doc["kv_cache_bytes_per_token_per_layer"] >= 0


test_params_sum_to_total, test_params_sum_to_total_slow = twice(
    40, 2500, hf_configs(), st.sampled_from(FORMATS), st.sampled_from(["bf16", "fp16", "fp8", "fp8_ds_mla"]))(
    _params_sum_to_total)


def _kv_grows_with_context(config, kv, t1, t2, tp, frac):
    spec = _spec(config)
    try:
        layout = kv_layout(spec, kv)
    except PlannerError:
        assume(False)
    short, long = sorted((t1, t2))
    a = layout.bytes_for_context(short, tp, spec.num_kv_heads, frac)
    b = layout.bytes_for_context(long, tp, spec.num_kv_heads, frac)
    assert 0 <= a <= b
    assert layout.per_gpu_layer_bytes(tp, spec.num_kv_heads) <= layout.bytes_per_token_per_layer


test_kv_grows_with_context, test_kv_grows_with_context_slow = twice(
    40, 2500, hf_configs(), st.sampled_from(["bf16", "fp16", "fp8", "fp8_ds_mla"]), st.integers(0, 10**7),
    st.integers(0, 10**7), st.sampled_from([1, 2, 3, 4, 8, 16, 64]), st.floats(0.01, 1.0))(_kv_grows_with_context)


# ---------------------------------------------------------------- generated scenarios on shipped models

def scaled_accelerator(name: str, memory: float = 1.0, bandwidth: float = 1.0) -> str:
    """Path of a copy of an accelerator profile with `memory` x the capacity and `bandwidth` x the HBM bandwidth
    (factor 1 copies too, so the baseline and the scaled GPU differ in nothing else, calibration file included)."""
    path = TMP / f"{name}-m{memory:g}-b{bandwidth:g}.yaml"
    if not path.is_file():
        doc = yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text())
        mem = doc["memory"]
        mem["capacity_gb"] = mem["capacity_gb"] * memory
        if mem.get("driver_total_mib"):
            mem["driver_total_mib"] = int(mem["driver_total_mib"] * memory)
        mem["bandwidth_tb_per_s"] = mem["bandwidth_tb_per_s"] * bandwidth
        achieved = (doc.get("measured") or {}).get("memory_achieved_tb_per_s")
        if isinstance(achieved, dict):
            achieved["value"] = achieved["value"] * bandwidth
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc))
        tmp.replace(path)
    return str(path)


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in (1, 2, 4, 8, 16, 32, 64) if d <= limit and n % d == 0]


@st.composite
def scenario_docs(d, models=tuple(MODELS), gpus=tuple(GPUS), engines=tuple(ENGINES)):
    """A scenario mapping the loader accepts: shipped model, any format, a GPU, a plan that divides, a workload."""
    model = d(st.sampled_from(models))
    spec = load_model(model).spec
    kvs = ["bf16", "fp16", "fp8"] + (["fp8_ds_mla"] if spec.attention == "mla" and spec.kv_lora_rank == 512 else [])
    gpn, nodes = d(st.sampled_from([1, 2, 4, 8])), d(st.sampled_from([1, 1, 1, 2]))
    tp = d(st.sampled_from(_divisors(spec.num_heads, gpn * nodes)))
    dp = d(st.sampled_from([1] + ([gpn // tp] if gpn // tp > 1 else [])))
    stage = tp * dp
    ep = d(st.sampled_from([1] + ([e for e in _divisors(stage, stage) if e > 1 and e <= spec.n_routed_experts]
                                  if spec.is_moe else [])))
    pp = d(st.sampled_from([1] + ([nodes] if nodes > 1 and stage * nodes <= gpn * nodes else [])))
    limit = min(spec.max_context or 262_144, 262_144)
    output_len = d(st.integers(1, min(8192, limit - 1)))
    input_len = d(st.integers(1, limit - output_len))
    phase = d(st.sampled_from(["prefill", "decode", "serve"]))
    load = d(st.sampled_from(["none", "batch", "concurrency"]))
    workload = {"phase": phase, "input_len": input_len, "output_len": output_len,
                "prefix_cache_hit": d(st.sampled_from([0.0, 0.0, 0.5, 0.9]))}
    if load == "batch":
        workload["batch_per_gpu"] = d(st.sampled_from([1, 2, 8, 32, 128, 512]))
    elif load == "concurrency":
        workload["concurrency"] = d(st.sampled_from([1, 4, 16, 64, 256, 1024]))
    doc = {"model": model, "weights": d(st.sampled_from(FORMATS)), "kv_cache": d(st.sampled_from(kvs)),
           "hardware": {"gpu": d(st.sampled_from(gpus)), "gpus_per_node": gpn, "nodes": nodes},
           "parallelism": {"tp": tp, "ep": ep, "pp": pp, "dp_attention": dp},
           "engine": d(st.sampled_from(engines)), "workload": workload}
    if d(st.booleans()):
        doc["slo"] = {"tpot_ms": d(st.sampled_from([20, 50, 200])), "ttft_ms": d(st.sampled_from([500, 5000]))}
    if d(st.booleans()):
        doc["speculative"] = {"mtp_tokens": d(st.integers(0, 3)), "acceptance": d(st.sampled_from([None, 0.0, 0.8]))}
    return doc


def _load(doc: dict):
    try:
        return scenario_from_mapping(doc, "generated.yaml")
    except PlannerError:  # a combination the loader refuses with a reason (that is the fuzz tests' subject)
        assume(False)


def _estimate_is_sane(doc):
    sc = _load(doc)
    out = estimate(sc)
    event("fits" if out["fits"] else "does not fit")
    json.dumps(out, allow_nan=False)  # what `estimate --json` prints: never NaN or infinity
    mem = out["memory"]
    for key, value in mem.items():
        if key.endswith("bytes_per_gpu") and key != "free_bytes_per_gpu" or key == "host_bytes":
            assert value >= 0, (key, value)
    assert all(v >= 0 for v in mem["weights_by_component_per_gpu"].values())
    cap = out["capacity"]
    assert cap["kv_tokens_per_gpu"] >= 0 and cap["max_concurrency"] >= 0 and cap["kv_bytes_per_token_per_gpu"] >= 0
    if out["fits"]:
        assert out["reason"] == "" and mem["free_bytes_per_gpu"] >= 0
        assert any(v is not None for v in out["metrics"].values())
        for key, value in out["metrics"].items():
            assert value is None or (math.isfinite(value) and value >= 0), (key, value)
    else:
        assert out["reason"] and all(v is None for v in out["metrics"].values())


test_estimate_is_sane, test_estimate_is_sane_slow = twice(40, 1500, scenario_docs())(_estimate_is_sane)


def _longer_context_more_kv(doc, longer):
    wl = doc["workload"]
    sc = _load(doc)
    limit = sc.model.spec.max_context or 10**8
    extra = min(longer, limit - wl["input_len"] - wl["output_len"])
    assume(extra > 0)
    a = memory_report(sc)
    b = memory_report(_load({**doc, "workload": {**wl, "input_len": wl["input_len"] + extra}}))
    assert 0 <= a.kv_bytes_per_sequence_per_gpu <= b.kv_bytes_per_sequence_per_gpu
    assert a.kv_bytes_per_token_per_gpu == b.kv_bytes_per_token_per_gpu
    assert a.max_concurrency >= b.max_concurrency * (1 - REL) or not b.fits


test_longer_context_more_kv, test_longer_context_more_kv_slow = twice(
    30, 1000, scenario_docs(), st.integers(1, 200_000))(_longer_context_more_kv)


@st.composite
def tp_ladders(d):
    """One model, format, KV dtype, engine and GPU at every TP degree 1..8 that divides its heads."""
    model = d(st.sampled_from(MODELS))
    spec = load_model(model).spec
    return {"model": model, "weights": d(st.sampled_from(FORMATS)), "kv_cache": d(st.sampled_from(["bf16", "fp8"])),
            "engine": d(st.sampled_from(ENGINES)), "gpu": d(st.sampled_from(GPUS)),
            "tps": _divisors(spec.num_heads, 8),
            "workload": {"phase": d(st.sampled_from(["decode", "serve"])), "input_len": d(st.integers(1, 4000)),
                         "output_len": d(st.integers(1, 4000))}}


def _more_gpus_more_free_memory(ladder):
    """Memory left after weights, activations and runtime: per GPU it never shrinks from 2 GPUs on (one GPU has no
    NCCL buffers), and the free memory of the whole plan (GPUs x what is left, 0 when nothing is) never shrinks."""
    left = []
    for tp in ladder["tps"]:
        sc = _load({"model": ladder["model"], "weights": ladder["weights"], "kv_cache": ladder["kv_cache"],
                    "engine": ladder["engine"], "hardware": {"gpu": ladder["gpu"], "gpus_per_node": tp},
                    "parallelism": {"tp": tp}, "workload": ladder["workload"]})
        m = memory_report(sc)
        per_gpu = m.capacity_bytes - m.weights_bytes_per_gpu - m.activation_bytes_per_gpu - m.runtime_bytes_per_gpu
        left.append((tp, per_gpu))
    for (t1, a), (t2, b) in zip(left, left[1:], strict=False):
        assert t2 * max(b, 0) >= t1 * max(a, 0) * (1 - REL), (t1, a, t2, b)
        if t1 >= 2:
            assert b >= a - REL * abs(a), (t1, a, t2, b)


test_more_gpus_more_free_memory, test_more_gpus_more_free_memory_slow = twice(
    30, 1000, tp_ladders())(_more_gpus_more_free_memory)


def _fits_with_more_memory(doc, factor):
    gpu = doc["hardware"]["gpu"]
    base = _load({**doc, "hardware": {**doc["hardware"], "gpu": scaled_accelerator(gpu)}})
    fits = memory_report(base).fits
    event("fits" if fits else "does not fit (nothing to check)")
    if not fits:
        return
    bigger = _load({**doc, "hardware": {**doc["hardware"], "gpu": scaled_accelerator(gpu, memory=factor)}})
    m = memory_report(bigger)
    assert m.fits, m.reason


test_fits_with_more_memory, test_fits_with_more_memory_slow = twice(
    30, 1000, scenario_docs(), st.sampled_from(FACTORS))(_fits_with_more_memory)


def _more_bandwidth_never_slower(doc, factor, batch, kv_len):
    gpu = doc["hardware"]["gpu"]
    base = _load({**doc, "hardware": {**doc["hardware"], "gpu": scaled_accelerator(gpu)}})
    fast = _load({**doc, "hardware": {**doc["hardware"], "gpu": scaled_accelerator(gpu, bandwidth=factor)}})
    a, b = decode_step(base, batch, kv_len).seconds, decode_step(fast, batch, kv_len).seconds
    assert 0 < b <= a * (1 + REL), (a, b)


test_more_bandwidth_never_slower, test_more_bandwidth_never_slower_slow = twice(
    30, 1000, scenario_docs(), st.sampled_from(FACTORS), st.sampled_from([0.25, 1, 4, 32, 256]),
    st.integers(1, 131_072))(_more_bandwidth_never_slower)


# ---------------------------------------------------------------- offload: host RAM experts on a fast GPU

# GPUs with at least twice the DRAM bandwidth of any host below (2 sockets x 12 channels x DDR5-4800 = 922 GB/s):
# on those, an expert layer never runs faster from host RAM than from the GPU
OFFLOAD_GPUS = ["h100-sxm", "h200-sxm", "b200", "a100-sxm-80gb", "mi300x", "h20"]
HOST_CPUS = {"xeon-8480": 8, "xeon-8488c": 8, "xeon-6454s": 8, "epyc-9654": 12}  # cpu -> DRAM channels per socket


@st.composite
def offload_docs(d):
    model = d(st.sampled_from(MOE_MODELS))
    cpu = d(st.sampled_from(sorted(HOST_CPUS)))
    host = {"cpu": cpu, "sockets": d(st.sampled_from([1, 2])), "memory_gb": 4096, "dram": "ddr5-4800",
            "channels_per_socket": d(st.integers(1, HOST_CPUS[cpu]))}
    return {"model": model, "weights": d(st.sampled_from(["int4-g32", "fp8-block128", "gguf-q4_k_m",
                                                          "gguf-ud-tq1_0", "bf16", "int8"])),
            "hardware": {"gpu": d(st.sampled_from(OFFLOAD_GPUS)), "gpus_per_node": 1, "host": host},
            "parallelism": {"tp": 1}, "engine": d(st.sampled_from(["llamacpp", "ktransformers", "vllm", "sglang"])),
            "offload": {"expert_layers_on_cpu": 0, "cpu_compute": d(st.booleans())},
            "workload": {"phase": "decode", "input_len": 1024, "output_len": 256}}


def _offloading_more_never_faster(doc, n1, n2, batch, kv_len):
    layers = load_model(doc["model"]).spec.num_moe_layers
    few, many = sorted((n1 % (layers + 1), n2 % (layers + 1)))
    step = lambda n: decode_step(_load({**doc, "offload": {**doc["offload"], "expert_layers_on_cpu": n}}),  # noqa: E731
                                 batch, kv_len).seconds
    a, b = step(few), step(many)
    assert 0 < a <= b * (1 + REL), (few, a, many, b)


test_offloading_more_never_faster, test_offloading_more_never_faster_slow = twice(
    30, 1000, offload_docs(), st.integers(0, 200), st.integers(0, 200), st.sampled_from([1, 4, 16, 64]),
    st.integers(1, 65_536))(_offloading_more_never_faster)


def _more_host_bandwidth_never_slower(doc, layers, batch):
    host = doc["hardware"]["host"]
    limit = HOST_CPUS[host["cpu"]]
    assume(host["channels_per_socket"] < limit)
    doc = {**doc, "offload": {**doc["offload"], "expert_layers_on_cpu": "all" if layers < 0 else layers}}
    wider = {**doc, "hardware": {**doc["hardware"], "host": {**host, "channels_per_socket": limit}}}
    a = decode_step(_load(doc), batch, 4096).seconds
    b = decode_step(_load(wider), batch, 4096).seconds
    assert 0 < b <= a * (1 + REL), (a, b)


test_more_host_bandwidth_never_slower, test_more_host_bandwidth_never_slower_slow = twice(
    20, 500, offload_docs(), st.integers(-1, 60), st.sampled_from([1, 8, 64]))(_more_host_bandwidth_never_slower)
