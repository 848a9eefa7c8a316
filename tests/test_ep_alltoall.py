"""Expert parallelism without attention DP: engines whose all-to-all needs attention DP (vLLM, TRT-LLM) exchange no
tokens, the MoE ends in the TP all-reduce; with attention DP, and in engines without the rule, the all-to-all stays."""

import pytest

from planner.deploy.scenario import make_scenario
from planner.perf.steps import decode_ops


def _names(engine: str, parallelism: dict) -> set[str]:
    gpus = parallelism["tp"] * parallelism.get("dp_attention", 1)
    sc = make_scenario("kimi-k2.5", weights="nvfp4", gpu="b200", gpus_per_node=gpus, engine=engine,
                       parallelism=parallelism)
    return {op.name for op in decode_ops(sc, 4, 2048)}


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_tp_ep_without_dp_has_no_alltoall(engine):
    names = _names(engine, {"tp": 4, "ep": 4})
    assert "comm.ep_dispatch_combine" not in names
    assert "comm.moe_allreduce" in names


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_ep_with_attention_dp_keeps_alltoall(engine):
    assert "comm.ep_dispatch_combine" in _names(engine, {"tp": 1, "dp_attention": 4, "ep": 4})


def test_engine_without_the_rule_keeps_alltoall():
    assert "comm.ep_dispatch_combine" in _names("sglang", {"tp": 4, "ep": 4})
