"""Bird's-eye view of camera boxes (x right, z forward) as an image with metric axes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from plgvit_mm.structures import box_corners

AXIS_COLOR = (90, 90, 90)
GRID_COLOR = (225, 225, 225)
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 52, 40, 24, 12


def fit_bev_range(
    box_sets: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    min_depth: float = 30.0,
    min_half_width: float = 10.0,
    step: float = 10.0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x_range, z_range) in metres that show every box: z from 0 to the farthest corner and
    x symmetric around the camera, both rounded up to ``step``."""
    corners = [
        box_corners(np.asarray(b, dtype=np.float64).reshape(-1, 7)).reshape(-1, 3)
        for b, _ in box_sets
    ]
    points = np.concatenate(corners) if corners else np.zeros((0, 3))
    points = points[np.isfinite(points).all(1) & (points[:, 2] > 0)]
    far = max(min_depth, float(points[:, 2].max()) + 1.0 if len(points) else 0.0)
    half = max(min_half_width, float(np.abs(points[:, 0]).max()) + 1.0 if len(points) else 0.0)
    far, half = math.ceil(far / step) * step, math.ceil(half / (step / 2)) * (step / 2)
    return (-half, half), (0.0, far)


def draw_bev(
    box_sets: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    x_range: tuple[float, float] | None = None,
    z_range: tuple[float, float] | None = None,
    pixels_per_metre: float = 8.0,
    grid_step: float = 10.0,
) -> np.ndarray:
    """A BGR uint8 image: the camera at the bottom centre, z (forward) up, x (right) right.

    Args:
        box_sets: pairs (boxes (N, 7) camera boxes x y z h w l ry, BGR colour).
        x_range, z_range: metres shown (default: fit_bev_range, so the farthest box shows);
            pixels_per_metre: scale; grid_step: grid and tick spacing in metres.
    Each box is drawn as its bottom rectangle with a line from its centre to the front edge;
    the axes carry ticks in metres and the titles "x (m)" and "z (m)".
    """
    if x_range is None or z_range is None:
        fit_x, fit_z = fit_bev_range(box_sets, step=grid_step)
        x_range, z_range = x_range or fit_x, z_range or fit_z
    plot_w = int(round((x_range[1] - x_range[0]) * pixels_per_metre))
    plot_h = int(round((z_range[1] - z_range[0]) * pixels_per_metre))
    width, height = MARGIN_LEFT + plot_w + MARGIN_RIGHT, MARGIN_TOP + plot_h + MARGIN_BOTTOM
    canvas = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX

    def to_pixels(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        u = MARGIN_LEFT + (x - x_range[0]) * pixels_per_metre
        v = MARGIN_TOP + (z_range[1] - z) * pixels_per_metre
        return np.round(np.stack([u, v], -1)).astype(np.int32)

    left, bottom = MARGIN_LEFT, MARGIN_TOP + plot_h
    for x in np.arange(math.ceil(x_range[0] / grid_step) * grid_step, x_range[1] + 1e-6, grid_step):
        u = int(to_pixels(np.array(x), np.array(0.0))[0])
        cv2.line(canvas, (u, MARGIN_TOP), (u, bottom), GRID_COLOR, 1)
        cv2.line(canvas, (u, bottom), (u, bottom + 4), AXIS_COLOR, 1)
        text = f"{x:.0f}"
        size = cv2.getTextSize(text, font, 0.4, 1)[0]
        cv2.putText(canvas, text, (u - size[0] // 2, bottom + 17), font, 0.4, AXIS_COLOR, 1)
    for z in np.arange(math.ceil(z_range[0] / grid_step) * grid_step, z_range[1] + 1e-6, grid_step):
        v = int(to_pixels(np.array(0.0), np.array(z))[1])
        cv2.line(canvas, (left, v), (left + plot_w, v), GRID_COLOR, 1)
        cv2.line(canvas, (left - 4, v), (left, v), AXIS_COLOR, 1)
        text = f"{z:.0f}"
        size = cv2.getTextSize(text, font, 0.4, 1)[0]
        cv2.putText(canvas, text, (left - 7 - size[0], v + 4), font, 0.4, AXIS_COLOR, 1)
    cv2.rectangle(canvas, (left, MARGIN_TOP), (left + plot_w, bottom), AXIS_COLOR, 1)
    cv2.putText(canvas, "x (m)", (left + plot_w // 2 - 18, height - 5), font, 0.45, AXIS_COLOR, 1)
    cv2.putText(canvas, "z (m)", (2, 14), font, 0.45, AXIS_COLOR, 1)
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
