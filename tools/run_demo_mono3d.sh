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
# each on the split: the learning curve goes into the JSON as "curve"),
# DEMO_SPLIT (test; val to choose a recipe), DEMO_JSON (docs/demo_mono3d.json),
# DEMO_PICTURE (docs/figures/demo_mono3d.png), DEMO_PYTHON (.venv/bin/python), SKIP_INSTALL=1.
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

echo "[demo-mono3d] == evaluate on the $SPLIT split (KITTI protocol, 375 x 1242) =="
"$PY" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR" \
  --metrics-out "$WORK_DIR/metrics_$SPLIT.json" --cfg-options "${overrides[@]}"
end=$(date +%s)
loadavg_end=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1)

CURVE=""  # "ITERATION:METRICS_JSON ..." of the learning curve
if [ -n "$CURVE_EVERY" ]; then
  echo "[demo-mono3d] == learning curve: checkpoints every $CURVE_EVERY iterations on the $SPLIT split (not timed) =="
  for saved in $(ls "$WORK_DIR"/iter_*.pth | sort -V); do
    it=$(basename "$saved" .pth)
    it=${it#iter_}
    if [ "$it" -ne "$iterations" ]; then
      "$PY" tools/test.py "$CONFIG" "$saved" --work-dir "$WORK_DIR" \
        --metrics-out "$WORK_DIR/metrics_${SPLIT}_iter$it.json" \
        --cfg-options "${overrides[@]}" test_evaluator.result_dir="$WORK_DIR/results_${SPLIT}_iter$it"
      CURVE+="$it:$WORK_DIR/metrics_${SPLIT}_iter$it.json "
    else
      CURVE+="$it:$WORK_DIR/metrics_$SPLIT.json "
    fi
  done
fi
export CURVE WORK_DIR

echo "[demo-mono3d] == picture =="
mapfile -t ids < <(head -n 3 "$DATA/ImageSets/$SPLIT.txt")
"$PY" tools/mono3d_demo.py --kitti "$DATA" --ids "${ids[@]}" --results "$WORK_DIR/results_$SPLIT" \
  --score-thr 0.2 --colors 128 --out "$PICTURE"

"$PY" - "$WORK_DIR/metrics_$SPLIT.json" "$DATA" "$SPLIT" "$JSON_OUT" "$iterations" "$THREADS" \
  "$start" "$train_end" "$end" "$loadavg_start" "$loadavg_end" "$CONFIG" "$PICTURE" <<'PYEOF'
import glob
import json
import os
import sys

from mmengine.config import Config

from plgvit_mm.datasets.kitti_files import read_image_set, read_label_file
from plgvit_mm.evaluation.kitti_eval import count_ground_truth
from plgvit_mm.evaluation.kitti_summary import format_kitti_summary
from plgvit_mm.utils.atomic_file import atomic_write_text

(metrics_file, data, split, json_out, iterations, threads, start, train_end, end,
 load_start, load_end, config, picture) = sys.argv[1:]
BAR = {"kitti/Car_BEV_AP40_moderate_loose": 50.0, "kitti/Car_3D_AP40_moderate_loose": 35.0}
metrics = {k: v for k, v in json.load(open(metrics_file)).items() if k.startswith("kitti/")}
ids = read_image_set(os.path.join(data, "ImageSets", f"{split}.txt"))
labels = [read_label_file(os.path.join(data, "training", "label_2", f"{i}.txt")) for i in ids]
train_size = len(read_image_set(os.path.join(data, "ImageSets", "train.txt")))
print(f"\n[demo-mono3d] ======== {split} split: {len(ids)} frames (AP in %) ========")
print(format_kitti_summary(metrics, count_ground_truth(labels), prefix="kitti/"))
print("\n[demo-mono3d] AP40, moderate:        2D      BEV       3D   (strict | loose)")
for name in ("Car", "Pedestrian", "Cyclist"):
    row = [
        metrics[f"kitti/{name}_{m}_AP40_moderate_{s}"]
        for s in ("strict", "loose")
        for m in ("2D", "BEV", "3D")
    ]
    print(f"[demo-mono3d] {name:<12} " + " ".join(f"{v:8.2f}" for v in row[:3]) + "  |"
          + " ".join(f"{v:8.2f}" for v in row[3:]))
curve = []
loss_at = {}  # training loss logged at each iteration (the train run's scalars.json)
for scalars in sorted(glob.glob(os.path.join(os.environ["WORK_DIR"], "*", "vis_data", "scalars.json"))):
    for entry in map(json.loads, open(scalars)):
        if "loss" in entry and "iter" in entry:
            loss_at[entry["iter"]] = entry["loss"]
for point in os.environ.get("CURVE", "").split():
    it, path = point.split(":", 1)
    values = json.load(open(path))
    curve.append(
        dict(
            iteration=int(it),
            train_loss=loss_at.get(int(it)),
            **{k: values[k] for k in sorted(values) if k.startswith("kitti/Car_")
               and "AP40_moderate" in k and "AOS" not in k},
        )
    )
    print(f"[demo-mono3d] curve: iteration {int(it):5d}  loss {loss_at.get(int(it))}  "
          + "  ".join(f"Car {m} {values[f'kitti/Car_{m}_AP40_moderate_loose']:.2f}"
                      for m in ("2D", "BEV", "3D")) + "  (AP40 moderate loose)")
record = dict(
    metrics,
    split=split,
    frames=len(ids),
    wall_s=int(end) - int(start),
    train_s=int(train_end) - int(start),
    eval_s=int(end) - int(train_end),
    iterations=int(iterations),
    threads=int(threads),
    train_size=train_size,
    input_size=list(Config.fromfile(config).input_size)[::-1],  # H, W
    config=config,
    command=os.environ.get("DEMO_COMMAND", "make demo-mono3d"),
    loadavg_start=float(load_start),
    loadavg_end=float(load_end),
    bar=BAR,
    **({"curve": curve} if curve else {}),
)
atomic_write_text(json.dumps(record, indent=2) + "\n", json_out)
wall = int(end) - int(start)
print(f"[demo-mono3d] train + evaluation wall time: {wall // 60} min {wall % 60} s "
      f"({threads} threads, load average {load_start} -> {load_end})")
print(f"[demo-mono3d] metrics: {json_out}   picture: {picture}")
missed = [f"{k} {metrics[k]:.2f} < {v}" for k, v in BAR.items() if metrics[k] < v]
if missed:
    print("[demo-mono3d] MISSES the bar: " + "; ".join(missed))
    sys.exit(1)
print("[demo-mono3d] meets the bar: " + ", ".join(f"{k} >= {v}" for k, v in BAR.items()))
PYEOF
