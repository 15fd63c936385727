"""Models: backbones (torch/timm/mmengine only); mono 3D parts are imported by plgvit_mm when mmdet is present."""

from . import backbones

__all__ = ["backbones"]
