"""Non-shifted local window self-attention with a Swin-style relative position bias."""

import torch
import torch.nn.functional as F
from timm.layers import RelPosBias
from torch import nn

from .biased_attention import biased_attention


class LocalWindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping ``window x window`` windows.

    Maps that are not multiples of the window are zero-padded right/bottom; padded positions are
    masked out as keys (so valid outputs do not depend on the amount of padding) and cropped.
    The output projection is left to the caller (:class:`PLGSelfAttention` folds it).

    Args:
        dim: channels C of the input and output.
        num_heads: attention heads (``dim`` must be divisible by it).
        window_size: side of the square window, in tokens.

    Shapes: ``(B, H, W, C) -> (B, H, W, C)`` (attended values, heads concatenated).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"local branch: dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel_pos = RelPosBias((window_size, window_size), num_heads)

    def _padding_mask(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Additive key mask ``(num_windows, 1, 1, ws*ws)``: 0 for valid keys, -inf for padding."""
        ws = self.window_size
        pad_h, pad_w = -height % ws, -width % ws
        valid = torch.zeros(height + pad_h, width + pad_w, dtype=torch.bool, device=device)
        valid[:height, :width] = True
        valid = valid.view((height + pad_h) // ws, ws, (width + pad_w) // ws, ws)
        valid = valid.permute(0, 2, 1, 3).reshape(-1, 1, 1, ws * ws)
        return torch.zeros(valid.shape, device=device).masked_fill(~valid, float("-inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        ws, heads, head_dim = self.window_size, self.num_heads, channels // self.num_heads
        pad_h, pad_w = -height % ws, -width % ws
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        rows, cols = (height + pad_h) // ws, (width + pad_w) // ws
        windows = (
            x.reshape(batch, rows, ws, cols, ws, channels)
            .transpose(2, 3)
            .reshape(batch * rows * cols, ws * ws, channels)
        )
        q, k, v = (
            self.qkv(windows).view(-1, ws * ws, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        )
        attn_mask = self.rel_pos.get_bias()  # (1, heads, ws*ws, ws*ws)
        if pad_h or pad_w:
            attn_mask = attn_mask + self._padding_mask(height, width, x.device)
            attn_mask = attn_mask.repeat(batch, 1, 1, 1)
        out = biased_attention(q, k, v, attn_mask.to(q.dtype))
        # (B*rows*cols, heads, ws*ws, hd) -> (B, rows*ws, cols*ws, C)
        out = out.view(batch, rows, cols, heads, ws, ws, head_dim).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(batch, rows * ws, cols * ws, channels)
        return out[:, :height, :width] if pad_h or pad_w else out
