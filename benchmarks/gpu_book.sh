#!/usr/bin/env bash
# Run the book's notebooks at the "quick" profile on a CUDA machine and pack the results
# (CSV + figures + provenance) and executed notebooks into OUTDIR/book_quick.tgz.
#   SPARSEFUSE_GIT_COMMIT=<sha> [BUDGET=s] [TIMEOUT=s per notebook] bash benchmarks/gpu_book.sh OUTDIR [NOTEBOOK ...]
# (wheels from benchmarks/gpu_wheels.sh; the commit variable stands in where the copy has no .git)
set -uo pipefail
out=${1:?OUTDIR}; shift; mkdir -p "$out"
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
export SPARSEFUSE_GIT_COMMIT=${SPARSEFUSE_GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
export SPARSEFUSE_RESULTS=$PWD/results
# BUDGET (s): stop the whole batch after this long, so the packing below still runs.
timeout -k 15 "${BUDGET:-36000}" python3 -m sparsefuse.lab.book run "$@" --profile quick --device cuda --timeout ${TIMEOUT:-300} \
  --output-dir "$PWD/book/executed" 2>&1 | tee "$out/book_quick.log"
rc=${PIPESTATUS[0]}
tar czf "$out/book_quick.tgz" results/quick book/executed/*.ipynb
exit "$rc"
