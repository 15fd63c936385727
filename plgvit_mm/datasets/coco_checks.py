"""COCO annotation files checked before training: clear errors for malformed files, counted
warnings for the annotations mmdet skips silently.

:class:`ValidatedCocoDataset` is mmdet's ``CocoDataset`` (same arguments, same samples) that
reads the JSON once, checks it with :func:`check_coco_annotations`, and logs one warning with
the counts of what mmdet's ``parse_data_info`` / ``filter_data`` drop. Use it with
``dataset=dict(type='ValidatedCocoDataset', ...)``.

Errors (``ValueError`` naming the file, the entry and the expected form): invalid JSON, a
missing or non-list ``images``/``annotations``/``categories``, an image without an integer
``id``, a string ``file_name`` or positive ``width``/``height``, an annotation without a
4-number ``bbox``, or with an ``image_id`` / ``category_id`` that is not defined in the file.
Counted (mmdet skips them): zero-area boxes (``area <= 0`` or ``w < 1`` or ``h < 1``), boxes
entirely outside their image, annotations of categories not in ``metainfo.classes``; boxes
reaching beyond their image are counted and kept (mmdet keeps them unclipped); images
without annotations are counted (dropped in training when ``filter_cfg.filter_empty_gt``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from typing import Any

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path
from mmengine.logging import print_log


@dataclass
class CocoAnnotationReport:
    """Counts of COCO annotations that training skips or should know about."""

    zero_area: int = 0
    outside_image: int = 0
    partly_outside_image: int = 0
    other_category: int = 0
    images_without_annotations: int = 0

    def summary(self) -> str:
        return (
            f"{self.zero_area} annotations with zero area/width/height and "
            f"{self.outside_image} entirely outside their image are skipped, "
            f"{self.other_category} of categories outside the classes are skipped, "
            f"{self.partly_outside_image} boxes reach beyond their image (kept), "
            f"{self.images_without_annotations} images have no annotations (dropped in "
            "training when filter_cfg.filter_empty_gt=True)"
        )


def read_coco_json(path: str, source: str) -> dict:
    """The parsed JSON of ``path``; ``source`` names the file in errors."""
    with open(path, encoding="utf-8") as handle:
        try:
            content = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{source}: not valid JSON ({err.msg} at line {err.lineno}, column "
                f"{err.colno}); expected a COCO annotation file"
            ) from err
    if not isinstance(content, dict):
        raise ValueError(
            f"{source}: expected a JSON object with images, annotations and "
            f"categories, got a {type(content).__name__}"
        )
    return content


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, source: str, where: str, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"{source}: {where} has {key}={value!r}; expected {expected}")


def check_coco_annotations(
    content: dict, source: str, class_names: Collection[str] | None = None
) -> CocoAnnotationReport:
    """Check the structure of a parsed COCO file and count what mmdet will skip.

    ``class_names``: the dataset's classes (annotations of other categories are counted as
    skipped); ``None`` keeps every category.

    Raises:
        ValueError: malformed content; the message names the entry, key and value.
    """
    for key in ("images", "annotations", "categories"):
        if not isinstance(content.get(key), list):
            raise ValueError(
                f"{source}: top-level key '{key}' is "
                f"{'missing' if key not in content else type(content[key]).__name__};"
                " expected a list (COCO format: images, annotations, categories)"
            )
    images: dict[int, dict] = {}
    for index, image in enumerate(content["images"]):
        where = f"images[{index}]"
        _require(isinstance(image, dict), source, where, "value", image, "an object")
        _require(
            isinstance(image.get("id"), int), source, where, "id", image.get("id"), "an integer"
        )
        _require(
            isinstance(image.get("file_name"), str),
            source,
            where,
            "file_name",
            image.get("file_name"),
            "a string",
        )
        for key in ("width", "height"):
            _require(
                isinstance(image.get(key), int) and image[key] > 0,
                source,
                where,
                key,
                image.get(key),
                "a positive integer (pixels)",
            )
        images[image["id"]] = image
    categories = {c.get("id"): c.get("name") for c in content["categories"] if isinstance(c, dict)}
    report = CocoAnnotationReport()
    annotated: set[int] = set()
    for index, ann in enumerate(content["annotations"]):
        where = f"annotations[{index}] (id {ann.get('id') if isinstance(ann, dict) else None})"
        _require(isinstance(ann, dict), source, where, "value", ann, "an object")
        _require(
            ann.get("image_id") in images,
            source,
            where,
            "image_id",
            ann.get("image_id"),
            "the id of an entry in 'images'",
        )
        _require(
            ann.get("category_id") in categories,
            source,
            where,
            "category_id",
            ann.get("category_id"),
            f"one of the category ids {sorted(categories)}",
        )
        bbox = ann.get("bbox")
        _require(
            isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox)),
            source,
            where,
            "bbox",
            bbox,
            "[x, y, width, height] (4 finite numbers, pixels)",
        )
        _require(
            _is_number(ann.get("area")),
            source,
            where,
            "area",
            ann.get("area"),
            "a number (pixels; mmdet skips area <= 0)",
        )
        if ann.get("ignore", False):
            continue
        image = images[ann["image_id"]]
        x, y, w, h = bbox
        inter_w = max(0, min(x + w, image["width"]) - max(x, 0))
        inter_h = max(0, min(y + h, image["height"]) - max(y, 0))
        if inter_w * inter_h == 0:  # the order of mmdet's CocoDataset.parse_data_info
            report.outside_image += 1
        elif ann["area"] <= 0 or w < 1 or h < 1:
            report.zero_area += 1
        elif class_names is not None and categories[ann["category_id"]] not in class_names:
            report.other_category += 1
        else:
            annotated.add(ann["image_id"])
            if x < 0 or y < 0 or x + w > image["width"] or y + h > image["height"]:
                report.partly_outside_image += 1
    report.images_without_annotations = len(set(images) - annotated)
    return report


def _coco_from_content(content: dict, local_path: str) -> COCO:
    """mmdet's COCO API over already-parsed content (instead of reading ``local_path``)."""
    coco = COCO()
    coco.dataset = content
    coco.createIndex()
    coco.img_ann_map, coco.cat_img_map = coco.imgToAnns, coco.catToImgs  # mmdet's __init__ aliases
    return coco


@DATASETS.register_module()
class ValidatedCocoDataset(CocoDataset):
    """``CocoDataset`` that checks its annotation file first (see the module docstring);
    :attr:`annotation_report` holds the counts."""

    def load_data_list(self) -> list[dict]:
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            content = read_coco_json(local_path, self.ann_file)
        self.annotation_report = check_coco_annotations(
            content, self.ann_file, self.metainfo.get("classes")
        )
        print_log(
            f"{self.ann_file}: {self.annotation_report.summary()}",
            logger="current",
            level=30 if any(vars(self.annotation_report).values()) else 20,
        )
        self.COCOAPI = partial(_coco_from_content, content)
        return super().load_data_list()
