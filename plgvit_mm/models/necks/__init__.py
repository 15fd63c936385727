"""Necks (mmdet registry): the stride-4 fusion neck of the mono 3D detector."""

from .stride4_fusion_neck import Stride4FusionNeck

__all__ = ["Stride4FusionNeck"]
