"""kernels_bench import-silicon on tiny tables in aiconfigurator-core's schema (the package itself is not needed),
and the planner's engine-aware calibration lookup and W4A16 expert curve."""

from __future__ import annotations

import json

import pytest

from kernels_bench import silicon
from kernels_bench.cli import main
from planner.base.errors import PlannerError
from planner.deploy.scenario import make_scenario
from planner.hardware.accelerators import load_accelerator
from planner.hardware.efficiency import SILICON_DIR, _read, calibration_files, efficiency_for
from planner.perf.steps import decode_step, kernel_notes, machine

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from tests.silicon_util import GPU, _latency_ms, _write, fixtures  # noqa: E402  (after the skips: they write parquet)


def test_import_silicon_fits_and_writes(tmp_path, capsys):
    fixtures(tmp_path / "data")
    out = tmp_path / "cal"
    rc = main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
               "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["device"] == "h200-sxm-sglang" and doc["n_holdout"] >= 6
    assert doc["holdout_median_abs_error"] < doc["default_holdout_median_abs_error"]
    assert doc["engine_versions"]["moe_perf"] == "0.5.14"
    eff = _read(out / "h200-sxm-sglang.yaml", efficiency_for(None))
    assert "int4" in dict(eff.ops["grouped_gemm"].compute_by_dtype)
    assert {"int4", "fp8"} <= set(dict(eff.ops["grouped_gemm"].shape_by_dtype))  # a shape surface per dtype
    assert "bf16" in dict(eff.ops["gemm"].shape_by_dtype) and "bf16" in dict(eff.ops["attention_decode"].shape_by_dtype)
    # kernel variants within a dtype fit surfaces of their own (SURFACE_VARIANTS), held out at their own speed
    assert "fp8_tensor" in dict(eff.ops["gemm"].shape_by_dtype)
    assert "fp8_kv" in dict(eff.ops["attention_decode"].shape_by_dtype)
    for variant in ("gemm_perf.fp8", "generation_mla_perf.fp8"):
        assert doc["tables"][variant]["holdout_median_abs_error"] < 0.15, variant  # ~55% / 50% on the dtype's own
    gemm = doc["tables"]["gemm_perf.bfloat16"]
    assert {"curves_median_abs_error", "default_median_abs_error", "cv_median_abs_error"} <= set(gemm)
    assert gemm["n_cv_model_shapes"] == 2  # (n, k) pairs
    text = (out / "h200-sxm-sglang.yaml").read_text()
    assert "moe/sglang/0.5.14/moe_perf.parquet" in text and "aiconfigurator-core" in text


def test_import_keeps_the_moe_kernel_sglangs_auto_runs_where_a_table_holds_two(tmp_path):
    """SGLang's MoE tables time two kernels per dtype; Hopper's `auto` runs the Triton fused MoE, so those rows are
    the ones fitted and held out (AUTO_MOE_KERNEL), not the first listed per shape."""
    fixtures(tmp_path / "data")
    tables = silicon.find_tables(tmp_path / "data", "h200_sxm", "sglang", None)
    kernel = silicon.AUTO_MOE_KERNEL[("sglang", silicon.ARCH["h200_sxm"])]
    triton = pd.read_parquet(tables["moe_perf"][0]).query("kernel_source == @kernel and moe_dtype == 'fp8_block'")
    want = sorted(triton.latency * 1e-3)
    got = sorted(r["measured_s"] for r in silicon.load_rows(tables, GPU, kernel) if r["table"] == "moe_perf"
                 and r["dtype"] == "fp8_block")
    assert got == pytest.approx(want)
    first = sorted(r["measured_s"] for r in silicon.load_rows(tables, GPU) if r["table"] == "moe_perf"
                   and r["dtype"] == "fp8_block")
    assert first == pytest.approx([t * 4 for t in want])  # without the rule: the slower kernel listed first


def test_import_silicon_refuses_unknown_system(capsys):
    assert main(["import-silicon", "--system", "nope", "--engine", "sglang", "--json"]) == 2
    assert "unknown system" in capsys.readouterr().err


def test_engine_aware_lookup_and_w4a16_curve():
    # the engine's silicon tables are one overlay more (planner.perf.steps.uses_silicon_tables says when)
    assert calibration_files("h200-sxm", "sglang") == ()
    assert calibration_files("h200-sxm", "sglang", silicon=True) == (SILICON_DIR / "h200-sxm-sglang.yaml",)
    sc = make_scenario("kimi-k2.5", weights="int4-g32", gpu=GPU, gpus_per_node=8, parallelism={"tp": 8, "ep": 8},
                       engine="sglang", engine_options={"kernel_tables": "default"})
    gg = machine(sc).eff.ops["grouped_gemm"]
    assert gg.compute_for("bf16") == dict(efficiency_for(None).ops["grouped_gemm"].compute_by_dtype)["int4"]
    notes = " ".join(kernel_notes(sc))
    assert "W4A16" in notes and "kernel efficiencies" not in notes  # the default table's files go unsaid


def test_kernel_tables_silicon_where_imported_by_default_and_named():
    """A scenario runs on the engine's imported tables (shape surfaces included) by default (engine_options
    .kernel_tables auto, as silicon names them) and estimate says which table; default keeps default.yaml and names
    the unused silicon file; an engine without imported tables named silicon is a one-line error naming the field."""
    from planner.deploy.scenario_file import scenario_from_mapping
    from tests.scenario_util import BASE, merge, scenario

    auto = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang")
    default = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                       engine_options={"kernel_tables": "default"})
    silicon = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                       engine_options={"kernel_tables": "silicon"})
    assert machine(silicon).eff.files[-1].endswith("silicon/h200-sxm-sglang.yaml")
    assert machine(auto).eff == machine(silicon).eff
    assert machine(default).eff.files[-1].endswith("default.yaml")
    t_default, t_silicon = (decode_step(s, 8, 2048).seconds for s in (default, silicon))
    assert t_default != t_silicon
    assert any("calibration/silicon/h200-sxm-sglang.yaml over" in n for n in kernel_notes(silicon))
    assert any("kernel tables: default (engine_options.kernel_tables: default" in n for n in kernel_notes(default))
    missing = scenario_from_mapping(merge(BASE, {"engine": "llamacpp", "engine_options": {"kernel_tables": "silicon"}}),
                                    "mine.yaml")
    with pytest.raises(PlannerError) as err:
        machine(missing)
    assert err.value.field == "engine_options.kernel_tables" and "mine.yaml" in str(err.value)
    with pytest.raises(PlannerError, match="expected one of auto, default, silicon"):
        scenario(engine_options={"kernel_tables": "measured"})


def test_validation_names_each_cases_kernel_table_and_reports_the_silicon_errors():
    """docs/validation.md: each case row names the tables it ran on; a section lists every committed silicon
    calibration's held-out error beside the default table's and the cross-validated one (issue 19)."""
    from planner.serving.validate import kernel_table, silicon_kernel_section
    from tests.scenario_util import scenario

    default = {"kernel_tables": "default"}
    assert kernel_table(scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                                 engine_options=default)) == "default"
    assert kernel_table(scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                                 hardware={"gpu": "b200"}, engine_options=default)) == "default + b200"
    assert kernel_table(scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                                 hardware={"gpu": "b200"})) == "default + b200 + silicon/b200-sglang"
    on = scenario(model="deepseek-v3", weights="fp8-block128", engine="sglang",
                  engine_options={"kernel_tables": "silicon"})
    assert kernel_table(on) == "default + silicon/h200-sxm-sglang"
    lines = silicon_kernel_section()
    rows = [ln for ln in lines if ln.startswith("| h200-sxm-vllm | moe.int4_wo |")]
    assert len(rows) == 1 and rows[0].count("%") == 6  # held out, default, CV: median / p90 each
    assert {ln.split(" | ")[0][2:] for ln in lines if ln.startswith("| ") and "/" in ln} >= {
        f"{g}-{e}" for g in ("h100-sxm", "h200-sxm", "b200", "gb200") for e in ("sglang", "vllm", "trtllm")}


def test_validate_on_silicon_tables_changes_only_cases_that_have_them(tmp_path):
    """`validate` runs an aggregated H200 vLLM case on vLLM's H200 silicon tables and leaves a CPU case on the
    default table (`--kernel-tables silicon` the same); the Markdown of that run lists the changed rows with their
    error on the default table alone (`--kernel-tables default`) beside it."""
    import yaml

    from planner.serving.validate import markdown, validate

    root = SILICON_DIR.parents[1]
    gpu = yaml.safe_load((root / "scenarios" / "kimi-k2.5-int4-8xh200.yaml").read_text())
    cpu = yaml.safe_load((root / "scenarios" / "kimi-k2.5-ud-tq1_0-4090-256gb.yaml").read_text())
    measured = [{"metric": "tpot_ms", "value": 30, "source": "test"}]
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump({"cases": [{**gpu, "name": "gpu", "measured": measured},
                                              {**cpu, "name": "cpu", "measured": measured}]}, sort_keys=False))
    default, on = validate(path, "default"), validate(path)
    assert validate(path, "silicon") == on
    tables = {r["name"]: r["kernel_table"] for r in on["cases"]}
    assert tables["gpu"] == "default + silicon/h200-sxm-vllm"
    assert tables["cpu"] == {r["name"]: r["kernel_table"] for r in default["cases"]}["cpu"]
    assert on["cases"][0]["predicted"] != default["cases"][0]["predicted"]
    page = markdown(on, str(path), None, default)
    title = "## The cases the silicon kernel tables change, on the default table alone"
    section = page.split(title)[1].split("\n## ")[0]
    assert "| gpu | tpot_ms |" in section and "| cpu |" not in section
    assert "--kernel-tables silicon --markdown" in markdown(on, str(path), "silicon")


def test_silicon_table_lists_every_committed_calibration():
    """docs/silicon.md's listing is generated from the calibrations' fit.tables (kernels_bench.silicon_table)."""
    from kernels_bench import silicon_table

    text = silicon_table.markdown()
    files = sorted(SILICON_DIR.glob("*.yaml"))
    assert files and text.count("\n") + 1 == 2 + sum(len(_doc_tables(f)) for f in files)
    assert "| H200 | vllm | gemm.fp8_block |" in text and "(88)" not in text.split("\n")[0]


def _doc_tables(path):
    import yaml

    return (yaml.safe_load(path.read_text()).get("fit") or {}).get("tables") or {}


def test_docs_silicon_md_lists_the_committed_calibrations_as_generated():
    """docs/silicon.md carries `python -m kernels_bench.silicon_table`'s listing of the committed calibrations, so a
    re-import that changes a table's error shows up as a stale page here."""
    from pathlib import Path

    from kernels_bench import silicon_table

    page = (Path(__file__).resolve().parents[1] / "docs" / "silicon.md").read_text()
    assert silicon_table.markdown() in page


def test_a_measured_kernel_configuration_carries_its_own_factor_on_that_configuration_alone(tmp_path):
    """The engines pick kernels and tuned launch configs per expert shape, so a MoE table's rows of one
    configuration (expert shape, expert TP, EP: Op.config) get a factor curve over m on top of the surface
    (silicon_fit.fit_configs). Written per dtype, read back, it applies to an op of that configuration and to no
    other; the planner's vectorized paths apply it as time_op does (tests/test_sweep.py, test_step_sweep.py on the
    committed tables). A malformed entry is a one-line error naming its field."""
    from dataclasses import replace

    fixtures(tmp_path / "data")
    out = tmp_path / "cal"
    assert main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--data", str(tmp_path / "data"),
                 "--out", str(out)]) == 0
    eff = _read(out / "h200-sxm-sglang.yaml", efficiency_for(None))
    e = eff.ops["grouped_gemm"]
    configs = {(d, k) for d, k, _ in e.config_by_dtype}
    assert ("fp8", (7168, 2048, 8, 384, 1, 8)) in configs and ("int4", (7168, 2048, 8, 384, 8, 1)) in configs
    row = next(r for r in silicon.load_rows({"moe_perf": tmp_path / "data/h200_sxm/moe/sglang/0.5.14/moe_perf.parquet"},
                                            GPU, "sglang_fused_moe_triton") if r["dtype"] == "fp8_block")
    op = next(o for o in row["ops"] if o.kind == "grouped_gemm")
    curve = e.config_curve(op)
    assert curve is not None and e.shape_for(op) == pytest.approx(
        next(s for d, s in e.shape_by_dtype if d == op.dtype).at_op(op) * curve.at(op.m))
    other = replace(op, config=op.config[:4] + (2, 4))  # a plan the table did not run: the surface alone
    assert e.config_curve(other) is None
    text = (out / "h200-sxm-sglang.yaml").read_text()
    bad = out / "bad.yaml"
    bad.write_text(text.replace("config_by_dtype:\n      fp8:\n      - config: [", "config_by_dtype:\n      fp8:\n"
                                "      - config: [0, ", 1))
    with pytest.raises(PlannerError) as err:
        _read(bad, efficiency_for(None))
    assert err.value.field.startswith("ops.grouped_gemm.config_by_dtype.fp8[0]")


def test_committed_silicon_tables_carry_configurations_the_sweep_cases_run():
    """The silicon-table cases of tests/test_sweep.py (Kimi K2.5 INT4 on vLLM H200, DeepSeek-V3 FP8 on SGLang H200,
    both TP8) run an expert configuration their committed table measured, so the vectorized paths' agreement with
    time_op there covers the configuration factors."""
    from tests.scenario_util import scenario

    for over in ({"engine_options": {"kernel_tables": "silicon"}},
                 {"model": "deepseek-v3", "weights": "fp8-block128", "engine": "sglang", "parallelism": {"tp": 8},
                  "engine_options": {"kernel_tables": "silicon"}}):
        sc = scenario(**over)
        op = next(t.op for t in decode_step(sc, 16, 2000).timed if t.op.name == "moe.experts")
        assert machine(sc).eff.ops["grouped_gemm"].config_curve(op) is not None, over


def test_mxfp4_tables_fit_surfaces_of_their_own_and_every_left_out_table_is_named(tmp_path, capsys):
    """gpt-oss's MXFP4 MoE tables (w4a16_mxfp4: weight-only on Hopper) fit a surface of their own (mxfp4_w4a16) on
    the int4 W4A16 curve, which stays the INT4 rows' (Kimi K2.5's) though the MXFP4 rows outnumber them; table
    dtypes that give no rows are listed with the reason: a dtype the planner has no format for, power-law routing
    only."""
    meta = {"framework": "VLLM", "version": "0.24.0", "device": "NVIDIA H200", "op_name": "moe"}
    tokens = (1, 4, 16, 64, 256, 1024, 4096, 16384)
    kimi = [dict(meta, moe_dtype="int4_wo", hidden_size=7168, inter_size=2048, topk=8, num_experts=384, moe_tp_size=tp,
                 moe_ep_size=ep, num_tokens=t, distribution="balanced") for t in tokens for tp, ep in ((1, 8), (8, 1))]
    oss = [dict(meta, moe_dtype="w4a16_mxfp4", hidden_size=2880, inter_size=2880, topk=4, num_experts=n,
                moe_tp_size=tp, moe_ep_size=ep, num_tokens=t, distribution="balanced")
           for n in (32, 128) for t in tokens for tp, ep in ((1, 1), (1, 8), (2, 1), (8, 1))]
    mo = pd.DataFrame(kimi + oss).assign(kernel_source="k", latency=0.0)
    scale = {"int4_wo": 2.5, "w4a16_mxfp4": 1.6}
    mo["latency"] = [_latency_ms(silicon.moe_ops(r, GPU), scale[r.moe_dtype]) for r in mo.itertuples(index=False)]
    skipped = pd.concat([mo.head(8).assign(moe_dtype="w4a4_mxfp4"),
                         mo.head(8).assign(moe_dtype="bfloat16", distribution="power_law_1.01")])
    _write(pd.concat([mo, skipped], ignore_index=True), tmp_path / "data/h200_sxm/moe/vllm/0.24.0/moe_perf.parquet")
    out = tmp_path / "cal"
    assert main(["import-silicon", "--system", "h200_sxm", "--engine", "vllm", "--data", str(tmp_path / "data"),
                 "--out", str(out), "--json"]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["left_out"] == {
        "moe_perf.bfloat16":
            "no balanced-routing rows (the planner's experts share tokens evenly): power_law_1.01 only",
        "moe_perf.w4a4_mxfp4": "a table dtype the planner has no format for"}
    assert doc["tables"]["moe_perf.w4a16_mxfp4"]["holdout_median_abs_error"] < 0.15
    assert doc["tables"]["moe_perf.int4_wo"]["holdout_median_abs_error"] < 0.15
    eff = _read(out / "h200-sxm-vllm.yaml", efficiency_for(None))
    gg = eff.ops["grouped_gemm"]
    assert {"int4", "mxfp4_w4a16"} <= set(dict(gg.shape_by_dtype))
    runs = silicon.load_rows(silicon.find_tables(tmp_path / "data", "h200_sxm", "vllm", None), GPU, engine="vllm")
    int4_only, _, _ = silicon.fit_silicon([r for r in runs if r["dtype"] == "int4_wo"], load_accelerator(GPU))
    want = int4_only.ops["grouped_gemm"].compute_for("int4").points
    flat = [x for p in gg.compute_for("int4").points for x in p]
    assert flat == pytest.approx([x for p in want for x in p], rel=1e-3)


def test_gpt_oss_on_silicon_tables_runs_the_mxfp4_surfaces():
    """On an engine's silicon tables gpt-oss's MXFP4 experts take the table's MXFP4 surface: weight-only on Hopper
    (mxfp4_w4a16 in place of the bf16 records' surface, over the int4 curve), MXFP8 x MXFP4 on Blackwell (mxfp4 in
    place of the NVFP4-fitted fp4 one); Kimi K2.5's INT4 experts keep the int4 surface."""
    from tests.scenario_util import scenario

    silicon_opts = {"kernel_tables": "silicon"}
    for gpu, target in (("h200-sxm", "bf16"), ("b200", "fp4")):
        sc = scenario(model="gpt-oss-120b", weights="mxfp4", engine="vllm", hardware={"gpu": gpu},
                      parallelism={"tp": 8}, engine_options=silicon_opts)
        table = efficiency_for(gpu, "vllm", True).ops["grouped_gemm"]
        variant = "mxfp4_w4a16" if target == "bf16" else "mxfp4"
        assert dict(machine(sc).eff.ops["grouped_gemm"].shape_by_dtype)[target] == dict(table.shape_by_dtype)[variant]
    kimi = scenario(engine="vllm", parallelism={"tp": 8}, engine_options=silicon_opts)
    table = efficiency_for("h200-sxm", "vllm", True).ops["grouped_gemm"]
    assert dict(machine(kimi).eff.ops["grouped_gemm"].shape_by_dtype)["bf16"] == dict(table.shape_by_dtype)["int4"]


def test_each_moe_dtype_comes_from_the_newest_version_that_times_gated_experts(tmp_path):
    """An engine's newest collection can be partial (TRT-LLM 1.3.0rc23: relu^2 `nongated` MoE rows only on Hopper,
    w4a8 MXFP4 only on Blackwell): each dtype is read from the newest version holding it, relu^2 rows never, and
    where a shape is timed by two backends the TRTLLM-gen one (min_latency) is kept over CUTLASS."""
    meta = {"framework": "TRTLLM", "device": "NVIDIA B200", "op_name": "moe", "hidden_size": 7168, "inter_size": 2048,
            "topk": 8, "num_experts": 256, "moe_tp_size": 8, "moe_ep_size": 1, "distribution": "balanced"}

    def rows(version, dtype, kernel, latency):
        return [dict(meta, version=version, moe_dtype=dtype, kernel_source=kernel, num_tokens=t, latency=latency)
                for t in (1, 4, 16, 64, 256, 1024, 4096, 16384)]

    old = rows("1.3.0rc20", "nvfp4", "moe_torch_flow_cutlass", 0.3) + rows(
        "1.3.0rc20", "nvfp4", "moe_torch_flow_min_latency", 0.1) + rows("1.3.0rc20", "fp8_block", "deepgemm", 0.2)
    new = rows("1.3.0rc23", "fp8_block", "moe_torch_flow_nongated", 9.0) + rows(
        "1.3.0rc23", "w4a8_mxfp4_mxfp8", "moe_torch_flow", 0.15)
    for version, data in (("1.3.0rc20", old), ("1.3.0rc23", new)):
        _write(pd.DataFrame(data), tmp_path / f"b200_sxm/moe/trtllm/{version}/moe_perf.parquet")
    tables = silicon.find_tables(tmp_path, "b200_sxm", "trtllm", None)
    assert [p.parent.name for p in tables["moe_perf"]] == ["1.3.0rc23", "1.3.0rc20"]
    runs = silicon.load_rows(tables, "b200")
    got = {(r["dtype"], r["version"], r["kernel"]) for r in runs}
    assert got == {("nvfp4", "1.3.0rc20", "moe_torch_flow_min_latency"), ("fp8_block", "1.3.0rc20", "deepgemm"),
                   ("w4a8_mxfp4_mxfp8", "1.3.0rc23", "moe_torch_flow")}
    assert {r["measured_s"] for r in runs if r["dtype"] == "nvfp4"} == {0.1e-3}
    only = silicon.load_rows(silicon.find_tables(tmp_path, "b200_sxm", "trtllm", "1.3.0rc23"), "b200")
    assert {r["dtype"] for r in only} == {"w4a8_mxfp4_mxfp8"}  # --version: that collection alone
    with pytest.raises(PlannerError) as err:  # a version without tables names --version and the ones there are
        silicon.find_tables(tmp_path, "b200_sxm", "trtllm", "9.9")
    assert err.value.field == "--version" and "1.3.0rc20, 1.3.0rc23" in err.value.message


def test_every_system_the_installed_package_has_tables_for_is_known():
    """With the extra installed, every system/engine folder holding gemm, moe or MLA tables maps to a GPU profile
    and an engine the importer knows (the import itself: ~5-15 s per pair, run by hand; docs/silicon.md)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("aiconfigurator_core")  # found, not imported: other tests check nothing imports it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("aiconfigurator-core (the silicon extra) is not installed")
    root = Path(spec.submodule_search_locations[0]) / "systems" / "data"
    pairs = {(p.parts[-5], p.parts[-3]) for op in ("gemm", "moe", "mla") for p in root.glob(f"*/{op}/*/*/*.parquet")}
    assert pairs and {s for s, _ in pairs} <= set(silicon.SYSTEMS)
    assert {e for _, e in pairs} <= set(silicon.ENGINES)
    for system in {s for s, _ in pairs}:
        assert load_accelerator(silicon.SYSTEMS[system]).memory_bytes > 0


def test_one_engine_versions_import_is_a_choice_and_keeps_the_kinds_it_did_not_measure(tmp_path, capsys):
    """`import-silicon --version V` writes <gpu>-<engine>@V.yaml; engine_options.kernel_tables_version: V runs a
    scenario on it: the op kinds it measured (vLLM 0.19.0 on H200: MoE alone) whole from it, the others from the
    newest import; an unknown version, or a version without silicon tables, is one line naming the field."""
    from planner.serving.validate import kernel_table
    from tests.scenario_util import scenario

    fixtures(tmp_path / "data")
    assert main(["import-silicon", "--system", "h200_sxm", "--engine", "sglang", "--version", "0.5.14", "--data",
                 str(tmp_path / "data"), "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"].endswith("h200-sxm-sglang@0.5.14.yaml")
    newest = scenario(engine_options={"kernel_tables": "silicon"})
    old = scenario(engine_options={"kernel_tables": "silicon", "kernel_tables_version": "0.19.0"})
    assert kernel_table(old) == "default + silicon/h200-sxm-vllm + silicon/h200-sxm-vllm@0.19.0"
    eff_new, eff_old = machine(newest).eff, machine(old).eff
    assert eff_old.ops["grouped_gemm"] != eff_new.ops["grouped_gemm"]
    assert eff_old.ops["gemm"] == eff_new.ops["gemm"] and eff_old.ops["attention_decode"] == eff_new.ops[
        "attention_decode"]  # 0.19.0 measured no GEMM or MLA tables
    moe = {s: next(t for t in decode_step(s, 8, 2000).timed if t.op.name == "moe.experts").seconds
           for s in (newest, old)}
    assert moe[old] > 1.3 * moe[newest]  # 0.19.0's Marlin INT4 MoE: ~2x slower at few tokens per expert
    assert kernel_table(scenario(engine_options={"kernel_tables_version": "0.19.0"})) == kernel_table(old)  # auto
    for opts, why in (({"kernel_tables": "silicon", "kernel_tables_version": "0.9.9"}, "imported one by one: 0.19.0"),
                      ({"kernel_tables": "default", "kernel_tables_version": "0.19.0"},
                       "needs kernel_tables silicon or auto")):
        with pytest.raises(PlannerError) as err:
            decode_step(scenario(engine_options=opts), 8, 2000)
        assert err.value.field == "engine_options.kernel_tables_version" and why in err.value.message


