"""Functional 2-D neighborhood attention with relative position bias: argument checks + dispatch."""

from __future__ import annotations

import torch
from torch import Tensor

from . import na2d_op  # noqa: F401  (registers torch.ops.plgvit_mm.na2d)
from .backends import check_backend_name, needs_grad, requested_backend, select_backend


def to_pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    """An int or a (y, x) pair of ints as a (y, x) tuple; anything else raises ValueError."""
    pair = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pair)
    ):
        raise ValueError(f"{name} must be an int or a (y, x) pair of ints, got {value!r}")
    return tuple(pair)  # type: ignore[return-value]


def check_kernel_dilation(
    kernel_size: int | tuple[int, int], dilation: int | tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate kernel size (odd, > 1) and dilation (>= 1); return both as (y, x) pairs."""
    kernel, dil = to_pair(kernel_size, "kernel_size"), to_pair(dilation, "dilation")
    if any(k < 3 or k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel_size must be odd and > 1, got {kernel_size!r}")
    if any(d < 1 for d in dil):
        raise ValueError(f"dilation must be >= 1, got {dilation!r}")
    return kernel, dil


def _check_inputs(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel: tuple[int, int],
    dil: tuple[int, int],
    rpb: Tensor | None,
) -> None:
    if q.dim() != 5:
        raise ValueError(f"q must be (B, H, W, heads, head_dim), got shape {tuple(q.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise ValueError(f"{name} shape {tuple(t.shape)} != q shape {tuple(q.shape)}")
        if t.dtype != q.dtype:
            raise ValueError(f"{name} dtype {t.dtype} != q dtype {q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} device {t.device} != q device {q.device}")
    if not q.is_floating_point():
        raise ValueError(f"q, k, v must be floating point, got {q.dtype}")
    height, width = q.shape[1:3]
    for axis, size, ks, d in (
        ("height", height, kernel[0], dil[0]),
        ("width", width, kernel[1], dil[1]),
    ):
        if size < ks * d:
            raise ValueError(
                f"feature map {axis} {size} < kernel_size * dilation = {ks} * {d} = {ks * d}; "
                "pad the input (NeighborhoodAttention2D(pad_small_inputs=True) does)"
            )
    if rpb is not None:
        expected = (q.shape[3], 2 * kernel[0] - 1, 2 * kernel[1] - 1)
        if tuple(rpb.shape) != expected:
            raise ValueError(
                f"rpb shape {tuple(rpb.shape)} != (heads, 2*ky-1, 2*kx-1) = {expected}"
            )
        if rpb.device != q.device:
            raise ValueError(f"rpb device {rpb.device} != q device {q.device}")
        if not rpb.is_floating_point():
            raise ValueError(f"rpb must be floating point, got {rpb.dtype}")


def na2d(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    rpb: Tensor | None = None,
    scale: float | None = None,
    *,
    attn_drop: float = 0.0,
    backend: str | None = None,
) -> Tensor:
    """2-D neighborhood attention (docs/design/neighborhood_attention.md).

    Args:
        q, k, v: (B, H, W, heads, head_dim), same dtype and device; H >= ky*dy, W >= kx*dx.
        kernel_size, dilation: ints or (y, x) pairs; kernel sizes odd and > 1.
        rpb: relative position bias (heads, 2*ky-1, 2*kx-1) or None; cast to the compute dtype
            (a float32 table with bfloat16 q under autocast is fine).
        scale: multiplies q before the dot product; None means head_dim ** -0.5.
        attn_drop: dropout probability on the attention weights (pass 0 in eval).
        backend: 'auto', 'reference', 'cpu', 'triton' or 'flex'; None = context / env / 'auto'.

    Returns:
        (B, H, W, heads, head_dim) in q's dtype.
    """
    kernel, dil = check_kernel_dilation(kernel_size, dilation)
    _check_inputs(q, k, v, kernel, dil, rpb)
    if not 0.0 <= attn_drop < 1.0:
        raise ValueError(f"attn_drop must be in [0, 1), got {attn_drop}")
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if backend is not None:
        backend = check_backend_name(backend)
    return na2d_validated(q, k, v, kernel, dil, rpb, float(scale), attn_drop, backend)


def na2d_validated(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
    backend: str | None = None,
) -> Tensor:
    """:func:`na2d` on inputs that passed its checks (``kernel``/``dilation`` as pairs).

    Under torch.compile / torch.export the call is the registered op ``plgvit_mm::na2d`` (one
    graph node, see :mod:`.na2d_op`). Eager calls and calls with attention dropout run the
    selected backend directly, with its own autograd (no forward recomputation in the backward).
    """
    if attn_drop == 0.0 and torch.compiler.is_compiling():
        return torch.ops.plgvit_mm.na2d(q, k, v, rpb, list(kernel), list(dilation), scale, backend)
    grad = needs_grad(q, k, v, rpb)
    _, implementation = select_backend(requested_backend(backend), q, rpb, attn_drop, grad)
    return implementation(q, k, v, kernel, dilation, rpb, scale, attn_drop)
