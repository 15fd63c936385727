"""Global self-attention over a fixed, pooled G x G grid of tokens (PLG-ViT "patch sampling")."""

import torch
import torch.nn.functional as F
from timm.layers import RelPosBias
from torch import nn

from .biased_attention import biased_attention

PATCH_SAMPLINGS = ("max_avg", "max")
"""Patch sampling of the global branch: adaptive max + average pooling summed, or max only."""


class GlobalPooledAttention(nn.Module):
    """Pool the map to ``G x G`` tokens and run multi-head attention over them.

    The number of attention tokens is ``G * G`` whatever the input size, so the attention cost is
    constant and the pooling cost is linear in pixels. The output stays on the G x G grid: the
    caller projects it and brings it back to H x W with :func:`upsample_tokens`.

    Args:
        dim: channels C of the input and output.
        num_heads: attention heads (``dim`` must be divisible by it).
        grid_size: G, side of the pooled token grid.
        pool: ``'max_avg'`` = adaptive max pool + adaptive average pool, summed (PLG-ViT);
            ``'max'`` = adaptive max pool only (LW-PLG-ViT).

    Shapes: ``(B, H, W, C) -> (B, G*G, C)`` (row-major grid tokens, heads concatenated).
    """

    def __init__(self, dim: int, num_heads: int, grid_size: int, pool: str = "max_avg") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"global branch: dim={dim} is not divisible by num_heads={num_heads}")
        if pool not in PATCH_SAMPLINGS:
            raise ValueError(f"patch sampling {pool!r} is not one of {PATCH_SAMPLINGS}")
        self.num_heads = num_heads
        self.grid_size = grid_size
        self.pool = pool
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel_pos = RelPosBias((grid_size, grid_size), num_heads)

    def sample_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, G*G, C)`` pooled tokens."""
        x = x.permute(0, 3, 1, 2)
        pooled = F.adaptive_max_pool2d(x, self.grid_size)
        if self.pool == "max_avg":
            pooled = pooled + F.adaptive_avg_pool2d(x, self.grid_size)
        return pooled.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, _, channels = x.shape
        tokens = self.sample_tokens(x)
        heads, num_tokens = self.num_heads, tokens.shape[1]
        q, k, v = (
            self.qkv(tokens)
            .view(batch, num_tokens, 3, heads, channels // heads)
            .permute(2, 0, 3, 1, 4)
            .unbind(0)
        )
        out = biased_attention(q, k, v, self.rel_pos.get_bias().to(q.dtype))
        return out.transpose(1, 2).reshape(batch, num_tokens, channels)


def upsample_tokens(tokens: torch.Tensor, grid: int, height: int, width: int) -> torch.Tensor:
    """Bilinear (``align_corners=False``) ``(B, G*G, C) -> (B, H, W, C)``, channels-last memory."""
    batch, _, channels = tokens.shape
    grid_map = tokens.reshape(batch, grid, grid, channels).permute(0, 3, 1, 2)
    out = F.interpolate(grid_map, size=(height, width), mode="bilinear", align_corners=False)
    return out.permute(0, 2, 3, 1)
