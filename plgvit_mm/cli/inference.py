"""Inference helpers shared by tools/image_demo.py, tools/benchmark.py and tools/get_flops.py.

A config is a detection config (``default_scope='mmdet'``: mmdet.apis) or a segmentation config
(``default_scope='mmseg'``: mmseg.apis); :func:`task_of` tells which.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import VISUALIZERS, init_default_scope
from torch import nn

TASKS = {"mmdet": "det", "mmseg": "seg"}


def task_of(cfg: Config) -> str:
    """'det' for mmdet configs, 'seg' for mmseg configs."""
    scope = cfg.get("default_scope")
    if scope not in TASKS:
        raise ValueError(
            f"config default_scope must be one of {sorted(TASKS)} "
            f"(detection or segmentation), got {scope!r}"
        )
    return TASKS[scope]


def build_inference_model(cfg: Config, checkpoint: str | None, device: str) -> nn.Module:
    """Model in eval mode on ``device``; random weights (no backbone download) without checkpoint.

    With a checkpoint, class names come from its ``dataset_meta``; without, from the config's
    test dataset.
    """
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    if task_of(cfg) == "det":
        from mmdet.apis import init_detector

        model = init_detector(cfg, checkpoint, device=device)
        if checkpoint is None:  # init_detector falls back to COCO's names
            model.dataset_meta = dict(model.dataset_meta, **_test_metainfo(cfg))
    else:
        from mmseg.apis import init_model

        model = init_model(cfg, checkpoint, device=device)
        if not getattr(model, "dataset_meta", None):
            model.dataset_meta = _test_metainfo(cfg)
    return model


def _test_metainfo(cfg: Config) -> dict:
    """classes/palette of the config's test dataset (built lazily: no files are read)."""
    from mmengine.registry import DATASETS

    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg["lazy_init"] = True
    metainfo = DATASETS.build(dataset_cfg).metainfo
    return {k: metainfo[k] for k in ("classes", "palette") if k in metainfo}


def inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for in-memory (H, W, 3) BGR uint8 images, without labels."""
    from mmdet.utils import get_test_pipeline_cfg

    steps = [
        step
        for step in copy.deepcopy(get_test_pipeline_cfg(cfg))
        if not step["type"].endswith("LoadAnnotations")
    ]
    steps[0]["type"] = f"{cfg.default_scope}.LoadImageFromNDArray"
    return Compose(steps)


def is_mono3d(cfg: Config) -> bool:
    """Whether the config is a monocular 3D detector (its images need camera intrinsics)."""
    return cfg.model.get("type") == "Mono3DDetector"


def make_batch(
    cfg: Config, images: list[np.ndarray], cam2img: np.ndarray | None = None
) -> dict[str, list[Any]]:
    """``dict(inputs=[...], data_samples=[...])`` for ``model.test_step`` from BGR images.

    ``cam2img``: (3, 3) / (4, 4) intrinsics of the images, required by mono 3D configs.
    """
    pipeline = inference_pipeline(cfg)
    extra: dict[str, Any] = {}
    if is_mono3d(cfg):
        if cam2img is None:
            raise ValueError("a mono 3D config needs the camera intrinsics (cam2img) of its images")
        extra = dict(cam2img=np.asarray(cam2img, dtype=np.float64).tolist(), instances=[])
    batch: dict[str, list[Any]] = dict(inputs=[], data_samples=[])
    for index, image in enumerate(images):
        packed = pipeline(dict(img=image, img_id=index, **extra))
        batch["inputs"].append(packed["inputs"])
        batch["data_samples"].append(packed["data_samples"])
    return batch


def draw_prediction(
    model: nn.Module, image_rgb: np.ndarray, prediction: Any, out_file: str, score_thr: float = 0.3
) -> None:
    """Save ``image_rgb`` with the predicted boxes/masks or segmentation drawn on it."""
    visualizer = VISUALIZERS.build(dict(model.cfg.visualizer, name="image_demo", save_dir=None))
    visualizer.dataset_meta = model.dataset_meta
    kwargs = dict(pred_score_thr=score_thr) if task_of(model.cfg) == "det" else {}
    visualizer.add_datasample(
        "prediction",
        image_rgb,
        data_sample=prediction,
        draw_gt=False,
        show=False,
        out_file=out_file,
        **kwargs,
    )
