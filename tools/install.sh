#!/usr/bin/env bash
# Creates .venv and installs everything plgvit_mm needs, idempotently.
#
#   bash tools/install.sh                    # or: make install
#   bash tools/install.sh --mmcv-wheel DIR   # only build (or take from the cache) the mmcv
#                                            # wheel for PLGVIT_MM_PYTHON and copy it into DIR
#
# Steps: venv -> build tools -> torch/torchvision -> mmcv 2.1.0 with ops (built once per
# machine from the PyPI sdist with C++20 flags, wheel cached outside the repo) -> OpenMMLab,
# timm and friends -> plgvit_mm (editable) with dev tools. A step whose result is already
# present is skipped, so a second run takes seconds.
# mmcv's CUDA ops (docs/gpu.md): on a machine with an NVIDIA GPU, or when PLGVIT_MM_CUDA_ARCH is
# set, mmcv is compiled with CUDA ops for that one architecture. nvcc: $CUDA_HOME or the nvcc on
# PATH when it is torch's CUDA release, else the registry's nvidia-cuda-nvcc/-cccl/-crt/-runtime
# and nvidia-nvvm wheels of that release unpacked into the cache and completed with the CUDA
# headers and libraries torch installs. The wheel is cached per torch, CUDA and architecture;
# the last step runs nms and RoIAlign on the GPU. Machines without a GPU build CPU ops only.
# Environment knobs:
#   PYTHON=python3.11            interpreter used to create .venv
#   PLGVIT_MM_CACHE=~/.cache/plgvit_mm   where the mmcv wheel (and a downloaded nvcc) is cached
#   PLGVIT_MM_CUDA_ARCH=9.0      GPU compute capability for mmcv's CUDA ops (default: the
#                                present GPU's; on a machine without one: CPU ops only)
#   PLGVIT_MM_PYTHON             interpreter with torch for --mmcv-wheel (default .venv's)
#   MAX_JOBS=2                   compile jobs for the mmcv build (CUDA builds: all cores)
# The NAT CPU kernel (plgvit_mm/ops/csrc) is compiled into $PLGVIT_MM_CACHE/torch_extensions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
CACHE="${PLGVIT_MM_CACHE:-$HOME/.cache/plgvit_mm}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CUDA_JOBS="${MAX_JOBS:-$(nproc)}"
export MAX_JOBS="${MAX_JOBS:-2}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

WHEEL_ONLY_DIR=""
case "${1:-}" in
  "") ;;
  --mmcv-wheel) WHEEL_ONLY_DIR="${2:?usage: tools/install.sh --mmcv-wheel DIR}" ;;
  *) echo "usage: bash tools/install.sh [--mmcv-wheel DIR]" >&2; exit 2 ;;
esac

step_name=""
step() { step_name="$1"; printf '\n[install] == %s ==\n' "$1"; }
on_error() {
  printf '\n[install] FAILED at step "%s".\n' "$step_name" >&2
  case "$step_name" in
    venv*) echo "[install] Check that $PYTHON exists and has the venv module (Python 3.10-3.12)." >&2 ;;
    torch*) echo "[install] Check network access to PyPI and free disk space (~6 GB for torch)." >&2 ;;
    mmcv*|fused*) echo "[install] Check gcc/g++ (C++20), Python headers and the build log above; the mmcv build needs ~13 min on 2 cores (with CUDA ops ~31 min on 2 cores, ~5 min on 16)." >&2 ;;
    *) echo "[install] Check network access to PyPI and the pip output above." >&2 ;;
  esac
}
trap on_error ERR

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

# The compute capability (MAJOR.MINOR) to build mmcv's CUDA ops for: PLGVIT_MM_CUDA_ARCH, else
# the present NVIDIA GPU's; empty on machines without one (no torch import there).
detect_cuda_arch() {
  cuda_arch="${PLGVIT_MM_CUDA_ARCH:-}"
  if [ -n "$cuda_arch" ]; then
    if ! [[ $cuda_arch =~ ^[0-9]+\.[0-9]+$ ]]; then
      echo "[install] PLGVIT_MM_CUDA_ARCH='$cuda_arch': expected a compute capability MAJOR.MINOR such as 9.0 (H100) or 8.6" >&2
      return 1
    fi
  elif command -v nvidia-smi >/dev/null 2>&1 || [ -e /dev/nvidiactl ]; then
    cuda_arch=$("$PY" -c 'import torch; torch.cuda.is_available() and print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null || true)
  fi
}

# Sets CUDA_HOME to a toolkit whose nvcc is CUDA $1 (torch's MAJOR.MINOR): $CUDA_HOME or the nvcc
# on PATH when it is that release, else the registry's wheels of that release in the cache.
find_cuda_home() {
  local want=$1 nvcc release
  for nvcc in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc || true)"; do
    [ -n "$nvcc" ] && [ -x "$nvcc" ] || continue
    release=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
    if [ "$release" = "$want" ]; then
      CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
      echo "[install] nvcc: $nvcc (CUDA $release)"
      return
    fi
    echo "[install] $nvcc is CUDA $release, torch is built with $want: not used"
  done
  local major=${want%%.*}
  local prefix="$CACHE/cuda-$want"
  CUDA_HOME="$prefix/nvidia/cu$major"
  if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "[install] nvcc $want.* from the package registry into $prefix"
    rm -rf "$prefix.tmp" "$prefix"
    # every component pinned to torch's release: unpinned, crt/nvvm/runtime resolve to a newer
    # release whose PTX the pinned ptxas rejects
    "$PY" -m pip install --progress-bar off --target "$prefix.tmp" "nvidia-cuda-nvcc==$want.*" \
      "nvidia-cuda-cccl==$want.*" "nvidia-cuda-crt==$want.*" "nvidia-nvvm==$want.*" \
      "nvidia-cuda-runtime==$want.*"
    mv "$prefix.tmp" "$prefix"
  fi
  # ATen's CUDA headers include cuBLAS, cuSPARSE, cuSOLVER ...: torch's own nvidia/cuMAJOR
  # wheels provide them; the linker wants lib64/ and an unversioned libcudart.so.
  local torch_cuda entry
  torch_cuda=$("$PY" -c 'import os, sys, torch; print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "cu" + sys.argv[1]))' "$major")
  for sub in include lib; do
    [ -d "$torch_cuda/$sub" ] || continue
    for entry in "$torch_cuda/$sub"/*; do
      [ -e "$CUDA_HOME/$sub/${entry##*/}" ] || [ -L "$CUDA_HOME/$sub/${entry##*/}" ] || ln -s "$entry" "$CUDA_HOME/$sub/"
    done
  done
  [ -e "$CUDA_HOME/lib64" ] || ln -s lib "$CUDA_HOME/lib64"
  if [ ! -e "$CUDA_HOME/lib/libcudart.so" ]; then
    entry=$(cd "$CUDA_HOME/lib" && ls libcudart.so.[0-9]* | head -n1)
    ln -sf "$entry" "$CUDA_HOME/lib/libcudart.so"
  fi
  echo "[install] nvcc: $CUDA_HOME/bin/nvcc (CUDA $want, from the registry's wheels)"
}

# Builds mmcv from the PyPI sdist and caches the wheel in $1 (sets $wheel); the remaining
# arguments (NAME=VALUE) are the build's environment.
build_mmcv_wheel() {
  local wheel_dir=$1 work src built
  shift
  work=$(mktemp -d)
  # torch must be importable while pip reads the sdist's metadata, hence --no-build-isolation.
  "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  src="$work/mmcv-$MMCV_VERSION"
  # torch 2.14's headers require C++20; mmcv 2.1.0 hard-codes c++14/c++17.
  sed -i -E 's/(-std=c\+\+|\/std:c\+\+)1[47]/\120/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py"
  (cd "$src" && env MMCV_WITH_OPS=1 "$@" "$PY" -m pip wheel --no-deps --no-build-isolation -v -w "$work/dist" . 2>&1 \
    | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|Building|Created wheel|error|Error' || true)
  built=$(ls "$work"/dist/mmcv-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$built" ]; then echo "[install] the mmcv build produced no wheel" >&2; false; fi
  mkdir -p "$wheel_dir"
  cp "$built" "$wheel_dir/.tmp-$(basename "$built")"
  mv "$wheel_dir/.tmp-$(basename "$built")" "$wheel_dir/$(basename "$built")"
  wheel="$wheel_dir/$(basename "$built")"
  rm -rf "$work"
  echo "[install] cached $wheel"
}

# mmcv with CUDA ops for $cuda_arch: sets $wheel_dir (the cache key: mmcv, torch, Python, CUDA,
# architecture) and, unless the installed mmcv came from there, builds or reuses the wheel ($wheel).
prepare_cuda_mmcv() {
  local torch_version cuda_version
  read -r torch_version cuda_version < <("$PY" -c 'import torch; print(torch.__version__.split("+")[0], torch.version.cuda or "none")')
  [ -n "${cuda_version:-}" ] || { echo "[install] $PY cannot import torch" >&2; return 1; }
  if [ "$cuda_version" = none ]; then
    echo "[install] mmcv CUDA ops for $cuda_arch requested, but torch $torch_version is a CPU-only build" >&2
    return 1
  fi
  wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$torch_version-$pyver-cu${cuda_version//./}-sm${cuda_arch//./}"
  wheel=""
  if [ -z "$WHEEL_ONLY_DIR" ] && have "mmcv==$MMCV_VERSION" && "$PY" - "$wheel_dir" <<'EOF' 2>/dev/null
import json, sys
from importlib.metadata import distribution
from urllib.parse import unquote, urlparse
url = json.loads(distribution("mmcv").read_text("direct_url.json") or "{}").get("url", "")
sys.exit(not unquote(urlparse(url).path).startswith(sys.argv[1] + "/"))
EOF
  then
    echo "[install] present (CUDA $cuda_version ops for sm_${cuda_arch//./}, from $wheel_dir)"
    return
  fi
  wheel=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)
  if [ -n "$wheel" ]; then
    echo "[install] using cached $wheel"
    return
  fi
  find_cuda_home "$cuda_version"
  echo "[install] no cached wheel in $wheel_dir: building mmcv with CUDA $cuda_version ops for sm_${cuda_arch//./} (~31 min on 2 cores, ~5 min on 16; MAX_JOBS=$CUDA_JOBS)"
  # the interpreter's bin/ on PATH: torch compiles in parallel only when it finds ninja
  build_mmcv_wheel "$wheel_dir" FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$cuda_arch" CUDA_HOME="$CUDA_HOME" \
    PATH="$CUDA_HOME/bin:$(dirname "$PY"):$PATH" MAX_JOBS="$CUDA_JOBS"
}

if [ -n "$WHEEL_ONLY_DIR" ]; then
  step "mmcv==$MMCV_VERSION wheel into $WHEEL_ONLY_DIR"
  PY="${PLGVIT_MM_PYTHON:-$VENV/bin/python}"
  pyver=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  detect_cuda_arch
  if [ -n "$cuda_arch" ]; then
    prepare_cuda_mmcv
  else
    wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')-$pyver"
    wheel=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then build_mmcv_wheel "$wheel_dir" FORCE_CUDA=0; fi
  fi
  mkdir -p "$WHEEL_ONLY_DIR"
  rm -f "$WHEEL_ONLY_DIR"/mmcv-*.whl
  cp "$wheel" "$WHEEL_ONLY_DIR/"
  echo "[install] ok: $WHEEL_ONLY_DIR/$(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
  trap - ERR
  exit 0
fi

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
detect_cuda_arch
if [ -n "$cuda_arch" ]; then
  prepare_cuda_mmcv
  [ -z "$wheel" ] || "${PIP[@]}" --force-reinstall --no-deps "$wheel"
else
  wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$pyver"
  if have "mmcv==$MMCV_VERSION" && "$PY" -c 'from mmcv.ops import nms, RoIAlign' 2>/dev/null; then
    echo "[install] present"
  else
    wheel=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
      echo "[install] no cached wheel in $wheel_dir: building mmcv from the PyPI sdist (~13 min on 2 cores, MAX_JOBS=$MAX_JOBS)"
      build_mmcv_wheel "$wheel_dir" FORCE_CUDA=0
    else
      echo "[install] using cached $wheel"
    fi
    "${PIP[@]}" "$wheel"
  fi
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
if [ -n "$cuda_arch" ]; then
  "$PY" - <<'EOF'
import torch
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms

print("[install] mmcv ops compiled with CUDA", get_compiling_cuda_version())
if not torch.cuda.is_available():
    print("[install] no GPU here: nms and RoIAlign not run on CUDA")
else:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes.cuda(), scores.cuda(), 0.5)
    assert keep.tolist() == [0, 2], f"nms on CUDA kept {keep.tolist()}, expected [0, 2]"
    features = torch.arange(64.0).view(1, 1, 8, 8)
    rois = torch.tensor([[0, 0.5, 1.0, 6.5, 7.0]])
    align = RoIAlign((2, 2), 1.0, 2, aligned=True)
    got, want = align(features.cuda(), rois.cuda()).cpu(), align(features, rois)
    assert torch.allclose(got, want), f"RoIAlign on CUDA {got.flatten()} != CPU {want.flatten()}"
    print("[install] nms and RoIAlign on", torch.cuda.get_device_name(), "match the CPU")
EOF
fi
"$PY" -c 'import plgvit_mm, mmdet, mmseg, timm; from mmcv.ops import RoIAlign, nms; print("[install] ok: plgvit_mm", plgvit_mm.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__, "timm", timm.__version__)'
trap - ERR
