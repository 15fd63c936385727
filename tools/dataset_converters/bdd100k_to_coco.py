"""Convert BDD100K detection labels (``labels/det_20/det_{train,val}.json``) to COCO format.

    python tools/dataset_converters/bdd100k_to_coco.py \\
        data/bdd100k/labels/det_20/det_train.json data/bdd100k/annotations/det_train_coco.json \\
        [--image-dir data/bdd100k/images/100k/train]

Input: a JSON list of frames ``{"name": "NAME.jpg", "labels": [{"id": ..., "category": CAT,
"box2d": {"x1", "y1", "x2", "y2"}, "attributes": {...}}]}``; ``labels`` may be missing or null.
Output: COCO ``images`` (every frame, also those without boxes), ``annotations`` and the
10 ``categories`` (ids 1..10 in :data:`BDD100K_DET_CLASSES` order). Boxes follow Scalabel's
inclusive pixel convention: ``bbox = [x1, y1, x2 - x1 + 1, y2 - y1 + 1]``; ``iscrowd`` is the
``crowd`` attribute. Labels of other categories (e.g. 'other vehicle', 'trailer'), labels
without ``box2d`` and boxes with no area are skipped and counted in the printed summary.
Image sizes are read from ``--image-dir`` when given, else BDD100K's 720 x 1280. The output is
written atomically (temporary file + rename).
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
from collections import Counter
from typing import Any

from PIL import Image

from plgvit_mm.utils.atomic_file import atomic_write_text

BDD100K_DET_CLASSES: tuple[str, ...] = (
    "pedestrian",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
    "traffic light",
    "traffic sign",
)
BDD100K_IMAGE_SIZE = (720, 1280)  # H x W


def _frame_size(name: str, image_dir: str | None) -> tuple[int, int]:
    """(H, W) of a frame's image: read from ``image_dir`` if given, else BDD100K's default."""
    if image_dir is None:
        return BDD100K_IMAGE_SIZE
    path = osp.join(image_dir, name)
    if not osp.isfile(path):
        raise FileNotFoundError(f"image '{path}' of frame '{name}' does not exist")
    with Image.open(path) as image:
        width, height = image.size
    return height, width


def convert(
    frames: Any, source: str = "<input>", image_dir: str | None = None
) -> tuple[dict, Counter]:
    """BDD100K detection frames -> (COCO dict, counts of what was written and skipped).

    Raises:
        ValueError: ``frames`` is not a list of frames with a ``name``, or a ``box2d`` misses
            a coordinate; the message names ``source``, the frame and the label.
    """
    if not isinstance(frames, list):
        raise ValueError(f"{source}: expected a JSON list of frames, got {type(frames).__name__}")
    category_ids = {name: i + 1 for i, name in enumerate(BDD100K_DET_CLASSES)}
    images, annotations, counts = [], [], Counter()
    for index, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("name"), str):
            raise ValueError(f"{source}: frame {index} has no 'name' (got {frame!r:.80})")
        height, width = _frame_size(frame["name"], image_dir)
        image_id = index + 1
        images.append(dict(id=image_id, file_name=frame["name"], height=height, width=width))
        labels = frame.get("labels") or []
        if not labels:
            counts["frames without labels"] += 1
        for label_index, label in enumerate(labels):
            category = label.get("category")
            box = label.get("box2d")
            if category not in category_ids:
                counts[f"skipped: category '{category}'"] += 1
                continue
            if box is None:
                counts["skipped: no box2d"] += 1
                continue
            try:
                x1, y1, x2, y2 = (float(box[k]) for k in ("x1", "y1", "x2", "y2"))
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{source}: frame '{frame['name']}' label {label_index}: box2d "
                    f"needs numbers x1, y1, x2, y2, got {box!r}"
                ) from err
            box_w, box_h = x2 - x1 + 1, y2 - y1 + 1
            if box_w <= 0 or box_h <= 0:
                counts["skipped: empty box"] += 1
                continue
            attributes = label.get("attributes") or {}
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=category_ids[category],
                    bbox=[x1, y1, box_w, box_h],
                    area=box_w * box_h,
                    iscrowd=int(bool(attributes.get("crowd", False))),
                )
            )
            counts["boxes"] += 1
    counts["frames"] = len(images)
    categories = [dict(id=i, name=name) for name, i in category_ids.items()]
    return dict(images=images, annotations=annotations, categories=categories), counts


def main(argv: list[str] | None = None) -> Counter:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", help="BDD100K detection JSON (det_train.json / det_val.json)")
    parser.add_argument("dst", help="output COCO JSON")
    parser.add_argument("--image-dir", help="read image sizes from this folder")
    args = parser.parse_args(argv)
    try:
        with open(args.src, encoding="utf-8") as handle:
            frames = json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{args.src}: not valid JSON ({err})") from err
    coco, counts = convert(frames, source=args.src, image_dir=args.image_dir)
    atomic_write_text(json.dumps(coco), args.dst)
    for key, value in sorted(counts.items()):
        print(f"{key}: {value}")
    print(f"wrote {args.dst}")
    return counts


if __name__ == "__main__":
    main()
