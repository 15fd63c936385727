"""How far detections are from the objects they find: depth, lateral and yaw errors.

AP at IoU 0.5 or 0.7 says whether a mono 3D detector is good enough; it does not say what is
wrong when it is not. For each labelled object of a class that counts at a KITTI difficulty,
the detection of that class with the largest 2D IoU in the same frame is its nearest guess
(scores play no part: the errors describe what the network localises, not how it ranks).
A guess with 2D IoU >= ``min_iou_2d`` finds the object; over the found objects the medians of
the absolute depth error (metres and relative to the true depth), the lateral error, the yaw
error modulo 180 degrees (a box turned by 180 degrees has the same extent) and the BEV IoU,
and the share of found objects with BEV IoU >= 0.5 (what the loose BEV metric asks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..datasets.kitti_files import KittiObjects
from .box_overlaps import bev_and_3d_iou, iou_2d
from .kitti_eval import DIFFICULTIES, counts_at

LOCALISATION_FIELDS = (
    "labelled",
    "found",
    "depth_error_m",
    "depth_error_relative",
    "lateral_error_m",
    "yaw_error_deg",
    "bev_iou",
    "bev_iou_at_least_0.5",
)


def _camera_boxes(objects: KittiObjects) -> np.ndarray:
    """(N, 7) x y z h w l ry from KITTI's location, dimensions (h w l) and rotation_y."""
    return np.concatenate(
        [objects.location, objects.dimensions, objects.rotation_y[:, None]], axis=1
    )


def localisation_errors(
    gt_annos: Sequence[KittiObjects],
    dt_annos: Sequence[KittiObjects],
    class_name: str = "Car",
    difficulty: str = "moderate",
    min_iou_2d: float = 0.5,
) -> dict[str, float | int | None]:
    """Errors of the nearest guesses for one class and difficulty (frames in the same order).

    Returns ``labelled`` (objects that count), ``found`` (share with a guess at 2D IoU >=
    ``min_iou_2d``) and, over the found ones (None when none is found): medians of
    ``depth_error_m``, ``depth_error_relative``, ``lateral_error_m`` (camera x),
    ``yaw_error_deg`` (modulo 180) and ``bev_iou``; ``bev_iou_at_least_0.5`` is a share.
    """
    if len(gt_annos) != len(dt_annos):
        raise ValueError(f"{len(gt_annos)} label frames but {len(dt_annos)} result frames")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty={difficulty!r}: expected one of {DIFFICULTIES}")
    level = DIFFICULTIES.index(difficulty)
    labelled, gt_found, dt_found = 0, [], []
    for gt, dt in zip(gt_annos, dt_annos, strict=True):
        gt = gt.select(counts_at(gt, class_name, level))
        dt = dt.select(dt.names == class_name)
        labelled += len(gt)
        if not len(gt) or not len(dt):
            continue
        overlaps = iou_2d(gt.bbox[:, None], dt.bbox[None])  # (G, D)
        nearest = overlaps.argmax(1)
        found = overlaps[np.arange(len(gt)), nearest] >= min_iou_2d
        gt_found.append(_camera_boxes(gt)[found])
        dt_found.append(_camera_boxes(dt)[nearest[found]])
    result: dict[str, float | int | None] = dict.fromkeys(LOCALISATION_FIELDS)
    result["labelled"] = labelled
    gt_boxes = np.concatenate(gt_found) if gt_found else np.zeros((0, 7))
    dt_boxes = np.concatenate(dt_found) if dt_found else np.zeros((0, 7))
    result["found"] = len(gt_boxes) / labelled if labelled else None
    if not len(gt_boxes):
        return result
    depth_error = np.abs(dt_boxes[:, 2] - gt_boxes[:, 2])
    yaw = np.abs(dt_boxes[:, 6] - gt_boxes[:, 6]) % np.pi
    bev, _ = bev_and_3d_iou(gt_boxes, dt_boxes)
    result.update(
        {
            "depth_error_m": float(np.median(depth_error)),
            "depth_error_relative": float(np.median(depth_error / gt_boxes[:, 2])),
            "lateral_error_m": float(np.median(np.abs(dt_boxes[:, 0] - gt_boxes[:, 0]))),
            "yaw_error_deg": float(np.degrees(np.median(np.minimum(yaw, np.pi - yaw)))),
            "bev_iou": float(np.median(bev)),
            "bev_iou_at_least_0.5": float(np.mean(bev >= 0.5)),
        }
    )
    return result


__all__ = ["LOCALISATION_FIELDS", "localisation_errors"]
