"""Per-axis neighborhood tables of neighborhood attention (docs/design/neighborhood_attention.md).

One axis of length L, odd kernel k, radius r = (k - 1) / 2, dilation d. A query at i belongs
to dilation group g = i mod d with in-group index i' = i // d; its window starts at
s(i) = clamp(i' - r, 0, L_g - k) (group coordinates), its keys are g + (s(i) + t) * d and the
bias index of key j is (j - i) / d + k - 1. Tables are built once per (L, k, d) and cached.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor


def group_length(length: int, dilation: int, group: int) -> int:
    """Number of positions of dilation group ``group`` on an axis of ``length``."""
    return length // dilation + (1 if group < length % dilation else 0)


@functools.lru_cache(maxsize=256)
def axis_neighbors(length: int, kernel: int, dilation: int) -> tuple[Tensor, Tensor]:
    """Key positions and bias indices of every query on one axis.

    Returns ``(keys, bias)``, both int64 CPU tensors of shape ``(length, kernel)``: query ``i``
    attends positions ``keys[i]`` with relative-position-bias indices ``bias[i]`` in
    ``[0, 2 * kernel - 2]``. Requires ``length >= kernel * dilation``.
    """
    if length < kernel * dilation:
        raise ValueError(
            f"axis length {length} is smaller than kernel_size * dilation = "
            f"{kernel} * {dilation} = {kernel * dilation}"
        )
    pos = torch.arange(length)
    group, inner = pos % dilation, pos // dilation
    group_len = length // dilation + (group < length % dilation).long()
    start = torch.minimum((inner - kernel // 2).clamp(min=0), group_len - kernel)
    offsets = start[:, None] + torch.arange(kernel)
    keys = group[:, None] + offsets * dilation
    bias = offsets - inner[:, None] + kernel - 1
    return keys, bias


@dataclass(frozen=True)
class AxisTiles:
    """Query tiles of one axis and the key halo covering all their windows.

    Tiles hold ``tile`` consecutive queries of one dilation group; the halo holds ``halo``
    consecutive keys of the same group. Padding slots (groups shorter than a tile multiple)
    repeat the group's last query, so every row has a valid key; their results are dropped.

    Attributes:
        query: (n, tile) query positions of each tile.
        halo: (n, halo) key positions of each tile's halo.
        bias: (n, tile, halo) bias index of every (query, halo key) pair, 0 where invalid.
        valid: (n, tile, halo) bool, True where the halo key is in the query's window.
        slot: (length,) flat index ``tile_index * tile + t`` holding each position's query.
    """

    query: Tensor
    halo: Tensor
    bias: Tensor
    valid: Tensor
    slot: Tensor

    def to(self, device: torch.device) -> AxisTiles:
        return AxisTiles(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@functools.lru_cache(maxsize=256)
def axis_tiles(length: int, kernel: int, dilation: int, tile: int) -> AxisTiles:
    """Tile tables of one axis (CPU), see :class:`AxisTiles`."""
    axis_neighbors(length, kernel, dilation)  # validates the length
    max_group = -(-length // dilation)
    tile = min(tile, max_group)
    halo = min(tile + kernel - 1, max_group)
    radius = kernel // 2
    query, halo_pos, bias, valid = [], [], [], []
    slot = torch.empty(length, dtype=torch.long)
    n_tiles = 0
    for group in range(dilation):
        glen = group_length(length, dilation, group)
        for first in range(0, glen, tile):
            inner = torch.arange(first, first + tile).clamp(max=glen - 1)
            start = (inner - radius).clamp(min=0, max=glen - kernel)
            halo_start = int(start[0].clamp(max=max(glen - halo, 0)))
            inner_key = halo_start + torch.arange(halo)
            in_window = (inner_key >= start[:, None]) & (inner_key < start[:, None] + kernel)
            valid.append(in_window & (inner_key < glen))
            bias.append((inner_key - inner[:, None] + kernel - 1).clamp(0, 2 * kernel - 2))
            query.append(group + inner * dilation)
            halo_pos.append(group + inner_key.clamp(max=glen - 1) * dilation)
            real = torch.arange(first, min(first + tile, glen))
            slot[group + real * dilation] = n_tiles * tile + real - first
            n_tiles += 1
    tables = AxisTiles(
        torch.stack(query), torch.stack(halo_pos), torch.stack(bias), torch.stack(valid), slot
    )
    # every window must lie inside its tile's halo
    assert int(tables.valid.sum()) == n_tiles * tile * kernel
    assert torch.equal(torch.stack(query).flatten()[slot], torch.arange(length))
    return tables


@functools.lru_cache(maxsize=256)
def axis_tiles_on(
    length: int, kernel: int, dilation: int, tile: int, device: torch.device
) -> AxisTiles:
    """:func:`axis_tiles` moved to ``device`` (cached per device)."""
    return axis_tiles(length, kernel, dilation, tile).to(device)


@dataclass(frozen=True)
class PlaneTiles:
    """2-D tile tables on a flattened (H * W) map, tiles in (nY, nX) row-major order.

    Attributes:
        query: (nY * nX * Ty * Tx,) flat query position of every tile slot.
        halo: (nY * nX * Sy * Sx,) flat key position of every halo slot.
        bias: (nY * nX, Ty * Tx, Sy * Sx) int32 flat bias index ``by * (2kx - 1) + bx``, or
            ``(2ky - 1) * (2kx - 1)`` (one past the table) where the key is outside the window.
        slot: (H * W,) flat tile slot holding each position's query.
        tiles: (nY, nX); tile: (Ty, Tx); halo_size: (Sy, Sx).
    """

    query: Tensor
    halo: Tensor
    bias: Tensor
    slot: Tensor
    tiles: tuple[int, int]
    tile: tuple[int, int]
    halo_size: tuple[int, int]


@functools.lru_cache(maxsize=16)
def plane_tiles(
    size: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    tile: tuple[int, int],
    device: torch.device,
) -> PlaneTiles:
    """:class:`PlaneTiles` of an (H, W) map, built from the per-axis tables, on ``device``."""
    ty = axis_tiles(size[0], kernel[0], dilation[0], tile[0])
    tx = axis_tiles(size[1], kernel[1], dilation[1], tile[1])
    width = size[1]
    (n_y, t_y), (n_x, t_x) = ty.query.shape, tx.query.shape
    s_y, s_x = ty.halo.shape[1], tx.halo.shape[1]
    query = ty.query[:, None, :, None] * width + tx.query[None, :, None, :]
    halo = ty.halo[:, None, :, None] * width + tx.halo[None, :, None, :]
    bias = ty.bias[:, None, :, None, :, None] * (2 * kernel[1] - 1)
    bias = bias + tx.bias[None, :, None, :, None, :]
    valid = ty.valid[:, None, :, None, :, None] & tx.valid[None, :, None, :, None, :]
    bias = bias.masked_fill(~valid, (2 * kernel[0] - 1) * (2 * kernel[1] - 1))
    tile_y, tile_x = ty.slot // t_y, tx.slot // t_x
    slot = ((tile_y[:, None] * n_x + tile_x[None, :]) * t_y + ty.slot[:, None] % t_y) * t_x
    slot = slot + tx.slot[None, :] % t_x
    return PlaneTiles(
        query=query.flatten().to(device),
        halo=halo.flatten().to(device),
        bias=bias.reshape(n_y * n_x, t_y * t_x, s_y * s_x).to(torch.int32).to(device),
        slot=slot.flatten().to(device),
        tiles=(n_y, n_x),
        tile=(t_y, t_x),
        halo_size=(s_y, s_x),
    )


@functools.lru_cache(maxsize=64)
def plane_neighbors(
    size: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Exact neighborhoods of every query of an (H, W) map, from the per-axis tables (CPU).

    Returns ``(keys, bias)``, int64 tensors of shape ``(H * W, ky * kx)``: query ``y * W + x``
    attends the flat positions ``keys[q]`` (ascending, window row-major) with flat bias indices
    ``bias[q] = by * (2 * kx - 1) + bx`` into a (2ky - 1, 2kx - 1) table.
    """
    rows, rows_bias = axis_neighbors(size[0], kernel[0], dilation[0])
    cols, cols_bias = axis_neighbors(size[1], kernel[1], dilation[1])
    n_keys = kernel[0] * kernel[1]
    keys = rows[:, None, :, None] * size[1] + cols[None, :, None, :]
    bias = rows_bias[:, None, :, None] * (2 * kernel[1] - 1) + cols_bias[None, :, None, :]
    return keys.reshape(-1, n_keys), bias.reshape(-1, n_keys)
