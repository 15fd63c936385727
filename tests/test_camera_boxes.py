"""3D camera boxes: corners, projection (numpy and torch), 2D boxes, angle conversions."""

from pathlib import Path

import numpy as np
import pytest
import torch

from plgvit_mm.datasets.kitti_files import read_calib_file, read_label_file
from plgvit_mm.evaluation import iou_2d
from plgvit_mm.structures import (
    alpha_to_rotation_y,
    box_corners,
    boxes_to_bbox2d,
    gravity_centers,
    limit_period,
    project_points,
    rotation_y_to_alpha,
    unproject_points,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "kitti_mini" / "training"
IMAGE_SHAPES = {"000000": (370, 1224), "000007": (375, 1242), "000008": (375, 1242)}


def test_corner_order_and_rotation():
    box = np.array([1.0, 2.0, 10.0, 1.5, 2.0, 4.0, 0.0])  # x y z h w l ry
    corners = box_corners(box)
    np.testing.assert_allclose(corners[0], [3.0, 2.0, 11.0])  # +l/2, bottom, +w/2
    np.testing.assert_allclose(corners[2], [-1.0, 2.0, 9.0])  # -l/2, bottom, -w/2
    np.testing.assert_allclose(corners[4:, 1], 0.5)  # top = y - h
    np.testing.assert_allclose(corners[4:, [0, 2]], corners[:4, [0, 2]])
    # ry = pi/2: the front (+length) points to -z (KITTI: x' = x cos + z sin, z' = -x sin + z cos)
    turned = box_corners(np.r_[box[:6], np.pi / 2])
    np.testing.assert_allclose(turned[:2, 2], [8.0, 8.0], atol=1e-12)
    np.testing.assert_allclose(gravity_centers(box), [1.0, 1.25, 10.0])


def test_numpy_and_torch_agree_and_backpropagate():
    rng = np.random.default_rng(0)
    boxes = np.c_[
        rng.uniform(-5, 5, (6, 1)),
        rng.uniform(0, 2, (6, 1)),
        rng.uniform(5, 40, (6, 1)),
        rng.uniform(0.5, 4, (6, 3)),
        rng.uniform(-3, 3, (6, 1)),
    ]
    calib = read_calib_file(FIXTURE / "calib" / "000007.txt")
    tensor = torch.tensor(boxes, requires_grad=True)
    np.testing.assert_allclose(box_corners(tensor).detach().numpy(), box_corners(boxes))
    bbox = boxes_to_bbox2d(tensor, torch.tensor(calib.cam2img))
    np.testing.assert_allclose(bbox.detach().numpy(), boxes_to_bbox2d(boxes, calib.cam2img))
    bbox.sum().backward()
    assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


@pytest.mark.parametrize("matrix", ["P2", "cam2img"])
def test_unproject_inverts_project_with_baseline_terms(matrix):
    calib = read_calib_file(FIXTURE / "calib" / "000007.txt")
    assert calib.P2[2, 3] != 0 and calib.P2[0, 3] != 0
    p = getattr(calib, matrix)
    points = np.random.default_rng(1).uniform([-10, -1, 3], [10, 3, 60], (50, 3))
    uv, depth = project_points(points, p)
    np.testing.assert_array_equal(depth, points[:, 2])
    expected_u = (p[0, :3] @ points.T + p[0, 3]) / (points[:, 2] + p[2, 3])
    np.testing.assert_allclose(uv[:, 0], expected_u)
    np.testing.assert_allclose(unproject_points(uv, depth, p), points, atol=1e-9)
    back = unproject_points(torch.tensor(uv), torch.tensor(depth), torch.tensor(p))
    np.testing.assert_allclose(back.numpy(), points, atol=1e-9)


def test_unproject_batched_cameras():
    """One camera per batch element: (B, 4, 4) with (B, N, 2) pixels and (B, N) depths."""
    cams = np.stack(
        [read_calib_file(FIXTURE / "calib" / f"{f}.txt").cam2img for f in ("000000", "000007")]
    )
    cams[1] = np.diag([0.5, 0.5, 1.0, 1.0]) @ cams[1]
    points = np.random.default_rng(2).uniform([-10, -1, 3], [10, 3, 60], (2, 20, 3))
    uv = np.stack([project_points(points[b], cams[b])[0] for b in range(2)])
    back = unproject_points(torch.tensor(uv), torch.tensor(points[..., 2]), torch.tensor(cams))
    np.testing.assert_allclose(back.numpy(), points, atol=1e-9)


@pytest.mark.parametrize("frame", sorted(IMAGE_SHAPES))
def test_projected_fixture_boxes_hug_their_2d_boxes(frame):
    labels = read_label_file(FIXTURE / "label_2" / f"{frame}.txt")
    calib = read_calib_file(FIXTURE / "calib" / f"{frame}.txt")
    keep = (labels.names != "DontCare") & (labels.truncated == 0)
    assert keep.sum() >= 1
    projected = boxes_to_bbox2d(labels.boxes3d[keep], calib.cam2img, IMAGE_SHAPES[frame])
    ious = iou_2d(projected, labels.bbox[keep])
    assert ious.min() >= 0.7, ious


def test_box_partly_behind_the_camera_is_clipped_at_the_near_plane():
    calib = read_calib_file(FIXTURE / "calib" / "000008.txt")
    box = np.array([0.0, 1.6, 1.0, 1.5, 1.6, 4.0, np.pi / 2])  # length along z: z in [-1, 3]
    bbox = boxes_to_bbox2d(box, calib.cam2img)
    assert np.isfinite(bbox).all() and bbox[2] > bbox[0]
    assert np.isnan(boxes_to_bbox2d(np.r_[0, 1.6, -5, 1.5, 1.6, 4.0, 0.0], calib.cam2img)).all()
    clipped = boxes_to_bbox2d(box, calib.cam2img, (375, 1242))
    assert clipped[0] >= 0 and clipped[3] <= 374


def test_alpha_rotation_y_conversions_on_the_fixture():
    labels = read_label_file(FIXTURE / "label_2" / "000008.txt")
    cars = labels.select(labels.names == "Car")
    x, z = cars.location[:, 0], cars.location[:, 2]
    # KITTI rounds to 0.01 and annotated alpha from the box centre ray: within a few 0.01
    np.testing.assert_allclose(rotation_y_to_alpha(cars.rotation_y, x, z), cars.alpha, atol=0.04)
    alpha = np.random.default_rng(2).uniform(-np.pi, np.pi, len(cars))
    np.testing.assert_allclose(
        rotation_y_to_alpha(alpha_to_rotation_y(alpha, x, z), x, z), alpha, atol=1e-12
    )
    wrapped = limit_period(np.array([np.pi, -np.pi, 3 * np.pi / 2, 0.1]))
    np.testing.assert_allclose(wrapped, [-np.pi, -np.pi, -np.pi / 2, 0.1])
