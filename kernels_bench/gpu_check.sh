#!/usr/bin/env bash
# One prepared check for one H200 (under 8 minutes): discover, ceilings, the MLA + MoE suite at full Kimi K2.5
# one-layer shapes (bf16, fp8-block128, int4-g32; decode batch 1-256 at context 1K-128K; prefill 1K-16K tokens;
# MoE 1-16K tokens, uniform and skewed routing), then calibrate.
#
#   bash kernels_bench/gpu_check.sh          # from anywhere; runs in the repository root
#   DRY_RUN=1 bash kernels_bench/gpu_check.sh   # print the steps only
#
# Writes bench_results/results.sqlite (every case, all samples), bench_results/gpu_check/<step>.json and
# profiles/calibration/<device>.yaml (<device> = the matched accelerator profile, e.g. h200-sxm).
# Without a CUDA GPU visible to torch it runs the CPU path (smoke suite + a 2-process gloo comm check) instead,
# so the script can be exercised anywhere. Step limits keep the whole under 8 minutes; a run stopped by its limit
# keeps its finished cases, and calibrate fits those.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-bench_results/gpu_check}  # step outputs; STORE and CAL_OUT redirect the store and the calibration
STORE=${STORE:-bench_results/results.sqlite}
CAL_OUT=${CAL_OUT:-profiles/calibration}
[ -n "${DRY_RUN:-}" ] || mkdir -p "$OUT"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  DEV=cuda; SUITE=${SUITE:-full}; RUN_LIMIT=${RUN_LIMIT:-330}
else
  DEV=cpu; SUITE=${SUITE:-smoke}; RUN_LIMIT=${RUN_LIMIT:-300}
fi
status=0
step() {  # step NAME LIMIT_S ARGS...: python -m kernels_bench ARGS > OUT/NAME.json within LIMIT_S seconds
  local name=$1 limit=$2
  shift 2
  echo "== gpu_check: $name ($DEV, limit ${limit}s): python -m kernels_bench $*" >&2
  [ -n "${DRY_RUN:-}" ] && return 0
  local t0=$SECONDS
  timeout --signal=INT --kill-after=20 "$limit" "$PY" -m kernels_bench "$@" > "$OUT/$name.json"
  local rc=$?
  echo "== gpu_check: $name exit $rc after $((SECONDS - t0))s" >&2
  [ "$rc" -ne 0 ] && status=1
  return 0
}

step discover 30 discover --json
step ceilings 45 ceilings --device "$DEV" --size full --store "$STORE" --json
step run "$RUN_LIMIT" run --suite "$SUITE" --device "$DEV" --store "$STORE" --json
[ "$DEV" = cpu ] && step comm 60 comm --device cpu --nproc 2 --store "$STORE" --json
step calibrate 60 calibrate --device "$DEV" --store "$STORE" --out "$CAL_OUT" --json

if [ -z "${DRY_RUN:-}" ]; then
  "$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
run, cal, ceil = load("run"), load("calibrate"), load("ceilings")
if ceil:
    c = ceil["ceilings"]
    print(f"ceilings: copy {c['copy_bytes_per_s'] / 1e9:.0f} GB/s, "
          + ", ".join(f"{d} {v / 1e12:.1f} TFLOP/s" for d, v in c["gemm_flops_per_s"].items()))
if run:
    rows = [r for r in run["runs"] if r["status"] == "ok"]
    bad = [r["case"] for r in run["runs"] if r["status"] != "ok"]
    same = sum(r["alloc_bytes"] == r["predicted_alloc_bytes"] for r in rows)
    print(f"run {run['run_id']}: {len(rows)} ok rows, {len(bad)} failed {bad[:5]}; allocated == predicted: {same}/{len(rows)}")
    copy = run["ceilings"]["copy_bytes_per_s"]
    bf16 = run["ceilings"]["gemm_flops_per_s"]["bf16"]
    dec = [r for r in rows if r["op"] == "attn.mla_decode" and "ctx131072" in r["case"]]
    pre = [r for r in rows if r["op"] == "moe.experts+moe.permute_act" and "prefill" in r["case"] and "-bf16" in r["case"]]
    for r in dec:
        print(f"goal MLA decode >= 75% of copy: {r['case']}: {r['achieved_bytes_per_s'] / copy:.0%}")
    for r in pre:
        print(f"goal MoE grouped GEMM >= 60% of bf16 GEMM: {r['case']}: {r['achieved_flop_per_s'] / bf16:.0%}")
if cal:
    print(f"calibrate: {cal['file']}: held-out median |error| {cal['holdout_median_abs_error']:.1%}, "
          f"p90 {cal['holdout_p90_abs_error']:.1%} over {cal['n_holdout']} layer runs (goal on GPU: <= 10%)")
EOF
fi
exit $status
