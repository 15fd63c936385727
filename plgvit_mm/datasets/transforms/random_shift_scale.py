"""Random shift and zoom of a mono 3D sample (CenterNet / MonoDLE crop augmentation)."""

from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .geometry import apply_image_affine


@TRANSFORMS.register_module()
class Mono3DRandomShiftScale(BaseTransform):
    """With probability ``prob``, crop a window and warp it to the full image size.

    The window has size ``c`` x (W, H) with ``c ~ U[1 - scale_ratio, 1 + scale_ratio]`` (c > 1
    zooms out and fills the border with ``pad_val``) and its centre is shifted from the image
    centre by ``U[-shift_ratio, shift_ratio]`` x (W, H). The image keeps its size; boxes,
    ``cam2img`` and ``homography_matrix`` follow (objects cut away keep clipped, possibly
    empty, 2D boxes). Depth is unchanged, so zooming changes the apparent size at a given
    depth: learn focal-normalised depth (Mono3DBoxCoder.reference_focal) when using it (the
    head warns otherwise). Sets ``zoom`` (output / input pixel scale, 1 when not applied).
    """

    def __init__(
        self,
        shift_ratio: float = 0.1,
        scale_ratio: float = 0.4,
        prob: float = 0.5,
        pad_val: float = 0,
    ) -> None:
        if not 0 <= scale_ratio < 1:
            raise ValueError(f"scale_ratio must be in [0, 1), got {scale_ratio}")
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.shift_ratio = shift_ratio
        self.scale_ratio = scale_ratio
        self.prob = prob
        self.pad_val = pad_val

    def transform(self, results: dict) -> dict:
        results["zoom"] = 1.0
        if np.random.rand() >= self.prob:
            return results
        height, width = results["img"].shape[:2]
        crop = np.random.uniform(1 - self.scale_ratio, 1 + self.scale_ratio)
        shift = np.random.uniform(-self.shift_ratio, self.shift_ratio, size=2) * (width, height)
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        zoom = 1.0 / crop
        offset = centre - zoom * (centre + shift)
        affine = np.array([[zoom, 0.0, offset[0]], [0.0, zoom, offset[1]], [0.0, 0.0, 1.0]])
        results["img"] = cv2.warpAffine(
            results["img"],
            affine[:2],
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.pad_val,
        )
        apply_image_affine(results, affine)
        results["zoom"] = float(zoom)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(shift_ratio={self.shift_ratio}, "
            f"scale_ratio={self.scale_ratio}, prob={self.prob})"
        )
