"""Planner checks for published claims: each kind takes options from the report file (the claimed numbers,
transcribed from the claim's text) and returns a Finding computed by planner calls, which it names.
This module is the registry (kinds, their options, run_check); the checks themselves live in
model_checks.py (facts of the model and checkpoint) and deployment_checks.py (fitting and running it).

Kinds and options (model defaults to the report's first model; scenario = a path or an inline mapping,
whose `workload` may name a report workload):
  params             quantity (total | total_with_vision | active_per_token | active_fraction | vision), claimed
  architecture       claimed: {fact: value}  (facts of `inspect`, plus dense_layers and max_context)
  architecture_ratio versus (model), fact, claimed (this model's fact / the other's)
  weights_size       weights, claimed_bytes
  kv_ratio           dtype, claimed (MHA-equivalent / the model's own KV bytes per token)
  mla_kv_formula     dtype, latent_copies (the claim's factor in front of L x C x B)
  fits               scenario, claimed (true | false)
  min_gpus           weights, gpu, claimed (GPUs), gpus_per_node, engine, workload, max_nodes
  offload_fit        weights, gpu, gpus, host, engine, workload, claimed (true | false)
  speed              scenario, metric, claimed (number or [low, high])
  experts_touched    tokens (list), claimed_all (true: every expert must be resident)
  api_break_even     scenario, api {input_per_m_usd, output_per_m_usd}
  training_compute   tokens, gpus (list), reference {active, tokens, gpu_hours, gpu, source} (a published run's MFU)
  not_checkable      reason
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from planner.base.errors import PlannerError
from planner.base.yamlio import check_keys, require_mapping
from planner.report import deployment_checks as deploy
from planner.report import model_checks as facts
from planner.report.check_inputs import Ctx, name
from planner.report.verdict import Finding

KEYS: dict[str, tuple[str, ...]] = {
    "params": ("quantity", "claimed"),
    "architecture": ("claimed",),
    "architecture_ratio": ("versus", "fact", "claimed"),
    "weights_size": ("weights", "claimed_bytes"),
    "kv_ratio": ("dtype", "claimed"),
    "mla_kv_formula": ("dtype", "latent_copies"),
    "fits": ("scenario", "claimed"),
    "min_gpus": ("weights", "gpu", "claimed", "gpus_per_node", "engine", "workload", "max_nodes", "kv_cache"),
    "offload_fit": ("weights", "gpu", "gpus", "host", "engine", "workload", "claimed", "kv_cache"),
    "speed": ("scenario", "metric", "claimed"),
    "experts_touched": ("tokens", "claimed_all"),
    "api_break_even": ("scenario", "api"),
    "training_compute": ("tokens", "gpus", "reference"),
    "not_checkable": ("reason",),
}


def run_check(opts: Mapping, ctx: Ctx) -> Finding:
    opts = require_mapping(opts, ctx.file, ctx.field)
    kind = opts.get("check")
    if not isinstance(kind, str) or kind not in KEYS:
        raise PlannerError(f"unknown check {kind!r} (known: {', '.join(KEYS)})"[:300], file=ctx.file,
                           field=f"{ctx.field}.check")
    check_keys(opts, ("check", "model", "note") + KEYS[kind], ctx.file, f"{ctx.field}.")
    ctx.calls = []
    try:
        finding = CHECKS[kind](opts, ctx)
    except PlannerError as err:  # a planner call refused an option (unknown name): say where it came from
        if err.file:
            raise
        raise PlannerError(err.message, file=ctx.file, field=ctx.field) from None
    return replace(finding, calls=tuple(ctx.calls))


def check_not_checkable(opts: Mapping, ctx: Ctx) -> Finding:
    return Finding("not_checkable", None, "", name(opts, "reason", ctx))


CHECKS = {"params": facts.check_params, "architecture": facts.check_architecture,
          "architecture_ratio": facts.check_architecture_ratio, "weights_size": facts.check_weights_size,
          "kv_ratio": facts.check_kv_ratio, "mla_kv_formula": facts.check_mla_kv_formula,
          "fits": deploy.check_fits, "min_gpus": deploy.check_min_gpus, "offload_fit": deploy.check_offload_fit,
          "speed": deploy.check_speed, "experts_touched": deploy.check_experts_touched,
          "api_break_even": deploy.check_api, "training_compute": facts.check_training_compute,
          "not_checkable": check_not_checkable}
