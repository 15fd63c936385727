"""Exact overlaps of 2D image boxes, rotated bird's-eye-view boxes and 3D camera boxes.

All functions broadcast their inputs (``f(a[:, None], b[None])`` gives the pairwise matrix)
and use float64 numpy. The rotated overlap is computed geometrically: the first rectangle is
clipped by the four half-planes of the second (Sutherland-Hodgman, exact for convex
polygons; vertices on a clipping line count as inside, so identical boxes give IoU 1) and the
clipped polygon's area comes from the shoelace formula.
"""

from __future__ import annotations

import numpy as np

# vertices a point on a clipping line may be off by, relative to the boxes' size (float64 noise)
_INSIDE_TOLERANCE = 1e-12
_MAX_VERTICES = 8  # a rectangle clipped by 4 half-planes has at most 8 vertices


def iou_2d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of image boxes x1 y1 x2 y2: (..., 4), (..., 4) -> (...) (KITTI: no +1 pixel)."""
    inter = _intersection_2d(boxes_a, boxes_b)
    union = _area_2d(boxes_a) + _area_2d(boxes_b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def intersection_over_first_2d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection area over the area of ``boxes_a`` (KITTI's DontCare criterion)."""
    inter = _intersection_2d(boxes_a, boxes_b)
    area = np.broadcast_to(_area_2d(boxes_a), inter.shape)
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def _area_2d(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _intersection_2d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    width = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    height = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.where((width > 0) & (height > 0), width * height, 0.0)


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """Counter-clockwise BEV rectangles (..., 4, 2) in the camera x-z plane of camera boxes.

    Args:
        boxes: (..., 7) x y z h w l ry; the length l lies along x at ry = 0, the width w
            along z, and ry rotates like :func:`plgvit_mm.structures.box_corners`.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    half_l, half_w = boxes[..., 5:6] / 2, boxes[..., 4:5] / 2
    local_x = half_l * np.array([1.0, -1.0, -1.0, 1.0])
    local_z = half_w * np.array([1.0, 1.0, -1.0, -1.0])
    cos, sin = np.cos(boxes[..., 6:7]), np.sin(boxes[..., 6:7])
    x = cos * local_x + sin * local_z + boxes[..., 0:1]
    z = -sin * local_x + cos * local_z + boxes[..., 2:3]
    return np.stack([x, z], -1)


def bev_intersection_area(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Exact area (m^2) of the BEV intersection of camera boxes (..., 7), broadcast."""
    boxes_a, boxes_b = np.broadcast_arrays(
        np.asarray(boxes_a, dtype=np.float64), np.asarray(boxes_b, dtype=np.float64)
    )
    if boxes_a.shape[-1] != 7:
        raise ValueError(f"expected camera boxes (..., 7) = x y z h w l ry, got {boxes_a.shape}")
    shape = boxes_a.shape[:-1]
    a, b = boxes_a.reshape(-1, 7), boxes_b.reshape(-1, 7)
    area = np.zeros(len(a))
    # boxes whose circumscribed circles are apart cannot overlap
    radius_a = np.hypot(a[:, 4], a[:, 5]) / 2
    radius_b = np.hypot(b[:, 4], b[:, 5]) / 2
    near = np.hypot(a[:, 0] - b[:, 0], a[:, 2] - b[:, 2]) < radius_a + radius_b
    if near.any():
        area[near] = _convex_intersection_area(bev_corners(a[near]), bev_corners(b[near]))
    # clipping noise must not exceed the true bound min(area_a, area_b)
    bound = np.minimum(a[:, 4] * a[:, 5], b[:, 4] * b[:, 5])
    return np.minimum(area, bound).reshape(shape)


def bev_and_3d_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotated BEV IoU and 3D IoU of camera boxes (..., 7), broadcast -> two (...) arrays.

    3D intersection = BEV intersection x height overlap, where the height overlap of
    bottom-centred boxes is max(0, min(y_a, y_b) - max(y_a - h_a, y_b - h_b)) (y points
    down); the union is V_a + V_b - intersection. One clipping serves both IoUs.
    """
    a, b = np.asarray(boxes_a, dtype=np.float64), np.asarray(boxes_b, dtype=np.float64)
    inter = bev_intersection_area(a, b)
    area_a, area_b = a[..., 4] * a[..., 5], b[..., 4] * b[..., 5]
    union = area_a + area_b - inter
    bev = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    height = np.minimum(a[..., 1], b[..., 1]) - np.maximum(
        a[..., 1] - a[..., 3], b[..., 1] - b[..., 3]
    )
    height = np.clip(height, 0.0, np.minimum(a[..., 3], b[..., 3]))  # rounding stays in bounds
    inter_3d = inter * height
    union_3d = area_a * a[..., 3] + area_b * b[..., 3] - inter_3d
    iou3d = np.divide(inter_3d, union_3d, out=np.zeros_like(inter_3d), where=union_3d > 0)
    return bev, iou3d


def bev_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Rotated BEV IoU of camera boxes (..., 7), broadcast -> (...)."""
    return bev_and_3d_iou(boxes_a, boxes_b)[0]


def iou_3d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """3D IoU of camera boxes (..., 7), broadcast -> (...) (see :func:`bev_and_3d_iou`)."""
    return bev_and_3d_iou(boxes_a, boxes_b)[1]


def _convex_intersection_area(poly_a: np.ndarray, poly_b: np.ndarray) -> np.ndarray:
    """Areas of the intersections of counter-clockwise quadrilaterals (P, 4, 2), row by row."""
    num = len(poly_a)
    x = np.zeros((num, _MAX_VERTICES))
    z = np.zeros((num, _MAX_VERTICES))
    x[:, :4], z[:, :4] = poly_a[..., 0], poly_a[..., 1]
    count = np.full(num, 4)
    scale = np.abs(np.concatenate([poly_a, poly_b], 1)).max((1, 2)) + 1.0
    tolerance = (_INSIDE_TOLERANCE * scale * scale)[:, None]
    slots = np.arange(_MAX_VERTICES)
    for edge in range(4):
        start_x, start_z = poly_b[:, edge, 0:1], poly_b[:, edge, 1:2]
        dir_x = poly_b[:, (edge + 1) % 4, 0:1] - start_x
        dir_z = poly_b[:, (edge + 1) % 4, 1:2] - start_z
        exists = slots < count[:, None]
        following = np.where(slots + 1 < count[:, None], slots + 1, 0)
        next_x = np.take_along_axis(x, following, 1)
        next_z = np.take_along_axis(z, following, 1)
        # > 0: left of the edge, i.e. inside the counter-clockwise rectangle
        side = dir_x * (z - start_z) - dir_z * (x - start_x)
        side_next = np.take_along_axis(side, following, 1)
        inside = side >= -tolerance
        crossing = exists & (inside != (side_next >= -tolerance))
        t = np.divide(side, side - side_next, out=np.zeros_like(side), where=crossing)
        # output sequence: each kept vertex, then its edge's crossing point if any
        keep = np.stack([exists & inside, crossing], 2).reshape(num, -1)
        cand_x = np.stack([x, x + t * (next_x - x)], 2).reshape(num, -1)
        cand_z = np.stack([z, z + t * (next_z - z)], 2).reshape(num, -1)
        rows, cols = np.nonzero(keep)
        position = np.cumsum(keep, 1)[rows, cols] - 1
        x = np.zeros((num, _MAX_VERTICES))
        z = np.zeros((num, _MAX_VERTICES))
        x[rows, position], z[rows, position] = cand_x[rows, cols], cand_z[rows, cols]
        count = keep.sum(1)
    following = np.where(slots + 1 < count[:, None], slots + 1, 0)
    terms = x * np.take_along_axis(z, following, 1) - z * np.take_along_axis(x, following, 1)
    area = 0.5 * np.where(slots < count[:, None], terms, 0.0).sum(1)
    return np.maximum(area, 0.0)
