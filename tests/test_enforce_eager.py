"""engine_options.enforce_eager (vLLM --enforce-eager, SGLang --disable-cuda-graph): every step runs op by op from
Python at the engine's eager host cost per op-record kernel; vLLM's default steps outside CUDA graphs run compiled
code (engine compiled_steps) and pay none. The silicon mapping applies it to the prefill pools of NVIDIA/srt-slurm's
Dynamo + vLLM disaggregated recipes (planner.serving.silicon_recipe_flags.VLLM_DISAGG)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from planner.base.errors import PlannerError
from planner.perf.steps import decode_ops, decode_step, kernels, prefill_ops, prefill_step
from planner.serving import silicon
from planner.serving.estimate import estimate
from planner.serving.silicon_recipe_flags import disagg_pool_options
from planner.serving.silicon_recipes import measured_on
from tests.scenario_util import scenario


def _vllm(**options):
    return scenario(model="deepseek-v3", weights="fp8-block128", engine="vllm", workload={"concurrency": 64},
                    engine_options=options or None)


def test_vllm_compiled_steps_pay_no_launch_floor_and_enforce_eager_pays_the_eager_figures():
    compiled, eager = _vllm(), _vllm(enforce_eager=True)
    assert compiled.engine.compiled_steps and not eager.engine.compiled_steps
    tokens = 16 / 8  # a 16-token prompt: GPU work is tiny, launching every kernel from Python is not
    assert prefill_step(compiled, tokens, 16).launch_s == 0
    ops = prefill_ops(eager, tokens, 16)
    step = prefill_step(eager, tokens, 16)
    assert step.launch_s == pytest.approx(eager.engine.eager_prefill_kernel_host_mla_s * kernels(ops))
    assert step.seconds > prefill_step(compiled, tokens, 16).seconds and step.bottleneck == "host"
    # decode too: no captured size is replayed, so a decode step launches its kernels at the MLA decode figure
    assert decode_step(compiled, 8, 2000).launch_s == 0
    assert decode_step(eager, 8, 2000).launch_s == pytest.approx(
        eager.engine.eager_kernel_host_mla_s * kernels(decode_ops(eager, 8, 2000)))
    assert eager.engine.cuda_graph_max_batch == 0 and eager.engine.graph_prefill_tokens == 0
    notes = [n for n in estimate(eager)["assumptions"] if n.startswith("enforce_eager")]
    assert notes and "54 us per op-record kernel, 124 us in a prefill" in notes[0]
    assert not any(n.startswith("enforce_eager") for n in estimate(compiled)["assumptions"])


def test_enforce_eager_false_changes_nothing_and_a_non_boolean_is_refused_by_name():
    assert _vllm(enforce_eager=False).engine == _vllm().engine
    with pytest.raises(PlannerError) as err:
        _vllm(enforce_eager="yes")
    assert err.value.field == "engine_options.enforce_eager"


def _row(measured: str) -> SimpleNamespace:
    return SimpleNamespace(model_path="moonshotai/Kimi-K2.5", system="gb200", backend="vllm",
                           silicon_data_source=f"db-dump/2026-04-27; config_id=698; silicon_concurrency=8; "
                                               f"measured={measured}T00:00:00.000Z; workflow_run_id=721")


def _args(measured: str) -> tuple:
    row = _row(measured)
    return row, measured_on(row)  # the row's date as the silicon mapping reads it


def test_recipe_pool_options_apply_from_the_recipes_date_only():
    prefill, decode = disagg_pool_options(*_args("2026-04-07"))
    assert prefill == {"enforce_eager": True, "max_batched_tokens": 16384} and decode == {"max_batched_tokens": 10240}
    assert disagg_pool_options(*_args("2026-03-01")) == ({}, {})
    other = SimpleNamespace(**{**vars(_row("2026-04-07")), "backend": "sglang"})
    assert disagg_pool_options(other, measured_on(other)) == ({}, {})


def test_a_dynamo_vllm_disaggregated_row_runs_its_prefill_pool_eagerly():
    """aiconfigurator-core 0.12.0 silicon_sample.csv row kimik2_5_gb200_vllm_fp4_disagg_1024x1024_c8_cfg698 (its
    columns as the CSV has them; measured TTFT 280 ms, TPOT 7.46 ms)."""
    row = {"id": "kimik2_5_gb200_vllm_fp4_disagg_1024x1024_c8_cfg698",
           "silicon_data_source": "db-dump/2026-04-27; config_id=698; silicon_concurrency=8; "
                                  "measured=2026-04-07T00:00:00.000Z; workflow_run_id=721; "
                                  "vllm/vllm-openai:v0.18.0-cu130",
           "backend": "vllm", "backend_version": "0.18.0", "model_path": "moonshotai/Kimi-K2.5", "system": "gb200",
           "precision": "fp4", "mode": "disagg", "isl": 1024, "osl": 1024, "gemm_quant_mode": "nvfp4",
           "moe_quant_mode": "nvfp4", "prefill_batch_size": 1.0, "prefill_num_workers": 1.0, "prefill_tp_size": 4.0,
           "prefill_pp_size": 1.0, "prefill_attention_dp_size": 1.0, "prefill_moe_tp_size": 1.0,
           "prefill_moe_ep_size": 4.0, "decode_batch_size": 2.0, "decode_num_workers": 4.0, "decode_tp_size": 4.0,
           "decode_pp_size": 1.0, "decode_attention_dp_size": 1.0, "decode_moe_tp_size": 1.0, "decode_moe_ep_size": 4.0,
           "silicon_ttft_ms": 280.05722372327, "silicon_tpot_ms": 7.456705740856379}
    df = pd.DataFrame([{c: row.get(c) for c in silicon.COLUMNS}])
    (case,), skipped = silicon.cases(df)
    assert not skipped
    d = case.scenario.disaggregation
    assert d.prefill.scenario.engine.cuda_graph_max_batch == 0 and not d.prefill.scenario.engine.compiled_steps
    assert d.prefill.scenario.engine.max_batched_tokens == 16384
    assert d.decode.scenario.engine.compiled_steps and d.decode.scenario.engine.max_batched_tokens == 10240
    eager = silicon.evaluate(case)["predicted_ttft_ms"]
    assert eager > 2 * 67  # the graphed prefill's 67 ms: the host now sets the first token (measured 280 ms)
    assert "enforce_eager true" in silicon.MAPPING["engine_options"]
