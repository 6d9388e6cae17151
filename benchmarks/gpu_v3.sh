#!/usr/bin/env bash
# Kernel v3 (issue 20) in one H200 call of at most ~8 minutes; every step time-boxed, every file in OUT.
#   bash benchmarks/gpu_v3.sh OUT
# 1. correctness: every primitive, both strategies, fp32-IEEE / TF32 / bf16 / float64, uniform and
#    adaptive grids, the fused layer fresh and after update_grid (and .double()), autograd to second
#    order, torch.compile(fullgraph, dynamic) of the layer                          -> run.log
# 2. the most informative rows of the new table, bf16, ROUNDS>=3 where host-bound:
#    eager vs torch.compile(KANLinear) vs torch.compile(efficient-kan) at issue 20's three shapes
#    (+ CUDA graphs where the host dominates)                      -> compile_bf16_{0,1,2}.csv
#    the adaptive-grid rows (fused after update_grid vs the PyTorch dense path, the uniform
#    layer of the same shape beside them: the 1.15x target)                        -> adaptive_bf16.csv
#    eager host overhead, N=1024, 64->64                                            -> host.csv
# 3. pytest tests/test_kernels*.py tests/test_kan_linear*.py -x -q on CUDA, the layer's files first
#    (Triton and Inductor compiles dominate: it gets what is left of TOTAL_S and may be cut; the log
#    says how far it got)                                                            -> run.log
# Optional: SHAPES (issue 20's shapes, default "0 1 2"), V2_TREE (a folder holding kernel v2's sparsefuse/:
# benchmarks/gpu_uniform_ab.py times both trees -> uniform_ab.csv), PYTEST_FILES (the pytest step's files).
# Boxes (s), overridable from the environment: CHECK_S 160, TABLE_S 70/45/45, ADAPT_S 50, HOST_S 25, AB_S 45,
# TOTAL_S 470 (pytest gets the rest, 60 at least): ~8 min in all. Expected, from the committed H200
# run (results/gpu/run.log: the v2 check of 239 cases took ~75 s, mostly Triton compiles; v3's has
# ~2x the cases and a compile check) and ~5-20 s of torch.compile per compiled row: check ~140 s,
# rows ~170 s, host ~15 s, pytest the remaining ~140 s. Wheels in .whl/ (gpu_wheels.sh) are used.
source "$(dirname "$0")/gpu_common.sh" "$@"

step "${CHECK_S:-160}" python3 benchmarks/gpu_kernel_check.py --small --orders 3 --grids 5 30
grep -E "checks passed|FAILED" "$log" | tail -6

bench="python3 benchmarks/gpu_layer_bench.py --precision bf16 --fwdbwd-only --out $out"
ours="nn.Linear kan-auto kan-auto-compiled kan-reference-compiled"
# one call per shape: a slow compile cuts one shape, not the rest (rows are written as they finish)
for w in ${SHAPES:-0 1 2}; do
  extra=""; box=${TABLE_S:-45}; [ "$w" = 0 ] && { extra=kan-auto-cudagraphs; box=$((box + 25)); }
  step "$box" $bench --set issue20 --workloads "$w" --impls $ours $extra --name "compile_bf16_$w.csv"
done
step "${ADAPT_S:-50}" $bench --set adaptive --impls kan-auto kan-dense --name adaptive_bf16.csv
step "${HOST_S:-25}" python3 benchmarks/gpu_layer_bench.py --host --out "$out" --name host.csv

grep -hE "fwd\+bwd" "$log" | grep -E "kan-|nn.Linear" | tail -16
# kernel v2 against this tree on the committed table's uniform shapes, when V2_TREE holds v2's package
if [ -n "${V2_TREE:-}" ]; then
  for t in "$V2_TREE" "$PWD"; do
    step "${AB_S:-45}" env PYTHONPATH="$t:/tmp/site" python3 benchmarks/gpu_uniform_ab.py --tag "$(basename "$t")" \
      --precisions ${AB_PRECISIONS:-bf16 tf32} --out "$out/uniform_ab.csv"
  done
  cat "$out/uniform_ab.csv" 2>/dev/null
fi
left=$(( ${TOTAL_S:-470} - SECONDS )); [ "$left" -lt 60 ] && left=60
step "$left" python3 -m pytest ${PYTEST_FILES:-tests/test_kernels_layer.py tests/test_kan_linear_fused.py \
  tests/test_kernels.py tests/test_kernels_compile.py tests/test_kernels_config.py tests/test_kan_linear.py \
  tests/test_kan_linear_random.py} -x -q -p no:cacheprovider
tail -4 "$log"
