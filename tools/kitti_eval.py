"""Score a folder of KITTI result files with the official protocol (CPU, no mmdet needed).

    python tools/kitti_eval.py LABEL_DIR RESULT_DIR [--split IDS] [--json FILE] [--classes ...]

LABEL_DIR holds the label files (``training/label_2``), RESULT_DIR one result file per frame
(16 fields a line, the last the score; a missing file = no detections). Without ``--split``
every label file is scored. Prints one ``kitti/<key>: <value>`` line per metric (AP in
percent); ``--json`` also writes them to a file (atomically).
"""

from __future__ import annotations

import argparse
import json

from plgvit_mm.evaluation.kitti_eval import KITTI_CLASSES, evaluate_kitti_folders
from plgvit_mm.utils.atomic_file import atomic_write_text

PREFIX = "kitti"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("label_dir", help="folder of KITTI label files (NNNNNN.txt)")
    parser.add_argument("result_dir", help="folder of KITTI result files (NNNNNN.txt)")
    parser.add_argument(
        "--split", help="ImageSets file listing the frames to score (default: every label file)"
    )
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    parser.add_argument(
        "--classes",
        nargs="+",
        default=list(KITTI_CLASSES),
        choices=KITTI_CLASSES,
        help="classes to score",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    metrics = evaluate_kitti_folders(args.label_dir, args.result_dir, args.split, args.classes)
    metrics = {f"{PREFIX}/{key}": value for key, value in metrics.items()}
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}")
    if args.json:
        atomic_write_text(json.dumps(metrics, indent=2) + "\n", args.json)
    return metrics


if __name__ == "__main__":
    main()
