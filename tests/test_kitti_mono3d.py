"""KITTI mono 3D dataset and transforms: fixture loading and projection consistency.

Every geometric transform must satisfy project(after transform) == transform(after project):
projecting the (possibly mirrored) 3D boxes with the new ``cam2img`` gives the old
projections mapped by the transform's pixel map (``homography_matrix``), and the image
content moves by the same map.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mmdet")
pytest.importorskip("mmcv")

from mmdet.registry import DATASETS, TRANSFORMS  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import plgvit_mm  # noqa: E402,F401  (registers the mono 3D parts)
from plgvit_mm.datasets.kitti_files import read_calib_file, read_label_file  # noqa: E402
from plgvit_mm.structures import box_corners, gravity_centers, project_points, rotation_y_to_alpha  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "kitti_mini"
# corner order of a mirrored box (box_corners order: corners swap pairwise), centre stays
MIRRORED_KEYPOINTS = [1, 0, 3, 2, 5, 4, 7, 6, 8]

init_default_scope("mmdet")


def build_dataset(**kwargs):
    cfg = dict(
        type="KittiMono3DDataset", data_root=str(FIXTURE), ann_file="ImageSets/val.txt", pipeline=[]
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def loaded(frame: str = "000008") -> dict:
    dataset = build_dataset(
        pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadMono3DAnnotations")]
    )
    index = [dataset.get_data_info(i)["img_id"] for i in range(len(dataset))].index(frame)
    return dataset[index]


def keypoints(results: dict) -> np.ndarray:
    """(N, 9, 2) projected corners and gravity centres of the results' 3D boxes."""
    boxes = np.asarray(results["gt_bboxes_3d"], dtype=np.float64)
    points = np.concatenate([box_corners(boxes), gravity_centers(boxes)[:, None]], 1)
    return project_points(points, results["cam2img"])[0]


def mapped(affine: np.ndarray, uv: np.ndarray) -> np.ndarray:
    return uv @ affine[:2, :2].T + affine[:2, 2]


def test_dataset_reads_fixture_layout():
    dataset = build_dataset()
    infos = {
        dataset.get_data_info(i)["img_id"]: dataset.get_data_info(i) for i in range(len(dataset))
    }
    assert sorted(infos) == ["000000", "000007", "000008"]
    names = {
        f: [dataset.metainfo["classes"][o["bbox_label"]] for o in info["instances"]]
        for f, info in infos.items()
    }
    assert names == {
        "000000": ["Pedestrian"],
        "000007": ["Car", "Car", "Car", "Cyclist"],
        "000008": ["Car"] * 6,
    }
    assert [o["name"] for o in infos["000008"]["ignored_instances"]] == ["DontCare"] * 4
    assert [o["name"] for o in infos["000007"]["ignored_instances"]] == ["DontCare"] * 2
    info = infos["000008"]
    calib = read_calib_file(FIXTURE / "training/calib/000008.txt")
    np.testing.assert_array_equal(np.array(info["cam2img"])[:3], calib.P2)
    np.testing.assert_array_equal(np.array(info["cam2img"])[3], [0, 0, 0, 1])
    labels = read_label_file(FIXTURE / "training/label_2/000008.txt")
    np.testing.assert_allclose([o["bbox_3d"] for o in info["instances"]], labels.boxes3d[:6])
    np.testing.assert_allclose([o["bbox"] for o in info["instances"]], labels.bbox[:6])
    assert [o["occluded"] for o in info["instances"]] == [3, 1, 3, 1, 0, 0]


def test_dataset_test_split_without_labels():
    dataset = build_dataset(data_prefix=dict(img="training/image_2", calib="training/calib"))
    info = dataset.get_data_info(0)
    assert info["label_path"] is None and info["instances"] == []
    assert np.array(info["cam2img"]).shape == (4, 4)


def test_dataset_reads_one_kitti_raw_calibration_for_every_frame(tmp_path):
    raw = tmp_path / "calib_cam_to_cam.txt"
    p_rect_02 = "7.215377e+02 0 6.095593e+02 4.485728e+01 0 7.215377e+02 1.728540e+02 0 0 0 1 0"
    raw.write_text(f"calib_time: 09-Jan-2012 13:57:47\nS_02: 1392 512\nP_rect_02: {p_rect_02}\n")
    dataset = build_dataset(
        data_prefix=dict(img="training/image_2", calib=str(raw), label="training/label_2")
    )
    expected = read_calib_file(raw).cam2img
    for i in range(len(dataset)):
        np.testing.assert_array_equal(dataset.get_data_info(i)["cam2img"], expected)
    assert expected[0, 3] == pytest.approx(44.85728)


def test_dataset_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageSets/test.txt"):
        build_dataset(ann_file="ImageSets/test.txt")
    ids = tmp_path / "ids.txt"
    ids.write_text("000008\n123456\n")
    with pytest.raises(FileNotFoundError, match="123456.png"):
        build_dataset(ann_file=str(ids))


def test_load_annotations_arrays():
    results = loaded("000007")
    assert results["gt_bboxes"].shape == (4, 4) and results["gt_bboxes"].dtype == np.float32
    np.testing.assert_array_equal(results["gt_bboxes_labels"], [0, 0, 0, 2])
    assert results["gt_bboxes_3d"].shape == (4, 7)
    assert results["cam2img"].shape == (4, 4)


def test_resize_keeps_projection_consistent():
    results = loaded()
    before, boxes_before = keypoints(results), results["gt_bboxes"].copy()
    out = TRANSFORMS.build(dict(type="Mono3DResize", scale=(320, 96)))(results)
    assert out["img"].shape[:2] == (96, 318) and out["img_shape"] == (96, 318)
    sx, sy = 318 / 1242, 96 / 375
    expected = np.array([[sx, 0, sx / 2 - 0.5], [0, sy, sy / 2 - 0.5], [0, 0, 1]])
    np.testing.assert_allclose(out["homography_matrix"], expected, atol=1e-12)
    np.testing.assert_allclose(keypoints(out), mapped(expected, before), atol=1e-6)
    corners = np.concatenate(
        [mapped(expected, boxes_before[:, :2]), mapped(expected, boxes_before[:, 2:])], 1
    )
    corners[:, 0::2] = corners[:, 0::2].clip(0, 317)  # clipped to the new image
    corners[:, 1::2] = corners[:, 1::2].clip(0, 95)
    np.testing.assert_allclose(out["gt_bboxes"], corners, atol=1e-4)


def test_flip_mirrors_scene_and_keeps_projection_consistent():
    results = loaded()
    before = keypoints(results)
    boxes = results["gt_bboxes_3d"].astype(np.float64).copy()
    alpha_before = rotation_y_to_alpha(boxes[:, 6], boxes[:, 0], boxes[:, 2])
    original_cam2img = results["cam2img"].copy()
    flip = TRANSFORMS.build(dict(type="Mono3DRandomFlip", prob=1.0))
    out = flip(results)
    assert out["flip"] is True
    affine = out["homography_matrix"]
    np.testing.assert_allclose(affine, [[-1, 0, 1241], [0, 1, 0], [0, 0, 1]])
    # 1e-3 px: the mirrored rotation_y is stored in float32 like the labels' boxes
    np.testing.assert_allclose(
        keypoints(out), mapped(affine, before)[:, MIRRORED_KEYPOINTS], atol=1e-3
    )
    cam2img = out["cam2img"]
    assert cam2img[0, 0] == original_cam2img[0, 0] > 0
    assert cam2img[0, 2] == pytest.approx(1241 - original_cam2img[0, 2])
    assert cam2img[0, 3] == pytest.approx(1241 * original_cam2img[2, 3] - original_cam2img[0, 3])
    flipped = out["gt_bboxes_3d"].astype(np.float64)
    alpha_after = rotation_y_to_alpha(flipped[:, 6], flipped[:, 0], flipped[:, 2])
    # alpha -> pi - alpha (wrapped), rotation_y likewise
    np.testing.assert_allclose(np.cos(alpha_after), np.cos(math.pi - alpha_before), atol=1e-6)
    np.testing.assert_allclose(np.sin(alpha_after), np.sin(math.pi - alpha_before), atol=1e-6)
    twice = flip(out)
    np.testing.assert_allclose(twice["cam2img"], original_cam2img, atol=1e-9)
    np.testing.assert_allclose(twice["gt_bboxes_3d"], boxes, atol=1e-5)
    np.testing.assert_allclose(twice["homography_matrix"], np.eye(3))


def test_flip_probability_zero_changes_nothing():
    results = loaded()
    cam2img = results["cam2img"].copy()
    out = TRANSFORMS.build(dict(type="Mono3DRandomFlip", prob=0.0))(results)
    assert out["flip"] is False
    np.testing.assert_array_equal(out["cam2img"], cam2img)


def test_shift_scale_keeps_projection_consistent():
    np.random.seed(3)
    transform = TRANSFORMS.build(
        dict(type="Mono3DRandomShiftScale", shift_ratio=0.2, scale_ratio=0.4, prob=1.0)
    )
    for _ in range(3):
        results = loaded()
        before = keypoints(results)
        out = transform(results)
        affine = out["homography_matrix"]
        assert affine[0, 0] == affine[1, 1] != 1.0 and out["img"].shape == (375, 1242, 3)
        assert out["zoom"] == affine[0, 0]
        np.testing.assert_allclose(keypoints(out), mapped(affine, before), atol=1e-6)
        assert (out["gt_bboxes"][:, 2] <= 1241).all() and (out["gt_bboxes"] >= 0).all()


def test_pad_changes_no_coordinate():
    results = TRANSFORMS.build(dict(type="Mono3DResize", scale=(320, 96)))(loaded())
    cam2img, before = results["cam2img"].copy(), keypoints(results)
    out = TRANSFORMS.build(dict(type="Pad", size=(320, 96)))(results)
    assert out["img"].shape[:2] == (96, 320)
    np.testing.assert_array_equal(out["cam2img"], cam2img)
    np.testing.assert_allclose(keypoints(out), before)


@pytest.mark.parametrize(
    "transform",
    [
        dict(type="Mono3DResize", scale=(640, 192)),
        dict(type="Mono3DRandomFlip", prob=1.0),
        dict(type="Mono3DRandomShiftScale", shift_ratio=0.2, scale_ratio=0.4, prob=1.0),
    ],
)
def test_image_content_moves_with_the_pixel_map(transform):
    """A Gaussian blob at the projection of a 3D point lands at its new projection."""
    calib = read_calib_file(FIXTURE / "training/calib/000008.txt")
    point = np.array([[2.0, 0.5, 12.0]])
    ((u, v),) = project_points(point, calib.cam2img)[0]
    ys, xs = np.mgrid[0:375, 0:1242]
    blob = np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 6.0**2)) * 250
    results = dict(
        img=np.repeat(blob[..., None], 3, 2).astype(np.uint8),
        cam2img=calib.cam2img,
        gt_bboxes_3d=np.zeros((0, 7), np.float32),
    )
    np.random.seed(0)
    out = TRANSFORMS.build(transform)(results)
    if transform["type"] == "Mono3DRandomFlip":
        point = point * [-1, 1, 1]  # the scene is mirrored
    ((u2, v2),) = project_points(point, out["cam2img"])[0]
    weights = out["img"][..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : weights.shape[0], 0 : weights.shape[1]]
    centroid = np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()
    np.testing.assert_allclose(centroid, [u2, v2], atol=0.25)


def test_train_pipeline_packs_consistent_sample():
    from mmengine.config import Config

    cfg = Config.fromfile(
        str(Path(__file__).parents[1] / "configs/_base_/datasets/kitti_mono3d.py")
    )
    np.random.seed(1)
    pipeline = Compose(cfg.train_pipeline)
    dataset = build_dataset()
    info = dataset.get_data_info(2)
    packed = pipeline(dict(info))
    sample = packed["data_samples"]
    assert packed["inputs"].shape == (3, 384, 1280)
    meta = sample.metainfo
    gt = sample.gt_instances
    assert gt.bboxes_3d.shape == (6, 7) and gt.bboxes.shape == (6, 4) and len(gt.labels) == 6
    original = dict(
        gt_bboxes_3d=np.array([o["bbox_3d"] for o in info["instances"]]),
        cam2img=np.array(info["cam2img"]),
    )
    now = dict(gt_bboxes_3d=gt.bboxes_3d.numpy().astype(np.float64), cam2img=meta["cam2img"])
    expected = mapped(meta["homography_matrix"], keypoints(original))
    if meta["flip"]:
        expected = expected[:, MIRRORED_KEYPOINTS]
    np.testing.assert_allclose(keypoints(now), expected, atol=1e-3)
    np.testing.assert_array_equal(meta["ori_cam2img"], np.array(info["cam2img"]))
