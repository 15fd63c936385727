"""Reference 2-D neighborhood attention in plain PyTorch (any device, autograd, deterministic on CPU).

Two exact algorithms: on CPU in float32/float64 without dropout, maps of at least
``na2d_csr.MIN_TOKENS_PER_WINDOW`` windows run as sparse CSR attention (exact k^2 work, see
:mod:`.na2d_csr`); everything else runs the tiled algorithm below.

Tiled algorithm: queries are grouped into 2-D tiles of one dilation group; each tile attends
the halo of keys covering all its windows with one batched matmul, keys outside a query's
window masked to -inf through the bias gather. Memory is O(H * W * k^2): the logits hold
(tile + k - 1)^2 / k^2 times the exact k^2 per query (the tile shape trades that waste against
matmul count), computed in chunks of tiles of at most CHUNK_LOGITS logits, so without autograd
a large map never holds all of them at once.
"""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

from . import na2d_csr
from .na_windows import axis_tiles, plane_tiles

CHUNK_LOGITS = 1 << 23
"""Largest number of logits computed in one chunk (32 MiB in float32)."""


TILE_OVERHEAD = 2000
"""Per-tile cost in logits-equivalents (matmul call and gather overheads), measured on CPU."""


@functools.lru_cache(maxsize=256)
def tile_shape(
    size: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    """(Ty, Tx) query tile with the least padded logits + per-tile overhead.

    Candidates per axis are 1, 2, 4, k and 2k: small tiles waste fewer masked logits
    ((T + k - 1) / k per axis), large ones make fewer, bigger matmuls.
    """
    options = []
    for length, ks, d in zip(size, kernel, dilation, strict=True):
        axis = []
        for tile in sorted({1, 2, 4, ks, 2 * ks}):
            tables = axis_tiles(length, ks, d, tile)
            axis.append((tile, tables.query.shape[0], tables.query.numel(), tables.halo.shape[1]))
        options.append(axis)

    def cost(pair):
        (_, n_y, q_y, s_y), (_, n_x, q_x, s_x) = pair
        return q_y * q_x * s_y * s_x + TILE_OVERHEAD * n_y * n_x

    best = min(itertools.product(*options), key=cost)
    return best[0][0], best[1][0]


def _heads_first(x: Tensor, scale: float | None = None) -> Tensor:
    """(B, H, W, heads, d) -> contiguous (B * heads, H * W, d), optionally times ``scale``."""
    batch, height, width, heads, dim = x.shape
    x = x.permute(0, 3, 1, 2, 4)
    x = x * scale if scale is not None else x.contiguous()
    return x.reshape(batch * heads, height * width, dim)


def unsupported_reason(
    q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool = False
) -> str | None:
    """None: the reference serves every validated call (any device, dtype, dropout, autograd)."""
    return None


def na2d_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
) -> Tensor:
    """Neighborhood attention on validated inputs (see :func:`plgvit_mm.ops.na2d`).

    q, k, v: (B, H, W, heads, head_dim); rpb: (heads, 2*ky-1, 2*kx-1) or None. Returns
    (B, H, W, heads, head_dim) in q's dtype. Dispatches to the CSR or the tiled algorithm.
    """
    if na2d_csr.unsupported_reason(q, kernel_size, attn_drop) is None:
        return na2d_csr.na2d_csr(q, k, v, kernel_size, dilation, rpb, scale)
    return na2d_tiled(q, k, v, kernel_size, dilation, rpb, scale, attn_drop)


def na2d_tiled(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
) -> Tensor:
    """The tiled algorithm (any device and dtype, dropout); arguments as :func:`na2d_reference`.

    Softmax runs in float32 for half types.
    """
    batch, height, width, heads, dim = q.shape
    tile = tile_shape((height, width), kernel_size, dilation)
    tables = plane_tiles((height, width), kernel_size, dilation, tile, q.device)
    n_tiles = tables.tiles[0] * tables.tiles[1]
    n_query, n_halo = tables.bias.shape[1:]
    logit_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    n_table = (2 * kernel_size[0] - 1) * (2 * kernel_size[1] - 1)
    table = q.new_zeros(1, n_table, dtype=logit_dtype) if rpb is None else rpb.flatten(1)
    table = F.pad(table.to(logit_dtype), (0, 1), value=float("-inf"))
    q, k, v = _heads_first(q, scale), _heads_first(k), _heads_first(v)
    step = max(1, CHUNK_LOGITS // (batch * heads * n_query * n_halo))
    chunks = []
    for first in range(0, n_tiles, step):
        last = min(first + step, n_tiles)
        q_t = q.index_select(1, tables.query[first * n_query : last * n_query])
        k_t = k.index_select(1, tables.halo[first * n_halo : last * n_halo])
        v_t = v.index_select(1, tables.halo[first * n_halo : last * n_halo])
        shape = (batch, heads, last - first)
        logits = q_t.view(*shape, n_query, dim) @ k_t.view(*shape, n_halo, dim).transpose(-1, -2)
        term = table.index_select(1, tables.bias[first:last].flatten())
        logits = logits.to(logit_dtype).add_(term.view(1, -1, last - first, n_query, n_halo))
        attn = logits.softmax(dim=-1)
        if attn_drop > 0.0:
            attn = F.dropout(attn, p=attn_drop)
        out = attn.to(v.dtype) @ v_t.view(*shape, n_halo, dim)
        chunks.append(out.view(batch * heads, -1, dim))
    out = torch.cat(chunks, dim=1) if len(chunks) > 1 else chunks[0]
    out = out.index_select(1, tables.slot).view(batch, heads, height, width, dim)
    return out.permute(0, 2, 3, 1, 4)
