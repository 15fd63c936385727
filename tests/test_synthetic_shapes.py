"""Synthetic shapes datasets: exact masks, real COCO / ADE20K file formats, atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from plgvit_mm.datasets.synthetic_shapes import (
    ADE20K_LABEL_VALUES,
    GENERATOR_VERSION,
    SHAPE_CLASSES,
    make_sample,
    synthetic_coco_dirname,
    write_synthetic_ade20k,
    write_synthetic_coco,
)


def test_sample_masks_are_disjoint_and_painted_in_the_shape_color():
    rng = np.random.default_rng(3)
    for _ in range(20):
        sample = make_sample(rng, 96, 128, max_shapes=4)
        assert sample.image.shape == (96, 128, 3) and sample.image.dtype == np.uint8
        assert 1 <= len(sample.shapes) <= 4
        assert sample.masks.shape == (len(sample.shapes), 96, 128)
        assert sample.masks.sum(axis=0).max() == 1  # no overlap: masks are exact
        for shape, mask in zip(sample.shapes, sample.masks, strict=True):
            assert mask.sum() > 50
            assert (sample.image[mask] == shape.color).all()
            # pixel centers of the mask lie inside the polygon's extent, and reach near its ends
            rows, cols = np.nonzero(mask)
            x0, y0 = shape.polygon.min(axis=0)
            x1, y1 = shape.polygon.max(axis=0)
            assert x0 <= cols.min() + 0.5 < x0 + 2 and x1 - 2 < cols.max() + 0.5 <= x1
            assert y0 <= rows.min() + 0.5 < y0 + 2 and y1 - 2 < rows.max() + 0.5 <= y1


def test_sample_rejects_bad_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="H, W >= 32"):
        make_sample(rng, 16, 64)
    with pytest.raises(ValueError, match="max_shapes"):
        make_sample(rng, 64, 64, max_shapes=0)


def test_coco_files_follow_the_coco_format(tmp_path):
    paths = write_synthetic_coco(str(tmp_path), num_train=6, num_val=3, height=64, width=80)
    assert paths["train_ann"] == str(tmp_path / "annotations" / "instances_train2017.json")
    train = json.loads((tmp_path / "annotations" / "instances_train2017.json").read_text())
    val = json.loads((tmp_path / "annotations" / "instances_val2017.json").read_text())
    assert [c["name"] for c in train["categories"]] == list(SHAPE_CLASSES)
    assert [c["id"] for c in train["categories"]] == [1, 2, 3]
    assert len(train["images"]) == 6 and len(val["images"]) == 3
    assert sorted(os.listdir(tmp_path / "val2017")) == [im["file_name"] for im in val["images"]]
    for image in train["images"]:
        assert (image["height"], image["width"]) == (64, 80)
        assert Image.open(tmp_path / "train2017" / image["file_name"]).size == (80, 64)
    ids = [a["id"] for a in train["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    for ann in train["annotations"]:
        x, y, w, h = ann["bbox"]
        polygon = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        assert np.allclose(
            [x, y, x + w, y + h], [*polygon.min(axis=0), *polygon.max(axis=0)], atol=0.02
        )
        assert ann["iscrowd"] == 0 and ann["category_id"] in (1, 2, 3)
        assert 0.3 * w * h < ann["area"] <= w * h  # pixel count of the mask
    assert not [f for f in os.listdir(tmp_path / "annotations") if f.startswith(".tmp")]


def test_test_split_has_its_own_seed_and_the_manifest_comes_last(tmp_path):
    """Train/val depend only on ``seed``; the test split only on ``test_seed``; images differ."""
    kwargs = dict(num_train=3, num_val=2, num_test=2, height=48, width=48)
    a = write_synthetic_coco(str(tmp_path / "a"), seed=0, test_seed=1, **kwargs)
    b = write_synthetic_coco(str(tmp_path / "b"), seed=0, test_seed=7, **kwargs)
    c = write_synthetic_coco(str(tmp_path / "c"), seed=3, test_seed=1, **kwargs)

    def pixels(paths: dict, split: str) -> list[bytes]:
        folder = paths[f"{split}_img"]
        return [
            np.asarray(Image.open(os.path.join(folder, f))).tobytes()
            for f in sorted(os.listdir(folder))
        ]

    assert pixels(a, "train") == pixels(b, "train") and pixels(a, "val") == pixels(b, "val")
    assert pixels(a, "test") != pixels(b, "test")
    assert pixels(a, "test") == pixels(c, "test") and pixels(a, "train") != pixels(c, "train")
    seen = set(pixels(a, "train") + pixels(a, "val"))
    assert not seen & set(pixels(a, "test"))
    test = json.loads(open(a["test_ann"]).read())
    assert len(test["images"]) == 2 and test["annotations"]
    manifest = json.loads(open(a["manifest"]).read())
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert (manifest["seed"], manifest["test_seed"]) == (0, 1)
    assert manifest["counts"] == {"train": 3, "val": 2, "test": 2}
    newest = max(os.path.getmtime(p) for key, p in a.items() if key.endswith("_ann"))
    assert os.path.getmtime(a["manifest"]) >= newest
    with pytest.raises(ValueError, match="test_seed must differ"):
        write_synthetic_coco(str(tmp_path / "d"), seed=2, test_seed=2, **kwargs)


def test_dataset_folder_is_keyed_by_generator_version_and_seeds():
    name = synthetic_coco_dirname(0, 1)
    assert name == f"synthetic_coco_v{GENERATOR_VERSION}_seed0_test1"
    assert len({name, synthetic_coco_dirname(0, 2), synthetic_coco_dirname(1, 1)}) == 3


def test_coco_polygons_rasterize_to_the_drawn_pixels(tmp_path):
    mask_utils = pytest.importorskip("pycocotools.mask")
    write_synthetic_coco(str(tmp_path), num_train=4, num_val=1, height=96, width=96, seed=5)
    coco = json.loads((tmp_path / "annotations" / "instances_train2017.json").read_text())
    images = {im["id"]: im for im in coco["images"]}
    for ann in coco["annotations"]:
        image = images[ann["image_id"]]
        rles = mask_utils.frPyObjects(ann["segmentation"], image["height"], image["width"])
        decoded = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        # pycocotools and our rasterizer agree up to a few boundary pixels
        assert abs(int(decoded.sum()) - ann["area"]) <= 0.03 * ann["area"] + 2
        pixels = np.asarray(Image.open(tmp_path / "train2017" / image["file_name"]))
        inside = pixels[decoded]
        # nearly all pixels pycocotools assigns to the instance carry one color (the shape's)
        _, counts = np.unique(inside.reshape(-1, 3), axis=0, return_counts=True)
        assert counts.max() >= 0.9 * len(inside)


def test_ade20k_files_follow_the_ade_convention(tmp_path):
    paths = write_synthetic_ade20k(str(tmp_path), num_train=3, num_val=2, height=64, width=64)
    images = sorted(os.listdir(paths["train_img"]))
    labels = sorted(os.listdir(paths["train_ann"]))
    assert images == [f"ADE_train_{i:08d}.jpg" for i in (1, 2, 3)]
    assert labels == [f"ADE_train_{i:08d}.png" for i in (1, 2, 3)]
    assert sorted(os.listdir(paths["val_img"])) == ["ADE_val_00000001.jpg", "ADE_val_00000002.jpg"]
    allowed = {0, *ADE20K_LABEL_VALUES.values()}
    for name in labels:
        label = np.asarray(Image.open(os.path.join(paths["train_ann"], name)))
        assert label.dtype == np.uint8 and label.shape == (64, 64)
        values = set(np.unique(label).tolist())
        assert values <= allowed
        assert ADE20K_LABEL_VALUES["background"] in values and 0 in values  # outlines
        # reduce_zero_label: 0 -> 255 (ignored), v -> v - 1: train ids 0..3
        reduced = np.where(label == 0, 255, label.astype(np.int64) - 1)
        assert set(np.unique(reduced).tolist()) <= {0, 1, 2, 3, 255}
