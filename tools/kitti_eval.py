"""Score a folder of KITTI result files with the official protocol (CPU, no mmdet needed).

    python tools/kitti_eval.py LABEL_DIR RESULT_DIR [--split IDS] [--json FILE] [--classes ...]
        [--strict] [--max-missing N] [--score-from-gt]

LABEL_DIR holds the label files (``training/label_2``), RESULT_DIR one result file per frame
(16 fields a line, the last the score). Without ``--split`` every label file is scored.

Prints a devkit-style table per class (rows 2D / AOS / BEV / 3D at the strict overlaps, BEV /
3D at the loose ones; columns AP40 and AP11 for easy / moderate / hard, in percent) and the
number of objects that count at each difficulty. ``--json`` writes every ``kitti/<key>``
metric to a file (atomically).

A frame without a result file counts as a frame without detections; when more than
``--max-missing`` labelled frames lack one, a warning names them (``--strict``: an error).
``--score-from-gt`` accepts label files (15 fields) as results with score 1, e.g.
``python tools/kitti_eval.py LABELS LABELS --score-from-gt`` to check the setup.

Few objects: the protocol samples precision at 41 recall points and each true positive fills
at most one, so with n < 41 objects even perfect predictions score AP40 = 100 (n - 1) / 40
and AP11 = 100 (floor((n - 1) / 4) + 1) / 11 (5 cars: 10.0 and 18.18); the printout says so
where it applies.
"""

from __future__ import annotations

import argparse
import json
import sys

from plgvit_mm.evaluation.kitti_eval import (
    KITTI_CLASSES,
    count_ground_truth,
    evaluate_kitti,
    load_kitti_folders,
)
from plgvit_mm.evaluation.kitti_summary import format_kitti_summary
from plgvit_mm.utils.atomic_file import atomic_write_text

PREFIX = "kitti"
DEFAULT_MAX_MISSING = 3


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
    parser.add_argument(
        "--max-missing",
        type=int,
        default=DEFAULT_MAX_MISSING,
        help="labelled frames that may lack a result file before a warning "
        f"(default {DEFAULT_MAX_MISSING})",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail instead of warning about missing result files"
    )
    parser.add_argument(
        "--score-from-gt",
        action="store_true",
        help="accept label files (15 fields) as results, with score 1 (sanity check)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    frame_ids, gt_annos, dt_annos, missing = load_kitti_folders(
        args.label_dir, args.result_dir, args.split, args.score_from_gt
    )
    labelled = {f for f, gt in zip(frame_ids, gt_annos, strict=True) if len(gt)}
    missing_labelled = [f for f in missing if f in labelled]
    if len(missing_labelled) > args.max_missing:
        message = (
            f"{len(missing_labelled)} of {len(labelled)} labelled frames have no result file in "
            f"{args.result_dir} (e.g. {', '.join(missing_labelled[:5])}); they count as frames "
            "without detections"
        )
        if args.strict:
            print(f"kitti_eval.py: error: {message}", file=sys.stderr)
            raise SystemExit(2)
        print(f"kitti_eval.py: warning: {message}", file=sys.stderr)
    metrics = evaluate_kitti(gt_annos, dt_annos, args.classes)
    counts = count_ground_truth(gt_annos, args.classes)
    print(f"KITTI object evaluation of {len(frame_ids)} frames (AP in %)")
    print(format_kitti_summary(metrics, counts, args.classes))
    metrics = {f"{PREFIX}/{key}": value for key, value in metrics.items()}
    if args.json:
        atomic_write_text(json.dumps(metrics, indent=2) + "\n", args.json)
        print(f"metrics written to {args.json}")
    return metrics


if __name__ == "__main__":
    main()
