"""Memory fit per GPU: the issue's reference scenarios and the relations an expert expects."""

from __future__ import annotations

import pytest

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from tests.scenario_util import scenario

CTX_256K = {"input_len": 258048, "output_len": 4096}  # 262,144 tokens


def test_kimi_int4_8xh200_tp8_256k():
    mem = memory_report(scenario(workload=CTX_256K))
    assert mem.fits, mem.reason
    # 570.76 GB routed experts / 8 + replicated q_a/kv_a projections, router, norms and vision tower
    assert 76e9 < mem.weights_bytes_per_gpu < 78.5e9
    # MLA latent is replicated on every TP rank: 70,272 B per token per GPU
    assert mem.kv_bytes_per_token_per_gpu == 70_272
    assert mem.kv_tokens_per_gpu == mem.kv_cache_bytes_per_gpu // 70_272
    assert mem.max_concurrency >= 1  # at least one 256K request
    assert mem.kv_bytes_per_sequence_per_gpu == 262_144 * 70_272


def test_kimi_bf16_8xh100_does_not_fit_and_says_why():
    mem = memory_report(scenario(weights="bf16", hardware={"gpu": "h100-sxm"}))
    assert not mem.fits
    assert "weights need" in mem.reason and "H100" in mem.reason
    assert mem.weights_bytes_per_gpu > 250e9


def test_kimi_int4_8xh100_256k_answers_kv():
    mem = memory_report(scenario(hardware={"gpu": "h100-sxm"}, workload=CTX_256K))
    assert not mem.fits
    assert "262,144-token request" in mem.reason  # says what one 256K request would need on top
    assert mem.kv_tokens_per_gpu == 0


def test_fp8_ds_mla_holds_more_tokens():
    a = memory_report(scenario())
    b = memory_report(scenario(kv_cache="fp8_ds_mla"))
    assert b.kv_tokens_per_gpu > 1.7 * a.kv_tokens_per_gpu  # 1152 B -> 656 B per layer


def test_more_gpus_never_less_free_per_gpu():
    base = {"model": "deepseek-v3", "weights": "fp8-block128"}
    small = memory_report(scenario(**base, hardware={"gpus_per_node": 8}, parallelism={"tp": 8}))
    big = memory_report(scenario(**base, hardware={"gpus_per_node": 8, "nodes": 2},
                                 parallelism={"tp": 16, "replicas": 1}))
    assert big.weights_bytes_per_gpu < small.weights_bytes_per_gpu
    assert big.kv_cache_bytes_per_gpu > small.kv_cache_bytes_per_gpu


def test_fits_stays_fitting_with_more_memory():
    base = {"model": "deepseek-v3", "weights": "fp8-block128", "parallelism": {"tp": 8}}
    for small, large in [("h100-sxm", "h200-sxm"), ("h200-sxm", "b200")]:
        a = memory_report(scenario(**base, hardware={"gpu": small}))
        b = memory_report(scenario(**base, hardware={"gpu": large}))
        assert not a.fits or b.fits
        assert b.kv_cache_bytes_per_gpu >= a.kv_cache_bytes_per_gpu


def test_pipeline_parallel_splits_layers():
    one = memory_report(scenario(model="deepseek-v3", weights="fp8-block128", hardware={"nodes": 2},
                                 parallelism={"tp": 8, "pp": 1, "replicas": 1}))
    two = memory_report(scenario(model="deepseek-v3", weights="fp8-block128", hardware={"nodes": 2},
                                 parallelism={"tp": 8, "pp": 2}))
    assert 0.45 < two.weights_bytes_per_gpu / one.weights_bytes_per_gpu < 0.56
    assert two.kv_bytes_per_token_per_gpu < one.kv_bytes_per_token_per_gpu  # each stage caches its own layers


def test_dp_attention_multiplies_concurrency_not_per_gpu_kv():
    tp = memory_report(scenario(engine="sglang", parallelism={"tp": 8}))
    dp = memory_report(scenario(engine="sglang", parallelism={"tp": 1, "dp_attention": 8, "ep": 8}))
    assert tp.kv_bytes_per_token_per_gpu == dp.kv_bytes_per_token_per_gpu  # MLA latent: same per GPU
    assert dp.weights_bytes_per_gpu > tp.weights_bytes_per_gpu  # attention replicated on every DP rank
    assert dp.max_concurrency > 5 * tp.max_concurrency * (dp.kv_cache_bytes_per_gpu / tp.kv_cache_bytes_per_gpu) / 8


def test_offload_moves_experts_to_host():
    host = {"cpu": "xeon-8480", "sockets": 2, "memory_gb": 1024, "dram": "ddr5-4800", "channels_per_socket": 8}
    kw = dict(model="deepseek-v3", weights="fp8-block128", hardware={"gpu": "h200-sxm", "gpus_per_node": 8,
                                                                      "host": host})
    none = memory_report(scenario(**kw))
    some = memory_report(scenario(**kw, offload={"expert_layers_on_cpu": 20}))
    every = memory_report(scenario(**kw, offload={"expert_layers_on_cpu": "all"}))
    assert none.host_bytes == 0 < some.host_bytes < every.host_bytes
    assert none.weights_bytes_per_gpu > some.weights_bytes_per_gpu > every.weights_bytes_per_gpu
    # 58 MoE layers x 256 experts x 44,050,944 B (checkpoints.yaml per_routed_expert_bytes)
    assert every.host_bytes == 58 * 256 * 44_050_944


def test_host_too_small_is_reported():
    host = {"cpu": "xeon-8480", "sockets": 1, "memory_gb": 64, "dram": "ddr5-4800", "channels_per_socket": 8}
    mem = memory_report(scenario(hardware={"gpu": "rtx-4090", "gpus_per_node": 1, "host": host},
                                 parallelism={"tp": 1}, offload={"expert_layers_on_cpu": "all"},
                                 weights="gguf-ud-tq1_0", engine="llamacpp"))
    assert not mem.fits and "host RAM" in mem.reason


def test_batch_that_does_not_fit_names_kv():
    mem = memory_report(scenario(workload={"batch_per_gpu": 10_000}))
    assert not mem.fits and "KV cache for" in mem.reason


@pytest.mark.parametrize("over, field", [
    ({"parallelism": {"tp": 3}}, "parallelism.tp"),
    ({"parallelism": {"tp": 8, "ep": 3}}, "parallelism.ep"),
    ({"model": "mixtral-8x7b", "weights": "bf16", "parallelism": {"tp": 1, "dp_attention": 16, "ep": 16},
      "hardware": {"nodes": 2}}, "parallelism.ep"),
    ({"parallelism": {"tp": 8, "replicas": 2}}, "parallelism"),
    ({"parallelism": {"tp": 8, "pp": 100}}, "parallelism.pp"),
    ({"workload": {"input_len": -5}}, "workload.input_len"),
    ({"workload": {"input_len": 10**12}}, "workload.input_len"),
    ({"hardware": {"gpus_per_node": -1}}, "hardware.gpus_per_node"),
    ({"hardware": {"gpu": "tpu-v9"}}, "hardware.gpu"),
    ({"kv_cache": "int2"}, "kv_cache"),
    ({"engine": "magic"}, "engine"),
    ({"weights": "int3-g7"}, "weights"),
    ({"surprise": 1}, "surprise"),
    ({"workload": {"phase": "train"}}, "workload.phase"),
    ({"offload": {"expert_layers_on_cpu": 4}}, "hardware.host"),
    ({"workload": {"input_len": 300_000, "output_len": 100}}, "workload.input_len"),  # max_position_embeddings 262,144
    ({"workload": {"context_len": 1_000_000}}, "workload.context_len"),
])
def test_bad_scenarios_name_the_field(over, field):
    with pytest.raises(PlannerError) as err:
        memory_report(scenario(**over))
    assert err.value.field == field, str(err.value)
    assert err.value.file == "test.yaml"
