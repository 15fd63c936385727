"""Cityscapes configs read generated samples in Cityscapes' real directory layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DATASETS, init_default_scope  # noqa: E402

import plgvit_mm  # noqa: E402,F401  (registers the backbones)
from plgvit_mm.datasets.synthetic_shapes import make_sample  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMES = {
    "train": ["aachen_000000_000019", "bochum_000000_000313"],
    "val": ["frankfurt_000000_000294"],
}
# cityscapesscripts label ids of the 8 instance classes, as mmdet's converter writes them
THING_IDS = {
    "person": 24,
    "rider": 25,
    "car": 26,
    "truck": 27,
    "bus": 28,
    "train": 31,
    "motorcycle": 32,
    "bicycle": 33,
}
HEIGHT, WIDTH = 128, 256  # an eighth of Cityscapes' 1024 x 2048


def _build(config: str, loader: str, data_root: Path):
    cfg = Config.fromfile(str(REPO / "configs" / config))
    init_default_scope(cfg.default_scope)
    dataset_cfg = cfg[loader].dataset
    if dataset_cfg.type == "RepeatDataset":
        dataset_cfg = dataset_cfg.dataset
    dataset_cfg.data_root = str(data_root) + "/"
    return DATASETS.build(dataset_cfg), cfg


def _write_semantic(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    labels = {}
    for split, frames in FRAMES.items():
        for frame in frames:
            city = frame.split("_")[0]
            image_dir = root / "leftImg8bit" / split / city
            label_dir = root / "gtFine" / split / city
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
                image_dir / f"{frame}_leftImg8bit.png"
            )
            train_ids = rng.integers(0, 19, (HEIGHT, WIDTH), dtype=np.uint8)
            train_ids[-8:] = 255
            Image.fromarray(train_ids).save(label_dir / f"{frame}_gtFine_labelTrainIds.png")
            labels[frame] = train_ids
    return labels


@pytest.mark.parametrize("arch", ["a", "r"])
@pytest.mark.slow
def test_upernet_cityscapes_config_reads_label_train_ids(tmp_path, arch):
    labels = _write_semantic(tmp_path, np.random.default_rng(1))
    train, cfg = _build(f"upernet_lwplgvit_{arch}_cityscapes.py", "train_dataloader", tmp_path)
    assert cfg.model.decode_head.num_classes == 19 and cfg.train_cfg.max_iters == 80000
    assert len(train) == 2 and train.metainfo["classes"][-1] == "bicycle"
    item = train[0]
    assert tuple(item["inputs"].shape[-2:]) == (512, 1024)  # the config's crop
    assert set(np.unique(item["data_samples"].gt_sem_seg.data.numpy())) <= set(range(19)) | {255}
    val, _ = _build(f"upernet_lwplgvit_{arch}_cityscapes.py", "val_dataloader", tmp_path)
    assert len(val) == 1
    sample = val[0]["data_samples"]
    assert sample.img_path.endswith(
        "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    )
    assert np.array_equal(sample.gt_sem_seg.data.numpy()[0], labels["frankfurt_000000_000294"])


@pytest.mark.parametrize("arch", ["a", "r"])
@pytest.mark.slow
def test_maskrcnn_cityscapes_config_reads_instance_annotations(tmp_path, arch):
    rng = np.random.default_rng(2)
    names = list(THING_IDS)
    written = {}
    for split, frames in FRAMES.items():
        images, annotations = [], []
        for index, frame in enumerate(frames):
            city = frame.split("_")[0]
            sample = make_sample(rng, HEIGHT, WIDTH, max_shapes=3)
            file_name = f"{city}/{frame}_leftImg8bit.png"
            (tmp_path / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(sample.image).save(tmp_path / "leftImg8bit" / split / file_name)
            images.append(
                dict(
                    id=index + 1,
                    file_name=file_name,
                    height=HEIGHT,
                    width=WIDTH,
                    segm_file=f"{city}/{frame}_gtFine_instanceIds.png",
                )
            )
            classes = []
            for shape_index, shape in enumerate(sample.shapes):
                name = names[(index + shape_index) % len(names)]
                x0, y0 = shape.polygon.min(axis=0)
                x1, y1 = shape.polygon.max(axis=0)
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=index + 1,
                        category_id=THING_IDS[name],
                        segmentation=[shape.polygon.reshape(-1).tolist()],
                        bbox=[x0, y0, x1 - x0, y1 - y0],
                        area=float((x1 - x0) * (y1 - y0)),
                        iscrowd=0,
                    )
                )
                classes.append(names.index(name))
            written[frame] = (classes, sample)
        ann_file = tmp_path / "annotations" / f"instancesonly_filtered_gtFine_{split}.json"
        ann_file.parent.mkdir(exist_ok=True)
        ann_file.write_text(
            json.dumps(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=[dict(id=i, name=n) for n, i in THING_IDS.items()],
                )
            )
        )

    train, cfg = _build(f"maskrcnn_lwplgvit_{arch}_cityscapes.py", "train_dataloader", tmp_path)
    assert cfg.model.roi_head.bbox_head.num_classes == 8
    assert cfg.model.roi_head.mask_head.num_classes == 8
    assert train.metainfo["classes"] == tuple(names)
    assert len(train) == 2
    item = train[0]
    classes, sample = written[FRAMES["train"][0]]
    gt = item["data_samples"].gt_instances
    assert gt.labels.tolist() == classes
    height, width = item["inputs"].shape[-2:]
    assert 800 <= height <= 1024 and width == 2 * height  # RandomResize to (2048, 800-1024)
    assert tuple(gt.masks.masks.shape[-2:]) == (height, width)

    val, _ = _build(f"maskrcnn_lwplgvit_{arch}_cityscapes.py", "val_dataloader", tmp_path)
    classes, sample = written[FRAMES["val"][0]]
    gt = val[0]["data_samples"].gt_instances
    assert gt.labels.tolist() == classes
    # test mode: the boxes stay in original image coordinates after LoadAnnotations
    x0, y0 = sample.shapes[0].polygon.min(axis=0)
    x1, y1 = sample.shapes[0].polygon.max(axis=0)
    assert np.allclose(gt.bboxes.tensor[0].numpy(), [x0, y0, x1, y1], atol=1e-3)
