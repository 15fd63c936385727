"""Resizing a mono 3D sample (image, boxes and intrinsics together)."""

from __future__ import annotations

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .geometry import apply_image_affine


@TRANSFORMS.register_module()
class Mono3DResize(BaseTransform):
    """Resize to ``scale`` = (W, H) pixels, or to fit inside it with ``keep_ratio``.

    The pixel map is cv2's: ``u' = s_x (u + 0.5) - 0.5`` (s_x = new width / old width), and
    likewise for v. Sets ``scale_factor`` (s_x, s_y) and updates ``cam2img``, ``gt_bboxes``
    and ``homography_matrix`` (see geometry.apply_image_affine). Pad afterwards (mmdet's Pad)
    for a fixed input size; padding at the right/bottom changes no coordinate.
    """

    def __init__(
        self,
        scale: tuple[int, int] = (1280, 384),
        keep_ratio: bool = True,
        interpolation: str = "bilinear",
    ) -> None:
        if len(scale) != 2 or min(scale) <= 0:
            raise ValueError(f"scale must be (width, height) > 0, got {scale}")
        self.scale = tuple(int(s) for s in scale)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        height, width = results["img"].shape[:2]
        new_w, new_h = self.scale
        if self.keep_ratio:
            ratio = min(new_w / width, new_h / height)
            new_w, new_h = int(width * ratio + 0.5), int(height * ratio + 0.5)
        results["img"] = mmcv.imresize(
            results["img"], (new_w, new_h), interpolation=self.interpolation
        )
        sx, sy = new_w / width, new_h / height
        affine = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        apply_image_affine(results, affine)
        results["scale_factor"] = (sx, sy)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(scale={self.scale}, keep_ratio={self.keep_ratio}, "
            f"interpolation={self.interpolation!r})"
        )
