"""KITTI AP protocol: hand-made cases with known answers, and a loop-for-loop devkit reference."""

import numpy as np
import pytest

from plgvit_mm.datasets.kitti_files import KittiObjects
from plgvit_mm.evaluation import evaluate_kitti, get_thresholds, iou_2d
from plgvit_mm.evaluation.box_overlaps import bev_and_3d_iou, intersection_over_first_2d
from plgvit_mm.evaluation.kitti_eval import (
    LOOSE_OVERLAPS,
    MAX_OCCLUSION,
    MAX_TRUNCATION,
    MIN_HEIGHT,
    NEIGHBOUR_CLASSES,
    STRICT_OVERLAPS,
    _flatten,
    _precision_curves,
)


def objects(rows, scores=None):
    """KittiObjects from rows (name, bbox, location x z, occluded, truncated)."""
    n = len(rows)
    boxes3d = np.array([[r[2][0], 1.6, r[2][1], 1.5, 1.6, 3.9, 0.0] for r in rows]).reshape(n, 7)
    return KittiObjects(
        names=[r[0] for r in rows],
        truncated=[r[4] if len(r) > 4 else 0.0 for r in rows],
        occluded=[r[3] if len(r) > 3 else 0 for r in rows],
        alpha=np.zeros(n),
        bbox=np.array([r[1] for r in rows], dtype=float).reshape(n, 4),
        dimensions=boxes3d[:, 3:6],
        location=boxes3d[:, :3],
        rotation_y=boxes3d[:, 6],
        score=None if scores is None else np.asarray(scores, dtype=float),
    )


def box(x, width=60.0, height=50.0, y=100.0):
    return [x, y, x + width, y + height]


def perfect_cars(num, extra_gt=(), extra_dt=(), extra_scores=()):
    """``num`` images with one Car each, detected perfectly (scores 0.5..0.9), plus extras."""
    gts, dts = [], []
    for i in range(num):
        row = ("Car", box(100.0), (0.0, 20.0 + i))
        gts.append(objects([row]))
        dts.append(objects([row], [0.5 + 0.4 * i / num]))
    gts.append(objects(list(extra_gt)))
    dts.append(objects(list(extra_dt), list(extra_scores)))
    return gts, dts


def test_get_thresholds_counts():
    assert len(get_thresholds(np.linspace(1, 0, 2), 2)) == 2
    assert len(get_thresholds(np.linspace(1, 0, 40), 40)) == 40
    assert len(get_thresholds(np.linspace(1, 0, 41), 41)) == 41
    assert len(get_thresholds(np.linspace(1, 0, 500), 500)) == 41
    # half the objects found: thresholds at recall 0 .. 0.5 only (21 of 41)
    assert len(get_thresholds(np.linspace(1, 0, 40), 80)) == 21


@pytest.mark.parametrize(
    "num,ap40,ap11",
    [(2, 2.5, 100 / 11), (40, 97.5, 1000 / 11), (41, 100.0, 100.0), (80, 100.0, 100.0)],
)
def test_perfect_detections_ap_depends_on_gt_count(num, ap40, ap11):
    gts, dts = perfect_cars(num)
    result = evaluate_kitti(gts, dts, ["Car"])
    for metric in ("2D", "BEV", "3D", "AOS"):
        assert result[f"Car_{metric}_AP40_moderate_strict"] == pytest.approx(ap40, abs=1e-9)
        assert result[f"Car_{metric}_AP11_moderate_strict"] == pytest.approx(ap11, abs=1e-9)


def test_half_recall():
    gts, dts = perfect_cars(
        40, extra_gt=[("Car", box(300.0 + 70 * k), (5.0 * k + 10, 80.0)) for k in range(40)]
    )
    result = evaluate_kitti(gts, dts, ["Car"])
    assert result["Car_2D_AP40_easy_strict"] == pytest.approx(50.0)
    assert result["Car_2D_AP11_easy_strict"] == pytest.approx(600 / 11)


def test_false_positive_above_all_true_positives():
    fp = ("Car", box(900.0), (30.0, 50.0))
    gts, dts = perfect_cars(41, extra_dt=[fp], extra_scores=[0.99])
    result = evaluate_kitti(gts, dts, ["Car"])
    # precision i / (i + 1) at the 41 thresholds, max to the right: 41 / 42 everywhere
    for key in ("2D_AP40", "2D_AP11", "3D_AP40", "BEV_AP11"):
        assert result[f"Car_{key}_hard_strict"] == pytest.approx(100 * 41 / 42)


def test_dontcare_hides_false_positive_in_2d_only():
    fp = ("Car", box(900.0), (30.0, 50.0))
    dontcare = ("DontCare", [880.0, 90.0, 980.0, 160.0], (-1000.0, -1000.0), -1, -1.0)
    gts, dts = perfect_cars(41, extra_gt=[dontcare], extra_dt=[fp], extra_scores=[0.99])
    result = evaluate_kitti(gts, dts, ["Car"])
    assert result["Car_2D_AP40_moderate_strict"] == pytest.approx(100.0)
    assert result["Car_3D_AP40_moderate_strict"] == pytest.approx(100 * 41 / 42)
    assert result["Car_BEV_AP40_moderate_strict"] == pytest.approx(100 * 41 / 42)


@pytest.mark.parametrize(
    "gt_name,det_name,expected",
    [
        ("Van", "Car", 100.0),
        ("Truck", "Car", 100 * 41 / 42),
        ("Person_sitting", "Pedestrian", 100.0),
        ("Cyclist", "Pedestrian", 100 * 41 / 42),
    ],
)
def test_neighbouring_classes(gt_name, det_name, expected):
    gts, dts = perfect_cars(
        41,
        extra_gt=[(gt_name, box(900.0), (30.0, 50.0))],
        extra_dt=[(det_name, box(900.0), (30.0, 50.0))],
        extra_scores=[0.99],
    )
    if det_name == "Pedestrian":
        for anno in gts + dts:
            anno.names = np.where(anno.names == "Car", "Pedestrian", anno.names)
    result = evaluate_kitti(gts, dts, [det_name])
    assert result[f"{det_name}_3D_AP40_moderate_strict"] == pytest.approx(expected)


def test_small_detection_is_ignored_and_hard_gt_counts_only_at_hard():
    small_fp = ("Car", box(900.0, height=20.0), (30.0, 50.0))
    occluded = ("Car", box(700.0), (-20.0, 60.0), 2)
    gts, dts = perfect_cars(41, extra_gt=[occluded], extra_dt=[small_fp], extra_scores=[0.99])
    result = evaluate_kitti(gts, dts, ["Car"])
    assert result["Car_2D_AP40_moderate_strict"] == pytest.approx(100.0)
    # at hard the occluded car is a missed object: recall reaches 41/42 < 40/40, so only 40
    # thresholds (recall 0 .. 39/40) exist: AP40 = 39/40
    assert len(get_thresholds(np.linspace(0.9, 0.5, 41), 42)) == 40
    assert result["Car_2D_AP40_hard_strict"] == pytest.approx(97.5)


def test_two_pass_matching():
    """Threshold pass: highest score; counting pass: largest overlap (values by hand).

    Image 1: GT B then GT A; det1 (0.9) has IoU 0.75 with B and 0.8 with A, det2 (0.8) IoU
    0.85 with B only. Image 2: GT C found by det4 (0.5). Threshold pass: B takes det1 (score),
    A finds nothing, C takes det4 -> thresholds (0.9, 0.5). Counting pass at 0.5: B takes det2
    (overlap), A takes det1, C det4: precision 1. Max-score counting would give 2/3 (AP40
    1.67), max-overlap thresholds three thresholds (AP40 5.0).
    """

    def square(x0):
        return [x0, 100.0, x0 + 100.0, 200.0]

    # 1-D overlaps of 100 x 100 boxes: IoU(shift s) = (100 - s) / (100 + s)
    shift_075, shift_080, shift_085 = 100 / 7, 100 / 9, 15 / 1.85
    gt_b, gt_a = square(0.0), square(shift_075 + shift_080)
    det1 = square(shift_075)
    det2 = [-shift_085, 100.0, 100.0 - shift_085, 200.0]
    gts = [
        objects([("Car", gt_b, (0.0, 10.0)), ("Car", gt_a, (5.0, 10.0))]),
        objects([("Car", square(400.0), (0.0, 30.0))]),
    ]
    dts = [
        objects([("Car", det1, (0.0, 50.0)), ("Car", det2, (0.0, 60.0))], [0.9, 0.8]),
        objects([("Car", square(400.0), (0.0, 30.0))], [0.5]),
    ]
    assert iou_2d(np.array(det1), np.array(gt_b)) == pytest.approx(0.75)
    assert iou_2d(np.array(det1), np.array(gt_a)) == pytest.approx(0.8)
    assert iou_2d(np.array(det2), np.array(gt_b)) == pytest.approx(0.85)
    assert iou_2d(np.array(det2), np.array(gt_a)) < 0.7
    result = evaluate_kitti(gts, dts, ["Car"])
    assert result["Car_2D_AP40_easy_strict"] == pytest.approx(2.5)
    assert result["Car_2D_AP11_easy_strict"] == pytest.approx(100 / 11)


# ----------------------------------------------------------------------------------------------
# Reference: the devkit's per-image loops (kitti_object_eval_python's clean_data,
# compute_statistics_jit, eval_class), transcribed literally, on top of our overlaps.


def reference_clean(gt, dt, name, difficulty):
    ignored_gt, ignored_dt, dontcare = [], [], []
    for i in range(len(gt)):
        height = gt.bbox[i, 3] - gt.bbox[i, 1]
        if gt.names[i] == name:
            valid_class = 1
        elif NEIGHBOUR_CLASSES.get(name) == gt.names[i]:
            valid_class = 0
        else:
            valid_class = -1
        ignore = (
            gt.occluded[i] > MAX_OCCLUSION[difficulty]
            or gt.truncated[i] > MAX_TRUNCATION[difficulty]
            or height <= MIN_HEIGHT[difficulty]
        )
        if valid_class == 1 and not ignore:
            ignored_gt.append(0)
        elif valid_class == 0 or (ignore and valid_class == 1):
            ignored_gt.append(1)
        else:
            ignored_gt.append(-1)
        if gt.names[i] == "DontCare":
            dontcare.append(gt.bbox[i])
    for i in range(len(dt)):
        height = abs(dt.bbox[i, 3] - dt.bbox[i, 1])
        if height < MIN_HEIGHT[difficulty]:
            ignored_dt.append(1)
        elif dt.names[i] == name:
            ignored_dt.append(0)
        else:
            ignored_dt.append(-1)
    return ignored_gt, ignored_dt, np.array(dontcare).reshape(-1, 4)


def reference_statistics(
    overlaps,
    gt,
    dt,
    ignored_gt,
    ignored_det,
    dontcare,
    metric,
    min_overlap,
    thresh=0.0,
    compute_fp=False,
):
    det_size, gt_size = len(dt), len(gt)
    assigned = [False] * det_size
    below = [compute_fp and dt.score[j] < thresh for j in range(det_size)]
    tp = fp = 0
    similarity = 0.0
    tp_scores = []
    for i in range(gt_size):
        if ignored_gt[i] == -1:
            continue
        det_idx, valid_detection, max_overlap, assigned_ignored = -1, -1e7, 0.0, False
        for j in range(det_size):
            if ignored_det[j] == -1 or assigned[j] or below[j]:
                continue
            overlap, score = overlaps[i, j], dt.score[j]
            if not compute_fp and overlap > min_overlap and score > valid_detection:
                det_idx, valid_detection = j, score
            elif (
                compute_fp
                and overlap > min_overlap
                and (overlap > max_overlap or assigned_ignored)
                and ignored_det[j] == 0
            ):
                max_overlap, det_idx, valid_detection, assigned_ignored = overlap, j, 1, False
            elif (
                compute_fp
                and overlap > min_overlap
                and valid_detection == -1e7
                and ignored_det[j] == 1
            ):
                det_idx, valid_detection, assigned_ignored = j, 1, True
        if valid_detection == -1e7:
            continue
        if ignored_gt[i] == 1 or ignored_det[det_idx] == 1:
            assigned[det_idx] = True
        else:
            tp += 1
            tp_scores.append(dt.score[det_idx])
            similarity += (1 + np.cos(gt.alpha[i] - dt.alpha[det_idx])) / 2
            assigned[det_idx] = True
    if compute_fp:
        for j in range(det_size):
            if not (assigned[j] or ignored_det[j] in (-1, 1) or below[j]):
                fp += 1
        if metric == 0:
            dc_overlaps = intersection_over_first_2d(dt.bbox[:, None], dontcare[None])
            for i in range(len(dontcare)):
                for j in range(det_size):
                    if assigned[j] or ignored_det[j] in (-1, 1) or below[j]:
                        continue
                    if dc_overlaps[j, i] > min_overlap:
                        assigned[j] = True
                        fp -= 1
    return tp, fp, similarity, tp_scores


def reference_curves(gts, dts, name, difficulty, metric, min_overlap):
    cleaned = [reference_clean(g, d, name, difficulty) for g, d in zip(gts, dts, strict=True)]
    overlaps = []
    for g, d in zip(gts, dts, strict=True):
        if metric == 0:
            overlaps.append(iou_2d(g.bbox[:, None], d.bbox[None]))
        else:
            overlaps.append(bev_and_3d_iou(g.boxes3d[:, None], d.boxes3d[None])[metric - 1])
    num_gt = sum(c[0].count(0) for c in cleaned)
    scores = []
    for g, d, o, c in zip(gts, dts, overlaps, cleaned, strict=True):
        scores += reference_statistics(o, g, d, *c, metric, min_overlap)[3]
    thresholds = get_thresholds(np.array(scores), num_gt)
    precision, aos = np.zeros(41), np.zeros(41)
    for t, thresh in enumerate(thresholds):
        tp = fp = sim = 0.0
        for g, d, o, c in zip(gts, dts, overlaps, cleaned, strict=True):
            a, b, s, _ = reference_statistics(o, g, d, *c, metric, min_overlap, thresh, True)
            tp, fp, sim = tp + a, fp + b, sim + s
        precision[t] = tp / (tp + fp)
        aos[t] = sim / (tp + fp)
    for t in range(len(thresholds)):
        precision[t], aos[t] = precision[t:].max(), aos[t:].max()
    return precision, aos


def random_scenes(rng, num_images):
    """Crowded scenes: GTs of many classes and states, detections jittered, duplicated,
    mislabelled, tiny and random, DontCare regions, tied scores."""
    names = ["Car", "Car", "Van", "Pedestrian", "Person_sitting", "Cyclist", "Truck", "DontCare"]
    gts, dts = [], []
    for _ in range(num_images):
        n = rng.integers(0, 7)
        x1 = rng.uniform(0, 300, n)
        y1 = rng.uniform(100, 200, n)
        width = rng.uniform(15, 120, n)
        height = rng.choice([20.0, 24.0, 25.0, 30.0, 39.0, 40.0, 45.0, 80.0], n)
        rows = []
        for i in range(n):
            loc = (rng.uniform(-3, 3), rng.uniform(10, 16))
            rows.append(
                (
                    rng.choice(names),
                    [x1[i], y1[i], x1[i] + width[i], y1[i] + height[i]],
                    loc,
                    int(rng.integers(0, 4)),
                    float(rng.choice([0.0, 0.2, 0.4, 0.7])),
                )
            )
        gt = objects(rows)
        gt.rotation_y = rng.uniform(-np.pi, np.pi, n)
        gt.alpha = rng.uniform(-np.pi, np.pi, n)
        det_rows, det_yaw = [], []
        for i in range(n):
            for _ in range(rng.integers(0, 4)):
                jitter = rng.normal(0, rng.choice([1.0, 4.0, 12.0]), 4)
                name = rows[i][0] if rng.random() < 0.8 else rng.choice(names[:-1])
                det_rows.append(
                    (
                        name,
                        list(np.array(rows[i][1]) + jitter),
                        tuple(np.array(rows[i][2]) + rng.normal(0, 0.4, 2)),
                    )
                )
                det_yaw.append(gt.rotation_y[i] + rng.normal(0, 0.2))
        for _ in range(rng.integers(0, 3)):
            det_rows.append(
                (
                    rng.choice(["Car", "Pedestrian", "Cyclist"]),
                    box(rng.uniform(0, 600), rng.uniform(10, 100), rng.uniform(15, 60)),
                    (rng.uniform(-3, 3), rng.uniform(10, 16)),
                )
            )
            det_yaw.append(rng.uniform(-np.pi, np.pi))
        scores = rng.choice(np.linspace(0.05, 1.0, 12), len(det_rows))  # ties on purpose
        dt = objects(det_rows, scores)
        dt.rotation_y = np.array(det_yaw).reshape(-1)
        dt.alpha = dt.rotation_y + 0.1
        gts.append(gt)
        dts.append(dt)
    return gts, dts


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_devkit_loops_on_random_scenes(seed):
    rng = np.random.default_rng(seed)
    gts, dts = random_scenes(rng, 30)
    classes = ["Car", "Pedestrian", "Cyclist"]
    flat = _flatten(gts, dts, classes)
    checked = 0
    for name in classes:
        for difficulty in range(3):
            for metric in range(3):
                for overlaps in (STRICT_OVERLAPS, LOOSE_OVERLAPS):
                    min_overlap = overlaps[name][metric]
                    precision, aos = _precision_curves(
                        flat, name, difficulty, metric, min_overlap, metric == 0
                    )
                    ref_precision, ref_aos = reference_curves(
                        gts, dts, name, difficulty, metric, min_overlap
                    )
                    np.testing.assert_allclose(precision, ref_precision, atol=1e-12)
                    if metric == 0:
                        np.testing.assert_allclose(aos, ref_aos, atol=1e-12)
                    checked += precision.max() > 0
    assert checked >= 20  # most curves are non-trivial
