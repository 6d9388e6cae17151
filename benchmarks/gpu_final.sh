#!/usr/bin/env bash
# One GPU pass after a kernel change: correctness at modest size (two chunk budgets), the
# strategy crossover (writes sparsefuse/kernels/configs/<gpu>.json), the PINN step and host
# overhead, then the side-by-side table with the new thresholds. Every step is time-boxed so
# one slow step cannot eat the rest; every file lands in OUTDIR.
#   bash benchmarks/gpu_final.sh OUTDIR
# Environment: WORKLOADS="0 1 2" (indices into gpu_layer_bench.WORKLOADS), ROUNDS=3 (interleaved
# rounds per table row, median; for host-bound rows, which move +-20% between runs), TABLE_S (table time
# box, s), TABLE_NAME (CSV name), NO_CHECK=1 / NO_CROSSOVER=1 / NO_PROFILE=1 / NO_PINN=1 / NO_TABLE=1 to skip
# steps, MEMCHECK=1 to add compute-sanitizer.
set -uo pipefail
out=${1:?OUTDIR}; mkdir -p "$out"; cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
log="$out/run.log"
step() { local t=$1; shift; echo "== $* (limit ${t}s)" | tee -a "$log"; local s=$SECONDS
  timeout "$t" "$@" >>"$log" 2>&1; local rc=$?; echo "== rc=$rc in $((SECONDS - s))s" | tee -a "$log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$log"
git rev-parse HEAD 2>/dev/null | tee -a "$log"
if [ -z "${NO_CHECK:-}" ]; then
  step "${CHECK_S:-100}" python3 benchmarks/gpu_kernel_check.py --small --orders ${CHECK_ORDERS:-1 3} --grids ${CHECK_GRIDS:-5 20 100}
  grep -E "checks passed|FAILED" "$log" | tail -5
fi
if [ -n "${MEMCHECK:-}" ]; then
  step 150 compute-sanitizer --tool memcheck --error-exitcode 9 python3 benchmarks/gpu_kernel_check.py --small \
    --no-compile --orders 3 --grids 5 100
  grep -E "ERROR SUMMARY|checks passed" "$log" | tail -3
fi
if [ -z "${NO_CROSSOVER:-}" ]; then
  step "${CROSSOVER_S:-170}" python3 benchmarks/gpu_layer_bench.py --crossover --orders 3 \
    --grids ${GRIDS:-5 8 12 20 28 48 64 100} --budgets ${BUDGETS:-16 32 64} --write --out "$out"
  cp sparsefuse/kernels/configs/*.json "$out/" 2>/dev/null
  grep -A12 "^Measured streamed_max_bases" "$log" | tail -14
fi
if [ -z "${NO_PROFILE:-}" ]; then
  step 60 python3 benchmarks/gpu_layer_bench.py --profile --out "$out"
fi
if [ -z "${NO_PINN:-}" ]; then
  step 90 python3 benchmarks/gpu_layer_bench.py --pinn --out "$out"
fi
# All precisions in one process: peers that compile per shape (flashkan) compile once.
# The CSV is rewritten after every (workload, precision), so a cut run keeps its rows.
if [ -z "${NO_TABLE:-}" ]; then
  step "${TABLE_S:-330}" python3 benchmarks/gpu_layer_bench.py --precision all --workloads ${WORKLOADS:-0 1 2 3 4 5 6} \
    --rounds "${ROUNDS:-1}" --out "$out" --name "${TABLE_NAME:-table.csv}"
fi
