#!/usr/bin/env bash
# Creates .venv and installs everything plgvit_mm needs, idempotently.
#
#   bash tools/install.sh            # or: make install
#
# Steps: venv -> build tools -> torch/torchvision -> mmcv 2.1.0 with ops (built once per
# machine from the PyPI sdist with C++20 flags, wheel cached outside the repo) -> OpenMMLab,
# timm and friends -> plgvit_mm (editable) with dev tools. A step whose result is already
# present is skipped, so a second run takes seconds. Environment knobs:
#   PYTHON=python3.11            interpreter used to create .venv
#   PLGVIT_MM_CACHE=~/.cache/plgvit_mm   where the mmcv wheel is cached
#   MAX_JOBS=2                   compile jobs for the mmcv build
# The NAT CPU kernel (plgvit_mm/ops/csrc) is compiled into $PLGVIT_MM_CACHE/torch_extensions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
CACHE="${PLGVIT_MM_CACHE:-$HOME/.cache/plgvit_mm}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
export MAX_JOBS="${MAX_JOBS:-2}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step_name=""
step() { step_name="$1"; printf '\n[install] == %s ==\n' "$1"; }
on_error() {
  printf '\n[install] FAILED at step "%s".\n' "$step_name" >&2
  case "$step_name" in
    venv*) echo "[install] Check that $PYTHON exists and has the venv module (Python 3.10-3.12)." >&2 ;;
    torch*) echo "[install] Check network access to PyPI and free disk space (~6 GB for torch)." >&2 ;;
    mmcv*|fused*) echo "[install] Check gcc/g++ (C++20), Python headers and the build log above; the mmcv build needs ~13 min on 2 cores." >&2 ;;
    *) echo "[install] Check network access to PyPI and the pip output above." >&2 ;;
  esac
}
trap on_error ERR

step "venv ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  echo "[install] created $VENV"
else
  echo "[install] present"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --progress-bar on)
pyver=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')

have() { "$PY" - "$@" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and got.split("+")[0] != want:
        sys.exit(1)
EOF
}

step "build tools (pip, setuptools>=77,<81, wheel, ninja)"
if "$PY" -c 'import setuptools, sys; v=tuple(map(int, setuptools.__version__.split(".")[:2])); sys.exit(not ((77,0) <= v < (81,0)))' 2>/dev/null \
   && have wheel ninja; then
  echo "[install] present"
else
  "${PIP[@]}" --upgrade pip "setuptools>=77,<81" wheel ninja
fi

step "torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
if have "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"; then
  echo "[install] present"
else
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

step "mmcv==$MMCV_VERSION with compiled ops"
wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$pyver"
if have "mmcv==$MMCV_VERSION" && "$PY" -c 'from mmcv.ops import nms, RoIAlign' 2>/dev/null; then
  echo "[install] present"
else
  wheel=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    echo "[install] no cached wheel in $wheel_dir: building mmcv from the PyPI sdist (~13 min on 2 cores, MAX_JOBS=$MAX_JOBS)"
    work=$(mktemp -d)
    # torch must be importable while pip reads the sdist's metadata, hence --no-build-isolation.
    "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
    tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    src="$work/mmcv-$MMCV_VERSION"
    # torch 2.14's headers require C++20; mmcv 2.1.0 hard-codes c++14/c++17.
    sed -i -E 's/(-std=c\+\+|\/std:c\+\+)1[47]/\120/g' "$src/setup.py"
    grep -q 'c++20' "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 "$PY" -m pip wheel --no-deps --no-build-isolation -v -w "$work/dist" . 2>&1 \
      | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|Building|Created wheel|error|Error' || true)
    built=$(ls "$work"/dist/mmcv-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$built" ]; then echo "[install] the mmcv build produced no wheel" >&2; false; fi
    mkdir -p "$wheel_dir"
    cp "$built" "$wheel_dir/.tmp-$(basename "$built")"
    mv "$wheel_dir/.tmp-$(basename "$built")" "$wheel_dir/$(basename "$built")"
    wheel="$wheel_dir/$(basename "$built")"
    rm -rf "$work"
    echo "[install] cached $wheel"
  else
    echo "[install] using cached $wheel"
  fi
  "${PIP[@]}" "$wheel"
fi

step "OpenMMLab, timm, ONNX tools, plgvit_mm (editable) and dev tools"
if have "mmengine==0.10.7" "mmdet==3.3.0" "mmsegmentation==1.2.2" "mmpretrain==1.2.0" "timm==1.0.31" pycocotools shapely \
        "cityscapesscripts==2.3.0" matplotlib ftfy regex "onnx==1.23.2" "onnxruntime==1.32.0" "onnxscript==0.7.2" \
        "onnxslim==0.1.98" pytest "ruff==0.17.6" plgvit_mm \
   && "$PY" -c 'import plgvit_mm, os, sys; sys.exit(not plgvit_mm.__file__.startswith(sys.argv[1]))' "$ROOT" 2>/dev/null; then
  echo "[install] present"
else
  "${PIP[@]}" -e "$ROOT[mm,deploy,dev]"
fi

step "fused CPU neighborhood-attention kernel (C++, built once per machine)"
"$PY" -c 'from plgvit_mm.ops.na2d_cpu import build_extension, build_directory; build_extension(); print("[install] ok:", build_directory())'

step "check"
"$PY" -c 'import plgvit_mm, mmdet, mmseg, timm; from mmcv.ops import RoIAlign, nms; print("[install] ok: plgvit_mm", plgvit_mm.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__, "timm", timm.__version__)'
trap - ERR
