"""The official KITTI object evaluation (2D, AOS, BEV and 3D AP; R11 and R40), on CPU.

Reproduces the devkit's ``evaluate_object.cpp`` and its widely used Python port
(``kitti_object_eval_python``: clean_data, compute_statistics_jit, get_thresholds,
eval_class) decision for decision, vectorised with numpy over images and score thresholds:

* difficulty filter: a ground truth (GT) is ignored at level d when occluded > MAX_OCCLUSION[d],
  truncated > MAX_TRUNCATION[d] or its 2D height <= MIN_HEIGHT[d]; a detection is ignored when
  its height < MIN_HEIGHT[d] (whatever its class); neighbouring classes (Van for Car,
  Person_sitting for Pedestrian) are ignored GTs;
* threshold pass: each non-ignored or ignored GT (in file order) takes the unassigned
  detection with overlap > min_overlap and the highest score; matches of non-ignored GTs to
  non-ignored detections give the true-positive scores, from which get_thresholds picks at
  most 41 score thresholds approximating recall 0, 1/40, ..., 1;
* counting pass at each threshold: each GT takes the unassigned detection above the threshold
  with overlap > min_overlap and the largest overlap, preferring non-ignored detections;
  unmatched non-ignored detections are false positives unless (2D only) they overlap a
  DontCare region by more than min_overlap of their own area;
* precision (and AOS similarity) at the picked thresholds, the rest 0, made monotone from
  the right; R40 averages entries 1..40, R11 entries 0, 4, ..., 40.

Entry point: :func:`evaluate_kitti` (or :func:`evaluate_kitti_folders` for label/result folders).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.kitti_files import KittiObjects, read_image_set, read_label_file
from .box_overlaps import bev_and_3d_iou, intersection_over_first_2d, iou_2d

DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.30, 0.50)
METRICS = ("2D", "BEV", "3D")
# minimum overlaps per class for (2D, BEV, 3D): the official (strict) and the loose set
STRICT_OVERLAPS = {
    "Car": (0.7, 0.7, 0.7),
    "Pedestrian": (0.5, 0.5, 0.5),
    "Cyclist": (0.5, 0.5, 0.5),
}
LOOSE_OVERLAPS = {
    "Car": (0.7, 0.5, 0.5),
    "Pedestrian": (0.5, 0.25, 0.25),
    "Cyclist": (0.5, 0.25, 0.25),
}
NEIGHBOUR_CLASSES = {"Car": "Van", "Pedestrian": "Person_sitting"}
KITTI_CLASSES = tuple(STRICT_OVERLAPS)
NUM_SAMPLE_POINTS = 41
INVALID_ALPHA = -10.0
_NO_DETECTION = -10000000.0  # the devkit's initial "best score" in the threshold pass
_CHUNK_ELEMENTS = 1 << 22  # images x thresholds x detections per vectorised block


def get_thresholds(
    scores: np.ndarray, num_gt: int, num_sample_pts: int = NUM_SAMPLE_POINTS
) -> np.ndarray:
    """Score thresholds approximating recall 0, 1/(n-1), ..., 1 (the devkit's getThresholds).

    Args:
        scores: (K,) scores of the true positives of the threshold pass.
        num_gt: number of non-ignored ground-truth objects.
    Returns:
        (<= num_sample_pts,) thresholds in descending order.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    current_recall = 0.0
    thresholds = []
    for i, score in enumerate(scores):
        l_recall = (i + 1) / num_gt
        r_recall = (i + 2) / num_gt if i < len(scores) - 1 else l_recall
        if (r_recall - current_recall) < (current_recall - l_recall) and i < len(scores) - 1:
            continue
        thresholds.append(score)
        current_recall += 1 / (num_sample_pts - 1.0)
    return np.array(thresholds, dtype=np.float64)


def ap_r40(precision: np.ndarray) -> np.ndarray:
    """AP in percent from (..., 41) interpolated precision: mean of entries 1..40."""
    return precision[..., 1:].sum(-1) / 40 * 100


def ap_r11(precision: np.ndarray) -> np.ndarray:
    """AP in percent from (..., 41) interpolated precision: mean of entries 0, 4, ..., 40."""
    return precision[..., 0::4].sum(-1) / 11 * 100


@dataclass
class _Flat:
    """All images' objects concatenated in image order, plus the GT-detection pair overlaps."""

    gt_names: np.ndarray  # lower case
    gt_height: np.ndarray
    gt_truncated: np.ndarray
    gt_occluded: np.ndarray
    gt_alpha: np.ndarray
    gt_image: np.ndarray
    dt_names: np.ndarray  # lower case
    dt_height: np.ndarray
    dt_alpha: np.ndarray
    dt_score: np.ndarray
    dt_image: np.ndarray
    dt_dontcare_overlap: np.ndarray  # (num_dt,) max intersection / detection area over DontCare
    pair_gt: np.ndarray  # (P,) GT index of each same-image GT-detection pair
    pair_dt: np.ndarray  # (P,) detection index
    pair_overlaps: np.ndarray  # (3, P) 2D, BEV and 3D IoU


def _concat(annos: Sequence[KittiObjects], attr: str, width: int | None = None) -> np.ndarray:
    parts = [getattr(a, attr) for a in annos]
    if parts:
        return np.concatenate(parts)
    return np.zeros((0,) if width is None else (0, width))


def _same_image_pairs(
    image_a: np.ndarray, image_b: np.ndarray, num_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) index pairs with image_a[a] == image_b[b]; both inputs sorted by image."""
    count_b = np.bincount(image_b, minlength=num_images)
    start_b = np.cumsum(count_b) - count_b
    repeats = count_b[image_a]
    pair_a = np.repeat(np.arange(len(image_a)), repeats)
    first = np.cumsum(repeats) - repeats
    pair_b = start_b[image_a[pair_a]] + np.arange(len(pair_a)) - first[pair_a]
    return pair_a, pair_b


def _flatten(
    gt_annos: Sequence[KittiObjects], dt_annos: Sequence[KittiObjects], classes: Sequence[str]
) -> _Flat:
    num_images = len(gt_annos)
    gt_image = np.repeat(np.arange(num_images), [len(a) for a in gt_annos])
    dt_image = np.repeat(np.arange(num_images), [len(a) for a in dt_annos])
    # class names compare case-insensitively, as in the devkit (strcasecmp)
    gt_names = np.char.lower(_concat(gt_annos, "names").astype(str))
    dt_names = np.char.lower(_concat(dt_annos, "names").astype(str))
    gt_bbox, dt_bbox = _concat(gt_annos, "bbox", 4), _concat(dt_annos, "bbox", 4)
    gt_boxes3d = np.concatenate([a.boxes3d for a in gt_annos] or [np.zeros((0, 7))])
    dt_boxes3d = np.concatenate([a.boxes3d for a in dt_annos] or [np.zeros((0, 7))])
    dt_height = np.abs(dt_bbox[:, 3] - dt_bbox[:, 1])
    # only GTs of an evaluated or neighbouring class and detections that some class or
    # difficulty does not discard (-1) can ever be matched
    class_names = [c.lower() for c in classes]
    matchable_names = class_names + [
        NEIGHBOUR_CLASSES[c].lower() for c in classes if c in NEIGHBOUR_CLASSES
    ]
    gt_keep = np.isin(gt_names, matchable_names)
    dt_keep = np.isin(dt_names, class_names) | (dt_height < max(MIN_HEIGHT))
    gt_idx, dt_idx = np.nonzero(gt_keep)[0], np.nonzero(dt_keep)[0]
    pair_a, pair_b = _same_image_pairs(gt_image[gt_idx], dt_image[dt_idx], num_images)
    pair_gt, pair_dt = gt_idx[pair_a], dt_idx[pair_b]
    overlaps = np.zeros((3, len(pair_gt)))
    overlaps[0] = iou_2d(gt_bbox[pair_gt], dt_bbox[pair_dt])
    overlaps[1], overlaps[2] = bev_and_3d_iou(gt_boxes3d[pair_gt], dt_boxes3d[pair_dt])
    # DontCare regions: intersection over the detection's area
    dc_idx = np.nonzero(gt_names == "dontcare")[0]
    dc_a, dc_b = _same_image_pairs(dt_image, gt_image[dc_idx], num_images)
    dontcare_overlap = np.zeros(len(dt_names))
    np.maximum.at(
        dontcare_overlap, dc_a, intersection_over_first_2d(dt_bbox[dc_a], gt_bbox[dc_idx[dc_b]])
    )
    return _Flat(
        gt_names=gt_names,
        gt_height=gt_bbox[:, 3] - gt_bbox[:, 1],
        gt_truncated=_concat(gt_annos, "truncated"),
        gt_occluded=_concat(gt_annos, "occluded"),
        gt_alpha=_concat(gt_annos, "alpha"),
        gt_image=gt_image,
        dt_names=dt_names,
        dt_height=dt_height,
        dt_alpha=_concat(dt_annos, "alpha"),
        dt_score=_concat(dt_annos, "score"),
        dt_image=dt_image,
        dt_dontcare_overlap=dontcare_overlap,
        pair_gt=pair_gt,
        pair_dt=pair_dt,
        pair_overlaps=overlaps,
    )


def _ignore_flags(flat: _Flat, class_name: str, difficulty: int) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's clean_data: (ignored_gt, ignored_det), 0 = counted, 1 = ignored, -1 = other."""
    is_class = flat.gt_names == class_name.lower()
    is_neighbour = flat.gt_names == NEIGHBOUR_CLASSES.get(class_name, "").lower()
    hard = (
        (flat.gt_occluded > MAX_OCCLUSION[difficulty])
        | (flat.gt_truncated > MAX_TRUNCATION[difficulty])
        | (flat.gt_height <= MIN_HEIGHT[difficulty])
    )
    ignored_gt = np.where(is_class & ~hard, 0, np.where(is_neighbour | is_class, 1, -1))
    ignored_dt = np.where(
        flat.dt_height < MIN_HEIGHT[difficulty],
        1,
        np.where(flat.dt_names == class_name.lower(), 0, -1),
    )
    return ignored_gt, ignored_dt


@dataclass
class _Padded:
    """Per-image padded matching problem; images sorted by GT count, descending."""

    overlaps: np.ndarray  # (I, G, D), 0 where padded
    ignored_gt: np.ndarray  # (I, G), -1 where padded
    gt_alpha: np.ndarray  # (I, G)
    ignored_dt: np.ndarray  # (I, D), -1 where padded
    score: np.ndarray  # (I, D)
    dt_alpha: np.ndarray  # (I, D)
    dontcare: np.ndarray  # (I, D) bool: inside a DontCare region (2D metric only)
    num_active: np.ndarray  # (G,) images that have a g-th GT
    dt_index: np.ndarray  # (I, D) flat detection index, -1 where padded


def _local_rank(image: np.ndarray) -> np.ndarray:
    """Position of each element within its image's block (``image`` sorted)."""
    if len(image) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.nonzero(np.diff(image))[0] + 1]
    block_start = np.repeat(starts, np.diff(np.r_[starts, len(image)]))
    return np.arange(len(image)) - block_start


def _pad(
    flat: _Flat,
    pair_ok: np.ndarray,
    pair_overlap: np.ndarray,
    ignored_gt: np.ndarray,
    ignored_dt: np.ndarray,
    dontcare: np.ndarray,
) -> _Padded:
    """Padded arrays of the GTs and detections that share at least one candidate pair."""
    pair_gt, pair_dt = flat.pair_gt[pair_ok], flat.pair_dt[pair_ok]
    gts, gt_slot = np.unique(pair_gt, return_inverse=True)
    dts, dt_slot = np.unique(pair_dt, return_inverse=True)
    images, gt_image_slot = np.unique(flat.gt_image[gts], return_inverse=True)
    dt_image_slot = np.searchsorted(images, flat.dt_image[dts])
    gt_rank, dt_rank = _local_rank(gt_image_slot), _local_rank(dt_image_slot)
    gt_count = np.bincount(gt_image_slot, minlength=len(images))
    order = np.argsort(-gt_count, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    num_images = len(images)
    num_g = int(gt_count.max()) if num_images else 0
    num_d = int(dt_rank.max()) + 1 if num_images else 0
    gt_pos, dt_pos = position[gt_image_slot], position[dt_image_slot]

    overlaps = np.zeros((num_images, num_g, num_d))
    overlaps[gt_pos[gt_slot], gt_rank[gt_slot], dt_rank[dt_slot]] = pair_overlap
    padded_ignored_gt = np.full((num_images, num_g), -1)
    padded_ignored_gt[gt_pos, gt_rank] = ignored_gt[gts]
    gt_alpha = np.zeros((num_images, num_g))
    gt_alpha[gt_pos, gt_rank] = flat.gt_alpha[gts]
    fields = {}
    for name, values, fill in (
        ("ignored_dt", ignored_dt, -1),
        ("score", flat.dt_score, 0.0),
        ("dt_alpha", flat.dt_alpha, 0.0),
        ("dontcare", dontcare, False),
        ("dt_index", np.arange(len(ignored_dt)), -1),
    ):
        array = np.full((num_images, num_d), fill, dtype=np.asarray(values).dtype)
        array[dt_pos, dt_rank] = values[dts]
        fields[name] = array
    num_active = (gt_count[:, None] > np.arange(num_g)).sum(0)
    return _Padded(
        overlaps=overlaps,
        ignored_gt=padded_ignored_gt,
        gt_alpha=gt_alpha,
        num_active=num_active,
        **fields,
    )


def _threshold_pass(p: _Padded, min_overlap: float) -> np.ndarray:
    """Scores of the true positives when every GT takes its highest-scoring candidate."""
    assigned = np.zeros(p.score.shape, dtype=bool)
    rows = np.arange(len(p.score))
    tp_scores = []
    for g, n in enumerate(p.num_active):
        candidate = (
            (p.ignored_dt[:n] != -1)
            & ~assigned[:n]
            & (p.overlaps[:n, g] > min_overlap)
            & (p.score[:n] > _NO_DETECTION)
        )
        matched = candidate.any(1)
        best = np.where(candidate, p.score[:n], -np.inf).argmax(1)
        assigned[rows[:n][matched], best[matched]] = True
        is_tp = matched & (p.ignored_gt[:n, g] == 0) & (p.ignored_dt[rows[:n], best] == 0)
        tp_scores.append(p.score[rows[:n][is_tp], best[is_tp]])
    return np.concatenate(tp_scores) if tp_scores else np.zeros(0)


def _counting_pass(
    p: _Padded, thresholds: np.ndarray, min_overlap: float, compute_aos: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per threshold (T,): true positives, AOS similarity sum, false positives among ``p``'s
    detections (those without any candidate pair are counted by the caller)."""
    num_t = len(thresholds)
    tp = np.zeros(num_t)
    similarity = np.zeros(num_t)
    false_positive = np.zeros(num_t)
    num_images, num_d = p.score.shape
    chunk = max(1, _CHUNK_ELEMENTS // max(1, num_t * num_d))
    for lo in range(0, num_images, chunk):
        hi = min(lo + chunk, num_images)
        score, ignored_dt = p.score[lo:hi], p.ignored_dt[lo:hi]
        eligible = (score[:, None, :] >= thresholds[None, :, None]) & (ignored_dt != -1)[:, None]
        assigned = np.zeros(eligible.shape, dtype=bool)
        is_valid_dt = (ignored_dt == 0)[:, None, :]
        is_ignored_dt = (ignored_dt == 1)[:, None, :]
        for g, active in enumerate(p.num_active):
            n = min(max(active - lo, 0), hi - lo)
            if n == 0:
                break
            overlap = p.overlaps[lo : lo + n, g][:, None, :]
            candidate = eligible[:n] & ~assigned[:n] & (overlap > min_overlap)
            valid = candidate & is_valid_dt[:n]
            has_valid = valid.any(2)
            best_valid = np.where(valid, overlap, -1.0).argmax(2)
            ignored = candidate & is_ignored_dt[:n]
            chosen = np.where(has_valid, best_valid, ignored.argmax(2))
            matched = has_valid | ignored.any(2)
            image, threshold = np.nonzero(matched)
            assigned[image, threshold, chosen[image, threshold]] = True
            is_tp = has_valid & (p.ignored_gt[lo : lo + n, g] == 0)[:, None]
            tp += is_tp.sum(0)
            if compute_aos:
                image, threshold = np.nonzero(is_tp)
                delta = p.gt_alpha[lo + image, g] - p.dt_alpha[lo + image, chosen[image, threshold]]
                np.add.at(similarity, threshold, (1.0 + np.cos(delta)) / 2.0)
        unmatched = eligible & ~assigned & is_valid_dt & ~p.dontcare[lo:hi, None, :]
        false_positive += unmatched.sum((0, 2))
    return tp, similarity, false_positive


def _precision_curves(
    flat: _Flat,
    class_name: str,
    difficulty: int,
    metric: int,
    min_overlap: float,
    compute_aos: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision and AOS curves, each (41,), of one class/difficulty/metric."""
    ignored_gt, ignored_dt = _ignore_flags(flat, class_name, difficulty)
    num_valid_gt = int((ignored_gt == 0).sum())
    dontcare = (
        (flat.dt_dontcare_overlap > min_overlap)
        if metric == 0
        else np.zeros(len(ignored_dt), dtype=bool)
    )
    overlap = flat.pair_overlaps[metric]
    pair_ok = (
        (ignored_gt[flat.pair_gt] != -1)
        & (ignored_dt[flat.pair_dt] != -1)
        & (overlap > min_overlap)
    )
    padded = _pad(flat, pair_ok, overlap[pair_ok], ignored_gt, ignored_dt, dontcare)
    precision = np.zeros(NUM_SAMPLE_POINTS)
    aos = np.zeros(NUM_SAMPLE_POINTS)
    if num_valid_gt == 0:
        return precision, aos
    thresholds = get_thresholds(_threshold_pass(padded, min_overlap), num_valid_gt)
    if len(thresholds) == 0:
        return precision, aos
    tp, similarity, false_positive = _counting_pass(padded, thresholds, min_overlap, compute_aos)
    # valid detections without any candidate pair are false positives unless in DontCare
    outside = np.ones(len(ignored_dt), dtype=bool)
    outside[padded.dt_index[padded.dt_index >= 0]] = False
    lonely = np.sort(flat.dt_score[outside & (ignored_dt == 0) & ~dontcare])
    false_positive += len(lonely) - np.searchsorted(lonely, thresholds, side="left")
    detections = tp + false_positive
    n = len(thresholds)
    precision[:n] = np.divide(tp, detections, out=np.zeros(n), where=detections > 0)
    aos[:n] = np.divide(similarity, detections, out=np.zeros(n), where=detections > 0)
    # monotone: each entry becomes the maximum of itself and everything to its right
    return (np.maximum.accumulate(precision[::-1])[::-1], np.maximum.accumulate(aos[::-1])[::-1])


def _check_annos(
    gt_annos: Sequence[KittiObjects], dt_annos: Sequence[KittiObjects], classes: Sequence[str]
) -> None:
    if len(gt_annos) != len(dt_annos):
        raise ValueError(
            f"expected one detection set per image: {len(gt_annos)} ground-truth "
            f"images, {len(dt_annos)} detection images"
        )
    unknown = [c for c in classes if c not in STRICT_OVERLAPS]
    if unknown:
        raise ValueError(f"unknown KITTI class(es) {unknown}; expected some of {KITTI_CLASSES}")
    for i, dt in enumerate(dt_annos):
        if dt.score is None and len(dt):
            raise ValueError(f"detections of image #{i} have no scores (16th field)")


def evaluate_kitti(
    gt_annos: Sequence[KittiObjects],
    dt_annos: Sequence[KittiObjects],
    classes: Sequence[str] = KITTI_CLASSES,
) -> dict[str, float]:
    """Score detections against KITTI labels with the official protocol.

    Args:
        gt_annos: per image, the label file's objects (incl. DontCare, Van, ...).
        dt_annos: per image (same order), detections with scores (16-field result lines).
        classes: classes to score (Car, Pedestrian, Cyclist).
    Returns:
        AP in percent under keys ``{class}_{2D|BEV|3D|AOS}_AP{11|40}_{difficulty}_{strict|loose}``
        (AOS: strict only, and only when no detection of the scored classes has alpha = -10;
        other lines, e.g. DontCare with alpha -10, are ignored for that check).
    """
    _check_annos(gt_annos, dt_annos, classes)
    dt_annos = [d if d.score is not None else KittiObjects.empty(with_score=True) for d in dt_annos]
    flat = _flatten(gt_annos, dt_annos, classes)
    # lines of other types (DontCare carries alpha -10) take no part in AOS
    scored = np.isin(flat.dt_names, [c.lower() for c in classes])
    compute_aos = not np.any(flat.dt_alpha[scored] == INVALID_ALPHA)
    results: dict[str, float] = {}
    for class_name in classes:
        for difficulty, difficulty_name in enumerate(DIFFICULTIES):
            curves: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}
            for overlap_set, overlaps in (("strict", STRICT_OVERLAPS), ("loose", LOOSE_OVERLAPS)):
                for metric, metric_name in enumerate(METRICS):
                    min_overlap = overlaps[class_name][metric]
                    key = (metric, min_overlap)
                    if key not in curves:
                        curves[key] = _precision_curves(
                            flat,
                            class_name,
                            difficulty,
                            metric,
                            min_overlap,
                            compute_aos and metric == 0,
                        )
                    precision, aos = curves[key]
                    suffix = f"{difficulty_name}_{overlap_set}"
                    results[f"{class_name}_{metric_name}_AP11_{suffix}"] = float(ap_r11(precision))
                    results[f"{class_name}_{metric_name}_AP40_{suffix}"] = float(ap_r40(precision))
                    if metric == 0 and overlap_set == "strict" and compute_aos:
                        results[f"{class_name}_AOS_AP11_{suffix}"] = float(ap_r11(aos))
                        results[f"{class_name}_AOS_AP40_{suffix}"] = float(ap_r40(aos))
    return results


def counts_at(gt: KittiObjects, class_name: str, difficulty: int) -> np.ndarray:
    """(N,) bool: the labelled objects of ``class_name`` that count (are not ignored) at
    ``difficulty`` (index into DIFFICULTIES) under the protocol."""
    height = gt.bbox[:, 3] - gt.bbox[:, 1]
    return (
        (np.char.lower(gt.names.astype(str)) == class_name.lower())
        & (gt.occluded <= MAX_OCCLUSION[difficulty])
        & (gt.truncated <= MAX_TRUNCATION[difficulty])
        & (height > MIN_HEIGHT[difficulty])
    )


def count_ground_truth(
    gt_annos: Sequence[KittiObjects], classes: Sequence[str] = KITTI_CLASSES
) -> dict[tuple[str, str], int]:
    """Objects that count (are not ignored) per (class, difficulty) under the protocol."""
    return {
        (class_name, difficulty): sum(int(counts_at(gt, class_name, d).sum()) for gt in gt_annos)
        for class_name in classes
        for d, difficulty in enumerate(DIFFICULTIES)
    }


def perfect_ap(num_objects: int) -> tuple[float, float]:
    """(AP40, AP11) in percent that perfect predictions get for ``num_objects`` objects.

    Each true positive fills one of the 41 sampled recall points (1/40 apart), so with
    fewer than 41 objects the curve stops early: AP40 = 100 (n - 1) / 40 and AP11 = 100
    (floor((n - 1) / 4) + 1) / 11 (5 objects: 10.0 and 18.18).
    """
    if num_objects <= 0:
        return 0.0, 0.0
    filled = min(num_objects, NUM_SAMPLE_POINTS)
    return float(ap_r40(np.arange(NUM_SAMPLE_POINTS) < filled)), float(
        ap_r11(np.arange(NUM_SAMPLE_POINTS) < filled)
    )


def load_kitti_folders(
    label_dir: str | os.PathLike,
    result_dir: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    score_from_gt: bool = False,
) -> tuple[list[str], list[KittiObjects], list[KittiObjects], list[str]]:
    """Frame ids, ground truth, detections and the frames without a result file.

    Frames come from ``split_file`` (an ImageSets file) or, without it, every label file. A
    frame without a result file counts as an image without detections. With
    ``score_from_gt`` 15-field (label) lines are accepted as results with score 1, so the
    labels themselves can be scored as a sanity check.
    """
    label_dir, result_dir = Path(label_dir), Path(result_dir)
    if not label_dir.is_dir():
        raise FileNotFoundError(f"label folder not found: {label_dir}")
    if not result_dir.is_dir():
        raise FileNotFoundError(f"result folder not found: {result_dir}")
    if split_file is not None:
        frame_ids = read_image_set(split_file)
    else:
        frame_ids = sorted(p.stem for p in label_dir.glob("*.txt"))
    if not frame_ids:
        raise ValueError(f"no frames to evaluate: {split_file or label_dir} lists none")
    gt_annos, dt_annos, missing = [], [], []
    for frame_id in frame_ids:
        label_path = label_dir / f"{frame_id}.txt"
        if not label_path.is_file():
            raise FileNotFoundError(f"label file not found: {label_path}")
        gt_annos.append(read_label_file(label_path))
        result_path = result_dir / f"{frame_id}.txt"
        if not result_path.is_file():
            missing.append(frame_id)
            dt_annos.append(KittiObjects.empty(with_score=True))
            continue
        dt = read_label_file(result_path)
        if dt.score is None and score_from_gt:
            dt.score = np.ones(len(dt))
        if dt.score is None and len(dt):
            raise ValueError(
                f"{result_path}: result lines need 16 fields (the last is the "
                "score), got label lines with 15 (score labels as results with --score-from-gt)"
            )
        dt_annos.append(dt)
    return frame_ids, gt_annos, dt_annos, missing


def evaluate_kitti_folders(
    label_dir: str | os.PathLike,
    result_dir: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    classes: Sequence[str] = KITTI_CLASSES,
    score_from_gt: bool = False,
) -> dict[str, float]:
    """Score a folder of result files against a folder of label files (``NNNNNN.txt``);
    frames and missing result files as in :func:`load_kitti_folders`."""
    _, gt_annos, dt_annos, _ = load_kitti_folders(label_dir, result_dir, split_file, score_from_gt)
    return evaluate_kitti(gt_annos, dt_annos, classes)
