"""Monocular 3D detection (mmdet registries): detector, head, box coder and losses."""

from .box_coder import KITTI_DIMS_MEAN, Mono3DBoxCoder
from .center_head import Mono3DCenterHead
from .detector import Mono3DDetector
from .dimension_aware_l1_loss import DimensionAwareL1Loss
from .laplacian_depth_loss import LaplacianAleatoricDepthLoss

__all__ = [
    "KITTI_DIMS_MEAN",
    "DimensionAwareL1Loss",
    "LaplacianAleatoricDepthLoss",
    "Mono3DBoxCoder",
    "Mono3DCenterHead",
    "Mono3DDetector",
]
