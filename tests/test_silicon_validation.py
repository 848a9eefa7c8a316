"""`planner silicon` (planner.serving.silicon): aiconfigurator-core's silicon serving runs as scenarios.

tests/data/silicon_sample_small.csv: 16 rows copied verbatim (header included) from aiconfigurator-core 0.12.0's
systems/silicon_sample.csv, chosen to cover each mapping and each skip reason. No network; aiconfigurator-core is
neither needed nor imported."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from planner.cli import main
from planner.model.inventory import tensor_inventory
from planner.model.models import load_model
from planner.model.quant import load_format
from planner.serving import silicon
from planner.serving.silicon_report import is_markdown, markdown

FIXTURE = Path(__file__).parent / "data" / "silicon_sample_small.csv"


@pytest.fixture(scope="module")
def mapped():
    return silicon.cases(silicon.read_csv(FIXTURE), str(FIXTURE))


@pytest.fixture(scope="module")
def doc():
    return silicon.run(FIXTURE)


def _case(cases, part: str):
    return next(c for c in cases if part in c.id)


def test_every_row_is_evaluated_or_skipped_with_a_reason(mapped):
    cases, skipped = mapped
    assert len(cases) + len(skipped) == 16
    assert all(s["reason"] for s in skipped)
    reasons = [s["reason"] for s in skipped]
    assert not any("disaggregated" in r for r in reasons)  # both disagg rows map (tests/test_disagg.py)
    assert sum(c.labels["mode"] == "disagg" for c in cases) == 2
    assert not any("has no profile" in r for r in reasons)  # MiniMax-M2.5 and Qwen3-32B map (below)
    assert "parallel plan inconsistent: moe_tp 2 x moe_ep 1 != tp 1 x dp 1" in reasons
    assert any(r.startswith("not a valid scenario: parallelism.tp: tp 72 does not divide") for r in reasons)


def test_mapping_of_models_gpus_engines_formats_and_plans(mapped):
    cases, _ = mapped
    dsr1 = _case(cases, "deepseek_r1_h200_sxm_sglang_fp8_agg_1024x1024_c4").scenario
    assert (dsr1.model.name, dsr1.gpu, dsr1.engine.name, dsr1.weights.name) == (
        "deepseek-r1", "h200-sxm", "sglang", "fp8-block128")  # "fp8" of the block-scaled checkpoint
    assert (dsr1.parallelism.tp, dsr1.parallelism.ep, dsr1.total_gpus) == (8, 1, 8)
    wl = dsr1.workload
    assert (wl.phase, wl.concurrency, wl.num_prompts, wl.input_len, wl.output_len) == ("serve", 4, 40, 1024, 1024)
    assert (wl.random_range_ratio, wl.range_ratio_form) == (0.8, "below")  # InferenceMAX's client, as stated
    assert _case(cases, "kimi_k2_5_b200").scenario.weights.name == "int4-g32"  # int4_wo: Kimi's own group-32 INT4
    oss = _case(cases, "gpt_oss_120b_b200_sxm_trtllm").scenario
    assert (oss.weights.name, oss.engine.name, oss.gpu) == ("mxfp4", "trtllm", "b200")  # nvfp4 label: MXFP4 experts
    llama = _case(cases, "llama_3_1_70b_h200").scenario
    assert (llama.weights.name, llama.parallelism.tp, llama.parallelism.ep) == ("fp8", 4, 1)
    qwen = _case(cases, "qwen3_235b_a22b_fp8_h100_sxm_trtllm").scenario
    assert (qwen.model.name, qwen.weights.name, qwen.parallelism.tp) == ("qwen3-235b-a22b", "fp8-block128", 4)
    # no silicon_concurrency recorded: batch_size x attention-DP ranks, as the mapping states
    assert _case(cases, "deepseek_r1_gb200_trtllm_agg_4000x1000_c_tp8").scenario.workload.concurrency == 28


def test_models_mapped_by_architecture_and_unknown_ones_skipped(mapped):
    cases, _ = mapped
    m25 = _case(cases, "minimaxm2_5_b200_vllm").scenario
    assert (m25.model.name, m25.weights.name) == ("minimax-m2.7", "fp8-block128")  # M2.5 has M2.7's architecture
    assert _case(cases, "qwen3_32b_qwen3_32b_gb200").scenario.model.name == "qwen3-32b"
    df = silicon.read_csv(FIXTURE).head(1).assign(model_path="acme/Unknown-1T")
    assert silicon.cases(df)[1][0]["reason"] == "model acme/Unknown-1T has no profile"


def test_errors_are_computed_and_grouped(doc):
    rows = [r for r in doc["cases"] if r["fits"]]
    assert doc["evaluated"] == len(rows) >= 6
    for r in rows:
        assert r["ttft_error"] == pytest.approx(r["predicted_ttft_ms"] / r["ttft_ms"] - 1)
        assert r["tpot_error"] == pytest.approx(r["predicted_tpot_ms"] / r["tpot_ms"] - 1)
    assert doc["summary"]["ttft"]["n"] == doc["summary"]["tpot"]["n"] == len(rows)
    for key in ("mode", "model", "gpu", "engine", "band"):
        assert sum(g["ttft"]["n"] for g in doc["groups"][key]) == len(rows)
    assert {g["mode"]: g["ttft"]["n"] for g in doc["groups"]["mode"]}["disagg"] == 2
    assert "models" in doc["mapping"] and "kv_cache" in doc["mapping"]
    assert "aiconfigurator_core" not in sys.modules


def test_ttft_misses_count_every_aggregated_run_beyond_the_p90_bound(doc):
    """`ttft_misses` counts each aggregated run whose TTFT error passes +-60% once, under or over, in its
    deployment's row (model, GPU, engine version, client), most first; disaggregated runs are left out. A made-up
    set of rows pins the counting and the order."""
    from planner.serving.silicon_report import misses

    agg = [r for r in doc["cases"] if r["fits"] and r["ttft_error"] is not None and r["mode"] == "agg"]
    found = doc["ttft_misses"]
    assert sum(m["under"] + m["over"] for m in found) == sum(abs(r["ttft_error"]) > 0.6 for r in agg)
    assert all(m["under"] + m["over"] <= m["n"] for m in found)
    base = {"model": "m", "gpu": "g", "version": "v", "client": "c", "mode": "agg"}
    rows = ([{**base, "ttft_error": e} for e in (-0.9, -0.7, 0.1, 2.0)]
            + [{**base, "model": "k", "ttft_error": e} for e in (0.7, 0.5)]
            + [{**base, "model": "z", "mode": "disagg", "ttft_error": 5.0}, {**base, "model": "q", "ttft_error": 0.6}])
    got = misses(rows)
    assert [(m["model"], m["n"], m["under"], m["over"]) for m in got] == [("m", 4, 2, 1), ("k", 2, 0, 1)]
    assert got[0]["ttft_median_error"] == pytest.approx(-0.3)


def test_markdown_and_cli(doc, tmp_path, capsys):
    text = markdown(doc, "python -m planner silicon x.csv --markdown out.md")
    assert is_markdown(text.encode()) and "## By model" in text and "## Rows not evaluated" in text
    assert "## Where TTFT misses by more than 60%" in text
    out = tmp_path / "silicon.md"
    assert main(["silicon", str(FIXTURE), "--json", "--markdown", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["evaluated"] == doc["evaluated"] and is_markdown(out.read_bytes())


def test_bad_csv_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model_path\nx,y\n")
    assert main(["silicon", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column 'silicon_data_source'" in err


def test_parallel_run_gives_the_serial_answer(monkeypatch, doc):
    """`--jobs N` estimates in forked processes: the same rows, skips and errors as one process, in order."""
    monkeypatch.setattr(silicon, "PARALLEL_MIN", 1)
    par = silicon.run(FIXTURE, jobs=2)
    strip = lambda d: {k: v for k, v in d.items() if k != "runtime_s"}  # noqa: E731
    assert strip(par) == strip(doc)


def test_kimi_nvfp4_rows_run_nvidias_checkpoint_and_its_fp8_kv_cache_where_the_engine_uses_it():
    """Kimi-K2.5 "nvfp4" rows loaded nvidia/Kimi-K2.5-NVFP4 (the profile's published nvfp4-bf16-attn: attention and
    lm_head BF16), whose quantization_config declares an FP8 KV cache; vLLM's --kv-cache-dtype auto uses it from
    0.14 (PR #30785), so earlier versions, nightlies, other engines and the official INT4 checkpoint keep bf16."""
    df = silicon.read_csv(FIXTURE)
    kimi = df[df.model_path == "moonshotai/Kimi-K2.5"].head(1)
    assert silicon.cases(kimi)[0][0].scenario.kv_cache == "bf16"  # int4_wo: the official checkpoint declares none

    def mapped(version, backend="vllm"):
        row = kimi.assign(moe_quant_mode="nvfp4", gemm_quant_mode="nvfp4", backend=backend, backend_version=version)
        return silicon.cases(row)[0][0].scenario

    sc = mapped("0.17.0")
    assert (sc.weights.name, sc.kv_cache) == ("nvfp4-bf16-attn", "fp8")
    assert [mapped(v).kv_cache for v in ("0.12.0", "nightly-5b8c30d6")] == ["bf16", "bf16"]
    assert mapped("1.2.0rc6", "trtllm").kv_cache == "bf16"
    assert "vllm >= 0.14" in silicon.MAPPING["kv_cache"]


def test_nvfp4_bf16_attn_keeps_attention_and_head_in_bf16():
    model, fmt = load_model("kimi-k2.5"), load_format("nvfp4-bf16-attn")
    types = {t.role: fmt.storage_for(t, model.spec).name for t in tensor_inventory(model.spec) if t.part == "language"}
    assert {types[r] for r in ("attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_kv_b", "attn_output", "output",
                               "ffn_gate_inp")} == {"bf16"}
    assert {types[r] for r in ("ffn_gate", "ffn_down", "ffn_up_shexp", "ffn_down_exps")} == {"nvfp4"}
    assert (model.checkpoint("nvfp4-bf16-attn"), model.checkpoint_kv_cache("nvfp4-bf16-attn")) == (
        "nvidia/Kimi-K2.5-NVFP4", "fp8")


def test_aiconfigurator_gap_analysis_rows_run_its_aiperf_harness_behind_dynamo(mapped):
    """Rows of aiconfigurator's own gap analysis were benchmarked by the aiperf harness it generates (fixed ISL/OSL,
    20 requests per concurrency slot) against a Dynamo deployment, whose Rust frontend takes requests in; InferenceMAX's
    rows keep their client (--random-range-ratio 0.8, 10 prompts per slot) and the engine's own API server."""
    cases, _ = mapped
    aic = _case(cases, "qwen_qwen3_235b_a22b_fp8_h100_sxm_trtllm_agg_512x128_c4")
    wl = aic.scenario.workload
    assert (wl.random_range_ratio, wl.num_prompts, aic.scenario.engine.request_ingest_s) == (None, 80, 0.0)
    imax = _case(cases, "2026_03_25_kimi_k2_5_b200_sxm_vllm_int4_agg_1024x1024_c4")
    wl = imax.scenario.workload
    assert (wl.random_range_ratio, wl.num_prompts) == (0.8, 40) and imax.scenario.engine.request_ingest_s > 0
    assert "aiperf harness" in silicon.MAPPING["workload"]


def test_inferencemax_sglang_rows_take_their_recipes_scheduler_receive_interval():
    """InferenceMAX's dsr1 SGLang recipe on B200 passes --scheduler-recv-interval 10 below concurrency 16 and 30 from
    16; its H200 recipe passes none, nor do other engines, nor runs measured before the checked date."""
    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_03_25_deepseek_r1_h200_sxm_sglang")]
    recv = lambda r: silicon.cases(r)[0][0].scenario.engine.scheduler_recv_interval  # noqa: E731
    assert recv(row) == 1  # the H200 recipe sets none: SGLang's default
    b200 = row.assign(system="b200_sxm")
    assert recv(b200) == 10  # concurrency 4
    src = str(b200.iloc[0].silicon_data_source).replace("silicon_concurrency=4", "silicon_concurrency=64")
    assert recv(b200.assign(silicon_data_source=src)) == 30
    early = src.replace("measured=2026-03-25", "measured=2025-10-01")
    assert recv(b200.assign(silicon_data_source=early)) == 1
    assert "scheduler-recv-interval" in silicon.MAPPING["engine_options"]


def test_inferencemax_trtllm_llama70b_1k1k_rows_below_tp8_take_the_recipes_batch_waiting():
    """InferenceMAX's Llama-3.1-70B TensorRT-LLM recipe sets batch_wait_timeout_iters 20 and
    batch_wait_max_tokens_ratio 0.9 at 1K/1K below TP8 only."""
    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    wait = lambda r: silicon.cases(r)[0][0].scenario.engine.batch_wait  # noqa: E731
    assert wait(row) is None  # vLLM has no batch waiting
    trt = row.assign(backend="trtllm", backend_version="1.1.0")
    assert wait(trt) == (20, 0.9)
    assert wait(trt.assign(tp_size=8, moe_tp_size=8)) == (0, 0.0)
    assert wait(trt.assign(osl=8192)) == (0, 0.0)


def test_rows_whose_columns_multiply_the_run_ids_gpus_by_ep_are_read_as_the_id_says(mapped):
    """InferenceMAX's ..._tp4_ep4_1037 ran DeepSeek-R1 on 4 B200s with EP 4; its CSV row says tp_size 16, moe_tp 4:
    mapped to TP4 + EP4 on 4 GPUs. ..._tp8_ep8_937 (TensorRT-LLM, attention DP over 64 ranks in the CSV) is DP8
    attention + EP8 on 8 GPUs. Rows whose columns agree with their id are unchanged."""
    mapped = mapped[0]
    sglang = _case(mapped, "_c4_tp4_ep4_1037")
    assert sglang.labels["plan"] == "TP4+EP4" and sglang.scenario.total_gpus == 4
    trt = _case(mapped, "_c64_tp8_ep8_937")
    assert trt.labels["plan"] == "DP8-attn+EP8" and trt.scenario.total_gpus == 8
    assert _case(mapped, "_c8_tp4_ep1_580").scenario.total_gpus == 4
    assert "silicon_recipes.plan_from_id" in silicon.MAPPING["parallelism"]


def test_a_measurement_held_twice_is_evaluated_once_as_the_copy_whose_id_names_its_plan():
    """The database dump repeats InferenceMAX runs under ids without a plan (..._cfg202) and, for some, the inflated
    plan; the copy whose id names its plan stands for the measurement and the other is skipped with its reason."""
    import pandas as pd

    df = silicon.read_csv(FIXTURE)
    named = df[df.id.str.endswith("_c4_tp4_ep4_1037")]
    dump = named.assign(id="dsr1_b200_sglang_fp4_agg_1024x1024_c4_cfg202")
    found, skipped = silicon.cases(pd.concat([dump, df], ignore_index=True))
    assert sum("_c4_tp4_ep4_1037" in c.id for c in found) == 1 and not any("cfg202" in c.id for c in found)
    why = next(s for s in skipped if s["id"].endswith("cfg202"))["reason"]
    assert why == "the same measurement as " + named.id.iloc[0]
    other = dump.assign(silicon_ttft_ms=dump.silicon_ttft_ms + 1.0)  # another measurement: both evaluated
    found, _ = silicon.cases(pd.concat([other, named], ignore_index=True))
    assert len(found) == 2
    assert "duplicate_runs" in silicon.MAPPING["duplicates"]


def test_a_copy_rounded_to_hundredths_of_a_ms_is_the_same_measurement_and_the_dated_copy_stands_for_it():
    """aiconfigurator's gap-analysis file repeats InferenceMAX runs with TTFT and TPOT rounded to 0.01 ms and no
    measured date (qwen3_5_397b_gap_analysis_..._tp4_ep1_16: 338.34 for 338.3364140507183); the dated copy, whose
    day's recipe flags apply, is evaluated even when the undated one comes first. A difference above the rounding
    is another measurement."""
    import pandas as pd

    df = silicon.read_csv(FIXTURE)
    named = df[df.id.str.endswith("_c4_tp4_ep4_1037")]
    assert "measured=" in named.silicon_data_source.iloc[0]
    gap = named.assign(id="dsr1_gap_analysis_b200_sxm_sglang_fp4_agg_1024x1024_c4_tp4_ep4_16",
                       silicon_data_source="source_file=dsr1-gap-analysis.csv; silicon_concurrency=4",
                       silicon_ttft_ms=named.silicon_ttft_ms.round(2), silicon_tpot_ms=named.silicon_tpot_ms.round(2))
    assert (gap.silicon_ttft_ms != named.silicon_ttft_ms).all()  # the fixture's time has more than two decimals
    found, skipped = silicon.cases(pd.concat([gap, named], ignore_index=True))
    assert [c.id for c in found] == [named.id.iloc[0]]
    assert skipped[0]["reason"] == "the same measurement as " + named.id.iloc[0]
    other = gap.assign(silicon_ttft_ms=gap.silicon_ttft_ms + 0.02)
    assert len(silicon.cases(pd.concat([other, named], ignore_index=True))[0]) == 2


def test_the_inflating_exports_rows_without_a_plan_in_their_id_are_read_from_their_columns():
    """The dump's ..._cfgN rows come from the export that inflates plans: each of its three forms of a T-GPU, EP-T
    run is read as T GPUs, exactly as the run id would give it for every named row; another source's hybrid
    expert TP x EP plan (aiconfigurator's own deployments) is kept."""
    from planner.serving.silicon_recipes import plan_from_id

    df = silicon.read_csv(FIXTURE)
    cols = ("tp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size")
    for row in df.itertuples(index=False):  # the column rule agrees with the id on every named row
        unnamed = plan_from_id(row._replace(id="dump_cfg1"))
        assert [getattr(unnamed, c) for c in cols] == [getattr(plan_from_id(row), c) for c in cols], row.id
    base = next(df[df.id.str.endswith("_c4_tp4_ep4_1037")].itertuples(index=False))._replace(id="dsr1_cfg7")
    dump = base._replace(silicon_data_source="db-dump/2026-04-27; config_id=7; silicon_concurrency=4")
    for form, want in (((16, 1, 4, 4), (4, 1, 1, 4)), ((1, 16, 4, 4), (1, 4, 1, 4)), ((4, 4, 1, 16), (1, 4, 1, 4)),
                       ((64, 1, 8, 8), (8, 1, 1, 8)), ((4, 1, 1, 4), (4, 1, 1, 4)), ((8, 1, 8, 1), (8, 1, 8, 1))):
        got = plan_from_id(dump._replace(**dict(zip(cols, map(float, form), strict=True))))
        assert tuple(int(getattr(got, c)) for c in cols) == want, form
    aic = dump._replace(silicon_data_source="source_file=/x/aic-auto-gap-analysis/data/h100.csv",
                        **dict(zip(cols, (4.0, 1.0, 2.0, 2.0), strict=True)))
    assert plan_from_id(aic) == aic
    assert "db-dump" in silicon.MAPPING["parallelism"]


def test_one_measurement_labelled_with_two_checkpoints_of_one_architecture_is_evaluated_once():
    """The dump labels some DeepSeek-R1 runs DeepSeek-V3 (one architecture: every spec field but the name equal);
    the copies are one measurement. Checkpoints of different architectures never merge."""
    import pandas as pd

    df = silicon.read_csv(FIXTURE)
    named = df[df.id.str.endswith("_c4_tp4_ep4_1037")]
    assert named.model_path.iloc[0] == "deepseek-ai/DeepSeek-R1"
    v3 = named.assign(id="dsv3_cfg83", model_path="deepseek-ai/DeepSeek-V3")
    found, skipped = silicon.cases(pd.concat([v3, named], ignore_index=True))
    assert [c.id for c in found] == [named.id.iloc[0]]
    assert skipped[0]["reason"] == "the same measurement as " + named.id.iloc[0]
    same = silicon.architectures(silicon.MODELS)
    assert same["deepseek-ai/DeepSeek-V3"] == same["deepseek-ai/DeepSeek-R1"] != same["moonshotai/Kimi-K2.5"]
    kimi = named.assign(id="kimi_cfg1", model_path="moonshotai/Kimi-K2.5")
    assert len(silicon.cases(pd.concat([kimi, named], ignore_index=True))[0]) == 2


def test_inferencemax_vllm_rows_take_their_recipes_kv_cache_dtype_and_memory_fraction():
    """InferenceMAX's vLLM recipes pass --kv-cache-dtype fp8 (Llama-3.1-70B on every GPU as of 2025-10-29; MiniMax
    on B200 from 2026-04-03) and --gpu-memory-utilization (0.95 for MiniMax on B200 before then): each row takes the
    recipe as it stood on its measured date; earlier rows, other engines and aiperf-harness rows keep the defaults."""
    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    sc = lambda r: silicon.cases(r)[0][0].scenario  # noqa: E731
    assert (sc(row).kv_cache, sc(row).engine.memory_fraction) == ("fp8", 0.9)
    src = str(row.iloc[0].silicon_data_source)
    dated = lambda d: row.assign(silicon_data_source=re.sub(r"measured=[0-9-]+", f"measured={d}", src))  # noqa: E731
    assert sc(dated("2025-09-01")).kv_cache == "bf16"  # before the checked recipe: the defaults
    assert sc(row.assign(backend="sglang", backend_version="0.5.9")).kv_cache == "bf16"  # no such SGLang mapping
    minimax = row.assign(model_path="MiniMaxAI/MiniMax-M2.5", system="b200_sxm", tp_size=2, moe_tp_size=2,
                         id="minimax_b200_vllm_fp8_agg_1024x1024_c8_tp2")
    at = lambda d: minimax.assign(silicon_data_source=re.sub(r"measured=[0-9-]+", f"measured={d}", src))  # noqa: E731
    march, april = sc(at("2026-03-20")), sc(at("2026-04-10"))
    assert (march.kv_cache, march.engine.memory_fraction) == ("bf16", 0.95)
    assert (april.kv_cache, april.engine.memory_fraction) == ("fp8", 0.9)
    assert "kv-cache-dtype fp8" in silicon.MAPPING["engine_options"] and "fp8" in silicon.MAPPING["kv_cache"]


def test_vllm_rows_before_0_14_run_without_async_scheduling():
    """vLLM schedules asynchronously by default from 0.14 (#27614; the profile's overlap_schedule); a row of an
    earlier release runs without it, a later or unstated one with the profile's; other engines keep theirs."""
    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    sc = lambda r: silicon.cases(r)[0][0].scenario  # noqa: E731
    assert sc(row.assign(backend_version="0.15.1")).engine.overlap_schedule
    assert sc(row.assign(backend_version=float("nan"))).engine.overlap_schedule
    assert not sc(row.assign(backend_version="0.12.0")).engine.overlap_schedule
    assert sc(row.assign(backend="trtllm", backend_version="1.0.0rc3")).engine.overlap_schedule
    assert silicon.release("1.2.0rc6.post1") == (1, 2) and silicon.release("nightly-dev") is None


def test_inferencemax_trtllm_rows_take_their_recipes_kv_memory_and_graph_sizes():
    """InferenceMAX's TensorRT-LLM recipes set kv_cache_config dtype fp8 and free_gpu_memory_fraction, and
    cuda_graph_config max_batch_size (Llama-3.1-70B 1,024; DeepSeek-R1 FP8 on B200 256, then the concurrency from
    2026-01-29, with piecewise prompt graphs at 1k/1k from concurrency 64); rows take the recipe of their date."""
    df = silicon.read_csv(FIXTURE)
    sc = lambda r: silicon.cases(r)[0][0].scenario  # noqa: E731
    llama = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    trt = sc(llama.assign(backend="trtllm", backend_version="1.1.0"))
    assert (trt.kv_cache, trt.engine.cuda_graph_max_batch, trt.engine.memory_fraction) == ("fp8", 1024, 0.9)
    row = df[df.id.str.startswith("2026_03_25_deepseek_r1_h200_sxm_sglang")].assign(
        backend="trtllm", backend_version="1.2.0rc6", system="b200_sxm", precision="fp8")
    src = str(row.iloc[0].silicon_data_source).replace("silicon_concurrency=4", "silicon_concurrency=64")
    at = lambda d: sc(row.assign(silicon_data_source=re.sub(r"measured=[0-9-]+", f"measured={d}", src)))  # noqa
    dec, feb = at("2025-12-15"), at("2026-02-05")
    assert (dec.kv_cache, dec.engine.memory_fraction, dec.engine.cuda_graph_max_batch) == ("fp8", 0.8, 256)
    assert dec.engine.graph_prefill_tokens == 0  # the profile's: prompts run eagerly
    assert (feb.engine.cuda_graph_max_batch, feb.engine.graph_prefill_tokens > 1024) == (64, True)
    assert sc(row.assign(backend="vllm", backend_version="0.15.0")).engine.cuda_graph_max_batch != 64
    assert "cuda_graph_config max_batch_size" in silicon.MAPPING["engine_options"]


def test_inferencemax_sglang_rows_take_their_recipes_memory_kv_and_graph_sizes():
    """InferenceMAX's dsr1 FP8 SGLang recipe on B200 runs --kv-cache-dtype fp8_e4m3 --mem-fraction-static 0.82
    --cuda-graph-max-bs 128 --max-running-requests 128 on 8 GPUs (32 / 32 / 0.95 on 4); its H200 recipe sets no KV
    dtype and 512 / 512 / 0.82 at 1k/1k; runs before the checked date keep SGLang's defaults."""
    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_03_25_deepseek_r1_h200_sxm_sglang")]
    sc = lambda r: silicon.cases(r)[0][0].scenario  # noqa: E731
    h200 = sc(row)
    assert h200.kv_cache == "bf16" and h200.engine.memory_fraction == 0.82
    b200 = sc(row.assign(system="b200_sxm"))
    eng = b200.engine
    assert (b200.kv_cache, eng.memory_fraction, eng.cuda_graph_max_batch) == ("fp8", 0.82, 128)
    assert eng.max_running_requests != 128  # recorded, not applied (silicon_recipes.SGLANG_OPTIONS)
    early = str(row.iloc[0].silicon_data_source).replace("measured=2026-03-25", "measured=2025-10-01")
    assert sc(row.assign(system="b200_sxm", silicon_data_source=early)).kv_cache == "bf16"
    assert "--max-running-requests is recorded, not applied" in silicon.MAPPING["engine_options"]


def test_a_run_whose_prompts_alone_outrun_the_recorded_gpus_is_skipped_as_more_than_one_replica():
    """Aggregated rows record one engine instance and no replica count. aiconfigurator-core's
    nvidia_qwen3_32b_nvfp4_..._agg_15000x500_c416_tp2 (TTFT 719 ms, TPOT 13.7 ms) completes 416 requests of 15,000
    prompt tokens every 7.6 s, 2.7 x two B200s' dense FP4 peak for its prompts' matmuls alone: skipped with the
    reason. The same row at a hundredth of the concurrency is evaluated; the bound is the shortest prompt the
    client draws, so the check never refuses a run it cannot prove impossible."""
    from planner.serving.silicon_checks import BEYOND_ONE, prompt_compute_ratio

    df = silicon.read_csv(FIXTURE)
    row = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    case = silicon.cases(row)[0][0]
    src = str(row.iloc[0].silicon_data_source)
    busy = row.assign(silicon_data_source=src.replace("silicon_concurrency=8", "silicon_concurrency=8000"),
                      silicon_ttft_ms=100.0, silicon_tpot_ms=1.0)
    found, skipped = silicon.cases(busy)
    assert not found and skipped[0]["reason"] == BEYOND_ONE
    assert silicon.cases(row)[0]  # the recorded run itself is possible
    sc = case.scenario
    r = prompt_compute_ratio(sc, 8, 1024 * 0.8, 1024, case.ttft_ms, case.tpot_ms)
    assert 0 < r < 1
    assert prompt_compute_ratio(sc, 16, 1024 * 0.8, 1024, case.ttft_ms, case.tpot_ms) == pytest.approx(2 * r)


def test_kimi_vllm_rows_ran_plain_tensor_parallel_whatever_ep_their_id_and_columns_carry():
    """InferenceMAX's Kimi-K2.5 vLLM recipes pass only --tensor-parallel-size (no --enable-expert-parallel, no data
    parallel): ..._tp4_ep4_1294 (CSV columns tp 4, dp 4, moe_tp 1, moe_ep 16) ran MoE TP over 4 GPUs, as its TPOT
    (8.36 ms) equal to the plain TP4 run's says; a row measured before the checked recipe keeps its columns."""
    from planner.serving.silicon_recipe_flags import VLLM_TP_ONLY

    df = silicon.read_csv(FIXTURE)
    base = df[df.id.str.startswith("2026_04_06_llama_3_1_70b_h200_sxm_vllm_fp8_agg_1024x1024_c8_tp4")]
    row = base.assign(id="2026_04_06_kimi_k2_5_b200_sxm_vllm_fp4_agg_1024x1024_c4_tp4_ep4_1294",
                      model_path="moonshotai/Kimi-K2.5", system="b200_sxm", precision="fp4", gemm_quant_mode="nvfp4",
                      moe_quant_mode="nvfp4", tp_size=4.0, attention_dp_size=4.0, moe_tp_size=1.0, moe_ep_size=16.0,
                      silicon_data_source="source_file=2026-04-06.csv; model=Kimi-K2.5; silicon_concurrency=4; "
                                          "measured=2026-03-27T00:00:00.000Z; wip=False")
    case = silicon.cases(row)[0][0]
    assert case.labels["plan"] == "TP4" and case.scenario.parallelism.ep == 1 and case.scenario.total_gpus == 4
    early = row.assign(silicon_data_source=row.silicon_data_source.iloc[0].replace("2026-03-27", "2026-01-05"))
    assert silicon.cases(early)[0][0].labels["plan"] == "DP4-attn+EP4"
    assert "moonshotai/Kimi-K2.5" in VLLM_TP_ONLY
