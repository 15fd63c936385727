"""Exact neighborhood attention as sparse (CSR) attention: the fast CPU path of the reference.

Every query attends exactly ky * kx keys, so the attention matrix of one (batch, head) block is
an (H * W) x (H * W) CSR matrix with ky * kx entries per row (columns ascending, docs/design/neighborhood_attention.md).
The logits are a sampled dense-dense product (``torch.sparse.sampled_addmm``, with the relative
position bias passed as the sampled matrix's values, so ``logit = scale * q.k + bias``), the
softmax runs on the dense (rows, ky * kx) value array and the output is a CSR x dense product
(MKL on CPU). The blocks of all (batch, head) pairs are stacked block-diagonally, so each step is
one call. Work and memory are exactly O(B * heads * H * W * ky * kx): no halo keys, no masked
logits, no (H * W)^2 tensor. The backward uses the same products with the transposed (key-major)
pattern; it is deterministic on CPU (every output row is summed by one thread).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .na_windows import plane_neighbors

MIN_TOKENS_PER_WINDOW = 4
"""The CSR path serves maps with H * W >= this many windows (ky * kx); on smaller maps the
dense tiled path (a few full-size matmuls) is as fast or faster on CPU (compared at the
NAT-Tiny 224 shapes, k=7)."""


def unsupported_reason(q: Tensor, kernel_size: tuple[int, int], attn_drop: float) -> str | None:
    """Why the CSR path cannot (or should not) serve a call, or None when it should."""
    if q.device.type != "cpu":
        return f"device {q.device.type} (CPU only)"
    if q.dtype not in (torch.float32, torch.float64):
        return f"dtype {q.dtype} (float32/float64 only)"
    if attn_drop > 0.0:
        return "attention dropout"
    if torch.jit.is_tracing():
        return "torch.jit tracing (sparse CSR ops cannot be traced)"
    if q.shape[1] * q.shape[2] < MIN_TOKENS_PER_WINDOW * kernel_size[0] * kernel_size[1]:
        return "map too small to beat the dense tiled path"
    return None


@dataclass(frozen=True)
class CsrPattern:
    """Block-diagonal CSR pattern of batch * heads stacked (H * W) x (H * W) attention matrices.

    Attributes:
        crow, col: query-major (row = query) compressed rows and columns, ``n_keys`` per row.
        crow_t, col_t: the transposed, key-major pattern (row = key, columns = its queries).
        perm: (nnz,) query-major entry stored at each key-major position.
        bias: (heads * H * W * n_keys,) index of each entry of one batch element's blocks
            into the flattened (heads, 2ky - 1, 2kx - 1) bias table.
        size: (rows, rows) of the stacked matrix; n_keys: ky * kx.
    """

    crow: Tensor
    col: Tensor
    crow_t: Tensor
    col_t: Tensor
    perm: Tensor
    bias: Tensor
    size: tuple[int, int]
    n_keys: int


@functools.lru_cache(maxsize=16)
def csr_pattern(
    size: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    batch: int,
    heads: int,
    device: torch.device,
) -> CsrPattern:
    """:class:`CsrPattern` of batch * heads maps of ``size`` (built on the CPU, then moved)."""
    blocks = batch * heads
    keys, bias = plane_neighbors(size, kernel, dilation)
    tokens, n_keys = keys.shape
    table = (2 * kernel[0] - 1) * (2 * kernel[1] - 1)
    nnz = tokens * n_keys
    index = torch.int32 if blocks * nnz < 2**31 else torch.int64
    order = torch.sort(keys.flatten(), stable=True).indices  # key-major, queries ascending
    counts = torch.bincount(keys.flatten(), minlength=tokens)
    crow_t = F.pad(counts.cumsum(0), (1, 0))
    block = torch.arange(blocks)[:, None]

    def stack(per_block: Tensor, step: int, last: int | None = None) -> Tensor:
        flat = (block * step + per_block).flatten()
        if last is not None:
            flat = torch.cat([flat, torch.tensor([last])])
        return flat.to(device=device, dtype=index)

    return CsrPattern(
        crow=torch.arange(0, blocks * nnz + 1, n_keys).to(device=device, dtype=index),
        col=stack(keys.flatten(), tokens),
        crow_t=stack(crow_t[:-1], nnz, last=blocks * nnz),
        col_t=stack(order // n_keys, tokens),
        perm=stack(order, nnz),
        bias=(torch.arange(heads)[:, None] * table + bias.flatten()).flatten().to(device),
        size=(blocks * tokens, blocks * tokens),
        n_keys=n_keys,
    )


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # torch warns once that CSR support is in beta
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


def _attention(p: CsrPattern, q: Tensor, k: Tensor, bias: Tensor, scale: float) -> Tensor:
    """Softmax weights (rows, n_keys) of scale * q.k + bias over each query's keys."""
    logits = torch.sparse.sampled_addmm(_csr(p.crow, p.col, bias, p.size), q, k.t(), alpha=scale)
    return logits.values().view(-1, p.n_keys).softmax(dim=-1)


class _CsrAttention(torch.autograd.Function):
    """out = softmax(scale * q k^T + bias on the pattern) @ v; q, k, v: (rows, d) contiguous,
    bias: (nnz,) values (zeros for no bias). Gradients for q, k, v and bias."""

    @staticmethod
    def forward(
        ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float, pattern: CsrPattern
    ) -> Tensor:
        attn = _attention(pattern, q, k, bias, scale)
        ctx.save_for_backward(q, k, v, attn)
        ctx.scale, ctx.pattern = scale, pattern
        return _csr(pattern.crow, pattern.col, attn.flatten(), pattern.size) @ v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        q, k, v, attn = ctx.saved_tensors
        p, scale = ctx.pattern, ctx.scale
        grad_out = grad_out.contiguous()

        def transposed(values: Tensor) -> Tensor:
            return _csr(p.crow_t, p.col_t, values.flatten().index_select(0, p.perm), p.size)

        need_q, need_k, need_v, need_bias = ctx.needs_input_grad[:4]
        grad_v = transposed(attn) @ grad_out if need_v else None
        if not (need_q or need_k or need_bias):
            return None, None, grad_v, None, None, None
        grad_attn = (
            torch.sparse.sampled_addmm(
                _csr(p.crow, p.col, attn.flatten(), p.size), grad_out, v.t(), beta=0.0
            )
            .values()
            .view_as(attn)
        )
        grad_logits = attn * (grad_attn - (attn * grad_attn).sum(-1, keepdim=True))
        grad_q = grad_k = None
        if need_q:
            grad_q = (_csr(p.crow, p.col, grad_logits.flatten(), p.size) @ k).mul_(scale)
        if need_k:
            grad_k = (transposed(grad_logits) @ q).mul_(scale)
        return grad_q, grad_k, grad_v, grad_logits.flatten() if need_bias else None, None, None


def na2d_csr(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
) -> Tensor:
    """Neighborhood attention on validated CPU float32/float64 inputs, no dropout.

    q, k, v: (B, H, W, heads, head_dim); rpb: (heads, 2*ky-1, 2*kx-1) or None.
    Returns (B, H, W, heads, head_dim) in q's dtype.
    """
    batch, height, width, heads, dim = q.shape
    pattern = csr_pattern((height, width), kernel_size, dilation, batch, heads, q.device)
    q2, k2, v2 = (t.permute(0, 3, 1, 2, 4).reshape(-1, dim).contiguous() for t in (q, k, v))
    if rpb is None:
        bias = q.new_zeros(pattern.col.shape[0])
    else:
        bias = rpb.to(q.dtype).flatten().index_select(0, pattern.bias)  # (heads*H*W*n_keys,)
        bias = bias.expand(batch, -1).reshape(-1)
    out = _CsrAttention.apply(q2, k2, v2, bias, scale, pattern)
    return out.view(batch, heads, height, width, dim).permute(0, 2, 3, 1, 4)
