"""kernels_bench silicon-gpu-cv (leave one GPU out) on tiny tables in aiconfigurator-core's schema."""

from __future__ import annotations

import json
import shutil

import pytest

from kernels_bench.cli import main

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from tests.silicon_util import fixtures  # noqa: E402  (after the skips: they write parquet)


def test_leave_one_gpu_out_times_each_gpus_held_out_rows_with_every_other_gpus_fit(tmp_path, capsys):
    """kernels_bench silicon-gpu-cv: the same tables on two GPUs, each imported; each GPU's held-out rows timed with
    its own calibration give its import's held-out error, and with the other GPU's calibration a figure of its own."""
    fixtures(tmp_path / "data")
    shutil.copytree(tmp_path / "data" / "h200_sxm", tmp_path / "data" / "h100_sxm")  # H100 timed as H200: a misfit
    out = tmp_path / "cal"
    docs = {}
    for system in ("h200_sxm", "h100_sxm"):
        assert main(["import-silicon", "--system", system, "--engine", "sglang", "--data", str(tmp_path / "data"),
                     "--out", str(out), "--json"]) == 0
        docs[system] = json.loads(capsys.readouterr().out)
    assert main(["silicon-gpu-cv", "--engine", "sglang", "--data", str(tmp_path / "data"), "--calibrations",
                 str(out), "--json"]) == 0
    cv = json.loads(capsys.readouterr().out)["engines"]["sglang"]
    assert set(cv) == {"h200-sxm", "h100-sxm"} and all(set(v) == {"h200-sxm", "h100-sxm"} for v in cv.values())
    for gpu, system in (("h200-sxm", "h200_sxm"), ("h100-sxm", "h100_sxm")):
        own = cv[gpu][gpu]
        assert own["all"]["n"] == docs[system]["n_holdout"]
        assert own["all"]["median_abs_error"] == pytest.approx(docs[system]["holdout_median_abs_error"], abs=1e-3)
        other = next(g for g in cv if g != gpu)
        assert cv[gpu][other]["all"]["n"] == own["all"]["n"]
    # H100's rows are H200's times on a slower GPU: H200's fit, read on H100's peaks, is off by more than H100's own
    assert cv["h100-sxm"]["h200-sxm"]["all"]["median_abs_error"] > cv["h100-sxm"]["h100-sxm"]["all"]["median_abs_error"]
    assert main(["silicon-gpu-cv", "--engine", "sglang", "--data", str(tmp_path / "data"), "--calibrations",
                 str(out)]) == 0
    assert "| sglang | H100 | all |" in capsys.readouterr().out
    assert main(["silicon-gpu-cv", "--engine", "vllm", "--data", str(tmp_path / "data"), "--calibrations",
                 str(out)]) == 2
    assert "no two GPUs" in capsys.readouterr().err
