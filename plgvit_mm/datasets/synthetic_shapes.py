"""Small synthetic datasets of solid shapes, written in the real COCO and ADE20K file formats.

Every image (H x W pixels, RGB) shows 1..``max_shapes`` non-overlapping solid shapes of three
classes (:data:`SHAPE_CLASSES`) on a noisy background. Because shapes never overlap, each
instance mask is exactly its polygon, so the annotations are exact.

- COCO (:func:`write_synthetic_coco`), mmdet's layout::

      ROOT/train2017/000000000001.png ...     ROOT/val2017/...     ROOT/test2017/... (optional)
      ROOT/annotations/instances_{train,val,test}2017.json
      ROOT/generator.json                     written last: what was generated, with which seeds

  instance masks as COCO polygons (``[x1, y1, x2, y2, ...]`` in pixel units, the pixel (r, c)
  covering ``[c, c+1) x [r, r+1)``), ``bbox = [x, y, w, h]``, ``area`` = mask pixel count,
  category ids 1..3. Train and val come from one seed (the val split is where recipes are
  compared); the optional test split comes from its own seed, so images that no choice was ever
  scored on stay available for reporting (:func:`synthetic_coco_dirname` keys a folder by
  :data:`GENERATOR_VERSION` and both seeds).
- ADE20K (:func:`write_synthetic_ade20k`), mmseg's layout::

      ROOT/images/{training,validation}/ADE_{train,val}_00000001.jpg
      ROOT/annotations/{training,validation}/ADE_{train,val}_00000001.png

  uint8 label maps in ADE's convention: 0 = unlabeled (the one-pixel border of each
  shape), 1..150 = classes. mmseg's ``reduce_zero_label=True`` maps 0 -> 255 (ignored) and
  v -> v - 1, so the values :data:`ADE20K_LABEL_VALUES` become train ids 0..3. The synthetic
  classes reuse ADE20K ids 1-4 (ADE names: wall, building, sky, floor), so mmseg's
  ``ADE20KDataset`` reads them unchanged with its 150 classes.

Only numpy and Pillow are needed; files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import io
import json
import math
import os.path as osp
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..utils.atomic_file import atomic_write_bytes, atomic_write_text

SHAPE_CLASSES: tuple[str, ...] = ("square", "circle", "triangle")
# ADE20K label value of the background and of each shape class (0 is "unlabeled").
ADE20K_LABEL_VALUES: dict[str, int] = {"background": 1, "square": 2, "circle": 3, "triangle": 4}
CIRCLE_VERTICES = 32
GENERATOR_VERSION = 1
"""Version of the image generator; raised whenever the same seed would draw different images."""
MANIFEST = "generator.json"


@dataclass(frozen=True)
class Shape:
    """One solid shape: ``label`` indexes :data:`SHAPE_CLASSES`; ``polygon`` is (N, 2) x, y."""

    label: int
    polygon: np.ndarray
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    """One rendered image (H, W, 3) uint8 and its shapes; ``masks`` is (num_shapes, H, W) bool."""

    image: np.ndarray
    shapes: list[Shape]
    masks: np.ndarray


def _shape_polygon(label: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a square/circle/triangle inscribed in a circle of ``radius``."""
    num_vertices = {0: 4, 1: CIRCLE_VERTICES, 2: 3}[label]
    theta = angle + np.arange(num_vertices) * (2 * math.pi / num_vertices)
    return np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)


def _contrasting_color(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """A random RGB color at least 120 (L1) away from ``background``."""
    while True:
        color = rng.integers(0, 256, size=3)
        if np.abs(color - background).sum() >= 120:
            return tuple(int(c) for c in color)


def _rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centers lie inside the convex ``polygon``.

    Pixel (r, c) covers ``[c, c+1) x [r, r+1)``, so its center is (c + 0.5, r + 0.5): the
    convention pycocotools rasterizes COCO polygons with.
    """
    xs = np.arange(width, dtype=np.float64) + 0.5
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    start, end = polygon, np.roll(polygon, -1, axis=0)
    orientation = np.sign(np.sum(start[:, 0] * end[:, 1] - end[:, 0] * start[:, 1]))
    inside = np.ones((height, width), dtype=bool)
    for (x0, y0), (x1, y1) in zip(start, end, strict=True):
        inside &= orientation * ((x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0)) >= 0
    return inside


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (a one-pixel inner border)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def make_sample(
    rng: np.random.Generator,
    height: int = 256,
    width: int = 256,
    max_shapes: int = 4,
    size_range: tuple[float, float] = (0.08, 0.22),
) -> Sample:
    """Render one image with 1..``max_shapes`` non-overlapping shapes.

    ``size_range`` bounds the circumscribed radius as a fraction of min(H, W).
    """
    if height < 32 or width < 32:
        raise ValueError(f"synthetic images need H, W >= 32, got {height} x {width}")
    if max_shapes < 1:
        raise ValueError(f"max_shapes must be >= 1, got {max_shapes}")
    background = rng.integers(0, 256, size=3)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = background
    image += rng.normal(0.0, 6.0, size=image.shape)
    shapes: list[Shape] = []
    placed: list[tuple[float, float, float]] = []  # (cx, cy, radius) of accepted shapes
    wanted = int(rng.integers(1, max_shapes + 1))
    for _ in range(50 * wanted):
        if len(shapes) == wanted:
            break
        radius = float(rng.uniform(*size_range)) * min(height, width)
        cx = float(rng.uniform(radius + 1, width - radius - 1))
        cy = float(rng.uniform(radius + 1, height - radius - 1))
        if any(math.hypot(cx - x, cy - y) < radius + r + 3 for x, y, r in placed):
            continue
        label = int(rng.integers(0, len(SHAPE_CLASSES)))
        polygon = _shape_polygon(label, cx, cy, radius, float(rng.uniform(0, 2 * math.pi)))
        placed.append((cx, cy, radius))
        shapes.append(Shape(label, polygon, _contrasting_color(rng, background)))
    masks = np.stack([_rasterize(s.polygon, height, width) for s in shapes])
    for shape, mask in zip(shapes, masks, strict=True):
        image[mask] = shape.color
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Sample(image, shapes, masks)


def save_image(path: str, array: np.ndarray, **save_kwargs) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as an image file, atomically."""
    buffer = io.BytesIO()
    image_format = Image.registered_extensions()[osp.splitext(path)[1].lower()]
    Image.fromarray(array).save(buffer, format=image_format, **save_kwargs)
    atomic_write_bytes(buffer.getvalue(), path)


def save_json(path: str, content: object) -> None:
    """Write ``content`` as JSON, atomically."""
    atomic_write_text(json.dumps(content), path)


class CocoWriter:
    """Collects rendered samples into a COCO instances dict (images, annotations, categories)."""

    def __init__(self, classes: Sequence[str] = SHAPE_CLASSES) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.categories = [
            dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(classes)
        ]

    def add(self, sample: Sample, file_name: str) -> None:
        """Append one image and one annotation per shape (category id = label + 1)."""
        image_id = len(self.images) + 1
        height, width = sample.image.shape[:2]
        self.images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
        for shape, mask in zip(sample.shapes, sample.masks, strict=True):
            x0, y0 = shape.polygon.min(axis=0)
            x1, y1 = shape.polygon.max(axis=0)
            self.annotations.append(
                dict(
                    id=len(self.annotations) + 1,
                    image_id=image_id,
                    category_id=shape.label + 1,
                    segmentation=[[round(float(v), 2) for v in shape.polygon.reshape(-1)]],
                    area=float(mask.sum()),
                    bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                    iscrowd=0,
                )
            )

    def to_dict(self) -> dict:
        return dict(images=self.images, annotations=self.annotations, categories=self.categories)


def synthetic_coco_dirname(seed: int = 0, test_seed: int = 1) -> str:
    """Folder name of a generated COCO set, keyed by generator version and seeds.

    A generator change or a new seed gives a new folder, so an old set is never reused.
    """
    return f"synthetic_coco_v{GENERATOR_VERSION}_seed{seed}_test{test_seed}"


def write_synthetic_coco(
    root: str,
    num_train: int = 500,
    num_val: int = 100,
    height: int = 256,
    width: int = 256,
    max_shapes: int = 4,
    seed: int = 0,
    num_test: int = 0,
    test_seed: int = 1,
) -> dict[str, str]:
    """Write a COCO-format shapes dataset under ``root``; returns the paths by split.

    Returns ``{'train_ann', 'train_img', 'val_ann', 'val_img'}`` (absolute paths), plus
    ``'test_ann'``, ``'test_img'`` when ``num_test > 0``, and ``'manifest'``.
    Train and val are disjoint random streams of ``seed``; the test split is a stream of
    ``test_seed``, which must differ from ``seed``. ``ROOT/generator.json`` (generator version,
    seeds, counts, image size) is written after every split is complete.
    """
    if num_test > 0 and test_seed == seed:
        raise ValueError(
            f"test_seed must differ from seed (both {seed}): the test split needs its own"
        )
    root = osp.abspath(root)
    paths = {}
    splits = [("train", num_train, seed, 0), ("val", num_val, seed, 1)]
    if num_test > 0:
        splits.append(("test", num_test, test_seed, 2))
    for split, count, split_seed, stream in splits:
        rng = np.random.default_rng([split_seed, stream])
        image_dir = osp.join(root, f"{split}2017")
        writer = CocoWriter()
        for index in range(count):
            sample = make_sample(rng, height, width, max_shapes)
            name = f"{index + 1:012d}.png"
            save_image(osp.join(image_dir, name), sample.image)
            writer.add(sample, name)
        ann_path = osp.join(root, "annotations", f"instances_{split}2017.json")
        save_json(ann_path, writer.to_dict())
        paths[f"{split}_ann"], paths[f"{split}_img"] = ann_path, image_dir
    manifest = dict(
        generator="plgvit_mm.datasets.synthetic_shapes",
        generator_version=GENERATOR_VERSION,
        seed=seed,
        test_seed=test_seed if num_test > 0 else None,
        counts={split: count for split, count, _, _ in splits},
        height=height,
        width=width,
        max_shapes=max_shapes,
    )
    paths["manifest"] = osp.join(root, MANIFEST)
    save_json(paths["manifest"], manifest)
    return paths


def ade20k_label_map(sample: Sample) -> np.ndarray:
    """(H, W) uint8 ADE20K-convention label map: background 1, shapes 2..4, shape borders 0."""
    height, width = sample.image.shape[:2]
    labels = np.full((height, width), ADE20K_LABEL_VALUES["background"], dtype=np.uint8)
    for shape, mask in zip(sample.shapes, sample.masks, strict=True):
        labels[mask] = ADE20K_LABEL_VALUES[SHAPE_CLASSES[shape.label]]
    for mask in sample.masks:
        labels[_outline(mask)] = 0
    return labels


def write_synthetic_ade20k(
    root: str,
    num_train: int = 20,
    num_val: int = 8,
    height: int = 128,
    width: int = 128,
    max_shapes: int = 4,
    seed: int = 0,
) -> dict[str, str]:
    """Write an ADE20K-format shapes dataset under ``root``; returns the directories by split.

    Returns ``{'train_img', 'train_ann', 'val_img', 'val_ann'}`` (absolute paths).
    """
    root = osp.abspath(root)
    paths = {}
    for split, folder, count, stream in (
        ("train", "training", num_train, 0),
        ("val", "validation", num_val, 1),
    ):
        rng = np.random.default_rng([seed, stream])
        image_dir = osp.join(root, "images", folder)
        ann_dir = osp.join(root, "annotations", folder)
        for index in range(count):
            sample = make_sample(rng, height, width, max_shapes)
            stem = f"ADE_{split}_{index + 1:08d}"
            save_image(osp.join(image_dir, stem + ".jpg"), sample.image, quality=95)
            save_image(osp.join(ann_dir, stem + ".png"), ade20k_label_map(sample))
        paths[f"{split}_img"], paths[f"{split}_ann"] = image_dir, ann_dir
    return paths
