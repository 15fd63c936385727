#!/usr/bin/env bash
# The prepared GPU benchmark (< 10 minutes end to end on one H100/H200): the backbone benchmark
# (bf16 autocast, channels_last) and the neighborhood-attention op benchmark, JSON into OUT_DIR.
# Needs only torch, timm, numpy, mmengine (+ matplotlib for the docs step); no mmcv/mmdet.
#
#   tools/analysis_tools/gpu_benchmarks.sh OUT_DIR            # e.g. tools/analysis_tools/gpu_benchmarks.sh "$OUT"
#   python tools/analysis_tools/make_benchmark_docs.py docs/benchmarks.json OUT_DIR/backbones_cuda.json \
#       --na-json OUT_DIR/na_cuda.json          # afterwards, on any machine
# Environment: PYTHON (default .venv/bin/python if present, else python3), DEVICE (default cuda;
# DEVICE=cpu is a smoke test of this script with tiny repeat counts).
set -uo pipefail
OUT_DIR=${1:?usage: tools/analysis_tools/gpu_benchmarks.sh OUT_DIR}
cd "$(dirname "$0")/../.."
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT_DIR"
status=0

"$PYTHON" - <<'PY' | tee "$OUT_DIR/environment.txt"
import platform, torch, timm, mmengine
print("python", platform.python_version(), "torch", torch.__version__, "timm", timm.__version__,
      "mmengine", mmengine.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
PY
nvidia-smi >>"$OUT_DIR/environment.txt" 2>&1 || true

if [[ $DEVICE == cuda ]]; then
    backbone_args=(--device cuda --threads 8 --warmup 2 --repeats 10 --throughput-repeats 3
                   --no-macs)
    # the target shape (800x1216, stage 1) first: flex compiles once per shape
    na_args=(--device cuda --dtype bfloat16 --inputs 800x1216 224x224 --repeats 10)
else
    backbone_args=(--device cpu --models lw_plgvit_r edgenext_small --sizes 224x224 96x160
                   --scaling-base 64x128 --repeats 1 --warmup 1 --throughput-repeats 1
                   --batch-224 2 --batch-dense 1 --no-macs)
    na_args=(--device cpu --quick --repeats 1)
fi

timeout 200 "$PYTHON" tools/analysis_tools/benchmark_na.py "${na_args[@]}" \
    --json "$OUT_DIR/na_$DEVICE.json" 2>&1 | tee "$OUT_DIR/na_$DEVICE.log"
rc=${PIPESTATUS[0]}
(( rc == 0 )) || { echo "NA benchmark failed (exit $rc)"; status=1; }

# Backbones: ~13 models x 7 sizes; the time limits keep the whole script under 10 minutes.
timeout 300 "$PYTHON" tools/analysis_tools/benchmark_backbones.py "${backbone_args[@]}" \
    --json "$OUT_DIR/backbones_$DEVICE.json" 2>&1 | tee "$OUT_DIR/backbones_$DEVICE.log"
rc=${PIPESTATUS[0]}
(( rc == 0 )) || { echo "backbone benchmark failed (exit $rc)"; status=1; }

ls -l "$OUT_DIR"
exit $status
