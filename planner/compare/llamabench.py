"""llama.cpp `llama-bench -o json` (a JSON array) and `-o jsonl` (one object per line): one row per test.

Keys from ggml-org/llama.cpp `tools/llama-bench/llama-bench.cpp` (builds b5000-b6800, 2025): `test::get_fields()`
`build_commit, build_number, cpu_info, gpu_info, backends, model_filename, model_type, model_size, model_n_params,
n_batch, n_ubatch, n_threads, cpu_mask, cpu_strict, poll, type_k, type_v, n_gpu_layers, n_cpu_moe, split_mode,
main_gpu, no_kv_offload, flash_attn, devices, tensor_split, tensor_buft_overrides, use_mmap, embeddings, no_op_offload,
n_prompt, n_gen, n_depth, test_time, avg_ns, stddev_ns, avg_ts, stddev_ts`, and json_printer/jsonl_printer add the
per-repetition arrays `samples_ns` and `samples_ts`. Semantics: a test processes n_prompt prompt tokens (pp) or
generates n_gen tokens one at a time (tg) after filling n_depth tokens of context untimed; avg_ts is the mean over
repetitions of (n_prompt + n_gen) / time. `model_type` is llama_model_desc: "<arch> <size> <ftype name>" with the
ftype names of llama_model_ftype_name (src/llama-model-loader.cpp), e.g. "Q4_K - Medium".
"""

from __future__ import annotations

import re
from typing import Any

from planner.base.yamlio import PROFILES, profile_names
from planner.compare.result import Run, is_record, metrics, model_profile, number, whole

NAME = "llama-bench JSON/JSONL"
# llama_model_ftype_name -> profiles/quant/ name
FTYPES = {"Q8_0": "gguf-q8_0", "Q6_K": "gguf-q6_k", "Q5_K - Medium": "gguf-q5_k_m", "Q4_K - Medium": "gguf-q4_k_m",
          "Q3_K - Medium": "gguf-q3_k_m", "Q2_K - Medium": "gguf-q2_k", "IQ2_XXS - 2.0625 bpw": "gguf-iq2_xxs",
          "IQ1_S - 1.5625 bpw": "gguf-iq1_s", "TQ1_0 - 1.69 bpw ternary": "gguf-tq1_0", "BF16": "bf16", "F16": "fp16"}


def _row(doc: Any) -> bool:
    return is_record(doc, "n_prompt", "n_gen", "avg_ts")


def recognise(doc: Any) -> bool:
    rows = doc if isinstance(doc, list) else [doc]
    return bool(rows) and all(_row(r) for r in rows)


def weights_of(model_type: Any, filename: Any) -> str | None:
    """The weight format a llama-bench row names: an unsloth dynamic recipe from the file name ("UD-Q2_K_XL"),
    else the ftype at the end of model_type."""
    known = set(profile_names(PROFILES / "quant"))
    if isinstance(filename, str):
        m = re.search(r"UD-([A-Za-z0-9_]+)", filename)
        if m and f"gguf-ud-{m.group(1).lower()}" in known:
            return f"gguf-ud-{m.group(1).lower()}"
    if isinstance(model_type, str):
        for ftype, fmt in FTYPES.items():
            if model_type.endswith(" " + ftype) and fmt in known:
                return fmt
    return None


def runs(doc: Any) -> list[Run]:
    return [_run(r) for r in (doc if isinstance(doc, list) else [doc])]


def _run(r: dict) -> Run:
    n_prompt, n_gen = whole(number(r.get("n_prompt"))) or 0, whole(number(r.get("n_gen"))) or 0
    depth = whole(number(r.get("n_depth"))) or 0
    ts = r.get("avg_ts")
    label = (f"pp{n_prompt}" if n_prompt else "") + (f"tg{n_gen}" if n_gen else "") + (f" @ d{depth}" if depth else "")
    samples = r.get("samples_ts") if isinstance(r.get("samples_ts"), list) else []
    notes = [f"{r.get('model_type', '?')}, n_gpu_layers {r.get('n_gpu_layers', '?')}, n_cpu_moe "
             f"{r.get('n_cpu_moe', 0)}, n_ubatch {r.get('n_ubatch', '?')}, {len(samples)} repetitions"]
    if n_gen:  # token generation: one sequence, one token per step at context depth .. depth + n_gen
        phase, measured = "decode", metrics([("output_tokens_per_s_per_user", ts)])
        if number(ts):
            measured += (("tpot_ms", 1e3 / number(ts)),)
        if n_prompt:
            notes.append("pp+tg test: avg_ts counts prompt and generated tokens together")
    else:
        phase, measured = "prefill", metrics([("prefill_tokens_per_s", ts)])
    return Run(label=label, phase=phase, input_len=depth + n_prompt, output_len=n_gen, concurrency=1,
               model=model_profile(r.get("model_filename")) or r.get("model_filename"), measured=measured,
               notes=tuple(notes), prefix_tokens=depth,
               weights=weights_of(r.get("model_type"), r.get("model_filename")),
               engine="llamacpp", expert_layers_on_cpu=whole(number(r.get("n_cpu_moe"))) or 0)
