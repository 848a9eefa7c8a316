"""Prefill/decode disaggregation (issue 18): the scenario's `disaggregation` mapping (planner.deploy.disaggregation),
its simulation (planner.serving.disagg) and estimate, and the silicon CSV's disaggregated rows
(planner.serving.silicon). Relations, not fitted numbers: more prefill workers never raise mean TTFT at a fixed load,
the KV transfer grows with the prompt and falls with the bandwidth, TPOT is the decode pool's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from planner.cli import main
from planner.deploy.disaggregation import disaggregated, pool
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.deploy.scenario_file import load_scenario
from planner.serving import silicon
from planner.serving.client import client_for
from planner.serving.disagg import simulate_disaggregated
from planner.serving.estimate import estimate

FIXTURE = Path(__file__).parent / "data" / "silicon_sample_small.csv"
WORKLOAD = {"phase": "serve", "concurrency": 16, "input_len": 2048, "output_len": 64, "num_prompts": 64,
            "random_range_ratio": 0.8}


def _deployment(prefill_workers=1, prefill_tp=2, decode_workers=1, decode_tp=2, kv=None, workload=None, gpus=8):
    base = make_scenario("qwen3-30b-a3b", gpu="h100-sxm", gpus_per_node=8, nodes=max(1, gpus // 8),
                         engine="vllm", workload=workload or WORKLOAD, name="q30-disagg")
    dis = disaggregated(base, pool(base, "prefill", prefill_workers, {"tp": prefill_tp}),
                        pool(base, "decode", decode_workers, {"tp": decode_tp}), kv)
    return replace(base, disaggregation=dis)


def _run(sc):
    dis = sc.disaggregation
    mems = (memory_report(dis.prefill.scenario), memory_report(dis.decode.scenario))
    return simulate_disaggregated(dis, mems, client_for(sc))


def test_more_prefill_workers_never_raise_the_prefill_wait():
    runs = [_run(_deployment(prefill_workers=p, gpus=16)) for p in (1, 2, 4)]
    wait = [r.prefill_wait_s for r in runs]  # intake to the prompt's last chunk: queue + prefill
    assert wait[0] >= wait[1] * (1 - 1e-12) and wait[1] >= wait[2] * (1 - 1e-12) and wait[2] > 0  # (means: rounding)
    # 16 prompts of ~1,850 tokens queue for one prefill worker, so mean TTFT falls too; between 2 and 4 workers
    # nothing queues and TTFT moves only with the decode pool's step boundaries (the pick-up), so it is not ordered
    ttft = [float(r.sim.metrics()["ttft_ms"]) for r in runs]
    assert ttft[0] > max(ttft[1], ttft[2]) > 0


def test_kv_transfer_grows_with_prompt_and_falls_with_bandwidth():
    dis = _deployment().disaggregation
    t = [dis.transfer.seconds(dis.kv_bytes(n)) for n in (256, 1024, 8192)]
    assert t[0] < t[1] < t[2]
    assert dis.kv_bytes(1024) == 1024 * dis.kv_bytes(1)  # full-attention layers: linear in the prompt
    slow, fast = (_deployment(kv={"bandwidth_gb_per_s": bw}).disaggregation.transfer for bw in (5, 50))
    assert slow.seconds(dis.kv_bytes(1024)) > fast.seconds(dis.kv_bytes(1024))
    # in the simulation too: the mean transfer (link queue included) falls with the bandwidth
    runs = [_run(_deployment(kv={"bandwidth_gb_per_s": bw})) for bw in (5, 50)]
    assert runs[0].transfer_s > runs[1].transfer_s > 0


def test_link_is_nvlink_inside_one_domain_else_rdma():
    assert _deployment(gpus=8).disaggregation.transfer.link == "nvlink"  # 2 + 2 GPUs in one 8-GPU node
    assert _deployment(prefill_workers=4, decode_workers=4, gpus=16).disaggregation.transfer.link == "rdma"
    base = make_scenario("deepseek-r1", gpu="gb200", gpus_per_node=4, nodes=8, engine="trtllm", workload=WORKLOAD)
    nvl = disaggregated(base, pool(base, "prefill", 2, {"tp": 4, "ep": 4}),
                        pool(base, "decode", 2, {"dp_attention": 8, "ep": 8}))
    assert nvl.transfer.link == "nvlink" and nvl.transfer.streams == 1  # NVL72 rack; the MLA latent is one copy


def test_tpot_is_set_by_the_decode_pool():
    base = _run(_deployment()).sim.metrics()["tpot_ms"]
    other_prefill = _run(_deployment(prefill_tp=4)).sim.metrics()["tpot_ms"]
    other_decode = _run(_deployment(decode_tp=4)).sim.metrics()["tpot_ms"]
    assert other_prefill == pytest.approx(base, rel=0.05)
    assert abs(other_decode / base - 1) > 0.1


def test_first_token_from_the_decode_worker_comes_later():
    pre = _run(_deployment()).sim.metrics()["ttft_ms"]
    dec = _run(_deployment(kv={"first_token": "decode"})).sim.metrics()["ttft_ms"]
    assert dec > pre


def test_estimate_reports_both_pools(tmp_path):
    doc = {"name": "q30", "model": "qwen3-30b-a3b", "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8},
           "engine": "vllm", "workload": WORKLOAD, "parallelism": {"tp": 2},
           "disaggregation": {"prefill": {"workers": 1}, "decode": {"workers": 1, "parallelism": {"tp": 4}},
                              "kv_transfer": {"latency_ms": 2}}}
    path = tmp_path / "q30.yaml"
    path.write_text(yaml.safe_dump(doc))
    sc = load_scenario(path)
    assert (sc.disaggregation.prefill.scenario.parallelism.tp, sc.disaggregation.decode.scenario.parallelism.tp) \
        == (2, 4)  # the top-level plan is the default, the pool's overrides it
    assert sc.disaggregation.prefill.scenario.parallelism.disaggregated
    r = estimate(sc)
    assert r["fits"] and r["scenario"]["gpus"] == 6
    assert set(r["memory"]["pools"]) == {"prefill", "decode"}
    assert r["scenario"]["disaggregation"]["kv_transfer"]["latency_ms"] == 2
    m = r["metrics"]
    assert m["ttft_ms"] > 0 and m["tpot_ms"] > 0 and m["e2e_latency_ms"] > m["ttft_ms"]
    assert r["simulation"]["summary"]["requests"] == WORKLOAD["num_prompts"]


def test_a_pool_that_does_not_fit_is_named():
    sc = make_scenario("deepseek-r1", gpu="h100-sxm", gpus_per_node=8, nodes=2, engine="sglang", workload=WORKLOAD)
    sc = replace(sc, disaggregation=disaggregated(sc, pool(sc, "prefill", 1, {"tp": 8}),
                                                  pool(sc, "decode", 1, {"tp": 8})))
    r = estimate(sc)
    assert not r["fits"] and r["reason"].startswith("prefill pool: ") and r["metrics"]["ttft_ms"] is None


@pytest.mark.parametrize(("disagg", "field"), [
    ({"prefill": {"workers": 0}, "decode": {}}, "disaggregation.prefill.workers"),
    ({"prefill": {"workers": 1, "gpus": 2}, "decode": {}}, "disaggregation.prefill.gpus"),
    ({"prefill": {}}, "disaggregation.decode"),
    ({"prefill": {"parallelism": {"tp": 3}}, "decode": {}}, "disaggregation.prefill.parallelism.tp"),
    ({"prefill": {"parallelism": {"replicas": 2}}, "decode": {}}, "disaggregation.prefill.parallelism.replicas"),
    ({"prefill": {"workers": 4, "parallelism": {"tp": 2}}, "decode": {"workers": 1}}, "disaggregation"),
    ({"prefill": {}, "decode": {}, "kv_transfer": {"link": "pcie"}}, "disaggregation.kv_transfer.link"),
    ({"prefill": {}, "decode": {}, "kv_transfer": {"latency_ms": -1}}, "disaggregation.kv_transfer.latency_ms"),
    ({"prefill": {}, "decode": {}, "kv_transfer": {"first_token": "both"}}, "disaggregation.kv_transfer.first_token"),
    ([1, 2], "disaggregation"),
])
def test_bad_disaggregation_fields_are_one_line(tmp_path, capsys, disagg, field):
    doc = {"model": "qwen3-30b-a3b", "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8}, "engine": "vllm",
           "workload": WORKLOAD, "disaggregation": disagg}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["estimate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: {field}: "), err


def test_without_a_client_load_it_is_refused(tmp_path, capsys):
    doc = {"model": "qwen3-30b-a3b", "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8},
           "workload": {"phase": "decode", "batch_per_gpu": 8}, "disaggregation": {"prefill": {}, "decode": {}}}
    path = tmp_path / "decode.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["estimate", str(path)]) == 2
    assert "concurrency or a request_rate" in capsys.readouterr().err


def test_silicon_disaggregated_rows_map_to_pools():
    df = silicon.read_csv(FIXTURE)
    cases, _ = silicon.cases(df, str(FIXTURE))
    split = [c for c in cases if c.labels["mode"] == "disagg"]
    assert len(split) == 2
    sc = split[0].scenario
    dis = sc.disaggregation
    pre, dec = dis.prefill, dis.decode
    # kimik2_5_gb200_trtllm_fp4_disagg_*_cfg759: 1 prefill worker tp 1 x attention-DP 4, EP 4; 4 decode workers TP8 EP8
    assert (pre.workers, pre.scenario.parallelism.tp, pre.scenario.parallelism.dp_attention,
            pre.scenario.parallelism.ep) == (1, 1, 4, 4)
    assert (dec.workers, dec.scenario.parallelism.tp, dec.scenario.parallelism.ep) == (4, 8, 8)
    assert dis.gpus == 36 and sc.total_gpus >= 36 and dis.transfer.link == "nvlink"  # one GB200 NVL72 rack
    # the row's nvfp4 is NVIDIA's published Kimi-K2.5-NVFP4 checkpoint (BF16 attention)
    assert (sc.workload.concurrency, sc.model.name, sc.weights.name) == (4, "kimi-k2.5", "nvfp4-bf16-attn")
    assert split[0].labels["plan"] == "1 x DP4-attn+EP4 | 4 x TP8+EP8"
    row = silicon.evaluate(split[0])
    assert row["fits"] and row["predicted_ttft_ms"] > 0 and row["predicted_tpot_ms"] > 0
    # a disaggregated row without worker counts (most of aiconfigurator-core 0.12.0's) is skipped with the reason
    bare = df[df["mode"] == "disagg"].head(1).assign(prefill_num_workers=float("nan"))
    _, skipped = silicon.cases(pd.concat([bare]), str(FIXTURE))
    assert skipped[0]["reason"] == "disaggregated: prefill/decode worker counts not recorded"
    inconsistent = df[df["mode"] == "disagg"].head(1).assign(decode_moe_tp_size=2.0)
    _, skipped = silicon.cases(inconsistent, str(FIXTURE))
    assert skipped[0]["reason"] == "parallel plan inconsistent (decode): moe_tp 2 x moe_ep 8 != tp 8 x dp 1"


def test_one_user_never_exceeds_its_own_rate():
    """Concurrency 1 on several workers per pool: the system's output rate is the one user's at most, and every
    request's first token comes before its last."""
    wl = {**WORKLOAD, "concurrency": 1, "num_prompts": 4}
    res = _run(_deployment(prefill_workers=2, decode_workers=2, workload=wl, gpus=8)).sim
    m = res.metrics()
    assert m["system_output_tokens_per_s"] <= m["output_tokens_per_s_per_user"] * 1.0001
    assert res.requests == 4 and (res.ttft_s > 0).all() and (res.e2e_s > res.ttft_s).all()
