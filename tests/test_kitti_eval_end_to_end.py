"""KITTI evaluation end to end: generated label/result folders, tools/kitti_eval.py, fixture."""

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

from plgvit_mm.datasets.kitti_files import (
    RESULT_PRECISION,
    KittiObjects,
    read_calib_file,
    read_label_file,
    write_label_file,
)
from plgvit_mm.evaluation import evaluate_kitti, evaluate_kitti_folders
from plgvit_mm.evaluation.box_overlaps import bev_iou
from plgvit_mm.structures import boxes_to_bbox2d, rotation_y_to_alpha

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "data" / "kitti_mini"
FRAMES = ("000000", "000007", "000008")
IMAGE_SHAPE = (375, 1242)
# class: (probability, mean h w l)
CLASSES = {
    "Car": (0.4, (1.53, 1.63, 3.88)),
    "Pedestrian": (0.25, (1.76, 0.66, 0.84)),
    "Cyclist": (0.25, (1.74, 0.60, 1.76)),
    "Van": (0.06, (2.21, 1.90, 5.08)),
    "Person_sitting": (0.04, (1.27, 0.54, 0.80)),
}


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "kitti_eval_tool", REPO_ROOT / "tools" / "kitti_eval.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_scene(rng, cam2img, max_objects=12):
    """Random, physically plausible KITTI objects (no BEV overlap), KITTI-rounded, + DontCare."""
    names = np.array(list(CLASSES))
    num = rng.integers(1, max_objects + 1)
    kinds = rng.choice(len(names), num, p=[CLASSES[n][0] for n in names])
    dims = np.array([CLASSES[n][1] for n in names])[kinds] * rng.uniform(0.9, 1.1, (num, 3))
    boxes = np.c_[
        rng.uniform(-14, 14, num),
        rng.normal(1.65, 0.1, num),
        rng.uniform(5, 50, num),
        dims,
        rng.uniform(-np.pi, np.pi, num),
    ].round(2)
    bbox = boxes_to_bbox2d(boxes, cam2img, IMAGE_SHAPE).round(2)
    height = bbox[:, 3] - bbox[:, 1]
    # stay away from the difficulty height limits and from other objects
    keep = (
        np.isfinite(bbox).all(1)
        & (bbox[:, 2] - bbox[:, 0] > 2)
        & (np.minimum(abs(height - 25), abs(height - 40)) > 1.5)
    )
    overlapping = bev_iou(boxes[:, None], boxes[None]) > 0
    for i in range(num):
        keep[i] &= not (overlapping[i, :i] & keep[:i]).any()
    n = int(keep.sum())
    boxes = boxes[keep]
    objects = KittiObjects(
        names=names[kinds[keep]],
        truncated=rng.choice([0.0, 0.0, 0.0, 0.0, 0.2, 0.4, 0.8], n),
        occluded=rng.choice([0, 0, 0, 0, 1, 2, 3], n),
        alpha=rotation_y_to_alpha(boxes[:, 6], boxes[:, 0], boxes[:, 2]).round(2),
        bbox=bbox[keep],
        dimensions=boxes[:, 3:6],
        location=boxes[:, :3],
        rotation_y=boxes[:, 6],
    )
    num_dontcare = rng.integers(0, 3)
    corner = rng.uniform([0, 150], [1100, 200], (num_dontcare, 2))
    dontcare = KittiObjects(
        names=["DontCare"] * num_dontcare,
        truncated=-np.ones(num_dontcare),
        occluded=-np.ones(num_dontcare),
        alpha=np.full(num_dontcare, -10.0),
        bbox=np.c_[corner, corner + rng.uniform(10, 40, (num_dontcare, 2))].round(2),
        dimensions=-np.ones((num_dontcare, 3)),
        location=np.full((num_dontcare, 3), -1000.0),
        rotation_y=np.full(num_dontcare, -10.0),
    )
    return concat(objects, dontcare)


def concat(a, b):
    return KittiObjects(
        **{
            f: np.concatenate([getattr(a, f), getattr(b, f)])
            for f in (
                "names",
                "truncated",
                "occluded",
                "alpha",
                "bbox",
                "dimensions",
                "location",
                "rotation_y",
            )
        }
    )


def detections_from_labels(gt, rng, shift=0.0, direction=None):
    """Every Car/Pedestrian/Cyclist label as a detection, moved by ``shift`` metres along
    fixed per-object unit directions (x, y, z), random scores."""
    det = gt.select(np.isin(gt.names, ["Car", "Pedestrian", "Cyclist"]))
    if direction is not None:
        det.location = det.location + shift * direction[: len(det)]
    det.truncated[:] = -1
    det.occluded[:] = -1
    det.score = rng.uniform(0.1, 1.0, len(det))
    return det


def write_set(root, scenes, detections):
    for i, (gt, det) in enumerate(zip(scenes, detections, strict=True)):
        write_label_file(root / "label_2" / f"{i:06d}.txt", gt)
        write_label_file(root / "results" / f"{i:06d}.txt", det, RESULT_PRECISION)


@pytest.fixture(scope="module")
def generated_set(tmp_path_factory):
    rng = np.random.default_rng(7)
    cam2img = read_calib_file(FIXTURE / "training" / "calib" / "000007.txt").cam2img
    scenes = [generate_scene(rng, cam2img) for _ in range(300)]
    root = tmp_path_factory.mktemp("kitti_generated")
    for i, gt in enumerate(scenes):  # labels as KITTI writes them (2 decimals)
        write_label_file(root / "label_2" / f"{i:06d}.txt", gt)
    scenes = [read_label_file(root / "label_2" / f"{i:06d}.txt") for i in range(len(scenes))]
    return root, scenes


def test_generated_set_has_enough_objects(generated_set):
    from plgvit_mm.evaluation.kitti_eval import _flatten, _ignore_flags

    _, scenes = generated_set
    flat = _flatten(scenes, [KittiObjects.empty(True)] * len(scenes), ["Car"])
    for name in ("Car", "Pedestrian", "Cyclist"):
        for difficulty in range(3):
            ignored_gt, _ = _ignore_flags(flat, name, difficulty)
            assert (ignored_gt == 0).sum() >= 41, (name, difficulty)


def test_tiny_perturbation_scores_100_through_the_tool(generated_set, tmp_path, capsys):
    label_root, scenes = generated_set
    rng = np.random.default_rng(1)
    results = tmp_path / "results"
    for i, gt in enumerate(scenes):
        det = detections_from_labels(gt, rng, 0.003, rng.normal(size=(len(gt), 3)))
        det.bbox = det.bbox + rng.uniform(-0.05, 0.05, det.bbox.shape)
        det.alpha = det.alpha + 0.001
        write_label_file(results / f"{i:06d}.txt", det, RESULT_PRECISION)
    split = tmp_path / "val.txt"
    split.write_text("".join(f"{i:06d}\n" for i in range(len(scenes))))
    json_path = tmp_path / "metrics.json"
    metrics = load_tool().main(
        [str(label_root / "label_2"), str(results), "--split", str(split), "--json", str(json_path)]
    )
    assert len(metrics) == 3 * 3 * 2 * 6 + 3 * 3 * 2  # (2D, BEV, 3D) x 2 AP x both sets + AOS
    for key, value in metrics.items():
        assert key.startswith("kitti/")
        if "AOS" in key:
            assert 99.9 < value <= 100.0, key  # cos(0.001) is not exactly 1
        else:
            assert value == pytest.approx(100.0, abs=1e-9), key
    printed = capsys.readouterr().out
    assert f"KITTI object evaluation of {len(scenes)} frames" in printed
    for class_name in ("Car", "Pedestrian", "Cyclist"):
        assert f"\n{class_name} (objects: easy " in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("  3D@0.70 strict")]
    assert rows == [["3D@0.70", "strict"] + ["100.00"] * 6]  # Car: AP40 then AP11 x 3
    assert "note:" not in printed  # at least 41 objects everywhere
    assert json.loads(json_path.read_text()) == metrics
    # without --split every label file is scored: same frames, same numbers
    assert evaluate_kitti_folders(label_root / "label_2", results) == {
        k.removeprefix("kitti/"): v for k, v in metrics.items()
    }


@pytest.mark.slow
def test_3d_ap_drops_monotonically_with_the_perturbation(generated_set):
    _, scenes = generated_set
    rng = np.random.default_rng(3)
    directions = []
    for gt in scenes:
        d = rng.normal(size=(len(gt), 3))
        directions.append(d / np.linalg.norm(d, axis=1, keepdims=True))
    seeds = rng.integers(0, 1 << 30, len(scenes))
    aps = []
    for shift in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6):
        dets = [
            detections_from_labels(gt, np.random.default_rng(s), shift, d)
            for gt, s, d in zip(scenes, seeds, directions, strict=True)
        ]
        result = evaluate_kitti(scenes, dets)
        aps.append([result[f"{c}_3D_AP40_moderate_strict"] for c in ("Car", "Cyclist")])
        assert result["Car_2D_AP40_moderate_strict"] == pytest.approx(100.0)
    aps = np.array(aps)
    assert np.all(np.diff(aps, axis=0) <= 1e-9), aps
    assert aps[0].min() == pytest.approx(100.0) and aps[-1].max() < 5.0


def test_fixture_with_perfect_predictions_gives_the_official_values(tmp_path):
    labels = FIXTURE / "training" / "label_2"
    rng = np.random.default_rng(0)
    for frame in FRAMES:
        det = detections_from_labels(read_label_file(labels / f"{frame}.txt"), rng)
        write_label_file(tmp_path / f"{frame}.txt", det, RESULT_PRECISION)
    metrics = load_tool().main(
        [str(labels), str(tmp_path), "--split", str(FIXTURE / "ImageSets" / "val.txt")]
    )
    expected = {"easy": (2.5, 100 / 11), "moderate": (10.0, 200 / 11), "hard": (10.0, 200 / 11)}
    for difficulty, (ap40, ap11) in expected.items():
        for metric in ("2D", "BEV", "3D", "AOS"):
            key = f"kitti/Car_{metric}_AP{{}}_{difficulty}_strict"
            assert metrics[key.format(40)] == pytest.approx(ap40), key
            assert metrics[key.format(11)] == pytest.approx(ap11), key
    # one Pedestrian (easy..hard): 1 threshold; the Cyclist is 37.5 px tall: not easy
    assert metrics["kitti/Pedestrian_3D_AP11_easy_strict"] == pytest.approx(100 / 11)
    assert metrics["kitti/Pedestrian_3D_AP40_easy_strict"] == 0.0
    assert metrics["kitti/Cyclist_2D_AP11_easy_strict"] == 0.0
    assert metrics["kitti/Cyclist_2D_AP11_moderate_strict"] == pytest.approx(100 / 11)


def test_labels_scored_as_results_give_the_official_ceilings_and_aos(tmp_path, capsys):
    """--score-from-gt: the fixture's labels (DontCare lines with alpha -10 included) as
    results; AOS is reported and every value is the few-objects ceiling."""
    from plgvit_mm.evaluation.kitti_eval import perfect_ap

    labels = FIXTURE / "training" / "label_2"
    tool = load_tool()
    with pytest.raises(ValueError, match="--score-from-gt"):
        tool.main([str(labels), str(labels)])
    capsys.readouterr()
    metrics = tool.main([str(labels), str(labels), "--score-from-gt"])
    assert perfect_ap(5) == pytest.approx((10.0, 200 / 11))
    assert perfect_ap(2) == pytest.approx((2.5, 100 / 11))
    assert perfect_ap(41) == perfect_ap(400) == (100.0, 100.0)
    for difficulty, n in (("easy", 2), ("moderate", 5), ("hard", 5)):
        for metric in ("2D", "BEV", "3D", "AOS"):
            key = f"kitti/Car_{metric}_AP{{}}_{difficulty}_strict"
            assert metrics[key.format(40)] == pytest.approx(perfect_ap(n)[0]), key
            assert metrics[key.format(11)] == pytest.approx(perfect_ap(n)[1]), key
    printed = capsys.readouterr().out
    assert "Car (objects: easy 2, moderate 5, hard 5)" in printed
    assert "Car moderate: 5 objects -> at most AP40 10.00, AP11 18.18" in printed
    assert "note: the official protocol samples precision at 41 recall points" in printed


def test_missing_result_files_warn_or_fail_with_strict(tmp_path, capsys):
    labels = FIXTURE / "training" / "label_2"
    results = tmp_path / "results"
    results.mkdir()
    tool = load_tool()
    metrics = tool.main([str(labels), str(results), "--max-missing", "1"])
    assert metrics["kitti/Car_2D_AP40_moderate_strict"] == 0.0
    err = capsys.readouterr().err
    assert "warning: 3 of 3 labelled frames have no result file" in err and "000007" in err
    tool.main([str(labels), str(results)])  # 3 missing: not more than the default 3
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(labels), str(results), "--max-missing", "2", "--strict"])
    assert exit_info.value.code == 2
    assert "error: 3 of 3 labelled frames have no result file" in capsys.readouterr().err


@pytest.mark.slow
def test_3769_images_evaluate_in_under_a_minute():
    rng = np.random.default_rng(11)
    cam2img = read_calib_file(FIXTURE / "training" / "calib" / "000007.txt").cam2img
    scenes = [generate_scene(rng, cam2img, max_objects=16) for _ in range(3769)]
    dets = []
    for gt in scenes:  # noisy detections plus false positives, ~20 per image
        det = detections_from_labels(gt, rng, 0.5, rng.normal(size=(len(gt), 3)))
        fake = detections_from_labels(generate_scene(rng, cam2img, max_objects=10), rng)
        dets.append(
            KittiObjects(
                **{
                    f: np.concatenate([getattr(det, f), getattr(fake, f)])
                    for f in (
                        "names",
                        "truncated",
                        "occluded",
                        "alpha",
                        "bbox",
                        "dimensions",
                        "location",
                        "rotation_y",
                        "score",
                    )
                }
            )
        )
    start = time.perf_counter()
    result = evaluate_kitti(scenes, dets)
    elapsed = time.perf_counter() - start
    print(
        f"3769 images, {sum(map(len, scenes))} labels, {sum(map(len, dets))} detections: "
        f"{elapsed:.1f} s"
    )
    assert 0 < result["Car_3D_AP40_moderate_loose"] < 100
    assert elapsed < 60
