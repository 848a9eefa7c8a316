"""Engine command lines for a sized plan: vLLM, SGLang, llama.cpp (llama-server), KTransformers (SGLang +
kt-kernel) and MLX. One string per engine (shell words, `shlex.split` parses them); null where the engine cannot
run the plan (GGUF weights in vLLM, safetensors in llama.cpp).

Sources of the flag names: vLLM docs "Engine Arguments"; SGLang docs "Server Arguments"; llama.cpp
tools/server/README.md (-ngl, --n-cpu-moe, -ot, -c, --cache-type-k, -np, --split-mode); kvcache-ai/ktransformers
doc/en/Kimi-K2-Thinking-Native.md (--kt-weight-path, --kt-cpuinfer, --kt-threadpool-count, --kt-num-gpu-experts,
--kt-method); mlx-lm README (mlx_lm.server). Values come from the plan: parallel layout, context length, the
engine's memory fraction (profiles/engines/), the KV dtype, and the running batch that keeps the SLO.
Multi-node commands name the head node $HEAD_IP, each node's index $NODE_RANK and (vLLM data parallel) its
first rank $DP_START_RANK = $NODE_RANK x GPUs per node. `scenario_flags` gives the same command for an `estimate`
scenario in its own engine.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from math import floor
from pathlib import Path
from types import SimpleNamespace

from planner.base.errors import PlannerError
from planner.base.yamlio import load_document
from planner.deploy.engines import load_engine
from planner.deploy.scenario import Scenario
from planner.hardware.hosts import Host
from planner.model.models import Model, load_model

KT_METHOD = {"int4-g32": "RAWINT4", "int4-g64": "AMXINT4", "int4-g128": "AMXINT4", "int8": "AMXINT8",
             "fp8-block128": "FP8"}
LLAMACPP_KV = {"bf16": "bf16", "fp16": "f16"}


def hf_repo(model: str) -> str:
    """The Hugging Face repository named by the model profile (`hf_repo`), else the model reference itself."""
    m = load_model(model)
    try:
        doc = load_document(m.file)
    except PlannerError:
        return model
    return str(doc.get("hf_repo") or model) if isinstance(doc, dict) else model


def checkpoint(model: str, weights: str) -> str:
    """The published checkpoint in this format (the official one, or a published quantization: the model profile's
    `published:`), else a path for the checkpoint the user has to quantize themselves."""
    return load_model(model).checkpoint(weights) or f"/models/{model}-{weights}-your-own-quantization"


def gguf_file(model: str, weights: str) -> str:
    return f"{hf_repo(model).split('/')[-1]}-{weights.removeprefix('gguf-').upper()}.gguf"


def _join(words: list) -> str:
    return " ".join(shlex.quote(str(w)) if not str(w).startswith("$") else str(w) for w in words)


def vllm(cand, wl, running: float) -> str | None:
    if cand.weights.startswith("gguf-") or cand.hw.gpu is None or cand.hw.host is not None:
        return None
    eng = load_engine("vllm")
    words = ["vllm", "serve", checkpoint(cand.model, cand.weights), "--tensor-parallel-size", cand.tp]
    if cand.pp > 1:
        words += ["--pipeline-parallel-size", cand.pp]
    if cand.dp > 1:
        words += ["--data-parallel-size", cand.dp]
        if cand.hw.nodes > 1:
            words += ["--data-parallel-size-local", cand.hw.gpus_per_node, "--data-parallel-address", "$HEAD_IP",
                      "--data-parallel-start-rank", "$DP_START_RANK"]
    elif cand.hw.nodes > 1:
        words += ["--distributed-executor-backend", "ray"]
    if cand.ep > 1:
        words.append("--enable-expert-parallel")
    words += ["--max-model-len", wl.context_len, "--gpu-memory-utilization", f"{eng.memory_fraction:g}",
              "--max-num-seqs", max(1, floor(running))]
    if cand.kv_cache in ("fp8", "fp8_ds_mla"):  # bf16/fp16: the default (`auto`, the model's dtype)
        words += ["--kv-cache-dtype", "fp8"]
    return _join(words + ["--trust-remote-code"])


def sglang(cand, wl, running: float) -> str | None:
    if cand.weights.startswith("gguf-") or cand.hw.gpu is None or cand.hw.host is not None:
        return None
    eng = load_engine("sglang")
    frac = eng.fraction_for(cand.tp * cand.dp * cand.pp)
    words = ["python", "-m", "sglang.launch_server", "--model-path", checkpoint(cand.model, cand.weights),
             "--tp", cand.tp * cand.dp]
    if cand.dp > 1:
        words += ["--dp", cand.dp, "--enable-dp-attention"]
    if cand.ep > 1:
        words += ["--ep-size", cand.ep]
    if cand.pp > 1:
        words += ["--pp-size", cand.pp]
    words += ["--mem-fraction-static", f"{frac:g}", "--context-length", wl.context_len,
              "--max-running-requests", max(1, floor(running))]
    if cand.kv_cache in ("fp8", "fp8_ds_mla"):
        words += ["--kv-cache-dtype", "fp8_e4m3"]
    if cand.hw.nodes > 1:
        words += ["--nnodes", cand.hw.nodes, "--node-rank", "$NODE_RANK", "--dist-init-addr", "$HEAD_IP:5000"]
    return _join(words + ["--trust-remote-code"])


def llamacpp(cand, wl) -> str | None:
    if not cand.weights.startswith("gguf-") or cand.kv_cache not in LLAMACPP_KV:
        return None
    slots = load_engine("llamacpp").max_num_seqs
    words = ["llama-server", "-m", gguf_file(cand.model, cand.weights), "-c", wl.context_len * slots, "-np", slots,
             "--cache-type-k", LLAMACPP_KV[cand.kv_cache]]
    if cand.hw.gpu is None:
        words += ["-ngl", 0]
    else:
        words += ["-ngl", 99]
        n_moe = load_model(cand.model).spec.num_moe_layers
        if cand.offload_layers and cand.offload_layers >= n_moe:
            words += ["-ot", ".ffn_.*_exps.=CPU"]
        elif cand.offload_layers:
            words += ["--n-cpu-moe", cand.offload_layers]
        if cand.tp > 1:
            words += ["--split-mode", "row", "--tensor-split", ",".join(["1"] * cand.tp)]
    if cand.hw.host is not None:
        words += ["--threads", cand.hw.host.cores]
    return _join(words)


def ik_llamacpp(cand, wl) -> str | None:
    """ik_llama.cpp's llama-server: llama.cpp's flags with its tensor parallelism (-sm graph) and, for MLA models,
    -mla 3 -amb 512 (ikawrakow/ik_llama.cpp docs/parameters.md; -fmoe, its fused MoE, spelled out)."""
    cmd = llamacpp(cand, wl)
    if cmd is None:
        return None
    mla = ["-mla", 3, "-amb", 512] if load_model(cand.model).spec.kv_lora_rank else []
    return f'{cmd.replace("--split-mode row", "-sm graph")} {_join(["-fmoe", *mla])}'


def ktransformers(cand, wl) -> str | None:
    if cand.engine != "ktransformers" or cand.weights not in KT_METHOD:
        return None
    spec = load_model(cand.model).spec
    n_moe = max(1, spec.num_moe_layers)
    gpu_experts = round((n_moe - cand.offload_layers) / n_moe * spec.n_routed_experts)  # per layer, approximate
    path = checkpoint(cand.model, cand.weights)
    host = cand.hw.host
    words = ["python", "-m", "sglang.launch_server", "--model", path, "--kt-weight-path", path,
             "--kt-cpuinfer", host.cores if host else 1, "--kt-threadpool-count", host.sockets if host else 1,
             "--kt-num-gpu-experts", gpu_experts, "--kt-method", KT_METHOD[cand.weights],
             "--tensor-parallel-size", cand.tp, "--max-total-tokens", wl.context_len,
             "--chunked-prefill-size", min(wl.context_len, 65536), "--trust-remote-code"]
    return _join(words)


def mlx(cand, wl) -> str | None:
    if cand.engine != "mlx":
        return None
    return _join(["mlx_lm.server", "--model", f"/models/{cand.model}-{cand.weights}-mlx", "--max-tokens",
                  wl.traffic.output_len])


def flags_for(cand, wl, running: float) -> dict[str, str | None]:
    """Command lines of every engine that can run `cand`; `running` = sequences per engine group at the SLO."""
    return {"vllm": vllm(cand, wl, running), "sglang": sglang(cand, wl, running), "llamacpp": llamacpp(cand, wl),
            "ktransformers": ktransformers(cand, wl), "mlx": mlx(cand, wl)}


@dataclass(frozen=True)
class _Group:
    """One engine group (replica) of a scenario, spelled as the command builders above read a sizing Candidate."""

    gpu: str | None  # accelerator profile; None = CPU only
    gpus_per_node: int
    nodes: int  # nodes of one replica
    host: Host | None  # host, where the command needs it (CPU-only runs and expert offload)


@dataclass(frozen=True)
class _Plan:
    model: str  # a reference load_model resolves (profile name, or the config.json path)
    hw: _Group
    weights: str
    kv_cache: str
    engine: str
    tp: int
    ep: int
    pp: int
    dp: int  # dp_attention ranks
    offload_layers: int  # MoE layers whose routed experts live in host RAM


@dataclass(frozen=True)
class _Lengths:
    context_len: int  # longest request (--max-model-len, --context-length, -c per slot)
    traffic: SimpleNamespace  # output_len (mlx_lm.server --max-tokens)


BUILDERS = {"vllm": vllm, "sglang": sglang, "llamacpp": llamacpp, "ik_llamacpp": ik_llamacpp,
            "ktransformers": ktransformers, "mlx": mlx}


def scenario_flags(sc: Scenario, running: float | None = None) -> str | None:
    """The launch command of one engine group of scenario `sc` in its own engine (vllm, sglang, llamacpp,
    ktransformers, mlx), from its model, weights, parallel plan, KV dtype and context; `running` is the running
    batch per engine group (estimate's serving.running_per_group; default the engine's sequence cap). None where
    the engine has no command builder here (trtllm, ideal, deepseek-internal) or cannot load the weights
    (GGUF in vLLM, safetensors in llama.cpp)."""
    build = BUILDERS.get(sc.engine.name)
    if build is None:
        return None
    p = sc.parallelism
    gpn = max(1, sc.gpus_per_node)
    nodes = max(1, -(-p.gpus_per_replica // gpn)) if sc.gpu is not None else 1
    host = sc.host if sc.gpu is None or sc.expert_layers_on_cpu else None
    plan = _Plan(_model_ref(sc.model), _Group(sc.gpu, sc.gpus_per_node, nodes, host), sc.weights.name, sc.kv_cache,
                 sc.engine.name, p.tp, p.ep, p.pp, p.dp_attention, sc.expert_layers_on_cpu)
    wl = _Lengths(sc.workload.context_len, SimpleNamespace(output_len=sc.workload.output_len))
    cmd = build(plan, wl, running or sc.engine.running_cap) if build in (vllm, sglang) else build(plan, wl)
    ex = sc.weights.exact
    if cmd and ex is not None:  # the user's own checkpoint in place of the published one
        # llama.cpp opens a split set by its first part; vLLM and SGLang a folder of safetensors
        folder = ex.path if Path(ex.path).is_dir() else str(Path(ex.files[0]).parent)
        own = ex.files[0] if ex.kind == "gguf" else folder
        gguf = build in (llamacpp, ik_llamacpp)
        named = gguf_file(plan.model, plan.weights) if gguf else checkpoint(plan.model, plan.weights)
        cmd = cmd.replace(_join([named]), _join([own]), 1)
    return cmd


def _model_ref(model: Model) -> str:
    """A reference load_model resolves to `model`: its Hub id, its profile name, else the config file it was read
    from."""
    if model.hub_id:
        return model.hub_id
    try:
        if load_model(model.name).file == model.file:
            return model.name
    except PlannerError:
        pass
    return model.file
