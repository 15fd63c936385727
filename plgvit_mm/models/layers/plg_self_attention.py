"""PLG-SA: parallel local (window) and global (pooled grid) self-attention on split channels."""

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from .global_pooled_attention import GlobalPooledAttention, upsample_tokens
from .local_window_attention import LocalWindowAttention


@register_notrace_module  # one leaf for torch.fx: padding and projection order depend on sizes
class PLGSelfAttention(nn.Module):
    """Split channels into a local and a global part, attend in parallel, concat, project.

    ``out = proj(concat[local_proj(local), upsample(global_proj(global))])`` where ``local`` is
    :class:`LocalWindowAttention` and ``global`` :class:`GlobalPooledAttention` (G x G tokens).
    It is evaluated without the concat: the global projections run on the G x G grid before
    upsampling (exact: Linear maps commute with bilinear upsampling, whose weights sum to 1) and
    the local ones are applied (or folded into one matrix) straight to C channels.

    Args:
        dim: channels C.
        local_heads / global_heads: heads of each branch.
        local_window: local window side (tokens). global_window: pooled grid side G.
        global_ratio: fraction r of the channels given to the global branch
            (``round(C * r)`` channels; PLG-ViT uses 0.5).
        patch_sampling: ``'max_avg'`` or ``'max'`` (see :class:`GlobalPooledAttention`).
        branch_proj: each branch gets its own Linear output projection before the concat.

    Shapes: ``(B, H, W, C) -> (B, H, W, C)``.
    """

    def __init__(
        self,
        dim: int,
        local_heads: int,
        global_heads: int,
        local_window: int,
        global_window: int,
        global_ratio: float = 0.5,
        patch_sampling: str = "max_avg",
        branch_proj: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < global_ratio < 1.0:
            raise ValueError(
                f"global_ratio must be in (0, 1) so both branches exist, got {global_ratio}"
            )
        self.global_dim = round(dim * global_ratio)
        self.local_dim = dim - self.global_dim
        self.local_attn = LocalWindowAttention(self.local_dim, local_heads, local_window)
        self.global_attn = GlobalPooledAttention(
            self.global_dim, global_heads, global_window, pool=patch_sampling
        )
        self.local_proj = nn.Linear(self.local_dim, self.local_dim) if branch_proj else None
        self.global_proj = nn.Linear(self.global_dim, self.global_dim) if branch_proj else None
        self.proj = nn.Linear(dim, dim)

    def _project_local(self, local: torch.Tensor) -> torch.Tensor:
        """``proj[:, :C_l](local_proj(local)) + proj.bias``; the two matrices are folded into one
        when there are more tokens than output channels (cheaper at high resolution), and always
        under ``torch.compile`` / ``torch.export`` (no branch on the token count, so batch and
        size can stay symbolic)."""
        w_local = self.proj.weight[:, : self.local_dim]
        if self.local_proj is None:
            return F.linear(local, w_local, self.proj.bias)
        compiling = torch.compiler.is_compiling()
        if not compiling and local.numel() // self.local_dim <= self.proj.out_features:
            return F.linear(self.local_proj(local), w_local, self.proj.bias)
        bias = torch.addmv(self.proj.bias, w_local, self.local_proj.bias)
        return F.linear(local, w_local @ self.local_proj.weight, bias)

    def _project_global(self, tokens: torch.Tensor) -> torch.Tensor:
        """``proj[:, C_l:](global_proj(tokens))`` on the G x G tokens (no bias)."""
        if self.global_proj is not None:
            tokens = self.global_proj(tokens)
        return F.linear(tokens, self.proj.weight[:, self.local_dim :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[1:3]
        x_local, x_global = x.split([self.local_dim, self.global_dim], dim=-1)
        out = self._project_local(self.local_attn(x_local))
        global_out = self._project_global(self.global_attn(x_global))
        return out.add_(upsample_tokens(global_out, self.global_attn.grid_size, height, width))
