"""ONNX translation of 2-D neighborhood attention with standard (default-domain) operators only.

:func:`na2d_onnx` is a trace-only ONNX Script function: ``torch.onnx.export`` (the
torch.export-based exporter) calls it for every neighborhood-attention node and records plain
``Gather``, ``MatMul``, ``Softmax``, ``Transpose``, ``Reshape`` ... nodes, so the graph runs on
any ONNX runtime (ONNX Runtime, TensorRT, OpenVINO) without a custom-op library. Semantics are
those of :func:`plgvit_mm.ops.na2d` (docs/design/neighborhood_attention.md): exact ky x kx
windows that shift at the borders, dilation groups, relative position bias, ``scale`` applied
to q before the dot product.

Two lowerings, chosen from the shapes the exporter sees:

- static H and W: the tiled algorithm of :func:`plgvit_mm.ops.na2d_reference.na2d_tiled`, with
  its index tables (:func:`plgvit_mm.ops.na_windows.plane_tiles`) stored as constants: queries
  are gathered into 2-D tiles, each tile attends its key halo with one batched ``MatMul``, keys
  outside a query's window get ``-inf`` through the bias gather;
- symbolic H or W (``--dynamic`` exports): every query gathers its exact ky x kx keys, with the
  window starts computed inside the graph from the runtime map size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch._decomp
import torch.nn.functional as F
from torch._subclasses.fake_tensor import unset_fake_temporarily
from torch.fx.experimental.proxy_tensor import disable_proxy_modes_tracing, get_proxy_mode

from . import na2d_op  # noqa: F401  (registers torch.ops.plgvit_mm.na2d)
from .na2d_reference import tile_shape
from .na_windows import plane_tiles

if TYPE_CHECKING:
    from onnx_ir import Value

# onnxscript and onnx_ir are imported inside the functions: they are the optional 'deploy'
# extra, and importing them costs seconds that an ``import plgvit_mm`` should not pay.


def _const(array: np.ndarray) -> Value:
    import onnx_ir as ir
    from onnxscript import opset18 as op

    return op.Constant(value=ir.tensor(np.ascontiguousarray(array)))


def _ints(*values: int) -> Value:
    return _const(np.array(values, dtype=np.int64))


def _static_size(value: Value) -> tuple[int, int] | None:
    """(H, W) of a (B, H, W, heads, d) value when both are known integers, else None."""
    shape = value.shape
    if shape is None or len(shape) != 5:
        return None
    height, width = shape[1], shape[2]
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    return None


def _bias_table(rpb: Value | None, q: Value, heads: int, n_table: int) -> Value:
    """(heads, n_table + 1) bias table in q's dtype: the flattened rpb (zeros without one) and a
    final ``-inf`` column that masks keys outside the window."""
    from onnxscript import opset18 as op

    if rpb is None:
        table = op.CastLike(_const(np.zeros((1, n_table), dtype=np.float32)), q)
    else:
        table = op.Reshape(op.CastLike(rpb, q), _ints(heads, n_table))
    rows = 1 if rpb is None else heads
    masked = op.CastLike(_const(np.full((rows, 1), -np.inf, dtype=np.float32)), q)
    return op.Concat(table, masked, axis=1)


def _na2d_tiled(
    q: Value,
    k: Value,
    v: Value,
    rpb: Value | None,
    size: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    scale: float,
    heads: int,
    dim: int,
) -> Value:
    """Tiled NA on a static (H, W) map; q, k, v (B, H, W, heads, d) -> same shape."""
    from onnxscript import opset18 as op

    tables = plane_tiles(size, kernel, dilation, tile_shape(size, kernel, dilation), "cpu")
    n_tiles = tables.tiles[0] * tables.tiles[1]
    n_query, n_halo = tables.bias.shape[1:]
    n_table = (2 * kernel[0] - 1) * (2 * kernel[1] - 1)

    def heads_first(x: Value) -> Value:  # (B, H, W, h, d) -> (B, h, H * W, d)
        return op.Reshape(op.Transpose(x, perm=[0, 3, 1, 2, 4]), _ints(0, heads, -1, dim))

    q_scaled = op.Mul(q, op.CastLike(_const(np.array(scale, dtype=np.float32)), q))
    query_index = _const(tables.query.reshape(n_tiles, n_query).numpy())
    halo_index = _const(tables.halo.reshape(n_tiles, n_halo).numpy())
    q_t = op.Gather(heads_first(q_scaled), query_index, axis=2)  # (B, h, n, Tq, d)
    k_t = op.Gather(heads_first(k), halo_index, axis=2)  # (B, h, n, S, d)
    v_t = op.Gather(heads_first(v), halo_index, axis=2)
    logits = op.MatMul(q_t, op.Transpose(k_t, perm=[0, 1, 2, 4, 3]))  # (B, h, n, Tq, S)
    table = _bias_table(rpb, q, heads, n_table)
    bias = op.Gather(table, _const(tables.bias.long().numpy()), axis=1)  # (h|1, n, Tq, S)
    attn = op.Softmax(op.Add(logits, bias), axis=-1)
    out = op.Reshape(op.MatMul(attn, v_t), _ints(0, heads, n_tiles * n_query, dim))
    out = op.Gather(out, _const(tables.slot.numpy()), axis=2)  # (B, h, H * W, d)
    out = op.Reshape(out, _ints(0, heads, size[0], size[1], dim))
    return op.Transpose(out, perm=[0, 2, 3, 1, 4])


def _axis_windows(length: Value, kernel: int, dilation: int) -> tuple[Value, Value]:
    """Key positions and bias indices (both (L, kernel) int64) of one axis of runtime length
    ``length`` (a scalar int64 value), by the window rule of :func:`na_windows.axis_neighbors`."""
    import onnx_ir as ir
    from onnxscript import opset18 as op

    zero, one = _ints(0), _ints(1)
    d = _ints(dilation)
    scalar = op.Squeeze(length)
    pos = op.Range(op.Squeeze(zero), scalar, op.Squeeze(one))  # (L,)
    group, inner = op.Mod(pos, d), op.Div(pos, d)
    remainder = op.Mod(length, d)
    group_len = op.Add(op.Div(length, d), op.Cast(op.Less(group, remainder), to=ir.DataType.INT64))
    start = op.Min(
        op.Max(op.Sub(inner, _ints(kernel // 2)), zero), op.Sub(group_len, _ints(kernel))
    )
    offsets = op.Add(op.Unsqueeze(start, one), _const(np.arange(kernel, dtype=np.int64)))
    keys = op.Add(op.Unsqueeze(group, one), op.Mul(offsets, d))
    bias = op.Add(op.Sub(offsets, op.Unsqueeze(inner, one)), _ints(kernel - 1))
    return keys, bias


def _na2d_gathered(
    q: Value,
    k: Value,
    v: Value,
    rpb: Value | None,
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    scale: float,
    heads: int,
    dim: int,
) -> Value:
    """Exact-window NA for symbolic (H, W); q, k, v (B, H, W, heads, d) -> same shape."""
    from onnxscript import opset18 as op

    (ky, kx), n_keys = kernel, kernel[0] * kernel[1]
    shape = op.Shape(q)
    height, width = op.Slice(shape, _ints(1), _ints(2)), op.Slice(shape, _ints(2), _ints(3))
    rows, rows_bias = _axis_windows(height, ky, dilation[0])
    cols, cols_bias = _axis_windows(width, kx, dilation[1])

    def windows(x: Value) -> Value:  # (B, H, W, h, d) -> (B, H, W, h, ky*kx, d)
        x = op.Gather(op.Gather(x, rows, axis=1), cols, axis=3)  # (B, H, ky, W, kx, h, d)
        x = op.Transpose(x, perm=[0, 1, 3, 5, 2, 4, 6])
        return op.Reshape(x, _ints(0, 0, 0, 0, n_keys, dim))

    q_scaled = op.Mul(q, op.CastLike(_const(np.array(scale, dtype=np.float32)), q))
    keys = op.Transpose(windows(k), perm=[0, 1, 2, 3, 5, 4])  # (B, H, W, h, d, kk)
    logits = op.MatMul(op.Unsqueeze(q_scaled, _ints(4)), keys)  # (B, H, W, h, 1, kk)
    if rpb is not None:
        table = op.CastLike(rpb, q)  # (h, 2ky-1, 2kx-1)
        bias = op.Gather(op.Gather(table, rows_bias, axis=1), cols_bias, axis=3)
        bias = op.Transpose(bias, perm=[1, 3, 0, 2, 4])  # (H, W, h, ky, kx)
        logits = op.Add(logits, op.Reshape(bias, _ints(0, 0, heads, 1, n_keys)))
    attn = op.Softmax(logits, axis=-1)
    return op.Squeeze(op.MatMul(attn, windows(v)), _ints(4))


def na2d_onnx(
    q,
    k,
    v,
    rpb=None,
    kernel_size: Sequence[int] = (7, 7),
    dilation: Sequence[int] = (1, 1),
    scale: float = 1.0,
    backend: str | None = None,
):
    """ONNX lowering of ``na2d``: q, k, v (B, H, W, heads, d); rpb (heads, 2ky-1, 2kx-1) or None.

    H >= ky * dy and W >= kx * dx (the layer pads smaller maps before the op). Returns
    (B, H, W, heads, d) in q's dtype. ``backend`` (an eager-execution choice) is ignored. The
    tensor parameters carry no annotations: the exporter reads annotated parameters as ONNX
    attributes and the others as inputs.
    """
    kernel, dil = (int(kernel_size[0]), int(kernel_size[1])), (int(dilation[0]), int(dilation[1]))
    heads, dim = q.shape[3], q.shape[4]
    if not isinstance(heads, int) or not isinstance(dim, int):
        raise ValueError(f"na2d ONNX export needs static heads and head_dim, got shape {q.shape}")
    size = _static_size(q)
    if size is not None:
        for axis, length, ks, d in zip(("height", "width"), size, kernel, dil, strict=True):
            if length < ks * d:
                raise ValueError(
                    f"na2d ONNX export: feature map {axis} {length} < kernel_size * dilation = "
                    f"{ks * d}"
                )
        return _na2d_tiled(q, k, v, rpb, size, kernel, dil, float(scale), heads, dim)
    return _na2d_gathered(q, k, v, rpb, kernel, dil, float(scale), heads, dim)


def onnx_translations() -> dict[Callable, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export``: ``plgvit_mm::na2d`` -> :func:`na2d_onnx`."""
    return {torch.ops.plgvit_mm.na2d.default: na2d_onnx}


def na2d_decomposition(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rpb: torch.Tensor | None = None,
    kernel_size: Sequence[int] = (7, 7),
    dilation: Sequence[int] = (1, 1),
    scale: float = 1.0,
    backend: str | None = None,
) -> torch.Tensor:
    """``plgvit_mm::na2d`` in ATen operators, for a plain ``torch.onnx.export(model, args)``.

    The exporter decomposes ops without an ONNX translation through ``torch._decomp``'s table;
    this entry lowers NA to the tiled reference algorithm (index_select, matmul, softmax), which
    torch's own ONNX functions translate to standard operators. It needs static H and W; exports
    with symbolic map sizes pass :func:`onnx_translations` (as tools/deployment/export_onnx.py
    does), which also takes precedence over this entry. Fake tensors with symbolic sizes also
    read this entry, for the output's shape only (the op's fake implementation).
    """
    size = tuple(q.shape[1:3])
    if not all(isinstance(s, int) for s in size):
        if get_proxy_mode() is None:  # fake-tensor shape propagation, not a decomposition
            return torch.empty_like(q, memory_format=torch.contiguous_format)
        raise ValueError(
            "plgvit_mm::na2d with a symbolic feature-map size: export with "
            "custom_translation_table=plgvit_mm.ops.na2d_onnx.onnx_translations() "
            "(tools/deployment/export_onnx.py does)"
        )
    kernel, dil = (int(kernel_size[0]), int(kernel_size[1])), (int(dilation[0]), int(dilation[1]))
    # the index tables are constants of the graph: built outside the exporter's fake tracing
    with unset_fake_temporarily(), disable_proxy_modes_tracing():
        tables = plane_tiles(size, kernel, dil, tile_shape(size, kernel, dil), q.device)
    batch, height, width, heads, dim = q.shape
    n_tiles = tables.tiles[0] * tables.tiles[1]
    n_query, n_halo = tables.bias.shape[1:]
    n_table = (2 * kernel[0] - 1) * (2 * kernel[1] - 1)
    table = q.new_zeros(1, n_table) if rpb is None else rpb.to(q.dtype).reshape(heads, n_table)
    table = F.pad(table, (0, 1), value=float("-inf"))

    def heads_first(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2, 4).reshape(batch, heads, height * width, dim)

    q_t = heads_first(q * scale)[:, :, tables.query].view(batch, heads, n_tiles, n_query, dim)
    k_t = heads_first(k)[:, :, tables.halo].view(batch, heads, n_tiles, n_halo, dim)
    v_t = heads_first(v)[:, :, tables.halo].view(batch, heads, n_tiles, n_halo, dim)
    bias = table[:, tables.bias.long()]  # (heads | 1, n_tiles, n_query, n_halo)
    attn = (q_t @ k_t.transpose(-1, -2) + bias).softmax(dim=-1)
    out = (attn @ v_t).reshape(batch, heads, n_tiles * n_query, dim)[:, :, tables.slot]
    return out.view(batch, heads, height, width, dim).permute(0, 2, 3, 1, 4)


torch._decomp.register_decomposition(torch.ops.plgvit_mm.na2d.default)(na2d_decomposition)
