"""The Streamlit dashboard (app.py) under Streamlit's AppTest: every page renders without an exception, answers
without input, has a CSV download under every table, and changes when one of its widgets does. Uploads go through
the planner's checks. The kernels_bench results database and the published cases are temporary files here."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
CONFIGS = ROOT / "tests" / "data" / "hf-configs"
CASES = """
schema_version: 1
cases:
  - name: kimi int4 8x h200 chat
    model: kimi-k2.5
    weights: int4-g32
    hardware: {gpu: h200-sxm, gpus_per_node: 8}
    parallelism: {tp: 8}
    engine: vllm
    workload: {phase: serve, concurrency: 8, input_len: 4000, output_len: 1000}
    measured:
      - {metric: tpot_ms, value: 40, source: test}
      - {metric: ttft_ms, value: 900, source: test}
  - name: unknown model
    model: no-such-model
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)
    monkeypatch.setenv("PLANNER_BENCH_RESULTS", str(tmp_path / "results.sqlite"))
    monkeypatch.setenv("PLANNER_VALIDATION_CASES", str(cases))
    return tmp_path


def start(page: str = "") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    if page:
        at.query_params["page"] = page
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures (as sent to the browser) by title."""
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def chart(at: AppTest, starts: str) -> dict:
    return next(spec for title, spec in charts(at).items() if title.startswith(starts))


def clean(at: AppTest) -> None:
    """No exception, no error box, and a CSV download for every table."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("download_button")) >= len(at.dataframe) > 0


def test_default_view_answers_what_it_takes_for_kimi(env):
    at = start()
    clean(at)
    assert at.sidebar.radio(key="page").value == "Model"
    assert at.title[0].value == "kimi-k2.5: what it takes to run it"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters (language model)"] == "1.03 T" and metrics["Active per token"] == "32.9 B"
    assert metrics["Weights as shipped (int4-g32)"] == "595.1 GB"  # 595,148,192,736 B (tests/test_bytes.py)
    answer = " ".join(s.value for s in at.success)
    assert "Smallest deployment in int4-g32:" in answer
    assert {"kimi-k2.5: parameters by component (click a box to zoom)", "Parameters: total vs active per token",
            "KV cache of one sequence vs context (all layers)", "kimi-k2.5: weight bytes by format and component"} \
        <= set(charts(at))
    before = chart(at, "Parameters: total vs active")["data"][0]["x"]
    at.multiselect(key="model.compare").set_value(["deepseek-v3", "qwen3-235b-a22b"]).run()
    clean(at)
    assert chart(at, "Parameters: total vs active")["data"][0]["x"] == ["kimi-k2.5", "deepseek-v3", "qwen3-235b-a22b"]
    assert before == ["kimi-k2.5", "deepseek-v3"]
    at.segmented_control(key="model.family").set_value("GGUF (llama.cpp)").run()
    formats = {trace_x for t in chart(at, "kimi-k2.5: weight bytes")["data"] for trace_x in t["x"]}
    assert formats and all(f.startswith("gguf-") for f in formats)


def test_fit_and_memory(env):
    at = start("fit")
    clean(at)
    grid = chart(at, "Does it fit?")
    assert len(grid["data"]) == 4  # one panel per default format
    int4 = grid["data"][0]
    assert int4["y"][0] == "H200 SXM" and int4["x"] == ["1x", "2x", "4x", "8x", "16x"]
    assert int4["text"][0] == ["no", "no", "no", "fits", "fits"]  # Kimi K2.5 INT4 needs 8 H200s
    assert "weights need 595.1 GB per GPU" in int4["hovertext"][0][0]  # the planner's reason on hover
    assert chart(at, "Memory per GPU")
    capacity = chart(at, "Max concurrency vs request length")
    at.multiselect(key="fit.formats").set_value(["int4-g32"]).run()
    assert len(chart(at, "Does it fit?")["data"]) == 1
    at.selectbox(key="fit.kv").set_value("fp8").run()
    clean(at)
    # the same pool bytes hold twice the fp8 tokens
    assert chart(at, "Max concurrency vs request length")["data"][0]["text"] != capacity["data"][0]["text"]


def test_performance(env):
    at = start("performance")
    clean(at)
    assert at.subheader[0].value == "int4-g32 8x H200 SXM"
    assert {m.label for m in at.metric} >= {"TTFT", "TPOT", "Decode tokens/s per GPU"}
    assert any(m.value.startswith("**Bottleneck** — prefill: compute") for m in at.markdown)
    roof = chart(at, "Roofline: one decode step")
    curve = chart(at, "Throughput vs latency")
    at.selectbox(key="perf.gpu").set_value("b200").run()
    clean(at)
    assert at.subheader[0].value == "int4-g32 8x B200"
    assert chart(at, "Roofline: one decode step") != roof and chart(at, "Throughput vs latency") != curve
    # a concurrency run with chat-like output lengths: the wave waits for its longest answer
    at.number_input(key="perf.conc").set_value(256).run()
    fixed = {m.label: m.value for m in at.metric}
    at.radio(key="perf.dist.typed").set_value("exponential").run()
    clean(at)
    varied = {m.label: m.value for m in at.metric}
    assert varied != fixed
    # a benchmark dataset sets the lengths and the answer shape it publishes
    at.selectbox(key="perf.dataset").set_value("sharegpt-vllm-bench").run()
    clean(at)
    from planner.deploy.datasets import load_dataset

    d = load_dataset("sharegpt-vllm-bench")
    assert at.number_input(key="perf.in.sharegpt-vllm-bench").value == d.input_len
    assert at.radio(key="perf.dist.sharegpt-vllm-bench").value == d.output_len_dist
    assert {m.label: m.value for m in at.metric} not in (fixed, varied)


def test_performance_on_the_silicon_kernel_tables(env):
    """The page runs its deployment on the engine's silicon tables where imported (vLLM on H200: imported), the
    checkbox ticked; unticked, on the default table alone. The assumptions say which table ran."""
    at = start("performance")
    clean(at)
    assert at.checkbox(key="perf.silicon").value
    silicon = {m.label: m.value for m in at.metric}
    assert any("calibration/silicon/h200-sxm-vllm.yaml" in m.value for m in [*at.markdown, *at.caption])
    at.checkbox(key="perf.silicon").uncheck().run()
    clean(at)
    assert {m.label: m.value for m in at.metric} != silicon
    assert not any("calibration/silicon/h200-sxm-vllm.yaml" in m.value for m in [*at.markdown, *at.caption])


def test_performance_simulated_run(env):
    at = start("performance")
    assert "Simulated run" not in " ".join(charts(at))  # no concurrency: the closed forms only
    at.number_input(key="perf.conc").set_value(16).run()
    clean(at)
    assert "Simulated benchmark run" in [h.value for h in at.header]
    timeline = chart(at, "Simulated run: requests running, queued and in flight")
    names = {t["name"] for t in timeline["data"]}
    assert {"running in the engine", "queued (engine and API server)", "KV pool used"} <= names
    flight = next(t for t in timeline["data"] if t["name"] == "in flight at the client")["y"]  # plotly's binary array
    assert max(np.frombuffer(base64.b64decode(flight["bdata"]), flight["dtype"])) == 16
    assert {t["name"] for t in chart(at, "Latency distributions")["data"]} == {"TTFT", "TPOT", "ITL", "E2E latency"}
    table = next(d.value for d in at.dataframe if "p99_ms" in d.value.columns)
    assert list(table["latency"]) == ["TTFT", "TPOT", "ITL", "E2E latency"]
    assert (table["p50_ms"] <= table["p99_ms"]).all()


def test_sizing(env):
    at = start("sizing")
    assert not at.exception
    clean(at)
    assert "Best plan:" in at.success[0].value and "(buy)" in at.success[0].value
    assert chart(at, "Sizing: cost vs latency")
    assert any("--" in c.value for c in at.code)  # engine flags to copy
    types = next(d.value for d in at.dataframe if "why_not" in d.value.columns)  # every priced hardware type
    assert types["meets_slo"].any() and (types.loc[~types["meets_slo"], "why_not"] != "").all()
    at.radio(key="sizing.kimi-k2.5-chat.purchase").set_value("rent")
    next(b for b in at.button if b.label == "Size it").click().run()
    clean(at)
    assert "(rent)" in at.success[0].value
    at.checkbox(key="sizing.kimi-k2.5-chat.silicon").check()
    next(b for b in at.button if b.label == "Size it").click().run()
    clean(at)
    assert "(rent)" in at.success[0].value and any("silicon kernel tables" in c.value for c in at.caption)


def test_validation_published_cases(env):
    at = start("validation")
    clean(at)
    table = at.dataframe[0].value
    assert set(table["metric"]) == {"tpot_ms", "ttft_ms", ""}
    assert table["source"].iloc[-1].startswith("skipped: ")  # the bad case, with its reason
    assert any("No kernels_bench runs stored" in i.value for i in at.info)
    assert any("No compared runs kept" in i.value for i in at.info)
    at.multiselect(key="val.metrics").set_value(["tpot_ms"]).run()
    clean(at)
    assert set(at.dataframe[0].value["metric"]) == {"tpot_ms", ""}
    names = {t["name"] for t in chart(at, "Validation: predicted vs published")["data"]}
    assert "tpot_ms" in names and "ttft_ms" not in names


def test_validation_shows_your_compared_runs_and_an_uploaded_result(env):
    from planner.cli import main

    result = Path(__file__).parent / "data" / "results" / "vllm-bench-serve.json"
    assert main(["compare", str(result), "--gpu", "h200-sxm", "--gpus", "8", "--tp", "8", "--store",
                 str(env / "results.sqlite")]) == 0
    at = start("validation")
    clean(at)
    yours = next(d.value for d in at.dataframe if "hardware" in d.value.columns)
    assert {"tool", "model", "hardware", "metric", "measured", "predicted", "error"} <= set(yours.columns)
    assert set(yours["model"]) == {"deepseek-v3"} and "tpot_ms" in set(yours["metric"])
    at.file_uploader(key="val.result_upload").set_value(("vllm.json", result.read_bytes(), "application/json")).run()
    clean(at)
    up = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert "tpot_ms" in set(up["metric"]) and up["predicted"].notna().any()
    at.button(key="val.up.keep").click().run()
    clean(at)
    assert "kept" in at.success[0].value
    at.file_uploader(key="val.result_upload").set_value(("r.json", b'{"a": 1}', "application/json")).run()
    assert not at.exception and "not a benchmark result" in at.error[0].value.replace("\\", "")


def test_upload_config(env):
    at = start()
    good = (CONFIGS / "Qwen__Qwen3-30B-A3B.json").read_bytes()
    at.sidebar.file_uploader(key="config_upload").set_value(("config.json", good, "application/json")).run()
    clean(at)
    assert at.title[0].value == "qwen3-30b-a3b: what it takes to run it"  # the profile it copies
    for content, why in ((b"{not json", "invalid JSON at line 1"), (b'{"model_type": "bert"}', "model_type"),
                         (b" " * (16 * 2**20 + 1), "over the 16,777,216-byte input limit")):
        at.sidebar.file_uploader(key="config_upload").set_value(("config.json", content, "application/json")).run()
        assert not at.exception
        shown = at.sidebar.error[0].value.replace("\\", "")  # Markdown escapes off
        assert why in shown and "config.json" in shown
        assert at.title[0].value == "kimi-k2.5: what it takes to run it"  # back on the picked profile


@pytest.mark.skipif(importlib.util.find_spec("kernels_bench.cli") is None, reason="kernels_bench is not there yet")
def test_this_machine_runs_a_case_and_validation_shows_it(env):
    at = start("machine")
    clean(at)
    assert at.dataframe[0].value["cpu"].tolist()[:2] == ["kind", "name"]
    at.text_input(key="machine.cases").set_value("^moe-decode-t1-bf16$")
    at.button(key="machine.run").click().run(timeout=180)
    clean(at)
    assert at.get("progress")[0].proto.value == 100
    rows = at.dataframe[1].value
    assert set(rows["case"]) >= {"moe-decode-t1-bf16"} and (rows["status"] == "ok").any()
    at.sidebar.radio(key="page").set_value("Validation").run()
    clean(at)
    assert chart(at, "kernels_bench: predicted vs measured")
    assert "moe-decode-t1-bf16" in set(at.dataframe[1].value["case"])
    at.multiselect(key="val.runs").set_value([]).run()
    assert any("No finished cases" in i.value for i in at.info)


def test_machine_page_shows_a_silicon_calibration_beside_a_local_run_of_the_same_shape(env):
    """Issue 19 item 4: the machine page lists an imported calibration's fit errors and times kernels_bench's GPU
    suite shapes on it beside the default table and the newest local run of the same case on that GPU."""
    from planner.base.store import Store

    with Store(env / "results.sqlite") as store:
        run = store.start_run({"name": "h200-sxm", "kind": "cuda", "display_name": "NVIDIA H200"}, "full")
        case = store.start_case(run, "moe-decode-t1-int4-g32", "moe", "g", {})
        store.finish_case(case, status="ok", error=None, measured_s=2e-4, predicted_s=1e-4)
        store.finish_run(run)
    at = start("machine")
    clean(at)
    at.selectbox(key="machine.silicon").set_value("h200-sxm / vllm").run()
    clean(at)
    fit, rows = (at.dataframe[-2].value, at.dataframe[-1].value)
    assert {"moe.int4_wo", "moe.w4a16_mxfp4"} <= set(fit["table.dtype"])
    local = rows.set_index("case").loc["moe-decode-t1-int4-g32"]
    assert local["local_ms"] == pytest.approx(0.2) and local["local_over_silicon"] == pytest.approx(
        0.2 / local["silicon_ms"])
    assert rows["local_ms"].notna().sum() == 1 and (rows["silicon_ms"] > 0).all()
    ar = {t["name"]: t for t in chart(at, "All-reduce on h200-sxm")["data"]}  # the engine's measured all-reduce
    measured, linked = ar["8 GPUs, vllm measured"], ar["8 GPUs, link model"]
    assert measured["x"] == linked["x"] and measured["y"][0] < linked["y"][0]  # one-shot at 256 B: ~5 us, not 12
    at.selectbox(key="machine.silicon").set_value("b200 / vllm").run()
    assert at.dataframe[-1].value["local_ms"].isna().all()  # no local run on a B200


def test_upload_safetensors_index(env):
    """A model.safetensors.index.json upload gives the checkpoint's exact total bytes beside the model's nearest
    recipe (Kimi-K2.5's int4-g32 for a total near its recipe); a file that is not an index is one error line."""
    import dashboard.index_upload as iu
    from planner.model.models import load_model
    from planner.model.quant import load_format

    spec = load_model("kimi-k2.5").spec
    total = sum(load_format("int4-g32").inventory_bytes(spec))
    wmap = {f"model.layers.{i}.mlp.experts.0.down_proj.weight_packed": f"model-{i % 64 + 1:05d}-of-00064.safetensors"
            for i in range(spec.num_layers)}
    wmap |= {f"model.layers.{i}.mlp.experts.0.down_proj.weight_scale": f"model-{i % 64 + 1:05d}-of-00064.safetensors"
             for i in range(spec.num_layers)}
    good = json.dumps({"metadata": {"total_size": total}, "weight_map": wmap}).encode()
    at = start()
    at.sidebar.file_uploader(key="index_upload").set_value(("model.safetensors.index.json", good,
                                                            "application/json")).run()
    assert not at.exception
    shown = " ".join(c.value for c in at.sidebar.caption).replace("\\", "")
    assert f"{total:,} bytes, exact" in shown and "61 tensors" not in shown and "nearest planner recipe" in shown
    assert "int4-g32" in shown and "(+0.0%)" in shown
    doc = iu.read_index("i.json", good)
    assert (doc["files"], doc["tensors"], doc["scale_tensors"], doc["layers"]) == (61, 122, 61, 61)
    for content, why in ((b'{"weight_map": {"a": "b.safetensors"}}', "metadata.total_size"),
                         (b'{"metadata": {"total_size": 5}}', "weight_map"), (b"[1]", "")):
        at.sidebar.file_uploader(key="index_upload").set_value(("model.safetensors.index.json", content,
                                                                "application/json")).run()
        assert not at.exception
        err = at.sidebar.error[0].value.replace("\\", "")
        assert "index not used" in err and why in err and "model.safetensors.index.json" in err
