"""Exact 2D, rotated BEV and 3D overlaps against grid estimates and closed forms."""

import numpy as np
import pytest

from plgvit_mm.evaluation import (
    bev_and_3d_iou,
    bev_intersection_area,
    bev_iou,
    intersection_over_first_2d,
    iou_2d,
    iou_3d,
)
from plgvit_mm.structures import box_corners


def random_boxes(rng, n, spread=2.0):
    return np.c_[
        rng.uniform(-spread, spread, n),
        rng.uniform(0, 1, n),
        rng.uniform(-spread, spread, n),
        rng.uniform(0.5, 2, (n, 1)),
        rng.uniform(0.5, 2, (n, 1)),
        rng.uniform(1, 5, (n, 1)),
        rng.uniform(-np.pi, np.pi, n),
    ]


def to_local(points, box):
    """World BEV points (N, 2) in a box's frame: along the length, along the width."""
    corners = box_corners(box)
    length_axis = (corners[0] - corners[3])[[0, 2]] / box[5]
    width_axis = (corners[0] - corners[1])[[0, 2]] / box[4]
    rel = points - box[[0, 2]]
    return np.c_[rel @ length_axis, rel @ width_axis]


def test_bev_intersection_matches_monte_carlo():
    """Uniform samples inside box a (built from box_corners' axes) that fall inside box b."""
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 40, spread=1.2), random_boxes(rng, 40, spread=1.2)
    exact = bev_intersection_area(a, b)
    estimate = np.zeros(len(a))
    for i in range(len(a)):
        corners = box_corners(a[i])
        u, v = rng.uniform(-0.5, 0.5, (2, 400_000, 1))
        origin = a[i, [0, 2]]
        points = (
            origin + u * (corners[0] - corners[3])[[0, 2]] + v * (corners[0] - corners[1])[[0, 2]]
        )
        local = to_local(points, b[i])
        inside = (np.abs(local[:, 0]) <= b[i, 5] / 2) & (np.abs(local[:, 1]) <= b[i, 4] / 2)
        estimate[i] = inside.mean() * a[i, 4] * a[i, 5]
    assert (exact > 0.05).sum() > 20  # mostly overlapping pairs
    np.testing.assert_allclose(exact, estimate, atol=0.03)
    assert np.abs(exact - estimate).mean() < 0.01


def test_identical_and_symmetric_boxes():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 200, spread=30)
    np.testing.assert_allclose(bev_iou(boxes, boxes), 1.0, atol=1e-12)
    np.testing.assert_allclose(iou_3d(boxes, boxes), 1.0, atol=1e-12)
    # axis-aligned and 90-degree-turned twins: parallel, coincident edges everywhere
    square = np.array([0.0, 1.0, 10.0, 1.5, 2.0, 2.0, 0.0])
    assert bev_iou(square, np.r_[square[:6], np.pi / 2]) == pytest.approx(1.0, abs=1e-12)
    other = random_boxes(rng, 200)
    np.testing.assert_allclose(
        bev_iou(boxes[:, None], other[None]), bev_iou(other[:, None], boxes[None]).T, atol=1e-12
    )


def test_closed_forms():
    a = np.array([0.0, 2.0, 10.0, 2.0, 2.0, 4.0, 0.0])  # BEV 4 x 2 m, y in [0, 2]
    shifted = a + [1.0, 0.5, 0, 0, 0, 0, 0]  # BEV overlap 3 x 2, height 1.5
    bev, iou3d = bev_and_3d_iou(a, shifted)
    assert bev == pytest.approx(6 / 10)
    assert iou3d == pytest.approx(9 / (16 + 16 - 9))
    # a 2 x 2 square and its 45-degree turn: intersection is a regular octagon
    square = np.array([0.0, 1.0, 0.0, 1.0, 2.0, 2.0, 0.0])
    octagon = 8 * (np.sqrt(2) - 1)
    assert bev_intersection_area(square, np.r_[square[:6], np.pi / 4]) == pytest.approx(octagon)
    assert bev_iou(a, a + [10, 0, 0, 0, 0, 0, 0]) == 0.0
    assert iou_3d(a, a + [0, 5, 0, 0, 0, 0, 0]) == 0.0


def test_2d_overlaps():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(iou_2d(a, b), [1 / 3, 0.0, 1.0])
    np.testing.assert_allclose(intersection_over_first_2d(a, b), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(iou_2d(a[:, None], b[None]).shape, (1, 3))
