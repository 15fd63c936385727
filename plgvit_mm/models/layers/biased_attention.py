"""Multi-head attention over short token sets with an additive bias (windows, pooled grids)."""

import torch
import torch.nn.functional as F

BMM_MIN_BATCH = 32
"""Fewest (token set, head) pairs for the CPU bmm path; below, the fused kernel is as fast."""


def biased_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor,
    bmm_min_batch: int = BMM_MIN_BATCH,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v``.

    q: ``(N, heads, Lq, d)``; k, v: ``(N, heads, Lk, d)``; bias broadcastable to
    ``(N, heads, Lq, Lk)`` (relative position bias, -inf for masked keys), in q's dtype.
    Returns ``(N, heads, Lq, d)``.

    On CPU, with at least ``bmm_min_batch`` (token set, head) pairs, it runs as ``baddbmm``
    (bias + scaled q k^T), softmax, ``bmm``: for PLG-ViT's 49-token windows PyTorch's fused CPU
    kernel (``scaled_dot_product_attention``) is slower there (many small windows, e.g.
    LW-PLG-ViT-A's stride-4 local branch at driving resolutions), and as fast on fewer windows.
    Elsewhere (CUDA: flash / memory-efficient kernels) and under ``torch.compile`` /
    ``torch.export`` (no branch on the batch size, so it can stay symbolic) it is
    ``F.scaled_dot_product_attention``.
    """
    if (
        q.device.type != "cpu"
        or torch.compiler.is_compiling()
        or q.shape[0] * q.shape[1] < bmm_min_batch
    ):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    batch, heads, length, dim = q.shape
    keys = k.shape[2]
    logits = torch.baddbmm(
        bias.expand(batch, heads, length, keys).reshape(batch * heads, length, keys),
        q.reshape(batch * heads, length, dim),
        k.reshape(batch * heads, keys, dim).transpose(1, 2),
        alpha=dim**-0.5,
    )
    out = torch.bmm(logits.softmax(dim=-1), v.reshape(batch * heads, keys, v.shape[-1]))
    return out.view(batch, heads, length, -1)
