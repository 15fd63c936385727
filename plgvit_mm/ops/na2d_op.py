"""The registered neighborhood-attention op ``plgvit_mm::na2d``: what torch.compile, torch.export,
TorchScript and the ONNX exporter see of a NAT layer.

Schemas (``torch.ops.plgvit_mm``)::

    na2d(Tensor q, Tensor k, Tensor v, Tensor? rpb, SymInt[] kernel_size, SymInt[] dilation,
         float scale, str? backend=None) -> Tensor
    na2d_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor? rpb,
                  SymInt[] kernel_size, SymInt[] dilation, float scale, str? backend=None)
        -> (Tensor, Tensor, Tensor, Tensor)

``q, k, v``: (B, H, W, heads, head_dim), validated as by :func:`plgvit_mm.ops.na2d`; ``rpb``:
(heads, 2*ky-1, 2*kx-1) or None; ``kernel_size``/``dilation``: (y, x); ``scale`` multiplies q;
``backend``: a backend name or None (argument / context / environment / 'auto', resolved when the
op runs). The output is a new contiguous (B, H, W, heads, head_dim) tensor in q's dtype. The op
runs the backend that :func:`plgvit_mm.ops.select_backend` picks for an inference call (the fused
CPU kernel, the Triton kernels or the reference); it has no attention dropout.

The fake implementation gives the output's shape, dtype and strides, so graphs capture the op
as one node; nothing decomposes it, so ``torch.export`` keeps ``plgvit_mm.na2d.default`` in the
graph for a translation table (``torch.onnx.export(..., custom_translation_table=...)``). The
gradient is a second op, ``na2d_backward``, which recomputes the forward with the backend's own
autograd; its ``rpb`` gradient is an empty tensor when ``rpb`` is None.
"""

from typing import Optional

import torch
from torch import Tensor

from .backends import requested_backend, select_backend

OP_NAME = "plgvit_mm::na2d"
BACKWARD_OP_NAME = "plgvit_mm::na2d_backward"
_AUTOGRAD_KEYS = (
    "AutogradFunctionality",
    "AutogradOther",
    "AutogradNestedTensor",
    "ADInplaceOrView",
)


def _autograd_dispatch() -> torch._C._ForceDispatchKeyGuard:
    """Guard that turns autograd dispatch back on inside an op implementation.

    Custom op implementations run below autograd (its dispatch keys are excluded); the backward
    op differentiates the backend's forward, so it needs them back for its own scope.
    """
    exclude = torch._C._dispatch_tls_local_exclude_set()
    for key in _AUTOGRAD_KEYS:
        exclude = exclude.remove(getattr(torch._C.DispatchKey, key))
    return torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), exclude)


@torch.library.custom_op(OP_NAME, mutates_args=())
def na2d_op(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rpb: Optional[Tensor],  # noqa: UP045 (torch.library reads the annotations)
    kernel_size: list[int],
    dilation: list[int],
    scale: float,
    backend: Optional[str] = None,  # noqa: UP045
) -> Tensor:
    """Neighborhood attention forward (see the module docstring)."""
    _, implementation = select_backend(requested_backend(backend), q, rpb, 0.0, grad=False)
    with torch.no_grad():
        out = implementation(q, k, v, tuple(kernel_size), tuple(dilation), rpb, scale)
    return out.contiguous()


@na2d_op.register_fake
def _na2d_fake(q, k, v, rpb, kernel_size, dilation, scale, backend=None):
    return torch.empty_like(q, memory_format=torch.contiguous_format)


@torch.library.custom_op(BACKWARD_OP_NAME, mutates_args=())
def na2d_backward_op(
    grad_out: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rpb: Optional[Tensor],  # noqa: UP045
    kernel_size: list[int],
    dilation: list[int],
    scale: float,
    backend: Optional[str] = None,  # noqa: UP045
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients (dq, dk, dv, drpb) of :func:`na2d_op`; drpb is empty when ``rpb`` is None."""
    with _autograd_dispatch(), torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in (q, k, v)]
        if rpb is not None:
            inputs.append(rpb.detach().requires_grad_())
        _, implementation = select_backend(requested_backend(backend), q, rpb, 0.0, grad=True)
        out = implementation(
            *inputs[:3],
            tuple(kernel_size),
            tuple(dilation),
            inputs[3] if rpb is not None else None,
            scale,
        )
        grads = torch.autograd.grad(out, inputs, grad_out)
    drpb = grads[3] if rpb is not None else q.new_empty(0)
    return grads[0].contiguous(), grads[1].contiguous(), grads[2].contiguous(), drpb


@na2d_backward_op.register_fake
def _na2d_backward_fake(grad_out, q, k, v, rpb, kernel_size, dilation, scale, backend=None):
    drpb = torch.empty_like(rpb) if rpb is not None else q.new_empty(0)
    return (
        *(torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v)),
        drpb,
    )


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, rpb, kernel_size, dilation, scale, backend = inputs
    ctx.save_for_backward(q, k, v, rpb)
    ctx.arguments = (kernel_size, dilation, scale, backend)


def _backward(ctx, grad_out: Tensor):
    q, k, v, rpb = ctx.saved_tensors
    dq, dk, dv, drpb = na2d_backward_op(grad_out, q, k, v, rpb, *ctx.arguments)
    return dq, dk, dv, drpb if rpb is not None else None, None, None, None, None


na2d_op.register_autograd(_backward, setup_context=_setup_context)
