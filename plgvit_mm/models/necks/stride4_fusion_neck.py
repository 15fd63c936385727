"""Fusion of a backbone's stride 4/8/16/32 maps into one stride-4 map (for CenterNet heads)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class Stride4FusionNeck(BaseModule):
    """Top-down (IDA-up-like) aggregation of multi-scale maps into the finest one.

    Each input map gets a 1x1 lateral conv to ``out_channels``; starting from the coarsest,
    the running map is upsampled (bilinear) to the next finer map's size, added to its
    lateral and merged by a 3x3 conv. Convs are conv-norm-ReLU.

    ``forward(feats)``: maps (B, C_i, H_i, W_i), finest first (e.g. strides 4, 8, 16, 32;
    any sizes, not only multiples of 32) -> a 1-tuple with (B, out_channels, H_0, W_0).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 64,
        norm_cfg: OptConfigType = None,
        act_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        """``norm_cfg`` defaults to BN, ``act_cfg`` to ReLU, ``init_cfg`` to Kaiming convs."""
        super().__init__(init_cfg=init_cfg or dict(type="Kaiming", layer="Conv2d"))
        norm_cfg = norm_cfg or dict(type="BN")
        act_cfg = act_cfg or dict(type="ReLU")
        if len(in_channels) < 1:
            raise ValueError("in_channels must list at least one input map")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.laterals = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg) for c in in_channels
        )
        self.merges = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for _ in in_channels[:-1]
        )

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor]:
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} maps, got {len(feats)}")
        x = self.laterals[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.laterals[i](feats[i])
            x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            x = self.merges[i](lateral + x)
        return (x,)
