"""Bookkeeping shared by the mono 3D geometric transforms: one image-plane affine map at a time.

A transform that maps input pixels p to output pixels A @ p (3x3, pixel-centre coordinates)
must move the 2D boxes, left-multiply ``cam2img`` by ``blockdiag(A, 1)`` (then projecting
any 3D point with the new matrix gives A applied to its old projection) and accumulate
``homography_matrix`` (original image -> current image, mmdet's key). A horizontal mirror
of the scene additionally negates camera x on the right of ``cam2img`` and mirrors the 3D
boxes, which keeps the focal length positive.
"""

from __future__ import annotations

import math

import numpy as np

from plgvit_mm.structures import limit_period

MIRROR_X = np.diag([-1.0, 1.0, 1.0, 1.0])


def as_cam2img(value, key: str = "cam2img") -> np.ndarray:
    """(4, 4) float64 copy of a results' camera matrix (list, 3x4 or 4x4 array)."""
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape == (3, 4):
        matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
    if matrix.shape != (4, 4):
        raise ValueError(f"results[{key!r}] must be a 3x4 or 4x4 matrix, got {matrix.shape}")
    return matrix.copy()


def transform_bboxes(bboxes: np.ndarray, affine: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes x1 y1 x2 y2 (N, 4) through ``affine`` (3x3): enclosing box of the mapped
    corners, clipped to [0, width - 1] x [0, height - 1]."""
    x1, y1, x2, y2 = bboxes[:, 0], bboxes[:, 1], bboxes[:, 2], bboxes[:, 3]
    corners = np.stack(
        [
            np.stack([x1, y1], -1),
            np.stack([x2, y1], -1),
            np.stack([x1, y2], -1),
            np.stack([x2, y2], -1),
        ],
        1,
    )
    mapped = corners @ affine[:2, :2].T + affine[:2, 2]
    out = np.concatenate([mapped.min(1), mapped.max(1)], -1)
    out[:, 0::2] = out[:, 0::2].clip(0, width - 1)
    out[:, 1::2] = out[:, 1::2].clip(0, height - 1)
    return out.astype(bboxes.dtype)


def apply_image_affine(results: dict, affine: np.ndarray, mirror_scene: bool = False) -> None:
    """Update every geometric field of ``results`` for an image already warped by ``affine``.

    Expects ``results['img']`` to be the warped image. Updates ``img_shape``, ``gt_bboxes``
    (N, 4), ``cam2img`` (and ``gt_bboxes_3d`` (N, 7) when ``mirror_scene``: x -> -x,
    ry -> pi - ry) and ``homography_matrix``.
    """
    height, width = results["img"].shape[:2]
    results["img_shape"] = (height, width)
    if "gt_bboxes" in results:
        results["gt_bboxes"] = transform_bboxes(
            np.asarray(results["gt_bboxes"]), affine, width, height
        )
    lift = np.eye(4)
    lift[:3, :3] = affine
    cam2img = lift @ as_cam2img(results["cam2img"])
    if mirror_scene:
        cam2img = cam2img @ MIRROR_X
        if "gt_bboxes_3d" in results:
            boxes = np.array(results["gt_bboxes_3d"], copy=True)
            boxes[:, 0] = -boxes[:, 0]
            boxes[:, 6] = limit_period(math.pi - boxes[:, 6])
            results["gt_bboxes_3d"] = boxes
    results["cam2img"] = cam2img
    previous = results.get("homography_matrix")
    previous = np.eye(3) if previous is None else np.asarray(previous, dtype=np.float64)
    results["homography_matrix"] = affine @ previous
