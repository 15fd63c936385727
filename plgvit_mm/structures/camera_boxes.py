"""3D boxes in KITTI's rectified camera frame (x right, y down, z forward), vectorised.

A box is a row ``x y z h w l ry`` (shape (..., 7)): (x, y, z) the BOTTOM centre in metres
(KITTI label convention), h w l the height, width and length in metres, ry the yaw around the
camera y axis in radians (ry = 0: the length points along +x). Every function takes numpy
arrays or torch tensors (autograd flows through the torch path) and returns the same type.

Corner order of :func:`box_corners` (the KITTI devkit's ``computeBox3D`` order; "front" is
the +length end, "left" the +width side in the object frame, bottom = y of the location)::

        7 -------- 4          top    (y - h)
       /|         /|
      6 -------- 5 .
      | |        | |
      . 3 -------- 0          bottom (y)
      |/         |/
      2 -------- 1
   corner:  0   1   2   3   4   5   6   7
   length:  +   +   -   -   +   +   -   -     (x in the object frame, times l/2)
   width:   +   -   -   +   +   -   -   +     (z in the object frame, times w/2)
   height:  0   0   0   0  -h  -h  -h  -h     (y offset)
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_LENGTH_SIGNS = (1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0)
_WIDTH_SIGNS = (1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0)
_HEIGHT_STEPS = (0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0)
# the 12 edges of the corner order above: bottom ring, top ring, verticals
BOX_EDGES = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)


def _xp(x: np.ndarray | torch.Tensor) -> ModuleType:
    return torch if isinstance(x, torch.Tensor) else np


def _like(values, ref: Array) -> Array:
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)
    return np.asarray(values, dtype=ref.dtype if ref.dtype.kind == "f" else np.float64)


def _check_boxes(boxes: Array) -> None:
    if boxes.shape[-1] != 7:
        raise ValueError(
            f"expected camera boxes shaped (..., 7) = x y z h w l ry, got {tuple(boxes.shape)}"
        )


def limit_period(angle: Array, period: float = 2 * math.pi) -> Array:
    """Wrap angles to [-period / 2, period / 2)."""
    xp = _xp(angle)
    return angle - xp.floor(angle / period + 0.5) * period


def box_corners(boxes: Array) -> Array:
    """Corners of camera boxes: (..., 7) -> (..., 8, 3), order in the module docstring."""
    _check_boxes(boxes)
    xp = _xp(boxes)
    h, w, length, ry = boxes[..., 3:4], boxes[..., 4:5], boxes[..., 5:6], boxes[..., 6:7]
    local_x = length / 2 * _like(_LENGTH_SIGNS, boxes)
    local_z = w / 2 * _like(_WIDTH_SIGNS, boxes)
    local_y = h * _like(_HEIGHT_STEPS, boxes)
    cos, sin = xp.cos(ry), xp.sin(ry)
    # rotation about y: x' = cos x + sin z, z' = -sin x + cos z
    x = cos * local_x + sin * local_z + boxes[..., 0:1]
    y = local_y + boxes[..., 1:2]
    z = -sin * local_x + cos * local_z + boxes[..., 2:3]
    return xp.stack([x, y, z], -1)


def gravity_centers(boxes: Array) -> Array:
    """Geometric centres of camera boxes: (..., 7) -> (..., 3) (y moved up by h / 2)."""
    _check_boxes(boxes)
    xp = _xp(boxes)
    return xp.stack([boxes[..., 0], boxes[..., 1] - boxes[..., 3] / 2, boxes[..., 2]], -1)


def _projection_3x4(cam2img: Array) -> Array:
    """The (..., 3, 4) projection of a 3x3, 3x4 or 4x4 camera matrix (batched or not)."""
    if tuple(cam2img.shape[-2:]) not in ((3, 3), (3, 4), (4, 4)):
        raise ValueError(
            f"expected cam2img shaped (..., 3 or 4, 3 or 4), got {tuple(cam2img.shape)}"
        )
    if cam2img.shape[-1] == 3:
        xp = _xp(cam2img)
        return xp.concatenate([cam2img, cam2img[..., :1] * 0], -1)
    return cam2img[..., :3, :]


def project_points(points: Array, cam2img: Array) -> tuple[Array, Array]:
    """Project camera-frame points with a KITTI P2 (3x3, 3x4 or 4x4 ``cam2img``).

    Args:
        points: (..., 3) x y z in metres.
        cam2img: the projection; its 4th column (stereo baseline terms) is applied.
    Returns:
        uv: (..., 2) pixels, ``P[:2] @ [p, 1] / (P[2] @ [p, 1])``;
        depth: (..., ) the points' camera z in metres (the divisor is z + P[2, 3]).
    """
    p = _projection_3x4(_like(cam2img, points))
    homogeneous = points @ p[:, :3].T + p[:, 3]
    return homogeneous[..., :2] / homogeneous[..., 2:3], points[..., 2]


def _det3(a, b, c, d, e, f, g, h, i):
    """Determinant of the 3x3 matrix with rows (a b c), (d e f), (g h i), element-wise."""
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def unproject_points(uv: Array, depth: Array, cam2img: Array) -> Array:
    """Exact inverse of :func:`project_points`: pixels (..., 2) + camera z (...) -> (..., 3).

    Solves ``P[:, :3] @ (x, y, z) + P[:, 3] = s * (u, v, 1)`` for x, y and s given z by
    Cramer's rule (element-wise arithmetic only, so it traces and exports), honouring the
    baseline terms of P2 (including P2[2, 3]). ``cam2img`` is one matrix, or one per batch
    element, (B, 3 or 4, 3 or 4), with ``uv`` (B, N, 2) and ``depth`` (B, N).
    """
    p = _projection_3x4(_like(cam2img, uv))
    if p.ndim == 3:
        p = p[:, None]  # (B, 1, 3, 4): entries broadcast over the N points
    u, v = uv[..., 0], uv[..., 1]
    # unknowns (x, y, s): A = [P00 P01 -u; P10 P11 -v; P20 P21 -1], b = -(z P[:, 2] + P[:, 3])
    a00, a01, a10, a11, a20, a21 = (p[..., r, c] for r in range(3) for c in range(2))
    b0, b1, b2 = (-(depth * p[..., r, 2] + p[..., r, 3]) for r in range(3))
    one = u * 0 + 1
    det = _det3(a00, a01, -u, a10, a11, -v, a20, a21, -one)
    x = _det3(b0, a01, -u, b1, a11, -v, b2, a21, -one) / det
    y = _det3(a00, b0, -u, a10, b1, -v, a20, b2, -one) / det
    return _xp(uv).stack([x, y, depth + u * 0], -1)


def boxes_to_bbox2d(
    boxes: Array, cam2img: Array, image_shape: tuple[int, int] | None = None, near: float = 0.1
) -> Array:
    """2D boxes x1 y1 x2 y2 (..., 4) enclosing the projected camera boxes (..., 7).

    The boxes are clipped to the plane z = ``near`` first (the part behind the camera is not
    projected); a box entirely behind it gives NaN. With ``image_shape`` (H, W) the result
    is clipped to [0, W - 1] x [0, H - 1] like KITTI's labels (pixel-centre coordinates).
    """
    xp = _xp(boxes)
    corners = box_corners(boxes)
    starts = corners[..., [e[0] for e in BOX_EDGES], :]
    ends = corners[..., [e[1] for e in BOX_EDGES], :]
    z0, z1 = starts[..., 2], ends[..., 2]
    crosses = (z0 - near) * (z1 - near) < 0
    t = xp.where(crosses, (near - z0) / xp.where(crosses, z1 - z0, z0 * 0 + 1), z0 * 0)
    crossings = starts + t[..., None] * (ends - starts)
    candidates = xp.concatenate([corners, crossings], -2)
    valid = xp.concatenate([corners[..., 2] >= near, crosses], -1)
    safe = xp.where(valid[..., None], candidates, candidates * 0 + _like([0.0, 0.0, 1.0], boxes))
    uv, _ = project_points(safe, cam2img)
    inf = _like(math.inf, boxes)
    u_min = xp.amin(xp.where(valid, uv[..., 0], inf), -1)
    v_min = xp.amin(xp.where(valid, uv[..., 1], inf), -1)
    u_max = xp.amax(xp.where(valid, uv[..., 0], -inf), -1)
    v_max = xp.amax(xp.where(valid, uv[..., 1], -inf), -1)
    bbox = xp.stack([u_min, v_min, u_max, v_max], -1)
    if image_shape is not None:
        x_max, y_max = image_shape[1] - 1, image_shape[0] - 1
        bbox = xp.stack(
            [
                bbox[..., 0].clip(0, x_max),
                bbox[..., 1].clip(0, y_max),
                bbox[..., 2].clip(0, x_max),
                bbox[..., 3].clip(0, y_max),
            ],
            -1,
        )
    visible = valid.any(-1)
    return xp.where(visible[..., None], bbox, _like(math.nan, boxes))


def ray_angle(x: Array, z: Array) -> Array:
    """Azimuth of the viewing ray through (x, z): atan2(x, z), radians."""
    return _xp(x).arctan2(x, z)


def rotation_y_to_alpha(rotation_y: Array, x: Array, z: Array) -> Array:
    """Observation angle alpha = rotation_y - atan2(x, z), wrapped to [-pi, pi)."""
    return limit_period(rotation_y - ray_angle(x, z))


def alpha_to_rotation_y(alpha: Array, x: Array, z: Array) -> Array:
    """Yaw rotation_y = alpha + atan2(x, z), wrapped to [-pi, pi)."""
    return limit_period(alpha + ray_angle(x, z))
