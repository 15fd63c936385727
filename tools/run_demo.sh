#!/usr/bin/env bash
# The README's main job: install what is missing, generate a synthetic COCO-format dataset,
# train Mask R-CNN with the LW-PLG-ViT-A backbone on it (CPU), evaluate with mmdet's CocoMetric on
# a held-out test split, save a picture of predictions, and print the metrics and where
# everything is.
#
#   bash tools/run_demo.sh            # or: make demo
#
# Data: 500 train and 100 val images (seed DEMO_DATA_SEED) and 100 test images drawn with their
# own seed (DEMO_TEST_SEED). The config's recipe was chosen on the val split; the demo reports the
# test split, which no choice was scored on. The folder name carries the generator version and
# both seeds (data/synthetic_coco_v1_seed0_test1), so a changed generator never reuses old images.
#
# Knobs (environment): DEMO_WORK_DIR (default work_dirs/demo), DEMO_DATA (default: the keyed
# folder under data/), DEMO_DATA_SEED (0), DEMO_TEST_SEED (1), DEMO_SEED (training seed, the
# config's 0), DEMO_ITERS (the config's 1250), DEMO_RECORD (a JSON file, e.g.
# docs/demo_runs.json, to which this run is added with the median and range of all its runs),
# PYTHON (default .venv/bin/python), SKIP_INSTALL=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=configs/demo/maskrcnn_lwplgvit_a_synthetic.py
WORK_DIR="${DEMO_WORK_DIR:-work_dirs/demo}"
DATA_SEED="${DEMO_DATA_SEED:-0}"
TEST_SEED="${DEMO_TEST_SEED:-1}"
TRAIN_SEED="${DEMO_SEED:-0}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
MAP_BAR=0.6

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  echo "[demo] == install (skips what is present) =="
  bash tools/install.sh
fi
start=$(date +%s)
loadavg_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1)

DATA="${DEMO_DATA:-data/$("$PY" -c "from plgvit_mm.datasets.synthetic_shapes import \
synthetic_coco_dirname as d; print(d($DATA_SEED, $TEST_SEED))")}"
echo "[demo] == synthetic dataset: $DATA =="
if [ -f "$DATA/generator.json" ]; then
  echo "[demo] present"
else
  "$PY" -c "from plgvit_mm.datasets.synthetic_shapes import write_synthetic_coco as w; \
print(w('$DATA', num_train=500, num_val=100, num_test=100, height=192, width=192, \
seed=$DATA_SEED, test_seed=$TEST_SEED))"
fi

iterations="$("$PY" -c "from mmengine.config import Config; \
print(Config.fromfile('$CONFIG').train_cfg.max_iters)")"
overrides=(train_dataloader.dataset.data_root="$DATA/" test_dataloader.dataset.data_root="$DATA/"
           test_dataloader.dataset.ann_file=annotations/instances_test2017.json
           test_dataloader.dataset.data_prefix.img=test2017/
           test_evaluator.ann_file="$DATA/annotations/instances_test2017.json"
           randomness.seed="$TRAIN_SEED")
if [ -n "${DEMO_ITERS:-}" ]; then  # warm-up: the config's 100 iterations, half of a short run
  iterations="$DEMO_ITERS"
  warmup=$(( DEMO_ITERS < 200 ? DEMO_ITERS / 2 : 100 ))
  overrides+=(train_cfg.max_iters="$DEMO_ITERS" default_hooks.checkpoint.interval="$DEMO_ITERS"
              param_scheduler.0.end="$warmup" param_scheduler.1.begin="$warmup"
              param_scheduler.1.T_max="$((DEMO_ITERS - warmup))" param_scheduler.1.end="$DEMO_ITERS")
fi

echo "[demo] == train $CONFIG for $iterations iterations (CPU; progress and ETA every 20) =="
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --cfg-options "${overrides[@]}"
checkpoint="$(cat "$WORK_DIR/last_checkpoint")"

echo "[demo] == evaluate $checkpoint on the held-out test split (CocoMetric) =="
"$PY" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR" \
  --metrics-out "$WORK_DIR/metrics.json" --cfg-options "${overrides[@]}"
elapsed=$(( $(date +%s) - start ))

if [ -n "${DEMO_RECORD:-}" ]; then
  "$PY" tools/analysis_tools/record_demo_run.py "$DEMO_RECORD" --metrics "$WORK_DIR/metrics.json" \
    --data "$DATA" --iterations "$iterations" --seed "$TRAIN_SEED" --wall-s "$elapsed" \
    --loadavg-start "$loadavg_start"
fi

echo "[demo] == picture of predictions =="
picture="$WORK_DIR/prediction.png"
"$PY" tools/image_demo.py "$DATA/test2017/000000000001.png" "$CONFIG" "$checkpoint" \
  --out "$picture" --score-thr 0.5 --cfg-options "${overrides[@]}"


"$PY" - "$WORK_DIR/metrics.json" "$MAP_BAR" "$elapsed" "$checkpoint" "$picture" "$WORK_DIR" <<'PYEOF'
import json
import sys

metrics_file, bar, elapsed, checkpoint, picture, work_dir = sys.argv[1:]
metrics = json.load(open(metrics_file))
bbox, segm = float(metrics["coco/bbox_mAP"]), float(metrics["coco/segm_mAP"])
print("\n[demo] ============ result on the held-out test split ============")
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
