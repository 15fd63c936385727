"""Convolutional channel-fusion feed-forward networks: CCF-FFN (PLG-ViT) and CCF-FFN+ (LW)."""
import torch
import torch.nn.functional as F
from timm.layers.grn import GlobalResponseNorm
from torch import nn


def _depthwise_conv_nhwc(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply a depthwise conv to a ``(B, H, W, C)`` tensor (channels-last memory, no copy)."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class CCFFFN(nn.Module):
    """CCF-FFN: Linear(C->hidden) -> LN, GELU -> dw3x3 -> LN, GELU -> Linear(hidden->C).

    Shapes: ``(B, H, W, C) -> (B, H, W, C)``; ``hidden = round(C * mlp_ratio)`` (paper: 4).
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-6)
        self.conv_dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-6)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.fc1(x)))
        x = self.act(self.norm2(_depthwise_conv_nhwc(self.conv_dw, x)))
        return self.fc2(x)


class CCFFFNPlus(nn.Module):
    """CCF-FFN+: pointwise and depthwise features fused by concatenation, with GRN.

    ``p = GELU(Linear(C->hidden)(x))``; ``d = GRN(GELU(dw3x3(p)))``;
    ``out = Linear(2*hidden -> C)(concat[p, d])``, evaluated as two matmuls on the weight halves
    (no concat copy). GRN is timm's ConvNeXt-V2
    :class:`~timm.layers.GlobalResponseNorm` (channels-last, zero-initialised, identity at init).

    Shapes: ``(B, H, W, C) -> (B, H, W, C)``; ``hidden = round(C * mlp_ratio)`` (paper: 3).
    """

    def __init__(self, dim: int, mlp_ratio: float = 3.0) -> None:
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.conv_dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm(hidden, channels_last=True)
        self.hidden = hidden
        self.fc2 = nn.Linear(2 * hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pointwise = self.act(self.fc1(x))
        depthwise = self.grn(self.act(_depthwise_conv_nhwc(self.conv_dw, pointwise)))
        w_pointwise, w_depthwise = self.fc2.weight.split(self.hidden, dim=1)
        out = F.linear(pointwise, w_pointwise, self.fc2.bias)
        return out.add_(F.linear(depthwise, w_depthwise))
