#!/usr/bin/env bash
# One H100 pass after a kernel change: correctness at modest size, the strategy
# crossover (rewrites sparsefuse/kernels/dispatch.py), then the side-by-side table
# with the new thresholds. Every step is time-boxed so one slow step cannot eat the rest.
#   bash benchmarks/gpu_final.sh OUTDIR
# Environment: WORKLOADS="0 1 2" (indices into gpu_layer_bench.WORKLOADS), TABLE_S (table time
# box, s), TABLE_NAME (CSV name), NO_CHECK=1 / NO_CROSSOVER=1 to skip those steps.
set -uo pipefail
out=${1:?OUTDIR}; mkdir -p "$out"; cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
log="$out/run.log"
step() { local t=$1; shift; echo "== $* (limit ${t}s)" | tee -a "$log"; local s=$SECONDS
  timeout "$t" "$@" >>"$log" 2>&1; local rc=$?; echo "== rc=$rc in $((SECONDS - s))s" | tee -a "$log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$log"
if [ -z "${NO_CHECK:-}" ]; then
  step 80 python3 benchmarks/gpu_kernel_check.py --small --no-compile --orders 1 3 --grids 5 20 100
  grep -E "checks passed|FAILED" "$log" | tail -5
fi
if [ -z "${NO_CROSSOVER:-}" ]; then
  step 160 python3 benchmarks/gpu_layer_bench.py --crossover --orders 3 --grids 5 8 12 20 28 36 48 --write-dispatch --out "$out"
  cp sparsefuse/kernels/dispatch.py "$out/dispatch.py"
  grep -A12 "^Suggested" "$log" | tail -12
fi
# All precisions in one process: peers that compile per shape (flashkan) compile once.
# The CSV is rewritten after every (workload, precision), so a cut run keeps its rows.
step "${TABLE_S:-330}" python3 benchmarks/gpu_layer_bench.py --precision all --workloads ${WORKLOADS:-0 1 2 3 4} \
  --out "$out" --name "${TABLE_NAME:-table.csv}"
grep -E "kan-fused|fused-|inkan|flashkan|kanditioned|nn.Linear" "$log" | grep -v "^==" | tail -90
