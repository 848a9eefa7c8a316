"""The family section (issue 20 item 6): a model beside its relatives on the same hardware. It renders with the three
Kimi models; each of its tables holds what the planner's own calls give (inspect bytes, kv_kinds, memory_report,
estimate); a context past a model's max_position_embeddings says so; bad options are one line naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from planner.base.errors import PlannerError
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.inspect import weights_bytes_by_part
from planner.model.kv_kinds import kv_by_kind
from planner.model.models import load_model
from planner.model.quant import load_format
from planner.report.build import build_report
from planner.report.family import family_of
from planner.report.spec import load_report_spec
from planner.serving.estimate import estimate

ROOT = Path(__file__).resolve().parent.parent
KIMI = ROOT / "profiles" / "reports" / "kimi-k2.5.yaml"
MODELS = ["kimi-k2.5", "kimi-k2.6", "kimi-k3"]
WORKLOAD = {"phase": "serve", "concurrency": 8, "input_len": 2000, "output_len": 500}
H200 = {"name": "8x H200", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8}, "parallelism": {"tp": 8},
        "engine": "vllm"}
PP2 = {"name": "16x H200 pp2", "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8, "nodes": 2},
       "parallelism": {"tp": 8, "pp": 2}, "engine": "vllm"}


def family_options(**over) -> dict:
    return {"models": MODELS, "formats": ["int4-g32", "mxfp4"], "kv_cache": "bf16", "contexts": [262144, 1048576],
            "deployments": [H200, PP2], "workload": WORKLOAD, **over}


def report_file(tmp: Path, options) -> Path:
    doc = {"title": "Kimi family", "models": ["kimi-k2.5"], "kv_cache": ["bf16"], "hardware": ["h200-sxm"],
           "workloads": {"chat": {"phase": "serve", "input_len": 4000, "output_len": 1000}},
           "sections": [{"family": options}]}
    path = tmp / "family.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("family")
    out = tmp / "out"
    summary = build_report(report_file(tmp, family_options()), out, png=False)
    csv = lambda stem: pd.read_csv(out / f"family--family-{stem}.csv")  # noqa: E731
    return summary, (out / "report.md").read_text(), (out / "index.html").read_text(), csv


def test_section_renders_with_the_three_models(built):
    summary, md, html, csv = built
    assert summary["sections"] == ["kimi-k2.5 and its family: kimi-k2.6, kimi-k3"]
    for table in ("weights", "kv", "deployments"):
        assert set(csv(table)["model"]) == set(MODELS)
    assert "## kimi-k2.5 and its family" in md and 'id="family"' in html
    # one sentence per relative: K2.6 is K2.5's shape, K3 needs more GPUs
    assert "kimi-k2.6 needs nothing beyond kimi-k2.5" in md
    assert "kimi-k3 needs " in md and "so it does not fit on 8x H200, where kimi-k2.5 does, and fits on 16x H200 pp2" \
        in md
    # published checkpoints vs your own quantization, as sizing marks them
    w = csv("weights").set_index(["model", "format"])
    assert w.loc[("kimi-k2.5", "int4-g32"), "checkpoint"] == "moonshotai/Kimi-K2.5"
    assert w.loc[("kimi-k3", "mxfp4"), "checkpoint"] == "moonshotai/Kimi-K3"
    assert w.loc[("kimi-k3", "int4-g32"), "checkpoint"].startswith("*")


def test_numbers_are_the_planners(built):
    _, md, _, csv = built
    # weights: the stored bytes `planner inspect` gives (every part the checkpoint holds)
    w = csv("weights").set_index(["model", "format"])
    k3 = load_model("kimi-k3")
    assert w.loc[("kimi-k3", "mxfp4"), "weights_bytes"] == sum(weights_bytes_by_part(k3, load_format("mxfp4")).values())
    # KV: per token and per request from planner.model.kv_kinds, one request of 1M tokens
    kv = csv("kv").set_index(["model", "context_tokens"])
    kinds = kv_by_kind(k3.spec, "bf16")
    row = kv.loc[("kimi-k3", 1048576)]
    assert row.kv_bytes_per_token == pytest.approx(kinds.bytes_per_token)
    assert row.state_bytes_per_request == kinds.bytes_per_request > 0  # KDA's conv and recurrent state
    assert row.kv_bytes_at_context == pytest.approx(kinds.bytes_per_token * 1048576 + kinds.bytes_per_request)
    assert kv.loc[("kimi-k2.5", 262144)].state_bytes_per_request == 0  # all MLA: nothing fixed
    # a deployment: the estimate of the same scenario, and its memory_report
    sc = make_scenario("kimi-k2.5", weights="int4-g32", kv_cache="bf16", gpu="h200-sxm", gpus_per_node=8,
                       parallelism={"tp": 8}, engine="vllm", workload=WORKLOAD)
    want = estimate(sc)
    dep = csv("deployments").set_index(["model", "deployment"])
    got = dep.loc[("kimi-k2.5", "8x H200")]
    assert got.fits and got.tpot_ms == pytest.approx(want["metrics"]["tpot_ms"])
    assert got.output_tokens_per_s_per_user == pytest.approx(want["metrics"]["output_tokens_per_s_per_user"])
    assert got.prefill_tokens_per_s_per_gpu == pytest.approx(want["metrics"]["prefill_tokens_per_s_per_gpu"])
    assert got.weights_bytes_per_gpu == memory_report(sc).weights_bytes_per_gpu
    # a model that does not fit shows the planner's one-line reason, and no speed
    k3_row = dep.loc[("kimi-k3", "8x H200")]
    sc3 = make_scenario("kimi-k3", kv_cache="bf16", gpu="h200-sxm", gpus_per_node=8, parallelism={"tp": 8},
                        engine="vllm", workload=WORKLOAD)
    assert not k3_row.fits and k3_row.reason == estimate(sc3)["reason"] == memory_report(sc3).reason
    assert "\n" not in k3_row.reason and k3_row.reason in md and pd.isna(k3_row.tpot_ms)
    assert dep.loc[("kimi-k3", "16x H200 pp2")].fits


def test_a_context_beyond_the_model_says_so(built):
    _, md, _, csv = built
    kv = csv("kv").set_index(["model", "context_tokens"])
    for name in ("kimi-k2.5", "kimi-k2.6"):  # 262,144-token models asked for 1M
        row = kv.loc[(name, 1048576)]
        assert pd.isna(row.kv_bytes_at_context) and row.note == "beyond its context (262,144 tokens)"
    assert pd.isna(kv.loc[("kimi-k3", 1048576)].note)  # K3 reaches 1M (CSV writes '' as empty)
    assert "beyond its context (262,144 tokens)" in md
    assert "it reaches 1,048,576 tokens" in md


def test_shipped_report_declares_the_family():
    spec = load_report_spec(KIMI)
    sec = next(s for s in spec.sections if s.kind == "family")
    assert sec.options["models"] == MODELS and sec.options["contexts"] == [262144, 1048576]
    f = family_of(spec, sec.options, sec.field)
    names = {d["name"] for d in sec.options["deployments"]}
    assert {"8x H200", "8x B200"} <= names and set(f.deployments["deployment"]) == names
    assert set(f.kv["model"]) == set(MODELS) and len(f.verdicts) == 2


BAD = [
    ({"contexts": ["1M"]}, "sections[0].family.contexts", "whole numbers of tokens"),
    ({"contexts": 262144}, "sections[0].family.contexts", "whole numbers of tokens"),
    ({"models": ["kimi-k2.5", "no-such-model"]}, "sections[0].family.models[1]", "unknown model"),
    ({"kv_cache": "fp7"}, "sections[0].family.kv_cache", "unknown KV cache dtype"),
    ({"formats": ["int3"]}, "sections[0].family.formats[0]", ""),
    ({"deployments": {"hardware": {"gpu": "h200-sxm"}}}, "sections[0].family.deployments", "list of mappings"),
    ({"deployments": [{"hardware": {"gpu": "h200-sxm"}, "gpus": 8}]}, "sections[0].family.deployments[0].gpus",
     "unknown key"),
    ({"deployments": [{"hardware": {"gpu": "no-such-gpu", "gpus_per_node": 8}}]},
     "sections[0].family.deployments[0]: hardware.gpu", ""),
    ({"deployments": None}, "sections[0].family.deployments", "missing"),
    ({"workload": "batch"}, "sections[0].family.workload", "unknown workload"),
    ({"speed": True}, "sections[0].family.speed", "unknown key"),
    ({"models": ["kimi-k2.5"]}, "sections[0].family.models", "two or more different models"),
    ({"models": ["kimi-k2.5", "kimi-k2.5"]}, "sections[0].family.models", "two or more different models"),
    ({"workload": {"phase": "serve", "input_tokens": 10}}, "sections[0].family.workload.input_tokens", "unknown key"),
    ({"deployments": [H200, H200]}, "sections[0].family.deployments[1]", "two deployments are named '8x H200'"),
]


@pytest.mark.parametrize(("over", "field", "words"), BAD, ids=[b[1].rsplit(".", 1)[-1] + str(k)
                                                               for k, b in enumerate(BAD)])
def test_bad_options_name_file_and_field(tmp_path, over, field, words):
    path = report_file(tmp_path, family_options(**over))
    with pytest.raises(PlannerError) as err:
        build_report(path, tmp_path / "out", png=False)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{path}: {field}") and words in line
    assert not (tmp_path / "out").exists()


def test_cli_refuses_bad_family_in_one_line(tmp_path):
    path = report_file(tmp_path, family_options(contexts=[0]))
    run = subprocess.run([sys.executable, "-m", "planner", "report", str(path), "--out", str(tmp_path / "out"),
                          "--no-png"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode != 0 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "family.yaml" in lines[0]
    assert "sections[0].family.contexts" in lines[0]
