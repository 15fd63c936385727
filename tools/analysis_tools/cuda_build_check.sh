#!/usr/bin/env bash
# Proof that mmcv's CUDA build works on a machine without a GPU (where a user's build breaks
# first): cross-compiles mmcv 2.1.0 with CUDA ops for one architecture through the install's own
# code path (tools/install.sh --mmcv-wheel with PLGVIT_MM_CUDA_ARCH) in a temporary cache, with
# CUDA_HOME unset and PATH without directories holding an nvcc: as on a machine without a CUDA
# toolkit, nvcc comes from the package registry's wheels.
# Then installs the wheel into a temporary directory and checks that it imports, that mmcv
# reports the CUDA release it was compiled with, and that CPU nms keeps the expected boxes.
#
#   nice -n 19 bash tools/analysis_tools/cuda_build_check.sh [ARCH]     # ARCH default 9.0
#
# Takes ~30 min of 2 cores (~100 CUDA units): run it by hand in the background, never inside CI
# or make install. Needs .venv (or PLGVIT_MM_PYTHON) with torch and network access to the
# package registry. KEEP=1 keeps the temporary directory (wheel, nvcc, logs).
set -euo pipefail

ARCH=${1:-9.0}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PLGVIT_MM_PYTHON:-$ROOT/.venv/bin/python}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cuda_build_check.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "[cuda_build_check] keeping $TMP"
else
  trap 'rm -rf "$TMP"' EXIT
fi
start=$SECONDS

toolkit_free_path=""
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  [ -x "$dir/nvcc" ] || toolkit_free_path+="${toolkit_free_path:+:}$dir"
done

echo "[cuda_build_check] mmcv with CUDA ops for sm_${ARCH//./} in $TMP"
env -u CUDA_HOME PATH="$toolkit_free_path" PLGVIT_MM_CACHE="$TMP/cache" \
  PLGVIT_MM_CUDA_ARCH="$ARCH" PLGVIT_MM_PYTHON="$PY" \
  bash "$ROOT/tools/install.sh" --mmcv-wheel "$TMP/dist"
wheel=$(ls "$TMP"/dist/mmcv-*.whl)
minutes=$(((SECONDS - start) / 60))

"$PY" -m pip install --quiet --no-deps --target "$TMP/site" "$wheel"
PYTHONPATH="$TMP/site" "$PY" - "$TMP/site" <<'EOF'
import sys

import mmcv
import torch
from mmcv.ops import get_compiling_cuda_version, nms

assert mmcv.__file__.startswith(sys.argv[1]), f"imported {mmcv.__file__}, not the new wheel"
compiled = get_compiling_cuda_version()
assert compiled != "not available", "mmcv was compiled without CUDA ops"
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.0]])
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], f"CPU nms kept {keep.tolist()}, expected [0, 2]"
print(f"[cuda_build_check] imports; compiled cuda {compiled}; CPU nms keeps [0, 2]")
EOF
echo "[cuda_build_check] ok: $(basename "$wheel"), $(du -h "$wheel" | cut -f1), sm_${ARCH//./}," \
  "built in ${minutes} min"
