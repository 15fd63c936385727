"""Backend selection for neighborhood attention.

Precedence: the ``backend=`` argument, then the innermost :func:`na_backend` context, then the
``PLGVIT_MM_NA_BACKEND`` environment variable, then ``'auto'`` (the Triton kernel where it
supports the call, else the fused CPU kernel where it does, else the reference). A named backend
that cannot serve a call falls back to the reference with a one-time warning saying why.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch
from torch import Tensor

BACKENDS = ("reference", "cpu", "triton", "flex")
"""Implementations: pure PyTorch (CSR on CPU), fused C++ CPU forward, fused Triton kernels,
compiled flex_attention (8x16 tiles)."""

ENV_VAR = "PLGVIT_MM_NA_BACKEND"

_context_backend: ContextVar[str | None] = ContextVar("plgvit_mm_na_backend", default=None)
_warned: set[tuple[str, str]] = set()


def check_backend_name(name: str) -> str:
    """Return ``name`` lower-cased if it names a backend or ``'auto'``, else raise ValueError."""
    valid = ("auto", *BACKENDS)
    if not isinstance(name, str) or name.lower() not in valid:
        raise ValueError(f"unknown neighborhood-attention backend {name!r}; valid: {valid}")
    return name.lower()


@contextlib.contextmanager
def na_backend(name: str) -> Iterator[None]:
    """Use backend ``name`` for :func:`na2d` calls inside the ``with`` block."""
    token = _context_backend.set(check_backend_name(name))
    try:
        yield
    finally:
        _context_backend.reset(token)


def requested_backend(explicit: str | None = None) -> str:
    """The backend asked for by argument, context manager or environment (else ``'auto'``)."""
    if explicit is not None:
        return check_backend_name(explicit)
    if (name := _context_backend.get()) is not None:
        return name
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return check_backend_name(env)
        except ValueError as err:
            raise ValueError(f"environment variable {ENV_VAR}: {err}") from None
    return "auto"


def needs_grad(*tensors: Tensor | None) -> bool:
    """True when autograd is on and any of ``tensors`` requires a gradient."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def unsupported_reason(
    name: str, q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool | None = None
) -> str | None:
    """Why backend ``name`` cannot serve a call with these inputs, or None when it can.

    ``grad``: whether the call needs gradients (None: judged from ``q`` and ``rpb``).
    """
    if name == "reference":
        return None
    if name == "cpu":
        from . import na2d_cpu

        grad = needs_grad(q, rpb) if grad is None else grad
        return na2d_cpu.unsupported_reason(q, rpb, attn_drop, grad)
    if name == "triton":
        from . import na2d_triton

        return na2d_triton.unsupported_reason(q, rpb, attn_drop)
    from . import na2d_flex

    return na2d_flex.unsupported_reason(q, rpb, attn_drop)


def _implementation(name: str) -> Callable[..., Tensor]:
    if name == "reference":
        from .na2d_reference import na2d_reference

        return na2d_reference
    if name == "cpu":
        from .na2d_cpu import na2d_cpu

        return na2d_cpu
    if name == "triton":
        from .na2d_triton import na2d_triton

        return na2d_triton
    from .na2d_flex import na2d_flex

    return na2d_flex


def select_backend(
    requested: str, q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool | None = None
) -> tuple[str, Callable[..., Tensor]]:
    """Resolve ``requested`` (a name or ``'auto'``) to the backend that serves this call.

    ``grad``: whether the call needs gradients (None: judged from ``q`` and ``rpb``).
    """
    if requested == "auto":
        name = next(
            (
                n
                for n in ("triton", "cpu")
                if unsupported_reason(n, q, rpb, attn_drop, grad) is None
            ),
            "reference",
        )
        return name, _implementation(name)
    reason = unsupported_reason(requested, q, rpb, attn_drop, grad)
    if reason is None:
        return requested, _implementation(requested)
    if (requested, reason) not in _warned:
        _warned.add((requested, reason))
        warnings.warn(
            f"neighborhood-attention backend {requested!r} unavailable ({reason}); "
            "using 'reference'",
            RuntimeWarning,
            stacklevel=3,
        )
    return "reference", _implementation("reference")
