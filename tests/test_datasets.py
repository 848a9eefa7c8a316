"""Benchmark datasets (profiles/datasets/, workload.dataset): cited mean lengths fill what a scenario leaves out."""

from __future__ import annotations

import pytest

from planner.base.errors import PlannerError
from planner.deploy import datasets
from planner.deploy.datasets import list_datasets, load_dataset
from planner.deploy.scenario_file import scenario_from_mapping
from planner.serving.estimate import estimate
from tests.scenario_util import BASE, merge, scenario


def _workload(**wl):
    return scenario_from_mapping(merge({k: v for k, v in BASE.items() if k != "workload"}, {"workload": wl}),
                                 "test.yaml").workload


@pytest.mark.parametrize("name", list_datasets())
def test_every_preset_loads_and_cites_its_lengths(name):
    d = load_dataset(name)
    assert d.input_len >= 1 and d.output_len >= 1
    assert d.input_source and d.output_source and d.source and d.description


def test_a_dataset_supplies_unstated_lengths():
    d = load_dataset("sharegpt-vllm-bench")
    wl = _workload(phase="serve", concurrency=64, dataset="sharegpt-vllm-bench")
    assert (wl.input_len, wl.output_len, wl.output_len_dist) == (d.input_len, d.output_len, d.output_len_dist)
    assert wl.from_dataset == ("input_len", "output_len", "output_len_dist")
    assert wl.context_len == d.input_len + d.output_len


def test_stated_lengths_win_over_the_dataset():
    wl = _workload(phase="serve", concurrency=64, dataset="sharegpt-vllm-bench", input_len=4000,
                   output_len_dist="fixed")
    assert wl.input_len == 4000 and wl.output_len_dist == "fixed"
    assert wl.from_dataset == ("output_len",)


def test_prefill_generates_nothing_even_with_a_dataset():
    wl = _workload(phase="prefill", dataset="sharegpt-vllm-bench")
    assert wl.output_len == 0 and "output_len" not in wl.from_dataset


def test_estimate_names_the_dataset_and_serves_its_lengths():
    d = load_dataset("sharegpt-vllm-bench")
    named = estimate(scenario(workload={"phase": "serve", "concurrency": 64, "input_len": None, "output_len": None,
                                        "dataset": "sharegpt-vllm-bench"}))
    spelled = estimate(scenario(workload={"phase": "serve", "concurrency": 64, "input_len": d.input_len,
                                          "output_len": d.output_len, "output_len_dist": d.output_len_dist}))
    assert named["metrics"] == spelled["metrics"]
    assert named["scenario"]["workload"]["dataset"] == "sharegpt-vllm-bench"
    assert spelled["scenario"]["workload"]["dataset"] is None
    assert any("sharegpt-vllm-bench" in a for a in named["assumptions"])


def test_unknown_dataset_names_the_field():
    with pytest.raises(PlannerError) as err:
        _workload(phase="serve", dataset="no-such-set")
    assert err.value.field == "workload.dataset" and "sharegpt-vllm-bench" in err.value.message


@pytest.mark.parametrize("body, field", [
    ("input_len: {mean: 10, source: s}\noutput_len: {mean: 5, source: s}\nsource: s\ncolour: red\n", "colour"),
    ("input_len: {mean: 0, source: s}\noutput_len: {mean: 5, source: s}\nsource: s\n", "input_len.mean"),
    ("input_len: {mean: 10}\noutput_len: {mean: 5, source: s}\nsource: s\n", "input_len.source"),
    ("input_len: {mean: 10, source: s}\noutput_len: {mean: 5, source: s}\nsource: s\noutput_len_dist: zipf\n",
     "output_len_dist"),
    ("input_len: {mean: 10, source: s}\nsource: s\n", "output_len"),
    ("input_len: {mean: 10, source: s, quantiles: {0: 1, 50: 9}}\noutput_len: {mean: 5, source: s}\nsource: s\n",
     "input_len.quantiles"),
    ("input_len: {mean: 10, source: s, quantiles: {0: 1, 50: 9, 100: 5}}\noutput_len: {mean: 5, source: s}\n"
     "source: s\n", "input_len.quantiles"),
    ("input_len: {mean: 10, source: s}\noutput_len: {mean: 5, source: s, quantiles: {0: 1, 120: 9}}\nsource: s\n",
     "output_len.quantiles"),
    ("input_len: {mean: 10, source: s}\noutput_len: {mean: 5, source: s, quantiles: {0: 1, 100: x}}\nsource: s\n",
     "output_len.quantiles.100"),
])
def test_bad_preset_files_name_file_and_field(tmp_path, monkeypatch, body, field):
    (tmp_path / "bad.yaml").write_text(body)
    monkeypatch.setattr(datasets, "DATASETS_DIR", tmp_path)
    load_dataset.cache_clear()
    try:
        with pytest.raises(PlannerError) as err:
            load_dataset("bad")
    finally:
        load_dataset.cache_clear()
    assert err.value.file.endswith("bad.yaml") and field in (err.value.field or err.value.message)


def test_sizing_traffic_takes_its_lengths_from_a_dataset():
    from planner.sizing.workload import workload_from_mapping

    d = load_dataset("sharegpt-vllm-bench")
    doc = {"model": "kimi-k2.5", "traffic": {"requests_per_s": 2.0, "dataset": "sharegpt-vllm-bench"}}
    t = workload_from_mapping(doc, "w.yaml").traffic
    assert (t.input_len, t.output_len) == (d.input_len, d.output_len)
    doc["traffic"]["output_len"] = 1000
    assert workload_from_mapping(doc, "w.yaml").traffic.output_len == 1000
    doc["traffic"]["dataset"] = "nope"
    with pytest.raises(PlannerError) as err:
        workload_from_mapping(doc, "w.yaml")
    assert err.value.field == "traffic.dataset"


def _case(**wl):
    return {"name": "c", "model": "llama-2-70b", "weights": "fp8",
            "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8, "nodes": 1}, "engine": "trtllm",
            "workload": {"phase": "serve", "input_len": None, "output_len": 294, **wl},
            "measured": [{"metric": "system_output_tokens_per_s", "value": 30000.0,
                          "source": "mlcommons/inference_results_v5.0 closed/X/results/Y/README.md"}]}


def test_a_suite_result_is_matched_to_the_suite_dataset_of_its_model():
    from planner.deploy.datasets import suite_dataset

    src = ["ntuhpc/mlperf_inference_results_v5.0 closed/NVIDIA/results/H200/README.md"]
    assert suite_dataset(src, "llama-2-70b").name == "mlperf-llama2-70b"
    assert suite_dataset(src, "llama-3.1-405b").name == "mlperf-llama3.1-405b"
    assert suite_dataset(src, "kimi-k2.5") is None  # no MLPerf set for this model
    assert suite_dataset(["gpustack/gpustack docs/performance-lab"], "llama-2-70b") is None


def test_validate_fills_only_what_a_suite_case_leaves_unstated(tmp_path):
    import yaml

    from planner.serving.validate import validate

    d = load_dataset("mlperf-llama2-70b")
    cases = [_case(), _case(input_len=1024), {**_case(), "measured": [{**_case()["measured"][0], "source": "a blog"}]}]
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "cases": cases}))
    rows = validate(path)["cases"]
    assert [r["dataset"] for r in rows] == ["mlperf-llama2-70b", None, None]
    # the filled prompt length is the dataset's: the same prediction as stating it
    cases[1]["workload"]["input_len"] = d.input_len
    path.write_text(yaml.safe_dump({"schema_version": 1, "cases": cases}))
    again = validate(path)["cases"]
    assert again[1]["predicted"] == pytest.approx(rows[0]["predicted"])
    assert rows[2]["predicted"] != rows[0]["predicted"]  # without a suite citation the contract default stays


def test_a_named_request_set_is_found_as_a_whole_word_only():
    from planner.deploy.datasets import named_dataset

    assert named_dataset(["vllm bench serve on ShareGPT, 1000 prompts"]).name == "sharegpt-vllm-bench"
    assert named_dataset(["c-sharegpt", None, "sharegpt"]).name == "sharegpt-vllm-bench"  # any case
    assert named_dataset(["random 4k prompts", "ShareGPTx"]) is None


def test_a_case_naming_sharegpt_takes_the_sets_answer_shape_and_keeps_its_lengths(tmp_path):
    import yaml

    from planner.serving.validate import validate

    base = {"name": "c", "model": "deepseek-r1", "weights": "fp8-block128",
            "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8, "nodes": 1}, "engine": "sglang",
            "parallelism": {"tp": 8},
            "workload": {"phase": "serve", "concurrency": 256, "input_len": 219, "output_len": 201},
            "measured": [{"metric": "system_output_tokens_per_s", "value": 3000.0, "source": "a lab write-up"}]}
    named = {**base, "name": "d", "notes": "ShareGPT 1000 requests at rate inf"}
    stated = {**named, "name": "e", "workload": {**base["workload"], "output_len_dist": "fixed"}}
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "cases": [base, named, stated]}))
    rows = validate(path)["cases"]
    assert [r["dataset"] for r in rows] == [None, "sharegpt-vllm-bench", None]
    # the stated mean lengths stay; only the unstated shape (exponential answers) comes from the set, and a wave of
    # varied answers lasts until its longest one ends: less throughput than equal answers
    assert rows[1]["predicted"] < rows[0]["predicted"]
    assert rows[2]["predicted"] == pytest.approx(rows[0]["predicted"])
