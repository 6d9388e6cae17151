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
# 3. pytest tests/test_kernels*.py tests/test_kan_linear*.py -x -q on CUDA (compiles dominate: it
#    may be cut by its box; the log says how far it got)                            -> run.log
# Boxes (s), overridable from the environment: CHECK_S 160, TABLE_S 70/45/45, ADAPT_S 50, HOST_S 25,
# PYTEST_S 90: at most 485 s of steps (~8 min with start-up); expected ~7 min, estimated from the
# committed H200 run (results/gpu/run.log: the v2 check of 239 cases took ~75 s, mostly Triton
# compiles; v3's has ~2x the cases and its own compile check) and a ~5-20 s torch.compile per row.
set -uo pipefail
out=${1:?OUT}; mkdir -p "$out"; cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
log="$out/run.log"
step() { local t=$1; shift; echo "== $* (limit ${t}s)" | tee -a "$log"; local s=$SECONDS
  timeout -k 10 "$t" "$@" >>"$log" 2>&1; local rc=$?; echo "== rc=$rc in $((SECONDS - s))s" | tee -a "$log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$log"
git rev-parse HEAD 2>/dev/null | tee -a "$log"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$log"

step "${CHECK_S:-160}" python3 benchmarks/gpu_kernel_check.py --small --orders 3 --grids 5 30
grep -E "checks passed|FAILED" "$log" | tail -6

bench="python3 benchmarks/gpu_layer_bench.py --precision bf16 --fwdbwd-only --out $out"
ours="nn.Linear kan-auto kan-auto-compiled kan-reference-compiled"
# one call per shape: a slow compile cuts one shape, not the rest (rows are written as they finish)
step "${TABLE_S:-70}" $bench --set issue20 --workloads 0 --impls $ours kan-auto-cudagraphs --name compile_bf16_0.csv
step "${TABLE_S:-45}" $bench --set issue20 --workloads 1 --impls $ours --name compile_bf16_1.csv
step "${TABLE_S:-45}" $bench --set issue20 --workloads 2 --impls $ours --name compile_bf16_2.csv
step "${ADAPT_S:-50}" $bench --set adaptive --impls kan-auto kan-dense --name adaptive_bf16.csv
step "${HOST_S:-25}" python3 benchmarks/gpu_layer_bench.py --host --out "$out" --name host.csv

grep -hE "fwd\+bwd" "$log" | grep -E "kan-|nn.Linear" | tail -16
step "${PYTEST_S:-90}" python3 -m pytest tests/test_kernels*.py tests/test_kan_linear*.py -x -q -p no:cacheprovider
tail -4 "$log"
