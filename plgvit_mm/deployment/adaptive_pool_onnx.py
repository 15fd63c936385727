"""ONNX translation of ``aten.adaptive_max_pool2d`` for any input size (standard operators).

torch's exporter lowers adaptive max pooling only when the output size divides the input size
(it then becomes ``MaxPool``). LW-PLG-ViT's global branch pools every map to a 7 x 7 grid, which
at driving resolutions (e.g. 96 x 320 at stride 4) does not divide. The cells follow PyTorch's
rule: output cell i covers input rows ``floor(i * H / h) .. ceil((i + 1) * H / h) - 1``. The
pool is separable: rows are gathered into (h, L) windows, padded by repeating the window's last
row (harmless for a max), reduced with ``ReduceMax``, then the same for columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _windows(length: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(cells, L) int64 positions of each cell's window (last one repeated) and (cells, 1)
    window starts."""
    starts = np.array([(i * length) // cells for i in range(cells)], dtype=np.int64)
    ends = np.array([-(-((i + 1) * length) // cells) for i in range(cells)], dtype=np.int64)
    width = int((ends - starts).max())
    index = np.minimum(starts[:, None] + np.arange(width), ends[:, None] - 1)
    return index, starts[:, None]


def adaptive_max_pool2d_onnx(self, output_size: Sequence[int]):
    """``adaptive_max_pool2d(Tensor self, int[2] output_size) -> (values, indices)`` on a
    (B, C, H, W) or (C, H, W) input with static H and W. ``indices`` are flat ``y * W + x``
    positions of the maxima, as PyTorch returns them."""
    import onnx_ir as ir
    from onnxscript import opset18 as op

    height, width = self.shape[-2], self.shape[-1]
    if not isinstance(height, int) or not isinstance(width, int):
        raise ValueError(
            "adaptive_max_pool2d ONNX export needs a static input size, got "
            f"{self.shape}; export without symbolic H/W"
        )
    rows, row_starts = _windows(height, int(output_size[0]))
    cols, col_starts = _windows(width, int(output_size[1]))

    def const(array: np.ndarray):
        return op.Constant(value=ir.tensor(array))

    axis_h = len(self.shape) - 2  # rows axis; windows add one axis after it
    by_rows = op.Gather(self, const(rows), axis=axis_h)  # (..., h, Lh, W)
    axis = const(np.array([axis_h + 1], dtype=np.int64))
    row_max = op.ReduceMax(by_rows, axis, keepdims=0)  # (..., h, W)
    row_of_max = op.Add(op.ArgMax(by_rows, axis=axis_h + 1, keepdims=0), const(row_starts))
    by_cols = op.Gather(row_max, const(cols), axis=axis_h + 1)  # (..., h, w, Lw)
    last = const(np.array([axis_h + 2], dtype=np.int64))
    values = op.ReduceMax(by_cols, last, keepdims=0)
    col_of_max = op.Add(op.ArgMax(by_cols, axis=axis_h + 2, keepdims=0), const(col_starts[:, 0]))
    row_at_col = op.GatherElements(row_of_max, col_of_max, axis=axis_h + 1)
    indices = op.Add(op.Mul(row_at_col, const(np.array(width, dtype=np.int64))), col_of_max)
    return values, indices
