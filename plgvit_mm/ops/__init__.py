"""Neighborhood attention (NA) for NAT/DiNAT: functional op, module and backend selection.

:func:`na2d` validates its arguments and dispatches; :class:`NeighborhoodAttention2D` is the
NAT layer. Under torch.compile, torch.export and TorchScript the attention is the registered op
(:mod:`.na2d_op`)::

    torch.ops.plgvit_mm.na2d(Tensor q, Tensor k, Tensor v, Tensor? rpb, SymInt[] kernel_size,
                             SymInt[] dilation, float scale, str? backend=None) -> Tensor

q, k, v: (B, H, W, heads, head_dim); rpb: (heads, 2*ky-1, 2*kx-1) or None; kernel_size and
dilation: (y, x); scale multiplies q; backend: a name of BACKENDS, 'auto' or None. Output: a
contiguous (B, H, W, heads, head_dim) tensor. Its gradient is ``plgvit_mm::na2d_backward``. An
exported graph holds ``torch.ops.plgvit_mm.na2d.default`` nodes, never decomposed; a translation
for ``torch.onnx.export(dynamo=True, custom_translation_table=...)`` keys on that overload.
"""

from . import na2d_onnx  # noqa: F401  (registers the decomposition plain torch.onnx.export uses)
from .backends import (
    BACKENDS,
    ENV_VAR,
    na_backend,
    requested_backend,
    select_backend,
    unsupported_reason,
)
from .na2d import na2d
from .na2d_op import BACKWARD_OP_NAME, OP_NAME
from .neighborhood_attention import NeighborhoodAttention2D

__all__ = [
    "BACKENDS",
    "BACKWARD_OP_NAME",
    "ENV_VAR",
    "NeighborhoodAttention2D",
    "OP_NAME",
    "na2d",
    "na_backend",
    "requested_backend",
    "select_backend",
    "unsupported_reason",
]
