"""Generated KITTI-format driving scenes: labels agree with the drawn pixels, files and splits."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from plgvit_mm.datasets import synthetic_kitti as sk  # noqa: E402
from plgvit_mm.datasets.kitti_files import (  # noqa: E402
    read_calib_file,
    read_image_set,
    read_label_file,
)
from plgvit_mm.structures import box_corners, project_points  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "data" / "kitti_mini" / "training"


def demo_split(split: str) -> tuple[int, int]:
    """(frames, seed) of a split in tools/run_demo_mono3d.sh."""
    script = (REPO_ROOT / "tools" / "run_demo_mono3d.sh").read_text()
    frames, seed = re.search(rf'"{split} (\d+) (\d+)"', script).groups()
    return int(frames), int(seed)


@pytest.fixture(scope="module")
def frames():
    return [sk.render_frame(sk.frame_rng(5, "val", i)) for i in range(4)]


def hull_mask(box: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Pixels inside the convex hull of the projected corners of one box."""
    uv = project_points(box_corners(box), p2)[0]
    hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
    mask = np.zeros(sk.IMAGE_SHAPE, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def test_frames_have_kitti_geometry(frames):
    fixture_p2 = read_calib_file(FIXTURE / "calib" / "000000.txt").P2
    for frame in frames:
        assert frame.image.shape == (375, 1242, 3) and frame.image.dtype == np.uint8
        np.testing.assert_allclose(frame.calib.P2, fixture_p2, rtol=1e-6)
        assert len(frame.labels) >= 3
        objects = frame.labels.select(frame.labels.names != "DontCare")
        assert set(objects.names) <= {"Car", "Pedestrian", "Cyclist"}
        np.testing.assert_allclose(objects.location[:, 1], sk.CAMERA_HEIGHT, atol=0.01)
        assert (objects.location[:, 2] >= 5 - 2.5).all() and (objects.location[:, 2] <= 62).all()
        assert (np.abs(objects.location[:, 0]) <= 15).all()
    # the sky above the horizon, the road below it
    image = frames[0].image.astype(float)
    assert image[:60, :, 2].mean() > image[:60, :, 0].mean() + 40  # blue sky
    assert abs(image[-40:, 500:700].mean(-1).mean() - 95) < 40  # grey road


def test_projected_3d_boxes_cover_the_objects_pixels(frames):
    for frame in frames:
        p2 = frame.calib.P2
        for k, box in enumerate(frame.boxes):
            pixels = frame.instance_map == k + 1
            if frame.label_index[k] < 0:
                continue
            hull = cv2.dilate(hull_mask(box, p2).astype(np.uint8), np.ones((3, 3))) > 0
            assert pixels.sum() > 0 and (pixels <= hull).all()
            # the label's 2D box (the clipped projection) encloses them too
            x1, y1, x2, y2 = frame.labels.bbox[frame.label_index[k]]
            v, u = np.nonzero(pixels)
            assert u.min() >= x1 - 1 and u.max() <= x2 + 1
            assert v.min() >= y1 - 1 and v.max() <= y2 + 1
            # and the label's 3D box is the drawn one
            if frame.labels.names[frame.label_index[k]] != "DontCare":
                np.testing.assert_allclose(
                    frame.labels.boxes3d[frame.label_index[k]], box, atol=1e-9
                )


def test_occlusion_levels_agree_with_the_drawing_order(frames):
    """Hidden pixels belong to objects drawn later (nearer); the level follows their share."""
    levels_seen = set()
    for frame in frames:
        p2 = frame.calib.P2
        for k, box in enumerate(frame.boxes):
            j = frame.label_index[k]
            if j < 0 or frame.labels.names[j] == "DontCare":
                continue
            # the silhouette without its 1-px rim (rasterisation of faces vs hull differs there)
            own = cv2.erode(hull_mask(box, p2).astype(np.uint8), np.ones((3, 3))) > 0
            if own.sum() < 50:
                continue
            ids = frame.instance_map[own]
            hidden = ids != k + 1
            assert (ids[hidden] > k + 1).all()  # only objects drawn after this one
            fraction = hidden.mean()
            level = frame.labels.occluded[j]
            levels_seen.add(int(level))
            assert level == np.digitize(fraction, sk.OCCLUSION_LEVELS) or (
                min(abs(fraction - t) for t in sk.OCCLUSION_LEVELS) < 0.03
            ), (level, fraction)
            later = frame.instance_map[hull_mask(box, p2)]
            if not (later > k + 1).any():
                assert level == 0
        # drawn far to near
        centre = -np.linalg.solve(p2[:, :3], p2[:, 3])
        distance = np.hypot(frame.boxes[:, 0] - centre[0], frame.boxes[:, 2] - centre[2])
        assert (np.diff(distance) <= 0).all()
    assert {0, 1} <= levels_seen


def test_small_objects_are_dontcare_and_truncation_follows_the_border(frames):
    for frame in frames:
        labels = frame.labels
        height = labels.bbox[:, 3] - labels.bbox[:, 1]
        dontcare = labels.names == "DontCare"
        np.testing.assert_array_equal(dontcare, height < sk.DONTCARE_HEIGHT)
        assert (labels.alpha[dontcare] == -10).all() and (labels.occluded[dontcare] == -1).all()
        inside = (labels.bbox[:, 0] > 0) & (labels.bbox[:, 2] < 1241) & (labels.bbox[:, 3] < 374)
        assert (labels.truncated[inside & ~dontcare] == 0).all()
        assert (labels.truncated[~dontcare] <= 1).all()


def test_split_files_are_disjoint_and_reproducible(tmp_path):
    out = tmp_path / "kitti"
    ids = {
        split: sk.write_split(str(out), split, 2 if split == "val" else 1, seed=3)
        for split in sk.SPLITS
    }
    assert ids["train"] == ["000000"] and ids["test"] == ["600000"]
    for split in sk.SPLITS:
        assert read_image_set(out / "ImageSets" / f"{split}.txt") == ids[split]
    assert len({i for v in ids.values() for i in v}) == 4
    images = {
        i: cv2.imread(str(out / "training" / "image_2" / f"{i}.png"))
        for v in ids.values()
        for i in v
    }
    assert all(im.shape == (375, 1242, 3) for im in images.values())
    assert len({im.tobytes() for im in images.values()}) == 4  # no frame reused
    again = sk.render_frame(sk.frame_rng(3, "val", 1))
    np.testing.assert_array_equal(again.image, images["300001"][..., ::-1])
    label = read_label_file(out / "training" / "label_2" / "300001.txt")
    np.testing.assert_allclose(label.boxes3d, again.labels.boxes3d, atol=0.006)
    assert (label.names == again.labels.names).all()
    with pytest.raises(ValueError, match="--frames"):
        sk.write_split(str(out), "train", 0, seed=3)


def test_evaluator_scores_the_generated_labels(tmp_path, capsys):
    out = tmp_path / "kitti"
    assert sk.main([str(out), "--split", "test", "--frames", "3", "--seed", "1"]) == 0
    assert "test: 3 frames (600000..600002)" in capsys.readouterr().out
    spec = importlib.util.spec_from_file_location(
        "kitti_eval_tool", REPO_ROOT / "tools/kitti_eval.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    labels = out / "training" / "label_2"
    metrics = tool.main(
        [str(labels), str(labels), "--split", str(out / "ImageSets/test.txt"), "--score-from-gt"]
    )
    from plgvit_mm.evaluation.kitti_eval import perfect_ap

    moderate = sk.count_objects(str(out), "test")["Car_moderate"]
    assert moderate > 0
    expected = perfect_ap(moderate)[0]
    assert metrics["kitti/Car_3D_AP40_moderate_strict"] == pytest.approx(expected)
    assert metrics["kitti/Car_AOS_AP40_moderate_strict"] == pytest.approx(expected)


@pytest.mark.slow
def test_demo_test_split_holds_300_moderate_cars(tmp_path):
    counts = {}
    frames, seed = demo_split("test")
    for i in range(frames):
        frame = sk.render_frame(sk.frame_rng(seed, "test", i))
        labels = frame.labels
        height = labels.bbox[:, 3] - labels.bbox[:, 1]
        moderate = (
            (labels.names == "Car")
            & (labels.occluded <= 1)
            & (labels.truncated <= 0.3)
            & (height > 25)
        )
        counts["Car"] = counts.get("Car", 0) + int(moderate.sum())
    assert counts["Car"] >= 300, counts
