"""Horizontal flip of a mono 3D sample: image, 2D boxes, 3D scene and intrinsics."""

from __future__ import annotations

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .geometry import apply_image_affine


@TRANSFORMS.register_module()
class Mono3DRandomFlip(BaseTransform):
    """Mirror the image left-right with probability ``prob`` (KITTI mono 3D: 0.5).

    Image columns map ``u' = W - 1 - u``; the scene is mirrored too (x -> -x, rotation_y ->
    pi - rotation_y, so alpha -> pi - alpha) and ``cam2img`` becomes ``F @ P2 @ diag(-1, 1,
    1, 1)`` with F the column mirror: the focal length stays positive, the principal point
    moves to ``W - 1 - c_u`` and the baseline term P2[0, 3] to ``(W - 1) P2[2, 3] - P2[0, 3]``.
    Sets ``flip`` and ``flip_direction``.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.prob = prob

    def transform(self, results: dict) -> dict:
        flip = bool(np.random.rand() < self.prob)
        results["flip"] = flip
        results["flip_direction"] = "horizontal" if flip else None
        if flip:
            width = results["img"].shape[1]
            results["img"] = mmcv.imflip(results["img"], direction="horizontal")
            affine = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            apply_image_affine(results, affine, mirror_scene=True)
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prob={self.prob})"
