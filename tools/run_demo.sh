#!/usr/bin/env bash
# The README's main job: install what is missing, generate a synthetic COCO-format dataset,
# train Mask R-CNN with the LW-PLG-ViT-A backbone on it (CPU), evaluate with mmdet's CocoMetric,
# save a picture of predictions, and print the metrics and where everything is.
#
#   bash tools/run_demo.sh            # or: make demo
#
# Knobs (environment): DEMO_WORK_DIR (default work_dirs/demo), DEMO_DATA (data/synthetic_coco),
# DEMO_ITERS (the config's 800), SKIP_INSTALL=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=configs/demo/maskrcnn_lwplgvit_a_synthetic.py
WORK_DIR="${DEMO_WORK_DIR:-work_dirs/demo}"
DATA="${DEMO_DATA:-data/synthetic_coco}"
PY="$ROOT/.venv/bin/python"
MAP_BAR=0.6

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  echo "[demo] == install (skips what is present) =="
  bash tools/install.sh
fi
start=$(date +%s)

echo "[demo] == synthetic dataset: $DATA =="
if [ -f "$DATA/annotations/instances_val2017.json" ]; then
  echo "[demo] present"
else
  "$PY" -c "from plgvit_mm.datasets.synthetic_shapes import write_synthetic_coco as w; \
print(w('$DATA', num_train=500, num_val=100, height=192, width=192, seed=0))"
fi

overrides=(train_dataloader.dataset.data_root="$DATA/" test_dataloader.dataset.data_root="$DATA/"
           test_evaluator.ann_file="$DATA/annotations/instances_val2017.json")
if [ -n "${DEMO_ITERS:-}" ]; then
  overrides+=(train_cfg.max_iters="$DEMO_ITERS" default_hooks.checkpoint.interval="$DEMO_ITERS"
              param_scheduler.1.T_max="$((DEMO_ITERS - 100))" param_scheduler.1.end="$DEMO_ITERS")
fi

echo "[demo] == train $CONFIG (CPU; progress and ETA every 20 iterations) =="
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --cfg-options "${overrides[@]}"
checkpoint="$(cat "$WORK_DIR/last_checkpoint")"

echo "[demo] == evaluate $checkpoint on the held-out images (CocoMetric) =="
"$PY" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR" \
  --metrics-out "$WORK_DIR/metrics.json" --cfg-options "${overrides[@]}"

echo "[demo] == picture of predictions =="
picture="$WORK_DIR/prediction.png"
"$PY" tools/image_demo.py "$DATA/val2017/000000000001.png" "$CONFIG" "$checkpoint" \
  --out "$picture" --score-thr 0.5 --cfg-options "${overrides[@]}"

elapsed=$(( $(date +%s) - start ))
"$PY" - "$WORK_DIR/metrics.json" "$MAP_BAR" "$elapsed" "$checkpoint" "$picture" "$WORK_DIR" <<'PYEOF'
import json
import sys

metrics_file, bar, elapsed, checkpoint, picture, work_dir = sys.argv[1:]
metrics = json.load(open(metrics_file))
bbox, segm = float(metrics["coco/bbox_mAP"]), float(metrics["coco/segm_mAP"])
print("\n[demo] ================= result =================")
for key in sorted(metrics):
    print(f"[demo] {key:28s} {metrics[key]}")
print(f"[demo] wall time (without install): {int(elapsed) // 60} min {int(elapsed) % 60} s")
print(f"[demo] checkpoint: {checkpoint}")
print(f"[demo] picture:    {picture}")
print(f"[demo] metrics:    {metrics_file}")
print(f"[demo] logs:       {work_dir}/")
verdict = "meets" if bbox >= float(bar) else "MISSES"
print(f"[demo] bbox mAP {bbox:.3f} / segm mAP {segm:.3f}: {verdict} the {bar} bbox mAP bar")
sys.exit(0 if bbox >= float(bar) else 1)
PYEOF
