# Sourced by the kernel-v3 GPU scripts: $out (created), the repo root as cwd, PYTHONPATH with the
# wheels of .whl/ (pytest, the peers) where the machine lacks them, $log, and step BOX CMD...
# (runs CMD time-boxed, its output into $log), after a header (GPU, commit, torch/triton).
set -uo pipefail
out=${1:?OUT}; mkdir -p "$out"; cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
log="$out/run.log"
step() { local t=$1; shift; echo "== $* (limit ${t}s)" | tee -a "$log"; local s=$SECONDS
  timeout -k 10 "$t" "$@" >>"$log" 2>&1; local rc=$?; echo "== rc=$rc in $((SECONDS - s))s" | tee -a "$log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$log"
echo "commit ${SPARSEFUSE_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}" | tee -a "$log"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$log"
