"""Neighborhood attention through torch's compiled flex_attention with 2-D token tiles.

Tokens are reordered into TILE = (8, 16) tiles (one 128-token flex block per tile, the map
zero-padded to tile multiples), so the block mask keeps only tiles near each query tile.
``mask_mod`` applies the exact window rule (docs/design/neighborhood_attention.md) on the decoded (y, x); ``score_mod``
adds the relative position bias (indices clamped: it also runs on masked pairs of partial
blocks). The rpb gradient comes from flex's atomic adds, so it is not bitwise deterministic.
The GPU benchmark's peer for the Triton kernels; selectable as backend ``'flex'``.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

TILE = (8, 16)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def unsupported_reason(
    q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool = False
) -> str | None:
    """Why compiled flex_attention cannot serve this call, or None when it can (both directions have
    kernels, so ``grad`` does not matter)."""
    if q.device.type != "cuda":
        return f"device {q.device.type} (needs cuda)"
    if q.dtype not in DTYPES:
        return f"dtype {q.dtype} (needs float16, bfloat16 or float32)"
    dim = q.shape[-1]
    if dim < 16 or dim & (dim - 1):
        return f"head_dim {dim} (needs a power of two >= 16)"
    if attn_drop > 0.0:
        return "attention dropout"
    return None


def _tiled_coords(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(y, x) of every token in tiled order over the map padded to TILE multiples."""
    ty, tx = TILE
    n_y, n_x = -(-height // ty), -(-width // tx)
    token = torch.arange(n_y * n_x * ty * tx, device=device)
    tile, within = token // (ty * tx), token % (ty * tx)
    return (tile // n_x) * ty + within // tx, (tile % n_x) * tx + within % tx


def _in_window(i: Tensor, j: Tensor, length: int, kernel: int, dilation: int) -> Tensor:
    """Key position j lies in the window of query position i (one axis, spec rule)."""
    group = i % dilation
    group_len = length // dilation + (group < length % dilation).long()
    start = torch.minimum((i // dilation - kernel // 2).clamp(min=0), group_len - kernel)
    inner = j // dilation
    inside = (j % dilation == group) & (inner >= start) & (inner < start + kernel)
    return inside & (i < length) & (j < length)


def _axis_tile_reach(length: int, tile: int, kernel: int, dilation: int) -> Tensor:
    """(n, n) bool over the n = ceil(length / tile) tiles of one axis: some query position of
    tile a has a key position of tile c in its window."""
    n = -(-length // tile)
    pos = torch.arange(n * tile)
    pairs = _in_window(pos[:, None], pos[None, :], length, kernel, dilation)
    return pairs.view(n, tile, n, tile).any(3).any(1)


@functools.lru_cache(maxsize=32)
def _block_mask(size, kernel, dilation, device):
    """flex BlockMask of the tiled map, built from the per-axis tile reach.

    Tiles are products of a y range and an x range, so a (query tile, key tile) block holds a
    window pair exactly when both axes reach: no Q_LEN x KV_LEN mask is ever materialised (the
    generic ``create_block_mask`` would need ~60k x 60k elements at NAT-T stage 1 of 800x1216).
    Every kept block is partial: ``mask_mod`` decides per pair.
    """
    from torch.nn.attention.flex_attention import BlockMask

    height, width = size
    ys, xs = _tiled_coords(height, width, device)
    reach_y = _axis_tile_reach(height, TILE[0], kernel[0], dilation[0])
    reach_x = _axis_tile_reach(width, TILE[1], kernel[1], dilation[1])
    # (query tile (ay, ax), key tile (cy, cx)) in the raster tile order of _tiled_coords
    reach = (reach_y[:, None, :, None] & reach_x[None, :, None, :]).flatten(2).flatten(0, 1)
    kv_num_blocks = reach.sum(1, dtype=torch.int32)
    kv_indices = torch.argsort((~reach).to(torch.int8), dim=1, stable=True).to(torch.int32)

    def mask_mod(b, h, q_idx, kv_idx):
        return _in_window(ys[q_idx], ys[kv_idx], height, kernel[0], dilation[0]) & _in_window(
            xs[q_idx], xs[kv_idx], width, kernel[1], dilation[1]
        )

    block_mask = BlockMask.from_kv_blocks(
        kv_num_blocks[None, None].to(device),
        kv_indices[None, None].to(device),
        BLOCK_SIZE=TILE[0] * TILE[1],
        mask_mod=mask_mod,
        seq_lengths=(ys.numel(), ys.numel()),
    )
    return block_mask, ys, xs


RECOMPILE_LIMIT = 64
"""Static-shape graphs per flex_attention code object: every map size (4 levels x several input
sizes, with and without grad) is its own graph, and dynamo's default of 8 would silently send
the rest to eager flex, which materialises the whole score matrix."""


@functools.cache
def _compiled_flex_attention():
    import torch._dynamo
    from torch.nn.attention.flex_attention import flex_attention

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(flex_attention, dynamic=False)


def flex_na2d(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    compiled: bool = True,
) -> Tensor:
    """NA via flex_attention; ``compiled=False`` runs eager flex (any device, slow, for tests)."""
    from torch.nn.attention.flex_attention import flex_attention

    batch, height, width, heads, dim = q.shape
    (ky, kx), (dy, dx) = kernel_size, dilation
    block_mask, ys, xs = _block_mask((height, width), kernel_size, dilation, q.device)
    flat = (ys.clamp(max=height - 1) * width + xs.clamp(max=width - 1)).long()

    def to_tiles(t: Tensor) -> Tensor:  # (B, H, W, heads, d) -> (B, heads, N, d)
        return t.reshape(batch, height * width, heads, dim)[:, flat].transpose(1, 2)

    score_mod = None
    if rpb is not None:
        table = rpb

        def score_mod(score, b, h, q_idx, kv_idx):
            by = ((ys[kv_idx] - ys[q_idx]) // dy + ky - 1).clamp(0, 2 * ky - 2)
            bx = ((xs[kv_idx] - xs[q_idx]) // dx + kx - 1).clamp(0, 2 * kx - 2)
            return score + table[h, by, bx].to(score.dtype)

    attend = _compiled_flex_attention() if compiled else flex_attention
    out = attend(
        to_tiles(q),
        to_tiles(k),
        to_tiles(v),
        score_mod=score_mod,
        block_mask=block_mask,
        scale=scale,
    )
    # back to raster order: token (y, x) sits at the tiled slot whose coords are (y, x)
    real = (ys < height) & (xs < width)
    slot = torch.empty(height * width, dtype=torch.long, device=q.device)
    slot[(ys * width + xs)[real]] = torch.nonzero(real).squeeze(1)
    return out.transpose(1, 2)[:, slot].reshape(batch, height, width, heads, dim)


def na2d_flex(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
) -> Tensor:
    """Backend entry point (see :func:`plgvit_mm.ops.na2d`); requires ``attn_drop == 0``."""
    if attn_drop > 0.0:
        raise ValueError(f"the flex backend has no attention dropout, got attn_drop={attn_drop}")
    return flex_na2d(q, k, v, kernel_size, dilation, rpb, scale, compiled=True)
