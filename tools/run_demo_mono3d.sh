#!/usr/bin/env bash
# The mono 3D demo: install what is missing, generate KITTI-format driving scenes, train the
# LW-PLG-ViT-A mono 3D detector on them (CPU), evaluate it on held-out test frames with the full
# KITTI protocol (375 x 1242 label geometry), draw ground truth and predictions, and check the
# bar: kitti/Car_BEV_AP40_moderate_loose >= 50 and kitti/Car_3D_AP40_moderate_loose >= 35.
#
#   bash tools/run_demo_mono3d.sh            # or: make demo-mono3d
#
# Data (python -m plgvit_mm.datasets.synthetic_kitti): 600 train, 80 val and 120 test frames,
# each split with its own seed (0, 1, 2) and ids; compare recipes on val (DEMO_SPLIT=val), the
# demo reports test. The timer covers training and evaluation (not the install or the data).
# On cores shared with other jobs use DEMO_THREADS=1: two threads that wait on each other
# while one is descheduled make every iteration several times slower.
# Writes docs/demo_mono3d.json (every evaluator metric plus wall_s, iterations, threads,
# train_size, ...) and docs/figures/demo_mono3d.png (test frames: image with projected 3D
# boxes and bird's-eye view; ground truth green, predictions in class colours).
#
# Knobs (environment): DEMO_WORK_DIR (work_dirs/demo_mono3d), DEMO_DATA
# (data/synthetic_kitti_v1), DEMO_ITERS (the config's max_iters), DEMO_THREADS (all cores),
# DEMO_CURVE_EVERY (N: keep a checkpoint every N iterations and, after the timed part, evaluate
# each on DEMO_CURVE_SPLIT, val by default: the learning curve goes into the JSON as "curve"),
# DEMO_SPLIT (test; val to choose a recipe), DEMO_JSON (docs/demo_mono3d.json),
# DEMO_PICTURE (docs/figures/demo_mono3d.png), DEMO_PICTURE_SCORE (0.05: the least score drawn),
# DEMO_COMMAND (the command written into the record), DEMO_PYTHON (.venv/bin/python), SKIP_INSTALL=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=configs/demo/mono3d_lwplgvit_a_synthetic.py
WORK_DIR="${DEMO_WORK_DIR:-work_dirs/demo_mono3d}"
DATA="${DEMO_DATA:-data/synthetic_kitti_v1}"
SPLIT="${DEMO_SPLIT:-test}"
THREADS="${DEMO_THREADS:-$(nproc)}"
JSON_OUT="${DEMO_JSON:-docs/demo_mono3d.json}"
PICTURE="${DEMO_PICTURE:-docs/figures/demo_mono3d.png}"
PY="${DEMO_PYTHON:-$ROOT/.venv/bin/python}"
# split frames seed
SPLITS=("train 600 0" "val 80 1" "test 120 2")

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  echo "[demo-mono3d] == install (skips what is present) =="
  bash tools/install.sh
fi

echo "[demo-mono3d] == generated KITTI-format scenes: $DATA =="
for entry in "${SPLITS[@]}"; do
  read -r split frames seed <<<"$entry"
  if [ -f "$DATA/ImageSets/$split.txt" ] && [ "$(wc -l <"$DATA/ImageSets/$split.txt")" -eq "$frames" ]; then
    echo "[demo-mono3d] $split: $frames frames present"
  else
    "$PY" -m plgvit_mm.datasets.synthetic_kitti "$DATA" --split "$split" --frames "$frames" --seed "$seed"
  fi
done

export OMP_NUM_THREADS="$THREADS" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
iterations="${DEMO_ITERS:-$("$PY" -c "from mmengine.config import Config; \
print(Config.fromfile('$CONFIG').train_cfg.max_iters)")}"
CURVE_EVERY="${DEMO_CURVE_EVERY:-}"
checkpoint_every="${CURVE_EVERY:-$iterations}"
overrides=(train_dataloader.dataset.data_root="$DATA/" test_dataloader.dataset.data_root="$DATA/"
           test_dataloader.dataset.ann_file="ImageSets/$SPLIT.txt"
           test_evaluator.result_dir="$WORK_DIR/results_$SPLIT"
           train_cfg.max_iters="$iterations" default_hooks.checkpoint.interval="$checkpoint_every"
           default_hooks.checkpoint.max_keep_ckpts="$(( (iterations + checkpoint_every - 1) / checkpoint_every ))"
           param_scheduler.1.T_max="$((iterations - 20))" param_scheduler.1.end="$iterations")
start=$(date +%s)
loadavg_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1)

echo "[demo-mono3d] == train $CONFIG for $iterations iterations ($THREADS threads, CPU) =="
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --cfg-options "${overrides[@]}"
checkpoint="$(cat "$WORK_DIR/last_checkpoint")"
train_end=$(date +%s)
# this training run's logged scalars (the newest log folder; earlier runs may share the work dir)
TRAIN_SCALARS="$(ls -td "$WORK_DIR"/*/vis_data | head -n 1)/scalars.json"

echo "[demo-mono3d] == evaluate on the $SPLIT split (KITTI protocol, 375 x 1242) =="
"$PY" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR" \
  --metrics-out "$WORK_DIR/metrics_$SPLIT.json" --cfg-options "${overrides[@]}"
end=$(date +%s)
loadavg_end=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1)

CURVE=()  # ITERATION:METRICS_JSON of each point of the learning curve
CURVE_SPLIT="${DEMO_CURVE_SPLIT:-val}"
if [ -n "$CURVE_EVERY" ]; then
  echo "[demo-mono3d] == learning curve: checkpoints every $CURVE_EVERY iterations on the $CURVE_SPLIT split (not timed) =="
  for it in $( (seq "$CURVE_EVERY" "$CURVE_EVERY" "$iterations"; echo "$iterations") | sort -nu); do
    metrics="$WORK_DIR/metrics_${CURVE_SPLIT}_iter$it.json"
    "$PY" tools/test.py "$CONFIG" "$WORK_DIR/iter_$it.pth" --work-dir "$WORK_DIR" --metrics-out "$metrics" \
      --cfg-options "${overrides[@]}" test_dataloader.dataset.ann_file="ImageSets/$CURVE_SPLIT.txt" \
      test_evaluator.result_dir="$WORK_DIR/results_${CURVE_SPLIT}_iter$it"
    CURVE+=("$it:$metrics")
  done
fi

echo "[demo-mono3d] == picture =="
mapfile -t ids < <(head -n 3 "$DATA/ImageSets/$SPLIT.txt")
"$PY" tools/mono3d_demo.py --kitti "$DATA" --ids "${ids[@]}" --results "$WORK_DIR/results_$SPLIT" \
  --score-thr "${DEMO_PICTURE_SCORE:-0.05}" --colors 128 --out "$PICTURE"
echo "[demo-mono3d] picture: $PICTURE"

train_s=$((train_end - start))
eval_s=$((end - train_end))
"$PY" tools/analysis_tools/record_mono3d_demo.py --metrics "$WORK_DIR/metrics_$SPLIT.json" \
  --results "$WORK_DIR/results_$SPLIT" --data "$DATA" --split "$SPLIT" --config "$CONFIG" \
  --iterations "$iterations" --threads "$THREADS" --train-s "$train_s" --eval-s "$eval_s" \
  --loadavg "$loadavg_start" "$loadavg_end" --out "$JSON_OUT" --train-scalars "$TRAIN_SCALARS" \
  --command "${DEMO_COMMAND:-make demo-mono3d}" --curve-split "$CURVE_SPLIT" --curve "${CURVE[@]}"
