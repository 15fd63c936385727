"""Turning a KittiMono3DDataset sample's instances into arrays for the pipeline."""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .geometry import as_cam2img


@TRANSFORMS.register_module()
class LoadMono3DAnnotations(BaseTransform):
    """Arrays from ``results['instances']`` (see KittiMono3DDataset).

    Adds ``gt_bboxes`` (N, 4) float32 x1 y1 x2 y2 pixels, ``gt_bboxes_labels`` (N,) int64,
    ``gt_bboxes_3d`` (N, 7) float32 camera boxes x y z h w l ry (bottom centre), and makes
    ``cam2img`` a (4, 4) float64 array (``ori_cam2img`` keeps the file's matrix).
    """

    def transform(self, results: dict) -> dict:
        instances = results.get("instances", [])
        results["gt_bboxes"] = np.array([i["bbox"] for i in instances], dtype=np.float32).reshape(
            -1, 4
        )
        results["gt_bboxes_labels"] = np.array([i["bbox_label"] for i in instances], dtype=np.int64)
        results["gt_bboxes_3d"] = np.array(
            [i["bbox_3d"] for i in instances], dtype=np.float32
        ).reshape(-1, 7)
        results["cam2img"] = as_cam2img(results["cam2img"])
        results["ori_cam2img"] = results["cam2img"].copy()
        return results
