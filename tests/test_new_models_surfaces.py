"""Every model profile added in issue 20 on the user surfaces beyond `estimate` (tests/test_models_*.py): `planner
report` on a minimal report file and the dashboard under Streamlit's AppTest with the model picked in the sidebar. Both
must name the model's layer kinds and its KV cache per token and per request (hybrid models hold windows or a
linear-attention / compressor state per request: one "KV per token" number would be wrong for them), the report must
show one fitting deployment with its decode op records per layer kind, and its sizing section must rank plans; the
dashboard's Performance page starts each model from a deployment that fits and shows the same op records.

Kept fast (about a minute on 2 cores): the report's sizing workload searches one GPU type, one engine and one node (the
sizing workload's `search:` keys, docs/formats.md); one AppTest serves every model, its Model page's cheapest-plan
search restricted the same way. Also here: the picker's families (from each config's model_type), DeepSeek-V4's engine
refusals in estimate and sizing, and planner.model.kv_kinds agreeing with the KV layout for every profile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

import dashboard.data as data
from planner.base.errors import PlannerError
from planner.base.units import mb
from planner.deploy.scenario import make_scenario
from planner.model.families import family_name
from planner.model.kv import kv_layout
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import list_models, load_model
from planner.report.build import build_report
from planner.sizing.search import size
from planner.sizing.workload import workload_from_mapping

ROOT = Path(__file__).resolve().parent.parent
# model -> (weights (None: native), GPU, GPUs): one deployment that fits (vLLM, fp8 KV cache, TP over the GPUs,
# 2,000 prompt + 200 output tokens); GLM-5's bf16 checkpoint needs 16 B200s, its FP8 one 8; Kimi-K3 needs B300s
NEW_MODELS = {
    "deepseek-v3.2": (None, "b200", 8),
    "glm-5": ("fp8-block128", "b200", 8),
    "qwen3-next-80b-a3b": (None, "b200", 1),
    "qwen3.5-397b-a17b": (None, "b200", 8),
    "minimax-m2.7": (None, "b200", 2),
    "kimi-k2.6": (None, "b200", 4),
    "kimi-k3": (None, "b300", 8),
    "llama-4-maverick": (None, "b200", 8),
    "gemma-4-26b-a4b": (None, "b200", 1),
    "minimax-m3": (None, "b200", 8),
    "nemotron-3-super-120b-a12b": (None, "b200", 2),
    "mimo-v2-flash": (None, "b200", 2),
    "step-3.7-flash": (None, "b200", 4),
    "deepseek-v4-flash": (None, "b200", 1),
    "deepseek-v4-pro": (None, "b200", 8),
}
# decode op records a layer kind has of its own (planner.perf.ops_kinds, ops_dsv4); full attention: attn.*
KIND_OPS = {"linear_gdn": "lin.", "linear_kda": "lin.", "linear_mamba": "lin.", "csa": "attn_csa.",
            "hca": "attn_hca.", "gqa_sparse": "attn_sparse.", "mla_dsa": "attn.dsa_index_score"}
OWN_SLIDING_OPS = {"deepseek_v4": "attn_win.", "gemma4": "attn_swa.", "mimo_v2_flash": "attn_swa.",
                   "step3p7": "attn_swa."}  # Llama 4's chunked layers are timed with its full-attention records
FAMILIES = ["DeepSeek", "Kimi", "Qwen", "GLM", "MiniMax", "Llama", "Gemma", "Nemotron", "MiMo", "Step", "gpt-oss",
            "Mixtral"]
FAST_SEARCH = {"classes": ["gpu_server"], "engines": ["vllm"], "max_nodes": 1}
SMALL_TRAFFIC = {"requests_per_s": 0.2, "input_len": 1000, "output_len": 100}  # few simulated steps


def assert_kind_ops(spec, ops: set[str]) -> None:
    """The decode op records of every layer kind that has its own are among `ops`."""
    attention = spec.layer_kind_counts["attention"]
    wanted = {KIND_OPS[k] for k in attention if k in KIND_OPS}
    if "sliding" in attention and spec.architecture in OWN_SLIDING_OPS:
        wanted.add(OWN_SLIDING_OPS[spec.architecture])
    assert all(any(op.startswith(w) for op in ops) for w in wanted), (wanted, sorted(ops))


def report_file(tmp: Path, name: str) -> Path:
    weights, gpu, gpus = NEW_MODELS[name]
    weights = weights or load_model(name).native_weights
    doc = {
        "title": f"{name} on {gpus}x {gpu}",
        "models": [name], "formats": [weights], "kv_cache": ["fp8", "bf16"], "hardware": [gpu],
        "workloads": {"chat": {"phase": "serve", "input_len": 2000, "output_len": 200}},
        "plans": [{"name": "smoke", "model": name, "weights": weights, "kv_cache": "fp8",
                   "hardware": {"gpu": gpu, "gpus_per_node": gpus, "nodes": 1}, "parallelism": {"tp": gpus},
                   "engine": "vllm", "workload": "chat"}],
        "sections": ["model_card", "memory_per_gpu", {"kv_vs_context": {"max_context": 65536}},
                     "throughput_latency", {"roofline": {"plan": "smoke", "batches": [1, 16]}},
                     {"sizing": {"workload": {
                         "model": name, "weights": [weights], "kv_cache": ["fp8"], "context_len": 8192,
                         "traffic": SMALL_TRAFFIC,
                         "slo": {"ttft_ms": 10000, "tpot_ms": 200}, "purchase": "rent", "top": 1,
                         "search": {**FAST_SEARCH, "accelerators": [gpu]}}}}],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("name", list(NEW_MODELS))
def test_report_names_layer_kinds_kv_and_state(tmp_path, name):
    spec = load_model(name).spec
    out = tmp_path / "out"
    summary = build_report(report_file(tmp_path, name), out, png=False)
    assert summary["csv"] > 0
    md = (out / "report.md").read_text()
    csv = lambda stem: pd.read_csv(out / f"{stem}.csv")  # noqa: E731
    # layer kinds: the model card's sentence and table
    attention = spec.layer_kind_counts["attention"]
    assert f"{name}: {spec.num_layers} layers; attention " + ", ".join(f"{n} {k}" for k, n in attention.items()) in md
    kinds = csv("model-card--layer-kinds")
    assert dict(kinds[kinds["part"] == "attention"][["layer_kind", "layers"]].values) == attention
    # KV per token and per request, by kind, as planner.model.kv_kinds computes them
    kv = kv_by_kind(spec, "fp8")
    assert f"{name} (fp8 KV cache): {kv.words()}." in md
    by_kind = csv("kv-vs-context--kv-by-layer-kind")
    fp8 = by_kind[by_kind["dtype"] == "fp8"]
    assert set(fp8["attention_kind"]) == set(attention) - {"none"}
    assert fp8["kv_bytes_per_token"].sum() == pytest.approx(kv.bytes_per_token)
    assert fp8["bytes_per_request_fixed"].sum() == kv.bytes_per_request
    if kv.bytes_per_request:  # hybrid: the state is said, not folded into a per-token number
        assert "per request whatever its length" in md and mb(kv.bytes_per_request) in md
    # one fitting deployment, its decode op records per layer kind
    assert csv("memory-per-gpu--memory")["fits"].tolist() == [True]
    assert_kind_ops(spec, set(csv("roofline--roofline-ops")["op"]))
    # the restricted sizing search ranks plans
    assert len(csv("sizing--sizing-plans")) >= 1


def fast_workload_for(ref, model_name, preset=data.DEFAULT_WORKLOAD, _orig=data.workload_for):
    """The Model page's cheapest-plan workload searching one GPU type, one engine, one node, the native format and
    an fp8 KV cache (as the report's)."""
    wl = _orig(ref, model_name, preset)
    return None if wl is None else {**wl, "weights": [load_model(ref).native_weights], "kv_cache": ["fp8"],
                                    "context_len": 8192, "top": 1, "traffic": SMALL_TRAFFIC,
                                    "search": {**FAST_SEARCH, "accelerators": ["b200"]}}


@pytest.fixture(scope="module")
def app():
    mp = pytest.MonkeyPatch()
    mp.setattr(data, "workload_for", fast_workload_for)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["model"] = "deepseek-v4-flash"  # not the default Kimi K2.5: its first page is not needed here
    yield at.run()
    mp.undo()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", list(NEW_MODELS))
def test_dashboard_model_page(app, name):
    at = app.sidebar.selectbox(key="model").set_value(name).run()
    clean(at)
    assert at.title[0].value == f"{name}: what it takes to run it"
    spec = load_model(name).spec
    kv = kv_by_kind(spec, "fp8" if spec.deepseek_v4 else "bf16")  # the KV dtype vLLM runs for it
    metrics = {m.label.split(" (")[0]: m.value for m in at.metric}
    per_token = kv.bytes_per_token
    assert metrics["KV cache per token of context"] == (f"{per_token:,.0f} B" if float(per_token).is_integer()
                                                        else f"{per_token:,.2f} B")
    assert metrics.get("Held per request") == (mb(kv.bytes_per_request) if kv.bytes_per_request else None)
    facts = next(df.value for df in at.dataframe if "fact" in df.value.columns)
    kinds = ", ".join(f"{n} {k}" for k, n in spec.layer_kind_counts["attention"].items())
    assert kinds in set(facts["value"])
    table = next(df.value for df in at.dataframe if "attention_kind" in df.value.columns)
    assert set(table["attention_kind"]) == set(spec.layer_kind_counts["attention"]) - {"none"}
    assert any(s.value.startswith("**Smallest deployment in") for s in at.success)  # a deployment that fits


def test_picker_groups_models_by_family(app):
    at = app
    family = at.sidebar.selectbox(key="family")
    assert family.options == ["All families", *(f"{f} ({len(data.families()[f])})" for f in FAMILIES)]
    assert list(data.families()) == FAMILIES
    for fam, members in (("DeepSeek", {"deepseek-v3", "deepseek-v3.2", "deepseek-v4-flash", "deepseek-v4-pro"}),
                         ("Kimi", {"kimi-k2.5", "kimi-k2.6", "kimi-k3"}), ("Qwen", {"qwen3-next-80b-a3b"}),
                         ("gpt-oss", {"gpt-oss-120b"})):
        at.sidebar.selectbox(key="family").set_value(fam).run()
        clean(at)
        models = at.sidebar.selectbox(key="model").options
        assert members <= set(models) and all(family_name(load_model(m).spec.model_type) == fam for m in models)
        assert at.title[0].value.split(":")[0] in models  # the page follows the family's model
    at.sidebar.selectbox(key="family").set_value("All families").run()
    assert len(at.sidebar.selectbox(key="model").options) == len(list_models())
    assert "Kimi · kimi-k3" in at.sidebar.selectbox(key="model").options


@pytest.mark.parametrize("name", list(NEW_MODELS))
def test_dashboard_performance_page(app, name):
    """The page starts from the smallest deployment that fits (the model's own defaults, not the last model's) and
    puts its decode op records, per layer kind, on the roofline."""
    app.sidebar.radio(key="page").set_value("Performance").run()
    at = app.sidebar.selectbox(key="family").set_value("All families").run()
    at = at.sidebar.selectbox(key="model").set_value(name).run()
    clean(at)
    assert at.title[0].value == f"Performance: {name}"
    assert not [w.value for w in at.warning if w.value.startswith("Does not fit")]
    roofline = next(df.value for df in at.dataframe if "op" in df.value.columns)
    assert_kind_ops(load_model(name).spec, set(roofline["op"]))


def test_family_comes_from_the_config():
    assert [family_name(t) for t in ("kimi_k2", "kimi_linear", "deepseek_v4", "qwen3_5_moe_text", "glm_moe_dsa",
                                     "gpt_oss", "llama4_text", "nemotron_h", "step3p7", "some_new_type")] == \
        ["Kimi", "Kimi", "DeepSeek", "Qwen", "GLM", "gpt-oss", "Llama", "Nemotron", "Step", "Other"]


@pytest.mark.parametrize("name", list_models())
def test_kv_by_kind_adds_up_to_the_layout(name):
    spec = load_model(name).spec
    for dtype in ("bf16", "fp8"):
        kinds, layout = kv_by_kind(spec, dtype), kv_layout(spec, dtype)
        tokens = 2**20  # past every window, a multiple of DeepSeek-V4's 128-token entries
        assert kinds.bytes_per_token * tokens + kinds.bytes_per_request == pytest.approx(
            layout.bytes_for_context(tokens) + layout.state_bytes_per_request, abs=1)


@pytest.mark.parametrize(("engine", "kv", "tp", "field", "words"), [
    ("vllm", "bf16", 8, "kv_cache", "with an fp8 KV cache only"),
    ("sglang", "fp16", 8, "kv_cache", "with an fp8 KV cache only"),
    ("vllm", "fp8", 16, "parallelism.tp", "divides its 8 output-projection groups, not tp 16"),
])
def test_deepseek_v4_engine_refusals(engine, kv, tp, field, words):
    with pytest.raises(PlannerError, match=words) as err:
        make_scenario("deepseek-v4-flash", kv_cache=kv, gpu="b200", gpus_per_node=8, nodes=tp // 8,
                      parallelism={"tp": tp}, engine=engine)
    assert err.value.field == field
    # what the engines run passes: fp8 (or fp8_ds_mla) at a tp dividing o_groups; Pro's 16 groups take tp 16
    make_scenario("deepseek-v4-flash", kv_cache="fp8_ds_mla", gpu="b200", gpus_per_node=8, parallelism={"tp": 8},
                  engine=engine)
    make_scenario("deepseek-v4-pro", kv_cache="fp8", gpu="b200", gpus_per_node=8, nodes=2, parallelism={"tp": 16},
                  engine="vllm")


def test_deepseek_v4_refusal_is_one_line_from_estimate(tmp_path):
    scenario = tmp_path / "v4.yaml"
    scenario.write_text("model: deepseek-v4-flash\nkv_cache: bf16\nhardware: {gpu: b200, gpus_per_node: 8}\n"
                        "parallelism: {tp: 8}\nengine: vllm\n")
    run = subprocess.run([sys.executable, "-m", "planner", "estimate", str(scenario), "--json"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "kv_cache: vllm runs deepseek-v4-flash (DeepSeek-V4) with an fp8 KV cache only" in run.stderr


def test_deepseek_v4_sizing_rejects_what_the_engines_refuse():
    doc = size(workload_from_mapping({
        "model": "deepseek-v4-flash", "weights": ["mxfp4-fp8-block128"], "kv_cache": ["bf16", "fp8"],
        "context_len": 8192, "traffic": {"requests_per_s": 0.2, "input_len": 1000, "output_len": 100},
        "slo": {"ttft_ms": 10000, "tpot_ms": 200}, "purchase": "rent", "top": 1,
        "search": {"classes": ["gpu_server"], "accelerators": ["b200"], "engines": ["vllm"], "max_nodes": 2}}, "test"))
    rejected = doc["rejected"]
    assert rejected["vllm runs deepseek-v4-flash (DeepSeek-V4) with an fp8 KV cache only (kv_cache fp8 or "
                    "fp8_ds_mla), not bf16"] > 0
    assert rejected["vllm runs deepseek-v4-flash (DeepSeek-V4) at a tp that divides its 8 output-projection groups, "
                    "not tp 16"] > 0
    assert doc["plans"] and all(p["kv_cache"] == "fp8" and p["parallelism"]["tp"] <= 8 for p in doc["plans"])
