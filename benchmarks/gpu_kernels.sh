#!/usr/bin/env bash
# One GPU pass over the fused kernels: correctness at realistic sizes, a memory
# check under compute-sanitizer, the strategy crossover and the side-by-side table.
#   bash benchmarks/gpu_kernels.sh OUTDIR [check|crossover|table|all]
set -uo pipefail
out=${1:?OUTDIR}; what=${2:-all}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
status=0
if [[ $what == check || $what == all ]]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
  python3 benchmarks/gpu_kernel_check.py 2>&1 | tee "$out/kernel_check.log" || status=1
  if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 9 python3 benchmarks/gpu_kernel_check.py --small --no-compile \
      > "$out/memcheck.log" 2>&1 && echo "memcheck: clean" || { echo "memcheck: FAILED"; tail -20 "$out/memcheck.log"; status=1; }
  fi
fi
if [[ $what == crossover || $what == all ]]; then
  python3 benchmarks/gpu_layer_bench.py --crossover --orders 3 --grids 5 12 20 36 64 100 160 --out "$out" 2>&1 | tee "$out/crossover.log" | tail -40 || status=1
fi
if [[ $what == table || $what == all ]]; then
  python3 benchmarks/gpu_layer_bench.py --out "$out" 2>&1 | tee "$out/table.log" | tail -120 || status=1
fi
exit $status
