"""Fusion of a backbone's stride 4/8/16/32 maps into one stride-4 map (for CenterNet heads)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
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

    With ``coord_channels`` the last (finest) merge also sees two coordinate maps, column and
    row in [-1, 1] (CoordConv, Liu et al., NeurIPS 2018): with a fixed camera above a road,
    an object's image row tells its depth, which convolutions alone only see through borders.

    ``forward(feats)``: maps (B, C_i, H_i, W_i), finest first (e.g. strides 4, 8, 16, 32;
    any sizes, not only multiples of 32) -> a 1-tuple with (B, out_channels, H_0, W_0).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 64,
        norm_cfg: OptConfigType = None,
        act_cfg: OptConfigType = None,
        coord_channels: bool = False,
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
        self.coord_channels = coord_channels
        extra = [2 if coord_channels and i == 0 else 0 for i in range(len(in_channels) - 1)]
        self.merges = nn.ModuleList(
            ConvModule(
                out_channels + e, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg
            )
            for e in extra
        )

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor]:
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} maps, got {len(feats)}")
        x = self.laterals[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.laterals[i](feats[i])
            x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            x = lateral + x
            if i == 0 and self.coord_channels:
                x = torch.cat([x, _coordinate_maps(x)], 1)
            x = self.merges[i](x)
        return (x,)


def _coordinate_maps(x: Tensor) -> Tensor:
    """(B, 2, H, W): column and row of each cell, linearly from -1 to 1."""
    b, _, h, w = x.shape
    rows = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)
    cols = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([grid_x, grid_y])[None].expand(b, 2, h, w)
