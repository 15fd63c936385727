"""End to end: tools/train.py then tools/test.py (real Runner, real metrics, checkpoint written and
reloaded) for Mask R-CNN and UperNet with LW-PLG-ViT on generated COCO / ADE20K-format data.

Each run inherits the real experiment config and only points it at the tiny dataset with small
images (the configs' 800-1333 px / 512 px pipelines would be too slow on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from plgvit_mm.datasets.synthetic_shapes import (  # noqa: E402
    SHAPE_CLASSES,
    write_synthetic_ade20k,
    write_synthetic_coco,
)

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

MASKRCNN_OVERRIDE = """
_base_ = ['{base}']
data_root = '{root}/'
classes = {classes!r}
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
"""

UPERNET_OVERRIDE = """
_base_ = ['{base}']
data_root = '{root}/'
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size), backbone=dict(init_cfg=None))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(96, 96), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _train_and_test(
    tmp_path: Path,
    config: Path,
    train_options: list[str],
    checkpoint_name: str,
    metric_keys: tuple[str, ...],
) -> dict:
    work_dir = tmp_path / "work"
    _run(
        str(REPO / "tools" / "train.py"),
        str(config),
        "--work-dir",
        str(work_dir),
        "--seed",
        "0",
        "--cfg-options",
        *train_options,
        cwd=tmp_path,
    )
    checkpoint = work_dir / checkpoint_name
    assert checkpoint.is_file()
    assert (work_dir / "last_checkpoint").read_text().strip() == str(checkpoint)

    metrics_file = tmp_path / "metrics.json"
    result = _run(
        str(REPO / "tools" / "test.py"),
        str(config),
        str(checkpoint),
        "--work-dir",
        str(tmp_path / "test"),
        "--metrics-out",
        str(metrics_file),
        "--show-dir",
        str(tmp_path / "pictures"),
        cwd=tmp_path,
    )
    log = result.stdout + result.stderr
    assert f"Load checkpoint from {checkpoint}" in log
    assert "missing keys" not in log and "unexpected key" not in log
    metrics = json.loads(metrics_file.read_text())
    for key in metric_keys:
        assert isinstance(metrics[key], float), (key, metrics)
    return metrics


def test_maskrcnn_lwplgvit_a_trains_and_tests_on_coco_format(tmp_path):
    data = tmp_path / "coco"
    write_synthetic_coco(str(data), num_train=8, num_val=3, height=96, width=96, seed=1)
    config = tmp_path / "maskrcnn_lwplgvit_a_tiny.py"
    config.write_text(
        MASKRCNN_OVERRIDE.format(
            base=REPO / "configs" / "maskrcnn_lwplgvit_a_coco.py", root=data, classes=SHAPE_CLASSES
        )
    )
    # 8 images / batch 2 = 4 iterations, then validation and a checkpoint
    metrics = _train_and_test(
        tmp_path,
        config,
        ["train_cfg.max_epochs=1", "default_hooks.logger.interval=1"],
        "epoch_1.pth",
        ("coco/bbox_mAP", "coco/segm_mAP"),
    )
    assert all(-1.0 <= metrics[k] <= 1.0 for k in ("coco/bbox_mAP", "coco/segm_mAP"))
    pictures = sorted(p.name for p in (tmp_path / "pictures").rglob("*.png"))
    assert pictures == ["000000000001.png", "000000000002.png", "000000000003.png"]


def test_upernet_lwplgvit_a_trains_and_tests_on_ade20k_format(tmp_path):
    data = tmp_path / "ade"
    write_synthetic_ade20k(str(data), num_train=6, num_val=2, height=80, width=96, seed=2)
    config = tmp_path / "upernet_lwplgvit_a_tiny.py"
    config.write_text(
        UPERNET_OVERRIDE.format(base=REPO / "configs" / "upernet_lwplgvit_a_ade20k.py", root=data)
    )
    metrics = _train_and_test(
        tmp_path,
        config,
        [
            "train_cfg.max_iters=3",
            "train_cfg.val_interval=3",
            "default_hooks.checkpoint.interval=3",
            "default_hooks.logger.interval=1",
        ],
        "iter_3.pth",
        ("mIoU", "aAcc", "mAcc"),
    )
    assert 0.0 <= metrics["mIoU"] <= 100.0
    assert len(list((tmp_path / "pictures").rglob("*.png"))) == 2
