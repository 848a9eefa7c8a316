"""A checkpoint layout only some engines read (quant profile `engines:`): SGLang's W4AFP8 loads in SGLang only, the
per-channel INT4 (compressed-tensors WNA16) in vLLM and SGLang. Other engines refuse it in one line and the sizing
search never offers them that format."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.base.errors import PlannerError
from planner.deploy.engines import load_engine
from planner.model.quant import load_format
from planner.sizing.candidates import formats_for
from planner.sizing.workload import load_workload
from tests.scenario_util import scenario


@pytest.mark.parametrize(("fmt", "engines"), [("w4afp8", {"sglang"}), ("int4-channel", {"vllm", "sglang"})])
def test_only_the_named_engines_load_the_layout(fmt, engines):
    for name in ("vllm", "sglang", "trtllm"):
        assert load_engine(name).loads(load_format(fmt)) == (name in engines)
    assert load_engine("ideal").loads(load_format(fmt))


def test_refusal_is_one_line_naming_weights():
    with pytest.raises(PlannerError) as err:
        scenario(model="deepseek-v3", weights="w4afp8", engine="vllm")
    assert err.value.field == "weights" and "only sglang reads" in str(err.value) and "\n" not in str(err.value)
    assert scenario(model="deepseek-v3", weights="w4afp8", engine="sglang").weights.name == "w4afp8"


def test_sizing_offers_w4afp8_to_sglang_only():
    wl = load_workload(Path(__file__).resolve().parents[1] / "profiles" / "workloads" / "kimi-k2.5-chat.yaml")
    assert "w4afp8" in formats_for(wl, load_engine("sglang"), "gpu_server")
    assert "w4afp8" not in formats_for(wl, load_engine("vllm"), "gpu_server")
