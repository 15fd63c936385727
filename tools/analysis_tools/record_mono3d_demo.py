"""Write the record of one `make demo-mono3d` run and check its bar.

Called by tools/run_demo_mono3d.sh after training and evaluation:

    python tools/analysis_tools/record_mono3d_demo.py --metrics WORK/metrics_test.json \\
        --results WORK/results_test --data data/synthetic_kitti_v1 --split test \\
        --config CONFIG --iterations 750 --threads 2 --train-s 1120 --eval-s 31 \\
        --out docs/demo_mono3d.json [--curve 150:WORK/metrics_val_iter150.json ...] \\
        [--curve-split val] [--train-scalars WORK/TIMESTAMP/vis_data/scalars.json]

Prints the devkit-style table of the split, the AP40 moderate summary per class and the
learning curve, and writes (atomically) every ``kitti/`` metric with ``split``, ``frames``,
``wall_s``, ``train_s``, ``eval_s``, ``iterations``, ``threads``, ``train_size``,
``input_size``, ``config``, ``command``, the load averages, ``bar``,
``car_localisation`` (plgvit_mm.evaluation.kitti_localisation: depth, lateral and yaw errors of
the moderate Cars' nearest guesses) and, with ``--curve``, ``curve_split`` and ``curve``
(per checkpoint: the Car AP40 moderate metrics, the last logged training loss and its terms, and
the Car localisation errors on the curve split; a curve point's results are read from the
``results_<split>_iter<N>`` folder beside its metrics file). Exits with 1 below the bar:
``kitti/Car_BEV_AP40_moderate_loose`` >= 50 and ``kitti/Car_3D_AP40_moderate_loose`` >= 35.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmengine.config import Config

from plgvit_mm.datasets.kitti_files import read_image_set
from plgvit_mm.evaluation.kitti_eval import count_ground_truth, load_kitti_folders
from plgvit_mm.evaluation.kitti_localisation import localisation_errors
from plgvit_mm.evaluation.kitti_summary import format_kitti_summary
from plgvit_mm.utils.atomic_file import atomic_write_text

BAR = {"kitti/Car_BEV_AP40_moderate_loose": 50.0, "kitti/Car_3D_AP40_moderate_loose": 35.0}
CLASSES = ("Car", "Pedestrian", "Cyclist")
CURVE_LOCALISATION = ("found", "depth_error_relative", "yaw_error_deg")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", required=True, help="tools/test.py --metrics-out file")
    parser.add_argument("--results", required=True, help="the split's KITTI result folder")
    parser.add_argument("--data", required=True, help="KITTI-format root (training/, ImageSets/)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--config", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--train-s", type=int, required=True, help="training wall time, s")
    parser.add_argument("--eval-s", type=int, required=True, help="evaluation wall time, s")
    parser.add_argument("--loadavg", type=float, nargs=2, default=(-1.0, -1.0))
    parser.add_argument("--out", required=True, help="the record (JSON)")
    parser.add_argument("--curve", nargs="*", default=[], metavar="ITERATION:METRICS_JSON")
    parser.add_argument("--curve-split", default="val")
    parser.add_argument("--train-scalars", help="the training run's vis_data/scalars.json")
    parser.add_argument("--command", default="make demo-mono3d", help="recorded as run")
    return parser.parse_args(argv)


def logged_losses(scalars: str | None) -> dict[int, dict[str, float]]:
    """The logged losses (``loss`` and each ``loss_*`` term) per iteration of one run's
    scalars.json."""
    if not scalars:
        return {}
    with open(scalars) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    return {
        e["iter"]: {k: v for k, v in e.items() if k == "loss" or k.startswith("loss_")}
        for e in entries
        if "loss" in e and "iter" in e
    }


def car_localisation(data: str, split: str, results: str | Path) -> dict:
    """Localisation errors of the split's moderate Cars (kitti_localisation)."""
    root = Path(data)
    _, gt, dt, _ = load_kitti_folders(
        root / "training" / "label_2", results, root / "ImageSets" / f"{split}.txt"
    )
    return localisation_errors(gt, dt, "Car", "moderate")


def curve_points(args: argparse.Namespace) -> list[dict]:
    """One entry per ``--curve`` checkpoint, in the given order."""
    losses = logged_losses(args.train_scalars)
    points = []
    for item in args.curve:
        iteration, path = item.split(":", 1)
        iteration = int(iteration)
        with open(path) as f:
            values = json.load(f)
        logged = [i for i in losses if i <= iteration]  # the last logged loss up to it
        errors = car_localisation(
            args.data,
            args.curve_split,
            Path(path).parent / f"results_{args.curve_split}_iter{iteration}",
        )
        terms = losses[max(logged)] if logged else {}
        point = dict(
            iteration=iteration,
            train_loss=terms.get("loss"),
            train_loss_terms={k: v for k, v in terms.items() if k != "loss"},
        )
        point.update(
            {
                k: values[k]
                for k in sorted(values)
                if k.startswith("kitti/Car_") and "AP40_moderate" in k and "AOS" not in k
            }
        )
        point.update({f"car_{k}": errors[k] for k in CURVE_LOCALISATION})
        points.append(point)
    return points


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with open(args.metrics) as f:
        metrics = {k: v for k, v in json.load(f).items() if k.startswith("kitti/")}
    missing = [k for k in BAR if k not in metrics]
    if missing:
        raise KeyError(f"{args.metrics}: no {', '.join(missing)} (not a KITTI metrics file?)")
    root = Path(args.data)
    _, gt, dt, _ = load_kitti_folders(
        root / "training" / "label_2", args.results, root / "ImageSets" / f"{args.split}.txt"
    )
    print(f"\n[demo-mono3d] ======== {args.split} split: {len(gt)} frames (AP in %) ========")
    print(format_kitti_summary(metrics, count_ground_truth(gt), prefix="kitti/"))
    print("\n[demo-mono3d] AP40, moderate:        2D      BEV       3D   (strict | loose)")
    for name in CLASSES:
        row = [
            metrics[f"kitti/{name}_{m}_AP40_moderate_{s}"]
            for s in ("strict", "loose")
            for m in ("2D", "BEV", "3D")
        ]
        print(
            f"[demo-mono3d] {name:<12} "
            + " ".join(f"{v:8.2f}" for v in row[:3])
            + "  |"
            + " ".join(f"{v:8.2f}" for v in row[3:])
        )
    localisation = localisation_errors(gt, dt, "Car", "moderate")
    print(f"[demo-mono3d] moderate Cars, nearest guesses: {json.dumps(localisation)}")
    curve = curve_points(args)
    for point in curve:
        loose = "  ".join(
            f"Car {m} {point[f'kitti/Car_{m}_AP40_moderate_loose']:.2f}"
            for m in ("2D", "BEV", "3D")
        )
        print(
            f"[demo-mono3d] curve ({args.curve_split}): iteration {point['iteration']:5d}  "
            f"loss {point['train_loss']}  {loose}  (AP40 moderate loose)"
        )
    config = Config.fromfile(args.config)
    record = dict(
        metrics,
        split=args.split,
        frames=len(gt),
        wall_s=args.train_s + args.eval_s,
        train_s=args.train_s,
        eval_s=args.eval_s,
        iterations=args.iterations,
        threads=args.threads,
        train_size=len(read_image_set(root / "ImageSets" / "train.txt")),
        input_size=list(config.input_size)[::-1],  # H, W
        config=args.config,
        command=args.command,
        loadavg_start=args.loadavg[0],
        loadavg_end=args.loadavg[1],
        bar=BAR,
        car_localisation=localisation,
        **({"curve_split": args.curve_split, "curve": curve} if curve else {}),
    )
    atomic_write_text(json.dumps(record, indent=2) + "\n", args.out)
    wall = record["wall_s"]
    print(
        f"[demo-mono3d] train + evaluation wall time: {wall // 60} min {wall % 60} s "
        f"({args.threads} threads, load average {args.loadavg[0]} -> {args.loadavg[1]})"
    )
    print(f"[demo-mono3d] metrics: {args.out}")
    missed = [f"{k} {metrics[k]:.2f} < {v}" for k, v in BAR.items() if metrics[k] < v]
    if missed:
        print("[demo-mono3d] MISSES the bar: " + "; ".join(missed))
        return 1
    print("[demo-mono3d] meets the bar: " + ", ".join(f"{k} >= {v}" for k, v in BAR.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
