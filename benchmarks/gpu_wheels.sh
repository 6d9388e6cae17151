#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels a bare CUDA machine with Python 3.12
# and torch/triton but no Jupyter needs to run the book: papermill, jupytext, ipykernel,
# anywidget and their dependencies, plus the peer KAN packages. They land in .whl/.
#   bash benchmarks/gpu_wheels.sh            then on the GPU machine:
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.whl
mkdir -p "$dest"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any)
common=(--only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d "$dest")
python3 -m pip download -q "${common[@]}" papermill==2.7.0 jupytext ipykernel anywidget ipywidgets nbformat nbclient
python3 -m pip download -q --no-deps "${common[@]}" inkan==0.5.2 flashkan==0.2.0 kanditioned==1.0.4 pykan==0.2.8
# Already in a CUDA image with torch; a second copy would shadow the image's own.
(cd "$dest" && rm -f attrs-* certifi-* charset_normalizer-* click-* idna-* packaging-* psutil-* pygments-* \
  python_dateutil-* pyyaml-* requests-* tqdm-* typing_extensions-* urllib3-* markdown_it_py-* mdurl-*)
du -sh "$dest"
