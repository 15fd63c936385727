"""Bird's-eye view of camera boxes (x right, z forward) as an image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from plgvit_mm.structures import box_corners


def draw_bev(
    box_sets: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    x_range: tuple[float, float] = (-25.0, 25.0),
    z_range: tuple[float, float] = (0.0, 60.0),
    pixels_per_metre: float = 8.0,
    grid_step: float = 10.0,
) -> np.ndarray:
    """A BGR uint8 image: the camera at the bottom centre, z up, x right.

    Args:
        box_sets: pairs (boxes (N, 7) camera boxes x y z h w l ry, BGR colour).
        x_range, z_range: metres shown; pixels_per_metre: scale; grid_step: grid in metres.
    Each box is drawn as its bottom rectangle with a line from its centre to the front edge.
    """
    width = int(round((x_range[1] - x_range[0]) * pixels_per_metre))
    height = int(round((z_range[1] - z_range[0]) * pixels_per_metre))
    canvas = np.full((height, width, 3), 255, np.uint8)

    def to_pixels(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        u = (x - x_range[0]) * pixels_per_metre
        v = (z_range[1] - z) * pixels_per_metre
        return np.round(np.stack([u, v], -1)).astype(np.int32)

    for x in np.arange(np.ceil(x_range[0] / grid_step) * grid_step, x_range[1], grid_step):
        u = to_pixels(np.array(x), np.array(z_range[0]))[0]
        cv2.line(canvas, (int(u), 0), (int(u), height - 1), (225, 225, 225), 1)
    for z in np.arange(np.ceil(z_range[0] / grid_step) * grid_step, z_range[1], grid_step):
        v = to_pixels(np.array(x_range[0]), np.array(z))[1]
        cv2.line(canvas, (0, int(v)), (width - 1, int(v)), (225, 225, 225), 1)
        cv2.putText(
            canvas,
            f"{z:.0f} m",
            (4, int(v) - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (150, 150, 150),
            1,
            cv2.LINE_AA,
        )
    camera = to_pixels(np.array(0.0), np.array(z_range[0]))
    cv2.circle(canvas, (int(camera[0]), int(camera[1]) - 3), 4, (0, 0, 0), -1)
    for boxes, color in box_sets:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        corners = box_corners(boxes)[:, :4]  # bottom ring
        for i in range(len(boxes)):
            ring = to_pixels(corners[i, :, 0], corners[i, :, 2])
            cv2.polylines(canvas, [ring], True, color, 2, cv2.LINE_AA)
            centre = to_pixels(boxes[i, 0], boxes[i, 2])
            front = to_pixels(corners[i, :2, 0].mean(), corners[i, :2, 2].mean())
            cv2.line(
                canvas,
                tuple(int(c) for c in centre),
                tuple(int(c) for c in front),
                color,
                1,
                cv2.LINE_AA,
            )
    return canvas
