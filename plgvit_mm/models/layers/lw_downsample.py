"""LW-PLG-ViT downsampler: the light-weight variant of the Fused-MBConv (GC-ViT) reduce unit."""
from functools import partial

import torch
from timm.layers import LayerNorm2d, SEModule
from timm.models.gcvit import MbConvBlock
from torch import nn


class LWDownsample(nn.Module):
    """LN -> x + [dw3x3 -> SiLU -> SE(1/8) -> pw1x1] -> conv1x1 stride 2 (C->C') -> dw3x3 -> LN.

    Compared with timm's GC-ViT ``Downsample2d`` (the PLG-ViT unit: GELU, SE 1/4, strided 3x3 conv)
    it uses SiLU, SE reduction 1/8 and replaces the strided 3x3 conv by a strided 1x1 conv that
    sets the new width followed by a depthwise 3x3 conv.

    Shapes: ``(B, C, H, W) -> (B, C', ceil(H/2), ceil(W/2))``.
    """

    def __init__(self, dim: int, dim_out: int, se_ratio: float = 1 / 8) -> None:
        super().__init__()
        se_layer = partial(SEModule, rd_ratio=se_ratio, rd_divisor=1, bias=False)
        self.norm1 = LayerNorm2d(dim)
        self.conv_block = MbConvBlock(dim, act_layer=nn.SiLU, attn_layer=se_layer)
        self.reduction = nn.Conv2d(dim, dim_out, 1, stride=2, bias=False)
        self.conv_dw = nn.Conv2d(dim_out, dim_out, 3, padding=1, groups=dim_out, bias=False)
        self.norm2 = LayerNorm2d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_block(self.norm1(x))
        return self.norm2(self.conv_dw(self.reduction(x)))
