#!/usr/bin/env bash
# The prepared GPU check: install, train every task with mixed precision, benchmark. Each stage
# fits in 5 minutes on one H100/H200; run them back to back on a warm machine (build first).
#
#   tools/gpu_check.sh OUT_DIR --stage build --wheelhouse DIR   # offline install, mmcv CUDA ops
#   tools/gpu_check.sh OUT_DIR --stage smoke                    # 3 trainings, CUDA tests, AMP
#   tools/gpu_check.sh OUT_DIR --stage bench                    # training + NA benchmarks
#   tools/gpu_check.sh OUT_DIR --stage wheelhouse --wheelhouse DIR   # (with a package index)
#   tools/gpu_check.sh OUT_DIR --stage smoke --dry-run          # the same pipeline, CPU, tiny
#
# build: uses the machine's own torch (PYTHON, default python3; e.g. torch 2.11+cu130 on Python
#   3.12) and no package index: a virtual environment with the system site-packages
#   (PLGVIT_MM_GPU_VENV, default ~/.cache/plgvit_mm/gpu-venv) gets mmengine, mmdet, mmseg,
#   mmpretrain, pycocotools, shapely, scipy (and timm when missing) from --wheelhouse DIR, mmcv
#   2.1.0 compiled from the sdist in DIR with CUDA ops for the present GPU only
#   (tools/install.sh --mmcv-wheel: nvcc from DIR's nvidia-cuda-nvcc wheels when none is on
#   PATH; the wheel is cached), and plgvit_mm (editable). Checks nms and RoIAlign on the GPU.
# smoke: tools/analysis_tools/gpu_check.py smoke: 30 --amp iterations each of Mask R-CNN
#   LW-PLG-ViT-A, UperNet NAT-Tiny and mono-3D LW-PLG-ViT-A on generated data through
#   tools/train.py, then --resume for 5 more; the CUDA tests; tools/analysis_tools/gpu_amp_check.py.
#   Report: OUT_DIR/gpu_check.json, copied to docs/gpu_check.json.
# bench: tools/analysis_tools/benchmark_train.py --device cuda --amp (Mask R-CNN 800x1216 and
#   UperNet 512x512: LW-PLG-ViT-A and NAT-Tiny next to mmdet's/mmseg's R-50 and Swin-T) into
#   OUT_DIR/benchmarks_train_cuda.json (copied to docs/), and tools/analysis_tools/benchmark_na.py
#   (every backend, compiled flex included, bf16) into OUT_DIR/na_cuda.json.
# wheelhouse: downloads into DIR everything build needs (Python 3.12 wheels; CUDA_VERSION,
#   default torch's here, picks the nvcc wheels; the mmcv sdist).
# --dry-run (smoke, bench): CPU, tiny images and iteration counts, results in OUT_DIR only.
# Exit status 0 when every check of the stage passed; logs and JSON are in OUT_DIR.
set -uo pipefail

usage() {
    echo "usage: tools/gpu_check.sh OUT_DIR --stage build|smoke|bench|wheelhouse" \
        "[--wheelhouse DIR] [--dry-run]" >&2
    exit 2
}
(($# >= 1)) || usage
OUT_DIR=$1
shift
STAGE="" WHEELHOUSE="" DRY_RUN=0
while (($#)); do
    case $1 in
        --stage) STAGE=${2:-}; shift 2 || usage ;;
        --wheelhouse) WHEELHOUSE=${2:-}; shift 2 || usage ;;
        --dry-run) DRY_RUN=1; shift ;;
        *) echo "gpu_check: unknown argument '$1'" >&2; usage ;;
    esac
done
case $STAGE in build | smoke | bench | wheelhouse) ;; *) usage ;; esac
if [[ -n $WHEELHOUSE ]]; then
    mkdir -p "$WHEELHOUSE" && WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd) || exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2
CACHE="${PLGVIT_MM_CACHE:-$HOME/.cache/plgvit_mm}"
GPU_VENV="${PLGVIT_MM_GPU_VENV:-$CACHE/gpu-venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The interpreter of the smoke and bench stages: PYTHON, else the build stage's environment,
# else the repository's .venv.
stage_python() {
    if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"
    elif [[ -x $GPU_VENV/bin/python ]] && ((DRY_RUN == 0)); then echo "$GPU_VENV/bin/python"
    elif [[ -x $ROOT/.venv/bin/python ]]; then echo "$ROOT/.venv/bin/python"
    else echo python3; fi
}

log() { printf '[gpu_check] %s\n' "$*"; }

stage_wheelhouse() {
    [[ -n $WHEELHOUSE ]] || { echo "gpu_check: --stage wheelhouse needs --wheelhouse DIR" >&2; return 2; }
    local py cuda
    py=$(stage_python)
    cuda=${CUDA_VERSION:-$("$py" -c 'import torch; print(torch.version.cuda or "")')}
    [[ $cuda =~ ^[0-9]+\.[0-9]+$ ]] || { echo "gpu_check: set CUDA_VERSION=MAJOR.MINOR" >&2; return 2; }
    local platform=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
        --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_17_x86_64 --platform any)
    log "downloading into $WHEELHOUSE (Python 3.12, CUDA $cuda)"
    "$py" -m pip download -d "$WHEELHOUSE" "${platform[@]}" \
        "setuptools>=77,<81" wheel ninja mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 \
        mmpretrain==1.2.0 pycocotools==2.0.11 shapely scipy pytest huggingface_hub safetensors \
        "nvidia-cuda-nvcc==$cuda.*" "nvidia-cuda-cccl==$cuda.*" "nvidia-cuda-crt==$cuda.*" \
        "nvidia-nvvm==$cuda.*" "nvidia-cuda-runtime==$cuda.*" || return 1
    "$py" -m pip download -d "$WHEELHOUSE" "${platform[@]}" --no-deps timm==1.0.31 || return 1
    "$py" -m pip download -d "$WHEELHOUSE" --no-deps --no-binary :all: --no-build-isolation \
        mmcv==2.1.0 || return 1
    # mmengine's opencv-python dependency is not installed (opencv-python-headless serves cv2)
    rm -f "$WHEELHOUSE"/opencv_python-*.whl
    du -sh "$WHEELHOUSE"
}

stage_build() {
    local base=${PYTHON:-python3} start=$SECONDS
    if [[ -n $WHEELHOUSE ]]; then
        export PIP_NO_INDEX=1 PIP_FIND_LINKS=$WHEELHOUSE
        log "offline: packages from $WHEELHOUSE"
    fi
    local py=$GPU_VENV/bin/python
    local pip=("$py" -m pip install --progress-bar off)
    if [[ ! -x $py ]]; then
        log "virtual environment $GPU_VENV (system site-packages of $base)"
        if ! "$base" -m venv --system-site-packages "$GPU_VENV"; then
            # no ensurepip for this interpreter: the base pip installs into the environment
            rm -rf "$GPU_VENV"
            "$base" -m venv --system-site-packages --without-pip "$GPU_VENV" || return 1
        fi
    fi
    "$py" -m pip --version >/dev/null 2>&1 || pip=("$base" -m pip --python "$py" install --progress-bar off)
    "${pip[@]}" "setuptools>=77,<81" wheel ninja || return 1
    # --no-deps: mmengine asks for opencv-python; the machine's opencv-python-headless serves
    "${pip[@]}" --no-deps mmengine==0.10.7 || return 1
    "${pip[@]}" addict yapf termcolor mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 \
        pycocotools shapely scipy pytest || return 1
    "$py" -c 'import timm' 2>/dev/null || "${pip[@]}" timm==1.0.31 || return 1
    PLGVIT_MM_PYTHON=$py MAX_JOBS=${MAX_JOBS:-$(nproc)} bash "$ROOT/tools/install.sh" \
        --mmcv-wheel "$CACHE/gpu-wheels" || return 1
    "${pip[@]}" --no-deps --force-reinstall "$CACHE"/gpu-wheels/mmcv-*.whl || return 1
    "${pip[@]}" --no-deps --no-build-isolation -e "$ROOT" || return 1
    "$py" - "$OUT_DIR/build.json" "$((SECONDS - start))" <<'PY' || return 1
import json
import sys

import mmcv
import mmdet
import mmengine
import mmpretrain
import mmseg
import timm
import torch
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms

import plgvit_mm

boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.0]], device="cuda")
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device="cuda"), 0.5)
features = torch.arange(64.0, device="cuda").view(1, 1, 8, 8)
rois = torch.tensor([[0, 0, 0, 7, 7.0]], device="cuda")
pooled = RoIAlign((2, 2), 1.0, 2, aligned=True)(features, rois)
expected = RoIAlign((2, 2), 1.0, 2, aligned=True)(features.cpu(), rois.cpu())
report = dict(
    device=torch.cuda.get_device_name(),
    torch=torch.__version__,
    cuda=torch.version.cuda,
    mmcv=mmcv.__version__,
    mmcv_compiled_cuda=get_compiling_cuda_version(),
    mmengine=mmengine.__version__,
    mmdet=mmdet.__version__,
    mmseg=mmseg.__version__,
    mmpretrain=mmpretrain.__version__,
    timm=timm.__version__,
    plgvit_mm=plgvit_mm.__version__,
    nms_cuda=keep.tolist() == [0, 2],
    roi_align_cuda=bool(torch.allclose(pooled.cpu(), expected)),
    seconds=int(sys.argv[2]),
)
text = json.dumps(report, indent=1)
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    handle.write(text + "\n")
print(text)
sys.exit(0 if report["nms_cuda"] and report["roi_align_cuda"] else 1)
PY
}

stage_smoke() {
    local py docs=()
    py=$(stage_python)
    ((DRY_RUN)) && docs=(--dry-run) || docs=(--docs-json "$ROOT/docs/gpu_check.json")
    log "smoke with $py"
    "$py" tools/analysis_tools/gpu_check.py smoke "$OUT_DIR" "${docs[@]}"
}

stage_bench() {
    local py status=0 device=(--device cuda --amp) sizes=(--warmup 2 --repeats 10 --batch 2)
    local det_shape=(--shape 800 1216) seg_shape=(--shape 512 512)
    local na=(--device cuda --dtype bfloat16 --inputs 800x1216 224x224 --repeats 20)
    local limits=(100 70 130)  # seconds: detection, segmentation, NA (5 minutes in all)
    py=$(stage_python)
    if ((DRY_RUN)); then
        device=(--device cpu) sizes=(--warmup 1 --repeats 1 --batch 1)
        det_shape=(--shape 64 64) seg_shape=(--shape 64 64) na=(--device cpu --quick --repeats 1)
        limits=(900 900 600)
    fi
    local det=(configs/maskrcnn_lwplgvit_a_coco.py configs/maskrcnn_nat_tiny_coco.py
        mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py
        mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py)
    local seg=(configs/upernet_lwplgvit_a_ade20k.py configs/upernet_nat_tiny_ade20k.py
        mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py
        mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py)
    log "training benchmark with $py"
    timeout "${limits[0]}" "$py" tools/analysis_tools/benchmark_train.py "${device[@]}" "${sizes[@]}" \
        --task det --configs "${det[@]}" "${det_shape[@]}" --json "$OUT_DIR/bench_det.json" \
        2>&1 | tee "$OUT_DIR/bench_det.log"
    ((PIPESTATUS[0] == 0)) || { log "detection benchmark failed"; status=1; }
    timeout "${limits[1]}" "$py" tools/analysis_tools/benchmark_train.py "${device[@]}" "${sizes[@]}" \
        --task seg --configs "${seg[@]}" "${seg_shape[@]}" --json "$OUT_DIR/bench_seg.json" \
        2>&1 | tee "$OUT_DIR/bench_seg.log"
    ((PIPESTATUS[0] == 0)) || { log "segmentation benchmark failed"; status=1; }
    "$py" tools/analysis_tools/gpu_check.py merge-bench "$OUT_DIR/benchmarks_train_cuda.json" \
        "$OUT_DIR/bench_det.json" "$OUT_DIR/bench_seg.json" || status=1
    if ((DRY_RUN == 0)) && [[ -f $OUT_DIR/benchmarks_train_cuda.json ]]; then
        cp "$OUT_DIR/benchmarks_train_cuda.json" "$ROOT/docs/benchmarks_train_cuda.json.tmp" &&
            mv "$ROOT/docs/benchmarks_train_cuda.json.tmp" "$ROOT/docs/benchmarks_train_cuda.json"
    fi
    log "neighborhood-attention benchmark (flex measured in the same run)"
    timeout "${limits[2]}" "$py" tools/analysis_tools/benchmark_na.py "${na[@]}" \
        --json "$OUT_DIR/na_${device[1]}.json" 2>&1 | tee "$OUT_DIR/na.log"
    ((PIPESTATUS[0] == 0)) || { log "NA benchmark failed"; status=1; }
    return $status
}

{
    log "stage $STAGE, $(date -u +%FT%TZ), dry-run=$DRY_RUN"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
} | tee "$OUT_DIR/$STAGE.log"
start=$SECONDS
"stage_$STAGE" 2>&1 | tee -a "$OUT_DIR/$STAGE.log"
status=${PIPESTATUS[0]}
log "stage $STAGE finished with status $status in $((SECONDS - start)) s" | tee -a "$OUT_DIR/$STAGE.log"
exit "$status"
