"""`python -m planner compare` (issue 22): each tool's result file is recognised by content and read as its source
defines the keys (fixtures in tests/data/results/, cited there); a vLLM and a llama-bench result print measured
beside predicted for every metric they hold; an unknown file gets one line naming the formats tried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.cli import main
from planner.compare import aiperf, batchedbench, llamabench, plain, sglang, vllm
from planner.compare.read import READERS, read_result
from planner.compare.result import model_profile
from planner.compare.run import Deployment, compare

DATA = Path(__file__).parent / "data" / "results"


def _measured(run) -> dict:
    return dict(run.measured)


def test_vllm_result_states_workload_and_metrics():
    fmt, runs = read_result(DATA / "vllm-bench-serve.json")
    assert fmt == vllm.NAME and len(runs) == 1
    run = runs[0]
    # per-request arrays give the lengths; --max-concurrency 8 the requests in flight
    assert (run.phase, run.input_len, run.output_len, run.concurrency) == ("serve", 1024, 256, 8)
    assert run.model == "deepseek-ai/DeepSeek-V3" and model_profile(run.model) == "deepseek-v3"
    m = _measured(run)
    assert m["ttft_ms"] == 435.0 and m["tpot_ms"] == 31.0 and m["itl_ms"] == 31.0 and m["e2e_latency_ms"] == 8340.0
    assert m["system_output_tokens_per_s"] == 230.1 and m["ttft_p99_ms"] == 469.3


def test_sglang_serving_and_one_batch():
    fmt, runs = read_result(DATA / "sglang-bench-serving.jsonl")
    assert fmt == sglang.NAME
    run = runs[0]
    # max concurrency 16 but only 4 prompts: 4 in flight; request_rate written as Infinity by json.dumps
    assert (run.input_len, run.output_len, run.concurrency, run.engine) == (2000, 500, 4, "sglang")
    assert _measured(run)["system_total_tokens_per_s"] == pytest.approx(199.0 + 49.75)
    _, batch = read_result(DATA / "sglang-bench-one-batch.jsonl")
    assert [(r.phase, r.concurrency) for r in batch] == [("prefill", 1), ("decode", 1), ("prefill", 16),
                                                         ("decode", 16)]
    assert _measured(batch[3])["tpot_ms"] == pytest.approx(36.0)


def test_aiperf_aggregated_and_records():
    fmt, runs = read_result(DATA / "aiperf-profile-export.json")
    assert fmt == aiperf.NAME
    run = runs[0]
    assert (run.input_len, run.output_len, run.concurrency, run.model) == (3000, 512, 16, "Qwen/Qwen3-235B-A22B")
    assert _measured(run)["tpot_ms"] == 19.3 and _measured(run)["output_tokens_per_s_per_user"] == 51.8
    _, recs = read_result(DATA / "aiperf-profile-export.jsonl")
    run = recs[0]
    # 6 successful requests of 1.9 s over 4.1 s (starts 0/0.1/0.2 s and 2.0/2.1/2.2 s): 2.78 in flight on average
    assert (run.input_len, run.output_len, run.concurrency) == (550, 100, 3)
    assert _measured(run)["system_output_tokens_per_s"] == pytest.approx(600 / 4.1)


def test_llama_bench_rows():
    fmt, runs = read_result(DATA / "llama-bench.json")
    assert fmt == llamabench.NAME
    assert [r.label for r in runs] == ["pp512", "tg128", "tg128 @ d4096"]
    pp, tg, deep = runs
    assert (pp.phase, pp.input_len, pp.output_len) == ("prefill", 512, 0)
    assert (tg.phase, tg.input_len, tg.output_len, tg.concurrency) == ("decode", 0, 128, 1)
    assert (deep.input_len, deep.prefix_tokens) == (4096, 4096)
    assert (pp.model, pp.weights, pp.engine) == ("qwen3-30b-a3b", "gguf-q4_k_m", "llamacpp")
    assert _measured(tg)["tpot_ms"] == pytest.approx(1e3 / _measured(tg)["output_tokens_per_s_per_user"])
    assert llamabench.weights_of("deepseek2 671B Q2_K - Medium", "DeepSeek-R1-UD-Q2_K_XL-00001-of-00005.gguf") \
        == "gguf-ud-q2_k_xl"


@pytest.mark.parametrize("name", ["plain.csv", "plain.yaml"])
def test_plain_fallback(name):
    fmt, runs = read_result(DATA / name)
    assert fmt == plain.NAME
    run = runs[0]
    assert (run.model, run.input_len, run.output_len, run.concurrency) == ("mixtral-8x7b", 1000, 200, 4)
    assert _measured(run)["ttft_ms"] == 150 and _measured(run)["tpot_ms"] == 12.5


def test_each_reader_takes_only_its_own_files():
    files = {vllm: ["vllm-bench-serve.json"], sglang: ["sglang-bench-serving.jsonl", "sglang-bench-one-batch.jsonl"],
             aiperf: ["aiperf-profile-export.json", "aiperf-profile-export.jsonl"], llamabench: ["llama-bench.json"],
             batchedbench: ["llama-batched-bench.jsonl", "llama-batched-bench.md"], plain: ["plain.csv", "plain.yaml"]}
    for reader, names in files.items():
        for name in names:
            assert read_result(DATA / name)[0] == reader.NAME, name
    assert len(READERS) == len(files)


@pytest.mark.parametrize("text", ['{"a": 1}', "\x00\x01", "[1, 2]", "just words", '{"mean_ttft_ms": "x"'])
def test_unknown_file_is_one_line_naming_formats_tried(tmp_path, capsys, text):
    bad = tmp_path / "r.json"
    bad.write_text(text)
    assert main(["compare", str(bad), "--gpu", "h100-sxm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert all(r.NAME in err for r in READERS)


def test_hardware_is_asked_for():
    with pytest.raises(PlannerError, match="--gpu"):
        compare(str(DATA / "vllm-bench-serve.json"), Deployment())


def _rows(doc: dict) -> list[dict]:
    return [row for run in doc["runs"] for row in run["metrics"]]


def test_compare_vllm_prints_every_metric(capsys):
    assert main(["compare", str(DATA / "vllm-bench-serve.json"), "--gpu", "h200-sxm", "--gpus", "8", "--tp", "8",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = _rows(doc)
    _, runs = read_result(DATA / "vllm-bench-serve.json")
    assert [r["metric"] for r in rows] == [m for m, _ in runs[0].measured]
    run = doc["runs"][0]
    assert run["scenario"]["model"] == "deepseek-v3" and run["workload"]["concurrency"] == 8
    assert run["bottleneck"]["decode"] and run["fits"]
    for r in rows:
        if r["metric"] in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms", "system_output_tokens_per_s"):
            assert r["predicted"] > 0 and r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1)
    assert main(["compare", str(DATA / "vllm-bench-serve.json"), "--gpu", "h200-sxm", "--gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert all(m in out for m, _ in runs[0].measured) and "bottleneck:" in out


def test_compare_llama_bench_prints_every_row(capsys):
    assert main(["compare", str(DATA / "llama-bench.json"), "--gpu", "h100-sxm", "--gpus", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in doc["runs"]] == ["pp512", "tg128", "tg128 @ d4096"]
    for run in doc["runs"]:
        assert run["scenario"]["engine"] == "llamacpp" and run["scenario"]["weights"] == "gguf-q4_k_m"
        assert all(row["predicted"] > 0 for row in run["metrics"])
    assert main(["compare", str(DATA / "llama-bench.json"), "--gpu", "h100-sxm", "--gpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "prefill_tokens_per_s" in out and "output_tokens_per_s_per_user" in out and "tpot_ms" in out


def test_scenario_file_gives_the_deployment(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text("model: deepseek-v3\nweights: fp8-block128\nengine: sglang\nhardware: {gpu: h200-sxm, "
                  "gpus_per_node: 8}\nparallelism: {tp: 8, ep: 8}\nworkload: {phase: decode, batch_per_gpu: 4}\n")
    doc = compare(str(DATA / "vllm-bench-serve.json"), Deployment(scenario=str(sc)))
    run = doc["runs"][0]
    assert run["scenario"]["engine"] == "sglang" and run["scenario"]["parallelism"]["ep"] == 8
    assert run["workload"] == {"phase": "serve", "input_len": 1024, "output_len": 256, "concurrency": 8}


# ---------------------------------------------------------------- result store and --calibrate (issue 22)

@pytest.fixture(autouse=True)
def _own_places(tmp_path, monkeypatch):
    """No test writes into the checkout: the default store and the user calibration folder are under tmp_path."""
    import planner.base.store as store

    monkeypatch.setattr(store, "DEFAULT_PATH", tmp_path / "default.sqlite")
    monkeypatch.setenv("PLANNER_USER_CALIBRATION", str(tmp_path / "calibration-user"))


VLLM_FLAGS = [str(DATA / "vllm-bench-serve.json"), "--gpu", "h200-sxm", "--gpus", "8", "--tp", "8"]


def test_store_round_trip(tmp_path, capsys):
    from planner.base.store import compared_rows

    db = tmp_path / "mine.sqlite"
    assert main(["compare", *VLLM_FLAGS, "--store", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = compared_rows(db)
    assert doc["stored"] == {"store": str(db), "rows": len(rows)} and len(rows) == len(_rows(doc))
    for kept, row in zip(rows, _rows(doc), strict=True):
        assert (kept["metric"], kept["measured"], kept["predicted"], kept["error"]) == \
            (row["metric"], row["measured"], row["predicted"], row["error"])
        assert kept["tool"] == vllm.NAME and kept["model"] == "deepseek-v3" and kept["hardware"] == "8 x h200-sxm (TP8)"
        assert kept["file"] == "vllm-bench-serve.json" and kept["stored_utc"]
    scenario = json.loads(rows[0]["scenario_json"])
    assert scenario["workload"]["concurrency"] == 8 and scenario["hardware"]["gpu"] == "h200-sxm"
    # a second comparison is added, newest first; the default store is used without --store
    assert main(["compare", str(DATA / "llama-bench.json"), "--gpu", "h100-sxm", "--gpus", "1", "--store",
                 str(db)]) == 0
    assert "kept" in capsys.readouterr().out
    rows = compared_rows(db)
    assert rows[0]["tool"] == llamabench.NAME and rows[-1]["tool"] == vllm.NAME
    assert main(["compare", *VLLM_FLAGS]) == 0 and compared_rows(tmp_path / "default.sqlite")
    assert main(["compare", *VLLM_FLAGS, "--no-store", "--store", str(tmp_path / "none.sqlite")]) == 0
    assert not (tmp_path / "none.sqlite").exists()
    # views never raise: missing, not SQLite, or a kernels_bench store without the table read as no rows
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    assert compared_rows(tmp_path / "missing.sqlite") == [] and compared_rows(junk) == []
    capsys.readouterr()
    assert main(["compare", *VLLM_FLAGS, "--store", " "]) == 2
    assert "--store" in capsys.readouterr().err


def _estimate(mapping: dict) -> dict:
    from planner.deploy.scenario_file import scenario_from_mapping
    from planner.serving.estimate import estimate

    return estimate(scenario_from_mapping(mapping, "test.yaml"))


def test_calibrate_writes_a_correction_a_scenario_selects(tmp_path, capsys):
    from planner.deploy.correction import HEAD, user_dir

    assert main(["compare", *VLLM_FLAGS, "--no-store", "--calibrate", "my-h200", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    path = user_dir() / "my-h200.yaml"
    assert doc["calibration"]["file"] == str(path) and path.read_text().startswith(HEAD)
    ratios = {k: v["ratio"] for k, v in doc["calibration"]["ratios"].items()}
    measured = {r["metric"]: r["measured"] for r in _rows(doc)}
    predicted = {r["metric"]: r["predicted"] for r in _rows(doc)}
    assert ratios["tpot_ms"] == pytest.approx(measured["tpot_ms"] / predicted["tpot_ms"])
    assert "itl_ms" not in ratios and "request_throughput_per_s" not in ratios  # carried by tpot / output rate
    moved = {m["metric"]: m for m in doc["calibration"]["moved"]}
    assert moved["itl_ms"]["corrected"] == pytest.approx(measured["itl_ms"])  # one run: corrected = measured
    assert moved["ttft_ms"]["error_corrected"] == pytest.approx(0, abs=1e-9)
    # a scenario naming the correction gets corrected metrics and an assumption line saying by how much
    plain = dict(doc["runs"][0]["input"])
    base = _estimate(plain)
    fixed = _estimate({**plain, "correction": "my-h200"})
    assert fixed["metrics"]["tpot_ms"] == pytest.approx(measured["tpot_ms"], rel=1e-6)
    assert fixed["metrics"]["ttft_ms"] == pytest.approx(measured["ttft_ms"], rel=1e-6)
    assert fixed["metrics"]["output_tokens_per_s_per_user"] == pytest.approx(
        base["metrics"]["output_tokens_per_s_per_user"] / ratios["tpot_ms"])
    line = [a for a in fixed["assumptions"] if a.startswith("correction my-h200")]
    assert len(line) == 1 and "tpot_ms x" in line[0] and "calibrated on another" not in line[0]
    assert fixed["correction"]["moved"]["tpot_ms"]["before"] == pytest.approx(base["metrics"]["tpot_ms"])
    # never applied without the key; another deployment is said
    assert "correction" not in base and not any("correction" in a for a in base["assumptions"])
    other = _estimate({**plain, "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8}, "weights": "int4-g128",
                       "correction": "my-h200"})
    assert any("calibrated on another deployment" in a and "gpu h200-sxm (this scenario: h100-sxm)" in a
               for a in other["assumptions"])
    # compare --calibrate fits on the model's own prediction even when the scenario file names a correction
    sc = tmp_path / "s.yaml"
    sc.write_text("model: deepseek-v3\nhardware: {gpu: h200-sxm, gpus_per_node: 8}\nparallelism: {tp: 8}\n"
                  "correction: my-h200\n")
    again = compare(str(DATA / "vllm-bench-serve.json"), Deployment(scenario=str(sc), calibrate="x"))
    assert _rows(again)[0]["predicted"] == pytest.approx(predicted["ttft_ms"])
    corrected = compare(str(DATA / "vllm-bench-serve.json"), Deployment(scenario=str(sc)))
    assert _rows(corrected)[0]["predicted"] == pytest.approx(measured["ttft_ms"])


def test_calibrate_refuses_bad_names_and_foreign_files(capsys):
    from planner.deploy.correction import user_dir

    for name in ("../up", "", ".hidden", "a b"):
        assert main(["compare", *VLLM_FLAGS, "--no-store", "--calibrate", name]) == 2
        assert "--calibrate" in capsys.readouterr().err
    user_dir().mkdir(parents=True)
    (user_dir() / "mine.yaml").write_text("ratios: {}\n")  # not written by the planner: kept
    assert main(["compare", *VLLM_FLAGS, "--no-store", "--calibrate", "mine"]) == 2
    assert "not written by the planner" in capsys.readouterr().err
    assert (user_dir() / "mine.yaml").read_text() == "ratios: {}\n"
    with pytest.raises(PlannerError, match="no correction 'absent'"):
        _estimate({"model": "deepseek-v3", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8},
                   "correction": "absent"})
