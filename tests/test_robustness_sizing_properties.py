"""Robustness 1/4, sizing part: `planner size` under generated workloads (hypothesis), split from
tests/test_robustness_properties.py. Invariant: sizing never returns a plan that does not fit or misses its SLO,
and its answer is a JSON document without NaN or infinity.
"""

from __future__ import annotations

import json

from hypothesis import event
from hypothesis import strategies as st

from planner.deploy.memory import memory_report
from planner.deploy.scenario_file import scenario_from_mapping
from planner.model.models import load_model
from planner.sizing.search import size
from planner.sizing.workload import workload_from_mapping
from tests.properties_util import twice

SIZE_MODELS = ["qwen3-30b-a3b", "mixtral-8x7b", "deepseek-v2-lite", "gpt-oss-120b", "llama-3.1-70b"]


@st.composite
def workloads(d):
    model = d(st.sampled_from(SIZE_MODELS))
    limit = min(load_model(model).spec.max_context, 32_768)
    output_len = d(st.integers(16, 2048))
    input_len = d(st.integers(16, limit - output_len))
    traffic = {"input_len": input_len, "output_len": output_len}
    if d(st.booleans()):
        traffic["requests_per_s"] = d(st.sampled_from([0.01, 0.5, 2.0, 20.0]))
    else:
        traffic["concurrency"] = d(st.sampled_from([1, 8, 64, 512]))
    slo = {k: v for k, v in (("tpot_ms", d(st.sampled_from([None, 10, 30, 100, 1000]))),
                             ("ttft_ms", d(st.sampled_from([None, 300, 3000, 30000])))) if v is not None}
    return {"model": model, "traffic": traffic, "slo": slo or None,
            "context_len": d(st.integers(input_len + output_len, limit)),
            "purchase": d(st.sampled_from(["buy", "rent"])),
            "objective": d(st.sampled_from(["usd_per_m_tokens", "usd_per_hour", "capex", "latency"])),
            "kv_cache": d(st.sampled_from([["bf16"], ["fp8"], ["bf16", "fp8"]])), "top": d(st.integers(1, 4)),
            "search": {"classes": ["gpu_server"], "max_nodes": 1,
                       "accelerators": d(st.lists(st.sampled_from(["h100-sxm", "rtx-4090", "h200-sxm",
                                                                   "a100-sxm-40gb", "h800-sxm"]),
                                                  min_size=1, max_size=2, unique=True))}}


def _sizing_returns_feasible_plans(doc):
    wl = workload_from_mapping(doc, "generated-workload.yaml")
    out = size(wl)
    event("plans returned" if out["plans"] else "no plan (all rejected)")
    json.dumps(out, allow_nan=False)
    assert len(out["plans"]) <= wl.top
    for plan in out["plans"]:
        hw, par = plan["hardware"], plan["parallelism"]
        sc = scenario_from_mapping({
            "model": plan["model"], "weights": plan["weights"], "kv_cache": plan["kv_cache"], "engine": plan["engine"],
            "hardware": {"gpu": hw["gpu"], "gpus_per_node": hw["gpus_per_node"], "nodes": hw["nodes"]},
            "parallelism": {"tp": par["tp"], "ep": par["ep"], "pp": par["pp"], "dp_attention": par["dp_attention"],
                            "replicas": 1},
            "workload": {"phase": "serve", "input_len": wl.traffic.input_len, "output_len": wl.traffic.output_len,
                         "context_len": wl.context_len}}, "plan.yaml")
        mem = memory_report(sc)
        assert mem.fits, (plan["hardware"]["label"], mem.reason)
        assert plan["replicas"] >= 1 and plan["cost"]["usd_per_hour"] >= 0 and plan["cost"]["capex_usd"] >= 0
        for key, row in plan["slo"].items():
            assert row["margin"] >= -1e-6, (key, row)
        for limit_key, metric in (("tpot_ms", "tpot_ms"), ("ttft_ms", "ttft_ms")):
            if wl.slo_value(limit_key) is not None and plan["metrics"].get(metric) is not None:
                assert plan["metrics"][metric] <= wl.slo_value(limit_key) * (1 + 1e-6)


test_sizing_returns_feasible_plans, test_sizing_returns_feasible_plans_slow = twice(
    4, 120, workloads())(_sizing_returns_feasible_plans)
