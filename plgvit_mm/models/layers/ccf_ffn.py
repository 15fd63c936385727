"""Convolutional channel-fusion feed-forward networks: CCF-FFN (PLG-ViT) and CCF-FFN+ (LW)."""

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from timm.layers.grn import GlobalResponseNorm
from torch import nn


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
        x = self.act(self.norm2(self.conv_dw(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)))
        return self.fc2(x)


SUM_OF_SQUARES_CHUNK = 2**18
"""Elements per chunk (1 MiB of float32) of :func:`spatial_l2_norm`."""


def spatial_l2_norm(x: torch.Tensor, chunk_elements: int = SUM_OF_SQUARES_CHUNK) -> torch.Tensor:
    """L2 norm over the middle axis: ``(B, N, C) -> (B, 1, C)``.

    Sums of squares of row chunks of ``chunk_elements`` elements, accumulated: each
    chunk's product stays in cache and the reduction runs along contiguous channels
    (``torch.linalg.vector_norm`` over a non-innermost axis is slower on CPU at every
    LW-PLG-ViT map size). Small maps are one chunk; off the CPU it is
    ``torch.linalg.vector_norm``.
    """
    if x.device.type != "cpu":  # one reduction kernel (float32 under autocast)
        return torch.linalg.vector_norm(x, dim=1, keepdim=True)
    chunks = x.split(max(1, chunk_elements // x.shape[-1]), dim=1)
    sum_sq = torch.linalg.vecdot(chunks[0], chunks[0], dim=1)
    for chunk in chunks[1:]:
        sum_sq.add_(torch.linalg.vecdot(chunk, chunk, dim=1))
    return sum_sq.sqrt_().unsqueeze(1)


class OnePassGlobalResponseNorm(GlobalResponseNorm):
    """timm's :class:`~timm.layers.GlobalResponseNorm` (same parameters and state-dict keys)
    evaluated with one elementwise pass over ``x`` after the norm (computed over the flattened
    spatial axis).

    timm computes ``x + (bias + weight * (x * Nx))`` in three full-size passes (``x * Nx``,
    ``addcmul``, ``+``); ``x * (1 + weight * Nx) + bias`` is the same value with the per-(image,
    channel) factor formed on the tiny ``(B, 1, 1, C)`` tensor, so one ``addcmul`` reads ``x``
    once and writes the output once. The stride-4 FFN maps are the largest tensors of
    LW-PLG-ViT, and at driving resolutions these passes are memory-bound. The norm is
    :func:`spatial_l2_norm`; inputs are channels-last ``(B, H, W, C)``.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__(dim, eps=eps, channels_last=True)

    def channel_factor(self, x_g: torch.Tensor) -> torch.Tensor:
        """``1 + weight * Nx`` from the spatial L2 norms ``x_g`` (``(..., C)``, same shape out)."""
        x_n = x_g / (x_g.mean(dim=-1, keepdim=True) + self.eps)
        return torch.addcmul(torch.ones_like(x_n), self.weight, x_n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = self.channel_factor(spatial_l2_norm(x.flatten(1, 2)).unsqueeze(1))  # (B,1,1,C)
        return torch.addcmul(self.bias.view(self.wb_shape), x, factor)


BANDED_MIN_ELEMENTS = 2**22
"""Hidden maps of at least this many elements per image (16 MiB of float32) take
:meth:`CCFFFNPlus.forward_banded` on CPU when no gradient is recorded (GPUs keep the full-map
kernels): at LW-PLG-ViT-A's stride-4 FFN of driving resolutions the bands stay in cache; smaller
maps gain nothing."""

BAND_ELEMENTS = 2**20
"""Hidden elements per image in one band of :meth:`CCFFFNPlus.forward_banded` (4 MiB float32)."""


@register_notrace_module  # one leaf for torch.fx: the banded path depends on the map size
class CCFFFNPlus(nn.Module):
    """CCF-FFN+: pointwise and depthwise features fused by concatenation, with GRN.

    ``p = GELU(Linear(C->hidden)(x))``; ``d = GRN(GELU(dw3x3(p)))``;
    ``out = Linear(2*hidden -> C)(concat[p, d])``, evaluated as two matmuls on the weight halves
    (no concat copy). GRN is timm's ConvNeXt-V2
    :class:`~timm.layers.GlobalResponseNorm` (channels-last, zero-initialised, identity at init),
    evaluated in one pass (:class:`OnePassGlobalResponseNorm`).

    On CPU without gradient recording, hidden maps of at least :data:`BANDED_MIN_ELEMENTS` per
    image are evaluated in row bands (:meth:`forward_banded`, the same value).

    Shapes: ``(B, H, W, C) -> (B, H, W, C)``; ``hidden = round(C * mlp_ratio)`` (paper: 3).
    """

    def __init__(self, dim: int, mlp_ratio: float = 3.0) -> None:
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.conv_dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.grn = OnePassGlobalResponseNorm(hidden)
        self.hidden = hidden
        self.fc2 = nn.Linear(2 * hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # the banded path is eager-only
            height, width = x.shape[1:3]
            if (
                x.device.type == "cpu"
                and not torch.is_grad_enabled()
                and height * width * self.hidden >= BANDED_MIN_ELEMENTS
            ):
                return self.forward_banded(x)
        pointwise = self.act(self.fc1(x))
        depthwise = self.grn(
            self.act(self.conv_dw(pointwise.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        )
        w_pointwise, w_depthwise = self.fc2.weight.split(self.hidden, dim=1)
        out = F.linear(pointwise, w_pointwise, self.fc2.bias)
        return out.add_(F.linear(depthwise, w_depthwise))

    def forward_banded(self, x: torch.Tensor) -> torch.Tensor:
        """The same value as :meth:`forward`, computed in bands of rows (no autograd support).

        Pass 1, per band of :data:`BAND_ELEMENTS` hidden elements: ``p`` of the band and its two
        halo rows, ``d = GELU(dw3x3(p))``, the band's sums of squares of ``d`` (GRN's norm) and
        ``fc2``'s pointwise half; ``d`` is kept. The band's hidden maps stay in cache, where the
        full-map evaluation streams each one through memory several times. Pass 2: GRN folded
        into ``fc2``'s depthwise half, ``W_d (d * factor + b) = d (W_d * factor)^T + W_d b``,
        one batched matmul over the kept ``d`` (``W_d b`` joins the pass-1 bias).
        """
        batch, height, width, _ = x.shape
        hidden, conv = self.hidden, self.conv_dw
        rows = max(1, BAND_ELEMENTS // (width * hidden))
        w_pointwise, w_depthwise = self.fc2.weight.split(hidden, dim=1)
        bias = torch.addmv(self.fc2.bias, w_depthwise, self.grn.bias)
        out = x.new_empty(batch, height, width, self.fc2.out_features)
        depthwise = x.new_empty(batch, height, width, hidden)
        sum_sq = x.new_zeros(batch, hidden)
        for top in range(0, height, rows):
            bottom = min(top + rows, height)
            first, last = max(top - 1, 0), min(bottom + 1, height)
            pointwise = self.act(self.fc1(x[:, first:last]))  # (B, rows + halo, W, hidden)
            halo = pointwise
            if first == top or last == bottom:  # zero rows outside the map, as conv padding
                halo = F.pad(pointwise, (0, 0, 0, 0, int(first == top), int(last == bottom)))
            band = F.conv2d(
                halo.permute(0, 3, 1, 2), conv.weight, conv.bias, padding=(0, 1), groups=hidden
            )
            band = self.act(band.permute(0, 2, 3, 1))  # (B, bottom - top, W, hidden)
            flat = band.flatten(1, 2)
            sum_sq += torch.linalg.vecdot(flat, flat, dim=1)
            depthwise[:, top:bottom] = band
            inner = pointwise[:, top - first : top - first + bottom - top]
            out[:, top:bottom] = F.linear(inner, w_pointwise, bias)
        factor = self.grn.channel_factor(sum_sq.sqrt_())  # (B, hidden)
        weights = w_depthwise * factor[:, None, :]  # (B, C, hidden)
        out.view(batch, height * width, -1).baddbmm_(
            depthwise.view(batch, height * width, hidden), weights.transpose(1, 2)
        )
        return out
