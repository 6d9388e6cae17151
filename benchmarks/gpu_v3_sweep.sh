#!/usr/bin/env bash
# Kernel v3's table (issue 20, Build 4) in two H200 calls of under 10 minutes each:
#   PHASE=eager    bash benchmarks/gpu_v3_sweep.sh OUT
#     CUDA checks of the lean launches and the compiled layer's saved state (kernel check at G=5
#     on uniform and adaptive grids, the launch / compile / layer test files), the host profile
#     and host overhead, then the sweep (N in 2048/16384/32768 x 256->1024, 1024->1024,
#     768->3072 x G in 5/10/30) in bf16 and TF32: our eager layer beside efficient-kan and the
#     peer packages                                          -> run.log, host_*.csv/json, sweep_eager.csv
#   PHASE=final bash benchmarks/gpu_v3_sweep.sh OUT
#     the launch / compile tests and the adaptive layer checks again (lean launches), the host
#     profile with lean launches on and off, torch.compile rows (KANLinear default and
#     reduce-overhead, efficient-kan) at issue 20's three compile-gap shapes, bf16; kernel v2
#     against this tree on the committed table's uniform shapes when V2_TREE holds v2's package;
#     the sweep rows the eager phase's box cut     -> issue20_compiled.csv, uniform_ab.csv, sweep_rest_*.csv
# Rows are written as they finish; each step is time-boxed (boxes in s from the environment).
source "$(dirname "$0")/gpu_common.sh" "$@"
bench="python3 benchmarks/gpu_layer_bench.py --fwdbwd-only --out $out"

if [ "${PHASE:-eager}" = eager ]; then
  step "${CHECK_S:-110}" python3 benchmarks/gpu_kernel_check.py --small --orders 3 --grids 5
  grep -E "checks passed|FAILED" "$log" | tail -4
  step "${PYTEST_S:-100}" python3 -m pytest tests/test_kernels_launch.py tests/test_kernels_compile.py \
    tests/test_kernels_layer.py -q -p no:cacheprovider
  grep -E "passed|failed" "$log" | tail -2
  step "${PROFILE_S:-45}" python3 benchmarks/host_profile.py --out "$out" --cases 0 1
  grep -E "^unit:|wall .* ms/step" "$log" | tail -10
  step "${HOST_S:-25}" python3 benchmarks/gpu_layer_bench.py --host --out "$out" --name host.csv
  grep "host overhead" "$log" | tail -1
  step "${SWEEP_S:-270}" $bench --set sweep --precision bf16 tf32 --name sweep_eager.csv \
    --impls kan-auto kan-reference inkan flashkan kanditioned
else  # final: the lean launches checked and A/B'd, the compiled rows, v2 vs v3, the rest of the sweep
  step "${PYTEST_S:-80}" python3 -m pytest tests/test_kernels_launch.py tests/test_kernels_compile.py -q -p no:cacheprovider
  grep -E "passed|failed" "$log" | tail -1
  step "${CHECK_S:-65}" python3 benchmarks/gpu_kernel_check.py --small --orders 3 --grids 5 --no-compile --kinds adaptive
  grep -E "checks passed|FAILED" "$log" | tail -4
  step "${PROFILE_S:-45}" python3 benchmarks/host_profile.py --out "$out" --cases 0 1
  grep -E "^unit:|wall .* ms/step" "$log" | tail -10
  step "${HOST_S:-20}" python3 benchmarks/gpu_layer_bench.py --host --out "$out" --name host.csv
  step "${ISSUE_S:-100}" $bench --set issue20 --precision bf16 --name issue20_compiled.csv \
    --impls nn.Linear kan-auto kan-auto-compiled kan-auto-cudagraphs kan-reference-compiled
  if [ -n "${V2_TREE:-}" ]; then
    for t in "$V2_TREE" "$PWD"; do
      step "${AB_S:-28}" env PYTHONPATH="$t:/tmp/site" python3 benchmarks/gpu_uniform_ab.py --tag "$(basename "$t")" \
        --precisions bf16 tf32 --out "$out/uniform_ab.csv"
    done
  fi
  # the sweep's workloads the eager phase's box cut (indices into layer_rows.SWEEP); KANditioned,
  # 2.7-127x slower than the best other peer on every row measured at N <= 16384, is left out at N=32768
  step "${SWEEP_S:-60}" $bench --set sweep --precision bf16 tf32 --workloads ${REST_16K:-16 17} --name sweep_rest_16k.csv \
    --impls kan-auto kan-reference inkan flashkan kanditioned
  step "${SWEEP32_S:-150}" $bench --set sweep --precision bf16 tf32 --workloads ${REST_32K:-18 19 20 21 22 23 24 25 26} \
    --name sweep_rest_32k.csv --impls kan-auto kan-reference inkan flashkan
fi
grep -cE "fwd\+bwd" "$log" | sed 's/^/rows measured: /'
