"""What a benchmark result file states: `Run`s (one workload and what was measured on it), and the small helpers
the readers share (numbers from loosely typed JSON, means of per-request arrays, model names to profiles).

Measured metrics use CONTRACT.md §3's names where one fits (`ttft_ms`, `tpot_ms`, `e2e_latency_ms`,
`output_tokens_per_s_per_user`, `system_output_tokens_per_s`, `system_total_tokens_per_s`) and these extensions,
which planner.compare.run maps onto the prediction:
- `ttft_median_ms`, `ttft_p99_ms`, `tpot_median_ms`, `tpot_p99_ms`, `e2e_latency_p99_ms`, and from per-request
  arrays (vLLM --save-detailed) `<m>_p50_ms`, `<m>_p90_ms`, `<m>_p99_ms` for ttft, tpot, itl, e2e_latency: statistics
  of the same quantities (predicted only where the estimate gives that percentile);
- `itl_ms`: mean inter-token latency, predicted as the decode step (the planner's TPOT);
- `prefill_tokens_per_s`: prompt tokens per second of one run (llama-bench pp rows; a static batch's prefill in
  bench_one_batch and llama-batched-bench);
- `request_throughput_per_s`: completed requests per second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from planner.base.yamlio import PROFILES, profile_names


@dataclass(frozen=True)
class Run:
    label: str  # how the file names this run ("pp512", "rate inf, max concurrency 64", ...)
    phase: str  # serve | prefill | decode (CONTRACT.md §2 workload.phase)
    input_len: int | None  # mean prompt tokens per request; None = not stated
    output_len: int | None  # mean generated tokens per request
    concurrency: float | None  # requests in flight (stated, or derived; see notes)
    model: str | None  # the model as the file names it (HF id, path, GGUF file name)
    measured: tuple[tuple[str, float], ...]  # (metric, value) in file order
    notes: tuple[str, ...] = ()  # how a workload value was derived
    prefix_tokens: int = 0  # prompt tokens already in the KV cache (llama-bench n_depth)
    weights: str | None = None  # a weight format the file identifies (profiles/quant/ name)
    engine: str | None = None  # the engine the tool implies (llama-bench: llamacpp)
    expert_layers_on_cpu: int = 0  # MoE layers whose experts the run kept in host RAM (llama-bench n_cpu_moe)


def number(value: Any) -> float | None:
    """A finite number from a JSON value (numbers, numeric strings such as vLLM's "inf" excluded); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def mean(values: Iterable[Any]) -> float | None:
    nums = [x for x in (number(v) for v in values) if x is not None]
    return sum(nums) / len(nums) if nums else None


def metrics(pairs: Iterable[tuple[str, Any]], scale: float = 1.0) -> tuple[tuple[str, float], ...]:
    """(metric, value x scale) for the pairs whose value is a finite number."""
    out = []
    for name, value in pairs:
        x = number(value)
        if x is not None:
            out.append((name, x * scale))
    return tuple(out)


def serving_latencies(d: Mapping, e2e: str) -> list[tuple[str, Any]]:
    """The latency keys of vllm benchmarks/serve.py's result, which SGLang bench_serving writes under the same names:
    mean / median / p99 TTFT and TPOT, mean ITL, mean and p99 end-to-end latency (`e2e`: "e2el" in vLLM,
    "e2e_latency" in SGLang), as (metric, value) pairs for `metrics`."""
    return [("ttft_ms", d.get("mean_ttft_ms")), ("ttft_median_ms", d.get("median_ttft_ms")),
            ("ttft_p99_ms", d.get("p99_ttft_ms")), ("tpot_ms", d.get("mean_tpot_ms")),
            ("tpot_median_ms", d.get("median_tpot_ms")), ("tpot_p99_ms", d.get("p99_tpot_ms")),
            ("itl_ms", d.get("mean_itl_ms")), ("e2e_latency_ms", d.get(f"mean_{e2e}_ms")),
            ("e2e_latency_p99_ms", d.get(f"p99_{e2e}_ms"))]


def whole(x: float | None) -> int | None:
    return None if x is None else max(0, round(x))


def is_record(doc: Any, *keys: str) -> bool:
    """A mapping that has every one of `keys`."""
    return isinstance(doc, Mapping) and all(k in doc for k in keys)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def model_profile(name: Any) -> str | None:
    """The shipped model profile a file's model name points at: an HF id or path ("deepseek-ai/DeepSeek-R1",
    "/models/Qwen3-30B-A3B") by its last part, a GGUF file name ("Kimi-K2.5-UD-Q2_K_XL-00001-of-00008.gguf") by the
    longest profile name it starts with; None when no profile matches."""
    if not isinstance(name, str) or not name.strip():
        return None
    last = _slug(name.replace("\\", "/").rstrip("/").split("/")[-1])
    names = profile_names(PROFILES / "models")
    if last in names:
        return last
    starts = [n for n in names if last.startswith(n + "-") or last.startswith(n + ".")]
    return max(starts, key=len) if starts else None


def serving_shape(*, input_lens: Any, output_lens: Any, total_input: Any, total_output: Any, completed: Any,
                  max_concurrency: Any, request_rate: Any, num_prompts: Any, mean_e2e_ms: Any,
                  request_throughput: Any, measured_concurrency: Any = None) -> tuple[int | None, int | None,
                                                                                      float | None, tuple[str, ...]]:
    """Mean prompt and answer lengths and the requests in flight of a serving benchmark (vLLM, SGLang, aiperf).

    Lengths: the per-request arrays when the file has them (requests that produced output), else the totals over
    the completed requests. Concurrency, in order: the client's limit (`--max-concurrency`, at most the prompt
    count); every prompt at once when the rate is infinite (the tools' default: all requests sent at time 0); else
    the mean in flight the tool measured (SGLang `concurrency`); else Little's law, completed requests per second x
    mean end-to-end latency."""
    notes: list[str] = []
    ins = input_lens if isinstance(input_lens, list) else []
    outs = output_lens if isinstance(output_lens, list) else []
    ok = [k for k, o in enumerate(outs) if number(o)] if outs else []
    if ins and outs and len(ins) == len(outs) and ok:
        input_len, output_len = mean(ins[k] for k in ok), mean(outs[k] for k in ok)
        notes.append(f"lengths: means over the {len(ok)} per-request entries with output")
    else:
        n = number(completed)
        input_len = number(total_input) / n if n and number(total_input) is not None else None
        output_len = number(total_output) / n if n and number(total_output) is not None else None
    limit, rate, prompts = number(max_concurrency), request_rate, number(num_prompts)
    infinite = rate is None or (isinstance(rate, str) and rate.strip().lower() in ("inf", "infinity")) or (
        isinstance(rate, float) and math.isinf(rate))
    concurrency = None
    if limit:
        concurrency = min(limit, prompts) if prompts else limit
        notes.append(f"concurrency {concurrency:g}: the client's max concurrency")
    elif infinite and prompts:
        concurrency = prompts
        notes.append(f"concurrency {prompts:g}: request rate inf sends every prompt at once")
    elif number(measured_concurrency):
        concurrency = number(measured_concurrency)
        notes.append(f"concurrency {concurrency:.3g}: the mean in flight the tool measured")
    elif number(request_throughput) and number(mean_e2e_ms):
        concurrency = number(request_throughput) * number(mean_e2e_ms) / 1e3
        notes.append(f"concurrency {concurrency:.3g}: Little's law, {number(request_throughput):.3g} requests/s x "
                     f"{number(mean_e2e_ms):,.0f} ms mean end-to-end latency (rate {rate})")
    if concurrency is not None:
        concurrency = max(1, round(concurrency))
    return whole(input_len), whole(output_len), concurrency, tuple(notes)
