"""NeighborhoodAttention2D: qkv projection + na2d + output projection, channels-last."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module, trunc_normal_
from torch import Tensor, nn

from .na2d import check_kernel_dilation, na2d_validated


@register_notrace_module  # one leaf for torch.fx: its padding depends on the input size
class NeighborhoodAttention2D(nn.Module):
    """Neighborhood attention layer of NAT/DiNAT on (B, H, W, C) maps.

    Parameters carry the official checkpoint names: ``qkv`` (Linear C -> 3C, output rows q, k, v,
    head-major inside each), ``rpb`` (heads, 2*ky-1, 2*kx-1; absent without ``rel_pos_bias``),
    ``proj`` (Linear C -> C). Maps smaller than kernel_size * dilation are zero-padded on the
    right/bottom, attended without masking and cropped (legacy NATTEN <= 0.15, which the official
    checkpoints were trained with) when ``pad_small_inputs``; otherwise they raise ValueError.
    Public attributes ``dim``, ``num_heads``, ``kernel_size`` and ``dilation`` ((y, x) pairs)
    describe the layer for FLOP counting (see :meth:`attention_macs`).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int | tuple[int, int],
        dilation: int | tuple[int, int] = 1,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        rel_pos_bias: bool = True,
        pad_small_inputs: bool = True,
    ) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"dim {dim} must be a positive multiple of num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = dim // num_heads
        self.kernel_size, self.dilation = check_kernel_dilation(kernel_size, dilation)
        self.scale = qk_scale if qk_scale is not None else self.head_dim**-0.5
        self.pad_small_inputs = pad_small_inputs
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        if rel_pos_bias:
            ky, kx = self.kernel_size
            self.rpb = nn.Parameter(torch.empty(num_heads, 2 * ky - 1, 2 * kx - 1))
            trunc_normal_(self.rpb, std=0.02)
        else:
            self.register_parameter("rpb", None)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_heads={self.num_heads}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, rel_pos_bias={self.rpb is not None}, "
            f"attn_drop={self.attn_drop}, pad_small_inputs={self.pad_small_inputs}"
        )

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """Map size the attention runs on: at least kernel_size * dilation per axis."""
        (ky, kx), (dy, dx) = self.kernel_size, self.dilation
        return max(height, ky * dy), max(width, kx * dx)

    def attention_macs(self, height: int, width: int) -> int:
        """Multiply-accumulates of q.k and attn.v for one (height, width) map, batch 1."""
        hp, wp = self.padded_size(height, width)
        return 2 * hp * wp * self.kernel_size[0] * self.kernel_size[1] * self.dim

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        batch, height, width, channels = x.shape
        if channels != self.dim:
            raise ValueError(f"input channels {channels} != dim {self.dim} (x is (B, H, W, C))")
        hp, wp = self.padded_size(height, width)
        if (hp, wp) != (height, width):
            if not self.pad_small_inputs:
                raise ValueError(
                    f"feature map {height}x{width} is smaller than kernel_size * dilation = "
                    f"{hp}x{wp} (per axis at least); enable pad_small_inputs or use a larger input"
                )
            x = F.pad(x, (0, 0, 0, wp - width, 0, hp - height))
        qkv = self.qkv(x).reshape(batch, hp, wp, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.unbind(3)
        attn_drop = self.attn_drop if self.training else 0.0
        if torch.jit.is_scripting():  # the registered op (no attention dropout)
            if attn_drop > 0.0:
                raise RuntimeError("scripted NeighborhoodAttention2D has no attention dropout")
            (ky, kx), (dy, dx) = self.kernel_size, self.dilation
            out = torch.ops.plgvit_mm.na2d(q, k, v, self.rpb, [ky, kx], [dy, dx], self.scale)
        else:  # q, k, v, rpb pass na2d's checks by construction
            out = na2d_validated(
                q, k, v, self.kernel_size, self.dilation, self.rpb, self.scale, attn_drop
            )
        out = out.reshape(batch, hp, wp, channels)
        if (hp, wp) != (height, width):
            out = out[:, :height, :width]
        out = self.proj(out)
        return self.proj_drop(out) if self.training else out  # dropout is the identity in eval
