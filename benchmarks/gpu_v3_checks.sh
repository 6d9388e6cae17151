#!/usr/bin/env bash
# Kernel v3 checks the first pass cut or could not run, and the host-time profile, in one H200 call:
#   bash benchmarks/gpu_v3_checks.sh OUT
# 1. every primitive on adaptive grids (the first pass's check was cut after the uniform cases),
#    autograd, the fused layer fresh / update_grid'ed / .double(), torch.compile  -> run.log
# 2. the torch.compile tests on CUDA (the layer is one registered op in the graph) -> run.log
# 3. where a step's host time goes, eager and compiled (benchmarks/host_profile.py) -> host_profile.*
# 4. compute-sanitizer memcheck over the adaptive primitives and the layer checks   -> run.log
# Boxes (s) from the environment: CHECK_S 170, PYTEST_S 70, PROFILE_S 120, MEMCHECK_S 150.
source "$(dirname "$0")/gpu_common.sh" "$@"

step "${CHECK_S:-170}" python3 benchmarks/gpu_kernel_check.py --small --orders 3 --grids 5 30 --kinds adaptive
grep -E "checks passed|FAILED|torch.compile" "$log" | tail -8
step "${PYTEST_S:-70}" python3 -m pytest tests/test_kernels_compile.py tests/test_jhcg.py -k compile -q -p no:cacheprovider
grep -E "passed|failed" "$log" | tail -2
step "${PROFILE_S:-120}" python3 benchmarks/host_profile.py --out "$out"
grep -E "^unit:|wall .* ms/step" "$log"
if command -v compute-sanitizer >/dev/null; then
  step "${MEMCHECK_S:-150}" compute-sanitizer --tool memcheck --error-exitcode 9 python3 benchmarks/gpu_kernel_check.py \
    --small --no-compile --orders 3 --grids 5 --kinds adaptive
  grep -E "ERROR SUMMARY|checks passed" "$log" | tail -3
else
  echo "compute-sanitizer not found" | tee -a "$log"
fi
