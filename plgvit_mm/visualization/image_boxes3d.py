"""Drawing camera boxes projected into an image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from plgvit_mm.structures import BOX_EDGES, box_corners, project_points

FRONT_FACE = (0, 1, 5, 4)  # corners of the +length face (box_corners order)


def draw_boxes3d_on_image(
    image: np.ndarray,
    boxes_3d: np.ndarray,
    cam2img: np.ndarray,
    colors: Sequence[tuple[int, int, int]] | tuple[int, int, int],
    texts: Sequence[str] | None = None,
    thickness: int = 2,
    near: float = 0.5,
) -> np.ndarray:
    """A copy of ``image`` (H, W, 3 uint8 BGR) with the 12 edges of each box drawn.

    Args:
        boxes_3d: (N, 7) camera boxes x y z h w l ry (bottom centre, metres).
        cam2img: 3x3, 3x4 or 4x4 P2 of ``image``.
        colors: one BGR colour for all boxes or one per box.
        texts: optional label per box, written above its top face.
        near: boxes with a corner closer than this (metres, camera z) are skipped.
    The front (+length) face gets a cross so the heading is visible.
    """
    canvas = np.ascontiguousarray(image.copy())
    boxes_3d = np.asarray(boxes_3d, dtype=np.float64).reshape(-1, 7)
    if isinstance(colors, tuple) and len(colors) == 3 and np.isscalar(colors[0]):
        colors = [colors] * len(boxes_3d)
    corners = box_corners(boxes_3d)
    uv, depth = project_points(corners, np.asarray(cam2img, dtype=np.float64))
    for i in range(len(boxes_3d)):
        if (depth[i] < near).any():
            continue
        points = np.round(uv[i]).astype(np.int32)
        color = tuple(int(c) for c in colors[i])
        for a, b in BOX_EDGES:
            cv2.line(canvas, tuple(points[a]), tuple(points[b]), color, thickness, cv2.LINE_AA)
        f = FRONT_FACE
        cv2.line(canvas, tuple(points[f[0]]), tuple(points[f[2]]), color, 1, cv2.LINE_AA)
        cv2.line(canvas, tuple(points[f[1]]), tuple(points[f[3]]), color, 1, cv2.LINE_AA)
        if texts is not None:
            x, y = points[4:].min(0)
            cv2.putText(
                canvas,
                texts[i],
                (int(x), int(max(y - 4, 10))),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                color,
                1,
                cv2.LINE_AA,
            )
    return canvas
