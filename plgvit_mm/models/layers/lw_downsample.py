"""LW-PLG-ViT downsampler: the light-weight variant of the Fused-MBConv (GC-ViT) reduce unit."""

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm2d, SEModule
from timm.models.gcvit import MbConvBlock
from torch import nn


class LWDownsample(nn.Module):
    """LN -> x + [dw3x3 -> SiLU -> SE(1/8) -> pw1x1] -> conv1x1 stride 2 (C->C') -> dw3x3 -> LN.

    Compared with timm's GC-ViT ``Downsample2d`` (the PLG-ViT unit: GELU, SE 1/4, strided 3x3 conv)
    it uses SiLU, SE reduction 1/8 and replaces the strided 3x3 conv by a strided 1x1 conv that
    sets the new width followed by a depthwise 3x3 conv.

    Evaluation order (same value as running ``conv_block`` then ``reduction``): the stride-2 1x1
    reduction reads only the even rows and columns of the MBConv output, and the MBConv's
    pointwise conv, SE scaling and residual add act per pixel, so they run on those positions
    only. Only LN, dw3x3, SiLU and the SE mean run at full resolution; at driving resolutions
    these maps exceed the CPU's last-level cache and each full-resolution pass is memory-bound.
    The input is taken to channels-last memory first (a no-op for the stem's output), so the
    LayerNorm2d reads contiguous NHWC and the convs run channels-last; the output is
    channels-last memory, which the stage's NHWC view reads without a copy.

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
        block = self.conv_block
        x = self.norm1(x.contiguous(memory_format=torch.channels_last))
        mid = block.act(block.conv_dw(x))
        se = block.se
        gate = se.gate(se.fc2(se.act(se.bn(se.fc1(mid.mean((2, 3), keepdim=True))))))
        # MBConv output at the even positions, then the reduction as a stride-1 1x1 conv
        even = block.conv_pw(mid[..., ::2, ::2] * gate) + x[..., ::2, ::2]
        x = F.conv2d(even, self.reduction.weight)
        return self.norm2(self.conv_dw(x))
