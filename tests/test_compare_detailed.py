"""compare (issue 22): llama-batched-bench results (JSONL and its Markdown table; keys from ggml-org/llama.cpp
tools/batched-bench/batched-bench.cpp) and vLLM `--save-detailed` per-request arrays (vllm/benchmarks/serve.py
calculate_metrics), with a GGUF file given as --weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planner.cli import main
from planner.compare.read import READERS, read_result
from planner.compare.vllm import per_request
from tests.test_weights_file import _gguf_tensors, _model, _write_gguf

DATA = Path(__file__).parent / "data" / "results"


def test_batched_bench_jsonl_and_table_read_alike():
    name, runs = read_result(DATA / "llama-batched-bench.jsonl")
    name_md, runs_md = read_result(DATA / "llama-batched-bench.md")
    assert name == name_md == "llama-batched-bench JSONL/table"
    assert [(r.label, r.phase, r.input_len, r.output_len, r.concurrency) for r in runs] == \
        [(r.label, r.phase, r.input_len, r.output_len, r.concurrency) for r in runs_md]
    decode = [r for r in runs if r.phase == "decode"]
    assert [r.concurrency for r in decode] == [1, 4, 8]
    row = json.loads((DATA / "llama-batched-bench.jsonl").read_text().splitlines()[2])  # pl 8
    m = dict(decode[2].measured)
    assert m["tpot_ms"] == pytest.approx(row["t_tg"] / row["tg"] * 1e3)  # tg steps of one token per sequence
    assert m["system_output_tokens_per_s"] == pytest.approx(row["pl"] * row["tg"] / row["t_tg"], rel=1e-6)
    prefill = [r for r in runs if r.phase == "prefill"]
    assert dict(prefill[2].measured)["prefill_tokens_per_s"] == pytest.approx(row["pl"] * row["pp"] / row["t_pp"],
                                                                             rel=1e-6)
    for a, b in zip(runs, runs_md, strict=True):  # the table rounds to 2 decimals
        for (ka, va), (kb, vb) in zip(a.measured, b.measured, strict=True):
            assert ka == kb and va == pytest.approx(vb, rel=1e-3)


def test_batched_bench_shared_prompt_is_one_prefill(tmp_path):
    row = json.loads((DATA / "llama-batched-bench.jsonl").read_text().splitlines()[1])
    row.update(is_pp_shared=1, speed_pp=row["pp"] / row["t_pp"], n_kv=row["pp"] + row["pl"] * row["tg"])
    f = tmp_path / "shared.jsonl"
    f.write_text(json.dumps(row) + "\n")
    _, runs = read_result(f)
    assert runs[0].concurrency == 1 and "is_pp_shared" in runs[0].notes[-1] and runs[1].concurrency == row["pl"]


def test_unknown_file_names_batched_bench_among_the_tried(tmp_path, capsys):
    bad = tmp_path / "x.txt"
    bad.write_text("| a | b |\n| 1 | 2 |\n")
    assert main(["compare", str(bad), "--gpu", "h100-sxm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(r.NAME in err for r in READERS) and "llama-batched-bench" in err


def test_batched_bench_compare_with_a_gguf_file(tmp_path, capsys):
    model = _model(tmp_path)
    tensors = _gguf_tensors(model)
    _write_gguf(tmp_path / "tiny-Q8_0.gguf", tensors)
    assert main(["compare", str(DATA / "llama-batched-bench.md"), "--model", model, "--weights",
                 str(tmp_path / "tiny-Q8_0.gguf"), "--gpu", "h100-sxm", "--gpus", "1", "--no-store", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "llama-batched-bench JSONL/table" and len(doc["runs"]) == 6
    for run in doc["runs"]:
        assert run["scenario"]["engine"] == "llamacpp"
        assert run["scenario"]["weights_file"]["weights_bytes"] == sum(a.nbytes for _, a, _ in tensors)
        assert all(row["predicted"] for row in run["metrics"])
    tpot = [row for r in doc["runs"] for row in r["metrics"] if row["metric"] == "tpot_ms"]
    assert len(tpot) == 3 and all(row["error"] == pytest.approx(row["predicted"] / row["measured"] - 1) for row in tpot)


def _detailed(n: int = 6) -> dict:
    """A --save-detailed result as calculate_metrics leaves it: per-request ttfts (s), itls (s gaps), output_lens,
    latencies, errors; the last request failed (output length 0, an error)."""
    rng = np.random.default_rng(0)
    outs = [int(x) for x in rng.integers(50, 200, n - 1)] + [0]
    ttfts = [float(x) for x in rng.uniform(0.1, 0.5, n - 1)] + [0.0]
    itls = [[float(g) for g in rng.uniform(0.02, 0.04, o - 1)] for o in outs[:-1]] + [[]]
    lat = [t + sum(g) for t, g in zip(ttfts, itls, strict=True)]
    return {"model_id": "Qwen/Qwen3-30B-A3B", "num_prompts": n, "request_rate": "inf", "max_concurrency": 4,
            "completed": n - 1, "failed": 1, "mean_ttft_ms": 1e3 * float(np.mean(ttfts[:-1])),
            "output_throughput": 100.0, "p99_ttft_ms": 1e3 * float(np.percentile(ttfts[:-1], 99)),
            "input_lens": [1000] * n, "output_lens": outs, "ttfts": ttfts, "itls": itls, "latencies": lat,
            "errors": [""] * (n - 1) + ["timeout"]}


def test_vllm_save_detailed_adds_percentiles_as_vllm_computes_them(tmp_path):
    doc = _detailed()
    found, notes = per_request(doc)
    m = dict(found)
    ok = slice(0, len(doc["ttfts"]) - 1)  # the failed request is left out
    tpots = [(lat - t) / (o - 1) for lat, t, o in zip(doc["latencies"][ok], doc["ttfts"][ok], doc["output_lens"][ok],
                                                       strict=True)]
    assert m["tpot_p90_ms"] == pytest.approx(1e3 * np.percentile(tpots, 90))
    assert m["ttft_p50_ms"] == pytest.approx(1e3 * np.median(doc["ttfts"][ok]))
    gaps = [g for r in doc["itls"] for g in r]
    assert m["itl_p99_ms"] == pytest.approx(1e3 * np.percentile(gaps, 99))
    assert m["e2e_latency_ms"] == pytest.approx(1e3 * np.mean(doc["latencies"][ok]))
    assert "5 per-request entries" in notes[0]
    # latencies absent (older files): ttft + the gaps, as serve.py's timeline plot rebuilds them
    older = {k: v for k, v in doc.items() if k != "latencies"}
    assert dict(per_request(older)[0])["e2e_latency_p90_ms"] == pytest.approx(m["e2e_latency_p90_ms"])
    f = tmp_path / "detailed.json"
    f.write_text(json.dumps(doc))
    _, runs = read_result(f)
    measured = dict(runs[0].measured)
    assert measured["ttft_p99_ms"] == doc["p99_ttft_ms"]  # the summary's own value stays
    assert measured["ttft_p90_ms"] == pytest.approx(m["ttft_p90_ms"]) and "tpot_p50_ms" in measured
    assert per_request({k: v for k, v in doc.items() if k not in ("ttfts", "itls")}) == ((), ())
