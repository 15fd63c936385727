"""KITTI evaluation on CPU: exact box overlaps, the official AP protocol and the mmengine metric.

The functional parts need numpy only; ``KittiMono3DMetric`` (mmdet registry) is imported only
when mmdet is installed.
"""

from importlib.util import find_spec

from .box_overlaps import (
    bev_and_3d_iou,
    bev_intersection_area,
    bev_iou,
    intersection_over_first_2d,
    iou_2d,
    iou_3d,
)
from .kitti_eval import ap_r11, ap_r40, evaluate_kitti, evaluate_kitti_folders, get_thresholds

__all__ = [
    "ap_r11",
    "ap_r40",
    "bev_and_3d_iou",
    "bev_intersection_area",
    "bev_iou",
    "evaluate_kitti",
    "evaluate_kitti_folders",
    "get_thresholds",
    "intersection_over_first_2d",
    "iou_2d",
    "iou_3d",
]

if find_spec("mmdet") is not None:
    from .kitti_metric import KittiMono3DMetric, predictions_to_kitti  # noqa: F401

    __all__ += ["KittiMono3DMetric", "predictions_to_kitti"]
