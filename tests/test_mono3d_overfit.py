"""End to end on the 3-frame KITTI fixture: overfitting the detector, the demo tool.

The overfitting run trains the LW-PLG-ViT-A config with a reduced backbone (LW-PLG-ViT-A's
blocks with fewer channels and blocks, so that it fits the CPU test budget; from scratch,
96 x 320 input, no augmentation, the 3 frames as one batch) and then requires the official metric to see the
fixture's cars: all 5 moderate Cars matched at 2D IoU > 0.7 and Car 2D AP40 moderate >= 9.0
(perfect predictions score 10.0 on these frames under the official protocol).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmcv")

from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.evaluator import Evaluator  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import plgvit_mm  # noqa: E402,F401  (registers the mono 3D parts)
from plgvit_mm.datasets.kitti_files import read_label_file  # noqa: E402
from plgvit_mm.evaluation import iou_2d  # noqa: E402

ROOT = Path(__file__).parents[1]
FIXTURE = Path(__file__).parent / "data" / "kitti_mini"
INPUT_SIZE = (320, 96)  # W, H
ITERATIONS = 150
# LW-PLG-ViT-A's blocks, fewer channels and blocks (the full -A takes seconds per step here)
TINY_LWPLGVIT = dict(
    embed_dims=(24, 48, 96, 128), depths=(1, 1, 2, 1), stem_channels=16, drop_path_rate=0.0
)

init_default_scope("mmdet")


def moderate_cars(frame: str) -> np.ndarray:
    """2D boxes of the frame's Cars that count at the moderate level (official rules)."""
    objects = read_label_file(FIXTURE / f"training/label_2/{frame}.txt")
    height = objects.bbox[:, 3] - objects.bbox[:, 1]
    keep = (
        (objects.names == "Car")
        & (objects.occluded <= 1)
        & (objects.truncated <= 0.30)
        & (height > 25)
    )
    return objects.bbox[keep]


@pytest.mark.slow
def test_overfitting_the_fixture_finds_the_cars(tmp_path, capsys):
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = Config.fromfile(str(ROOT / "configs/mono3d_lwplgvit_a_kitti.py"))
    cfg.model.backbone.update(TINY_LWPLGVIT)
    cfg.model.bbox_head.feat_channels = 64
    # keep every top-k peak: after this short run the depth uncertainty is still large, so
    # the scores (heatmap x exp(-log-variance)) are low (about 0.07-0.17 for the cars)
    cfg.model.test_cfg.score_thr = 0.0
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadMono3DAnnotations"),
        dict(type="Mono3DResize", scale=INPUT_SIZE, keep_ratio=True),
        dict(type="Pad", size=INPUT_SIZE),
        dict(type="PackMono3DInputs"),
    ]
    dataset = DATASETS.build(
        dict(
            type="KittiMono3DDataset",
            data_root=str(FIXTURE),
            ann_file="ImageSets/train.txt",
            pipeline=pipeline,
        )
    )
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    model = MODELS.build(cfg.model)
    model.init_weights()
    optimizer = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4),
        clip_grad=dict(max_norm=35),
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer.optimizer, max_lr=2e-3, total_steps=ITERATIONS, pct_start=0.15
    )
    model.train()
    first = None
    for _ in range(ITERATIONS):
        losses = model.train_step(batch, optimizer)
        scheduler.step()
        first = first or losses["loss"].item()
    assert losses["loss"].item() < 0.2 * first, (first, losses)

    model.eval()
    with torch.no_grad():
        outputs = model.test_step(batch)
    for sample in outputs:
        frame = sample.metainfo["img_id"]
        cars = moderate_cars(frame)
        pred = sample.pred_instances
        pred_cars = pred.bboxes[pred.labels == 0].numpy()
        if len(cars):
            best = (
                iou_2d(cars[:, None], pred_cars[None]).max(1)
                if len(pred_cars)
                else np.zeros(len(cars))
            )
            assert (best > 0.7).all(), (frame, best)
    assert sum(len(moderate_cars(s.metainfo["img_id"])) for s in outputs) == 5
    evaluator = Evaluator([dict(type="KittiMono3DMetric")])
    evaluator.process(outputs, batch)
    metrics = evaluator.evaluate(len(outputs))
    print({k: round(v, 2) for k, v in metrics.items() if "Car" in k and "strict" in k})
    assert metrics["kitti/Car_2D_AP40_moderate_strict"] >= 9.0

    # the demo tool draws this model's predictions
    for step in cfg.test_dataloader.dataset.pipeline:
        if step["type"] in ("Mono3DResize", "Pad"):
            step[{"Mono3DResize": "scale", "Pad": "size"}[step["type"]]] = INPUT_SIZE
    cfg.dump(str(tmp_path / "config.py"))
    torch.save(dict(state_dict=model.state_dict()), tmp_path / "model.pth")
    frame = FIXTURE / "training"
    code, err = run_demo(
        capsys,
        str(frame / "image_2/000008.png"),
        "--calib",
        str(frame / "calib/000008.txt"),
        "--config",
        str(tmp_path / "config.py"),
        "--checkpoint",
        str(tmp_path / "model.pth"),
        "--score-thr",
        "0.05",
        "--out",
        str(tmp_path / "pred.png"),
    )
    assert code == 0, err
    assert (tmp_path / "pred.png").stat().st_size > 0


def fixture_config(work_dir: Path) -> Config:
    """The LW-PLG-ViT-A config on the fixture: small input, tiny backbone, 1 epoch."""
    cfg = Config.fromfile(str(ROOT / "configs/mono3d_lwplgvit_a_kitti.py"))
    cfg.model.backbone.update(TINY_LWPLGVIT)
    cfg.model.bbox_head.feat_channels = 32
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        for step in pipeline:
            if step["type"] in ("Mono3DResize", "Pad"):
                step[{"Mono3DResize": "scale", "Pad": "size"}[step["type"]]] = INPUT_SIZE
    for name, pipeline in (
        ("train_dataloader", cfg.train_pipeline),
        ("val_dataloader", cfg.test_pipeline),
        ("test_dataloader", cfg.test_pipeline),
    ):
        loader = cfg[name]
        loader.update(batch_size=3, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=str(FIXTURE), pipeline=pipeline)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0)]
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.slow
def test_runner_trains_validates_and_tests_on_the_fixture(tmp_path):
    """One epoch with mmengine's Runner: augmented pipeline, DetDataPreprocessor, KITTI metric."""
    from mmengine.runner import Runner

    runner = Runner.from_cfg(fixture_config(tmp_path))
    runner.train()
    metrics = runner.test()
    assert "kitti/Car_3D_AP40_moderate_strict" in metrics
    assert all(np.isfinite(v) for v in metrics.values())
    assert (tmp_path / "epoch_1.pth").is_file()


def run_demo(capsys, *args: str) -> tuple[int, str]:
    """Run tools/mono3d_demo.py's main in this process: (exit code, stderr)."""
    spec = importlib.util.spec_from_file_location("mono3d_demo", ROOT / "tools/mono3d_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    try:
        code = demo.main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def test_demo_draws_ground_truth(tmp_path, capsys):
    import cv2

    out = tmp_path / "demo.png"
    frame = FIXTURE / "training"
    code, err = run_demo(
        capsys,
        str(frame / "image_2/000008.png"),
        "--calib",
        str(frame / "calib/000008.txt"),
        "--label",
        str(frame / "label_2/000008.txt"),
        "--out",
        str(out),
    )
    assert code == 0, err
    picture = cv2.imread(str(out))
    image = cv2.imread(str(frame / "image_2/000008.png"))
    assert picture.shape[0] == image.shape[0] and picture.shape[1] > image.shape[1]
    changed = (picture[:, : image.shape[1]] != image).any(-1)
    # every car's 2D box contains drawn pixels, the sky above the cars none
    for x1, y1, x2, y2 in read_label_file(frame / "label_2/000008.txt").select(slice(0, 6)).bbox:
        assert changed[int(y1) : int(y2) + 1, int(x1) : int(x2) + 1].any()
    assert not changed[:100].any()


def test_demo_without_intrinsics_says_they_are_required(tmp_path, capsys):
    frame = FIXTURE / "training"
    code, err = run_demo(
        capsys,
        str(frame / "image_2/000008.png"),
        "--config",
        str(ROOT / "configs/mono3d_lwplgvit_a_kitti.py"),
        "--checkpoint",
        "x.pth",
        "--out",
        str(tmp_path / "x.png"),
    )
    assert code == 2
    assert "intrinsics are required" in err and "3x3 / 3x4" in err
    code, err = run_demo(
        capsys,
        str(frame / "image_2/000008.png"),
        "--calib",
        "1 2 3",
        "--label",
        str(frame / "label_2/000008.txt"),
        "--out",
        str(tmp_path / "x.png"),
    )
    assert code == 2 and "expected 9 (3x3) or 12 (3x4) numbers" in err
