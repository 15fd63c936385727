"""3D box structures in KITTI's camera frame (numpy and torch)."""

from .camera_boxes import (
    BOX_EDGES,
    alpha_to_rotation_y,
    box_corners,
    boxes_to_bbox2d,
    gravity_centers,
    limit_period,
    project_points,
    ray_angle,
    rotation_y_to_alpha,
    unproject_points,
)

__all__ = [
    "BOX_EDGES",
    "alpha_to_rotation_y",
    "box_corners",
    "boxes_to_bbox2d",
    "gravity_centers",
    "limit_period",
    "project_points",
    "ray_angle",
    "rotation_y_to_alpha",
    "unproject_points",
]
