"""Backend selection for neighborhood attention.

Precedence: the ``backend=`` argument, then the innermost :func:`na_backend` context, then the
``PLGVIT_MM_NA_BACKEND`` environment variable, then ``'auto'`` (the Triton kernel where it
supports the call, else the fused CPU kernel where it does, else the reference). Each backend
lives in its own module behind one signature (:class:`Backend`); :data:`TABLE` lists them. A
named backend that cannot serve a call falls back to the reference with a one-time warning
saying why; 'auto' warns once when it skips a backend for the inputs' dtype or head_dim.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor

BACKENDS = ("reference", "cpu", "triton", "flex")
"""Implementations: pure PyTorch (CSR on CPU), fused C++ CPU forward, fused Triton kernels,
compiled flex_attention (8x16 tiles)."""

ENV_VAR = "PLGVIT_MM_NA_BACKEND"

_context_backend: ContextVar[str | None] = ContextVar("plgvit_mm_na_backend", default=None)
_warned: set[tuple[str, str, str]] = set()


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


@dataclass(frozen=True)
class Backend:
    """One implementation of :func:`plgvit_mm.ops.na2d`, in its own module of this package.

    The module provides ``unsupported_reason(q, rpb, attn_drop, grad) -> str | None`` (why it
    cannot serve a call, None when it can) and the call ``function(q, k, v, kernel_size,
    dilation, rpb, scale, attn_drop) -> Tensor`` on validated inputs.
    """

    module: str
    function: str

    @functools.cached_property
    def _loaded(self) -> ModuleType:
        return importlib.import_module(f"{__package__}.{self.module}")

    def unsupported_reason(
        self, q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool
    ) -> str | None:
        return self._loaded.unsupported_reason(q, rpb, attn_drop, grad)

    @property
    def call(self) -> Callable[..., Tensor]:
        return getattr(self._loaded, self.function)


TABLE: dict[str, Backend] = {
    "reference": Backend("na2d_reference", "na2d_reference"),
    "cpu": Backend("na2d_cpu", "na2d_cpu"),
    "triton": Backend("na2d_triton", "na2d_triton"),
    "flex": Backend("na2d_flex", "na2d_flex"),
}
"""The backends by name (same order as :data:`BACKENDS`)."""

AUTO_ORDER = ("triton", "cpu")
"""What 'auto' tries, in order, before the reference."""

_QUIET_SKIPS = (
    "device ",
    "triton is not installed",
    "attention dropout",
    "gradients needed",
    "extension build failed",
)
"""Reasons for which 'auto' skips a backend without a warning: the call is not the backend's
kind, or the backend warned itself (a failed build); others (dtype, head_dim) warn once."""


def unsupported_reason(
    name: str, q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool | None = None
) -> str | None:
    """Why backend ``name`` cannot serve a call with these inputs, or None when it can.

    ``grad``: whether the call needs gradients (None: judged from ``q`` and ``rpb``).
    """
    grad = needs_grad(q, rpb) if grad is None else grad
    return TABLE[name].unsupported_reason(q, rpb, attn_drop, grad)


def _warn_once(requested: str, name: str, reason: str, stacklevel: int) -> None:
    if (requested, name, reason) in _warned:
        return
    _warned.add((requested, name, reason))
    if requested == "auto":
        message = f"neighborhood-attention backend {name!r} skipped in 'auto' mode ({reason})"
    else:
        message = (
            f"neighborhood-attention backend {name!r} unavailable ({reason}); using 'reference'"
        )
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)


def select_backend(
    requested: str, q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool | None = None
) -> tuple[str, Callable[..., Tensor]]:
    """Resolve ``requested`` (a name or ``'auto'``) to the backend that serves this call.

    ``grad``: whether the call needs gradients (None: judged from ``q`` and ``rpb``). In 'auto'
    mode a backend skipped for a reason other than the call's device, dropout or gradients
    (e.g. dtype, head_dim) is warned about once; a named backend that cannot serve the call
    falls back to the reference with a one-time warning.
    """
    grad = needs_grad(q, rpb) if grad is None else grad
    if requested == "auto":
        for name in AUTO_ORDER:
            reason = unsupported_reason(name, q, rpb, attn_drop, grad)
            if reason is None:
                return name, TABLE[name].call
            if not reason.startswith(_QUIET_SKIPS):
                _warn_once("auto", name, reason, stacklevel=2)
        return "reference", TABLE["reference"].call
    reason = unsupported_reason(requested, q, rpb, attn_drop, grad)
    if reason is None:
        return requested, TABLE[requested].call
    _warn_once(requested, requested, reason, stacklevel=2)
    return "reference", TABLE["reference"].call
