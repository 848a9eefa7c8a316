"""CUDA-graph padding of decode steps (issue 18 item 1): the captured batch sizes of the engine profiles
(Engine.cuda_graph_sizes, Engine.graph_batch) and the simulator's step table, which times a padded step's layers at
the captured size and its attention at the real batch (planner.serving.steptable.StepTable.decode_slope)."""

from dataclasses import replace
from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy import engines
from planner.deploy.engines import load_engine
from planner.deploy.scenario import make_scenario
from planner.serving.steptable import StepTable


def _sc(engine="sglang", tp=8):
    return make_scenario("deepseek-r1", weights="fp8-block128", gpu="h200-sxm", gpus_per_node=8, engine=engine,
                         parallelism={"tp": tp}, workload={"phase": "serve", "concurrency": 64, "input_len": 1024,
                                                           "output_len": 256},
                         engine_options={"kernel_tables": "default"})  # the roofline's records, not a surface's


@pytest.mark.parametrize("engine, batch, padded", [
    ("sglang", 1, 1), ("sglang", 3, 4), ("sglang", 9, 12), ("sglang", 13, 16), ("sglang", 257, 272),
    ("sglang", 300, 304), ("sglang", 512, 512),
    ("sglang", 513, 513),  # above --cuda-graph-max-bs: eager, not padded
    ("vllm", 5, 8), ("vllm", 9, 16), ("vllm", 250, 256), ("vllm", 257, 272),
    ("vllm", 600, 600),  # above the largest capture size: no graph, not padded
    ("trtllm", 13, 13),  # every size up to its max taken as captured (profile note)
])
def test_a_decode_batch_replays_the_smallest_captured_size_at_least_as_large(engine, batch, padded):
    assert load_engine(engine).graph_batch(batch) == padded


def test_the_largest_captured_size_is_the_engines_max_whatever_the_list_says():
    eng = replace(load_engine("sglang"), cuda_graph_max_batch=100)  # --cuda-graph-max-bs 100: 96, then 100
    assert [eng.graph_batch(b) for b in (95, 97, 100, 101)] == [96, 100, 100, 101]


def test_a_padded_step_runs_its_layers_at_the_captured_size_and_attends_over_its_own_requests():
    sc = _sc()
    padded = StepTable(sc, 8192, 32768)  # long contexts: the KV read is a visible part of the step
    plain = StepTable(replace(sc, engine=replace(sc.engine, cuda_graph_sizes=None)), 8192, 32768)
    # a captured size is its own graph: the same step either way
    assert padded.decode_slope(16) == pytest.approx(plain.decode_slope(16), rel=1e-12)
    base13, slope13 = padded.decode_slope(13)
    assert base13 == pytest.approx(padded.decode_slope(16)[0], rel=1e-12)  # the layers run 16 rows
    assert slope13 == pytest.approx(plain.decode_slope(13)[1], rel=1e-12)  # KV read for 13 requests
    assert 0 < slope13 < padded.decode_slope(16)[1]
    for kv in (12000, 30000):
        assert padded.decode(13, kv) > plain.decode(13, kv)
        assert padded.decode(13, kv) < padded.decode(16, kv)  # padded rows read no KV


def test_engine_profile_graph_sizes_expand_ranges_and_refuse_bad_entries_in_one_line(tmp_path, monkeypatch):
    text = Path(engines.ENGINES_DIR, "sglang.yaml").read_text()
    monkeypatch.setattr(engines, "ENGINES_DIR", tmp_path)
    good = text.replace("cuda_graph_sizes: [1, 2, 4, 8, 12, [16, 257, 8], [272, 512, 16], [512, 1025, 32]]",
                        "cuda_graph_sizes: [1, [2, 9, 3], 4]")
    assert good != text
    (tmp_path / "padded-ok.yaml").write_text(good)
    assert load_engine("padded-ok").cuda_graph_sizes == (1, 2, 4, 5, 8)
    for k, bad in enumerate(("[0, 8]", "[[8, 4, 1]]", "[[1, 8]]", "eight", "[true]")):
        (tmp_path / f"padded-bad{k}.yaml").write_text(text.replace(
            "cuda_graph_sizes: [1, 2, 4, 8, 12, [16, 257, 8], [272, 512, 16], [512, 1025, 32]]",
            f"cuda_graph_sizes: {bad}"))
        with pytest.raises(PlannerError) as err:
            load_engine(f"padded-bad{k}")
        assert err.value.field == "cuda_graph_sizes" and "padded-bad" in str(err.value)
        assert "\n" not in str(err.value)


def test_estimate_says_it_pads_decode_batches_and_how_many_api_servers_take_requests_in():
    from planner.serving.estimate import estimate

    sc = make_scenario("qwen3-30b-a3b", gpu="h100-sxm", gpus_per_node=8, engine="vllm",
                       parallelism={"tp": 2, "dp_attention": 2, "ep": 4},
                       workload={"phase": "serve", "concurrency": 8, "input_len": 512, "output_len": 32})
    notes = " | ".join(estimate(sc)["assumptions"])
    assert "padded to the engine's next captured CUDA-graph size" in notes
    assert "2 server process(es) side by side (one per DP rank" in notes
    trt = " | ".join(estimate(replace(sc, engine=load_engine("trtllm"),
                                      parallelism=replace(sc.parallelism, dp_attention=1, ep=1)))["assumptions"])
    assert "CUDA-graph size" not in trt and "1 server process(es) side by side" in trt  # every size captured
