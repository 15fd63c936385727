"""BDD100K: the detection-label converter on hand-written JSON, and the BDD100K configs reading
generated samples in BDD100K's real directory layout."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "dataset_converters"))
from bdd100k_to_coco import BDD100K_DET_CLASSES, convert, main  # noqa: E402

FRAMES = [
    {
        "name": "a.jpg",
        "attributes": {"weather": "clear"},
        "labels": [
            {
                "id": "1",
                "category": "car",
                "attributes": {"occluded": False, "truncated": False},
                "box2d": {"x1": 10.0, "y1": 20.0, "x2": 109.0, "y2": 69.0},
            },
            {
                "id": "2",
                "category": "traffic light",
                "attributes": {"trafficLightColor": "G"},
                "box2d": {"x1": 500.5, "y1": 100.25, "x2": 510.5, "y2": 130.25},
            },
            {"id": "3", "category": "other vehicle", "box2d": {"x1": 0, "y1": 0, "x2": 5, "y2": 5}},
            {
                "id": "4",
                "category": "pedestrian",
                "attributes": {"crowd": True},
                "box2d": {"x1": 200, "y1": 300, "x2": 219, "y2": 359},
            },
        ],
    },
    {"name": "b.jpg"},  # no labels key
    {"name": "c.jpg", "labels": None},
    {
        "name": "d.jpg",
        "labels": [
            {"id": "5", "category": "lane", "poly2d": [{"vertices": [[0, 0], [5, 5]]}]},
            {"id": "6", "category": "rider", "box2d": {"x1": 30, "y1": 30, "x2": 20, "y2": 40}},
            {"id": "7", "category": "traffic sign", "box2d": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}},
        ],
    },
]


def test_converter_writes_coco_boxes_categories_and_counts():
    coco, counts = convert(FRAMES, source="det_train.json")
    assert [c["name"] for c in coco["categories"]] == list(BDD100K_DET_CLASSES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 11))
    assert [(im["id"], im["file_name"], im["height"], im["width"]) for im in coco["images"]] == [
        (1, "a.jpg", 720, 1280),
        (2, "b.jpg", 720, 1280),
        (3, "c.jpg", 720, 1280),
        (4, "d.jpg", 720, 1280),
    ]
    # Scalabel's inclusive pixel convention: w = x2 - x1 + 1
    assert [
        (a["image_id"], a["category_id"], a["bbox"], a["area"], a["iscrowd"])
        for a in coco["annotations"]
    ] == [
        (1, 3, [10.0, 20.0, 100.0, 50.0], 5000.0, 0),
        (1, 9, [500.5, 100.25, 11.0, 31.0], 341.0, 0),
        (1, 1, [200.0, 300.0, 20.0, 60.0], 1200.0, 1),
        (4, 10, [1.0, 2.0, 3.0, 3.0], 9.0, 0),
    ]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3, 4]
    assert counts == {
        "frames": 4,
        "boxes": 4,
        "frames without labels": 2,
        "skipped: category 'other vehicle'": 1,
        "skipped: category 'lane'": 1,
        "skipped: empty box": 1,
    }


def test_converter_rejects_malformed_input_naming_the_place():
    with pytest.raises(ValueError, match=r"det\.json: expected a JSON list of frames, got dict"):
        convert({"frames": []}, source="det.json")
    with pytest.raises(ValueError, match="det.json: frame 1 has no 'name'"):
        convert([{"name": "a.jpg"}, {"labels": []}], source="det.json")
    bad_box = [{"name": "x.jpg", "labels": [{"category": "car", "box2d": {"x1": 1, "y1": 2}}]}]
    with pytest.raises(ValueError, match=r"frame 'x.jpg' label 0: box2d needs numbers"):
        convert(bad_box, source="det.json")


def test_converter_cli_writes_atomically_and_reads_image_sizes(tmp_path, capsys):
    src = tmp_path / "det_val.json"
    src.write_text(json.dumps(FRAMES[:2]))
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for name, size in (("a.jpg", (640, 360)), ("b.jpg", (320, 180))):
        Image.new("RGB", size).save(image_dir / name)
    dst = tmp_path / "out" / "det_val_coco.json"
    counts = main([str(src), str(dst), "--image-dir", str(image_dir)])
    coco = json.loads(dst.read_text())
    assert [(im["height"], im["width"]) for im in coco["images"]] == [(360, 640), (180, 320)]
    assert counts["boxes"] == 3 and os.listdir(dst.parent) == ["det_val_coco.json"]
    assert "boxes: 3" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="c.jpg"):
        convert([{"name": "c.jpg"}], image_dir=str(image_dir))
    src.write_text("[{")
    with pytest.raises(ValueError, match="not valid JSON"):
        main([str(src), str(dst)])


# --- the configs on generated samples in BDD100K's layout (need mmdet / mmseg) ---------------


def _build_dataset(config: str, split_loader: str, data_root: Path):
    pytest.importorskip("mmdet")
    pytest.importorskip("mmseg")
    from mmengine.config import Config
    from mmengine.registry import DATASETS, init_default_scope

    import plgvit_mm  # noqa: F401  (registers the backbones)

    cfg = Config.fromfile(str(REPO / "configs" / config))
    init_default_scope(cfg.default_scope)
    dataset_cfg = cfg[split_loader].dataset
    dataset_cfg.data_root = str(data_root) + "/"
    return DATASETS.build(dataset_cfg), cfg


@pytest.mark.parametrize("arch", ["a", "r"])
def test_fasterrcnn_bdd100k_config_reads_converted_labels(tmp_path, arch):
    height, width = 72, 128  # a tenth of BDD100K's 720 x 1280
    image_dir = tmp_path / "images" / "100k" / "val"
    image_dir.mkdir(parents=True)
    for frame in FRAMES:
        Image.new("RGB", (width, height), (90, 90, 90)).save(image_dir / frame["name"])
    frames = json.loads(json.dumps(FRAMES))  # boxes moved into the small images
    boxes = [(10.0, 20.0, 49.0, 59.0), (60.0, 10.0, 70.0, 40.0), None, (90.0, 20.0, 109.0, 69.0)]
    for label, box in zip(frames[0]["labels"], boxes, strict=True):
        if box is not None:
            label["box2d"] = dict(zip(("x1", "y1", "x2", "y2"), box, strict=True))
    labels = tmp_path / "labels" / "det_20" / "det_val.json"
    labels.parent.mkdir(parents=True)
    labels.write_text(json.dumps(frames))
    main(
        [
            str(labels),
            str(tmp_path / "annotations" / "det_val_coco.json"),
            "--image-dir",
            str(image_dir),
        ]
    )
    dataset, cfg = _build_dataset(
        f"fasterrcnn_lwplgvit_{arch}_bdd100k.py", "val_dataloader", tmp_path
    )
    assert cfg.model.roi_head.bbox_head.num_classes == 10
    assert dataset.metainfo["classes"] == BDD100K_DET_CLASSES
    assert len(dataset) == 4  # test mode keeps frames without boxes
    item = dataset[0]
    sample = item["data_samples"]
    scale = 720 / height  # the test pipeline resizes to BDD100K's native 720 x 1280
    assert tuple(item["inputs"].shape) == (3, 720, 1280)
    assert np.allclose(sample.scale_factor, (scale, scale))
    gt = sample.gt_instances
    assert gt.labels.tolist() == [2, 8]  # car, traffic light (0-based)
    assert sample.ignored_instances.labels.tolist() == [0]  # the crowd of pedestrians
    # mmdet reads COCO [x, y, w, h] as [x, y, x + w, y + h]; the test pipeline loads the
    # boxes after resizing the image, so they stay in original pixels
    assert np.allclose(gt.bboxes.tensor.numpy(), [[10, 20, 50, 60], [60, 10, 71, 41]])


@pytest.mark.parametrize("arch", ["a", "r"])
@pytest.mark.slow
def test_upernet_bdd100k_config_reads_seg_masks(tmp_path, arch):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        image_dir = tmp_path / "images" / "10k" / split
        mask_dir = tmp_path / "labels" / "sem_seg" / "masks" / split
        image_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for name in ("0a0a0b1a-7c39d841", "0a0b16e2-93f8c456"):
            Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(
                image_dir / f"{name}.jpg"
            )
            mask = rng.integers(0, 19, (90, 160), dtype=np.uint8)
            mask[:10] = 255
            Image.fromarray(mask).save(mask_dir / f"{name}.png")
    dataset, cfg = _build_dataset(
        f"upernet_lwplgvit_{arch}_bdd100k.py", "train_dataloader", tmp_path
    )
    assert cfg.model.decode_head.num_classes == 19 and len(dataset) == 2
    assert dataset.metainfo["classes"][:2] == ("road", "sidewalk")
    item = dataset[0]
    height, width = item["inputs"].shape[-2:]
    # random resize of (2048, 1024) by 0.5-2.0 (keep ratio), then a crop of at most 512 x 1024
    # (smaller when the resized image is smaller; the data preprocessor pads batches)
    assert height <= 512 and width <= 1024 and (height, width) != (90, 160)
    assert height == 512 or abs(width - 160 * height / 90) <= 1  # uncropped: aspect kept
    labels = set(np.unique(item["data_samples"].gt_sem_seg.data.numpy()).tolist())
    assert labels <= set(range(19)) | {255}
    val, _ = _build_dataset(f"upernet_lwplgvit_{arch}_bdd100k.py", "val_dataloader", tmp_path)
    original = np.asarray(
        Image.open(tmp_path / "labels" / "sem_seg" / "masks" / "val" / "0a0a0b1a-7c39d841.png")
    )
    loaded = val[0]["data_samples"].gt_sem_seg.data.numpy()[0]
    assert np.array_equal(loaded, original)  # test mode: labels are not resized
