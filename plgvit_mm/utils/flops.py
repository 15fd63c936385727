"""Multiply-accumulate (MAC) counter for plgvit_mm models (the "FLOPs" of the NAT/Swin papers).

Built on ``mmengine.analysis.FlopAnalyzer`` (fvcore's tracer): convolutions, linear layers and
matmul/bmm/einsum count one MAC per multiply-add. Norms, activations, softmax, pooling and
other elementwise ops are not counted, as in the published NAT, DiNAT and Swin numbers.

Neighborhood attention is invisible to (or miscounted by) a tracer: its kernels are custom
ops, and its reference implementation multiplies padded key halos. Every
:class:`~plgvit_mm.ops.NeighborhoodAttention2D` therefore gets the exact cost of q.k plus
attn.v, ``2 * H * W * k^2 * C`` MACs per image (on the padded map, see its
``attention_macs``), replacing whatever the tracer attributed to the module itself (its
``qkv``/``proj`` Linear layers stay counted by the tracer). Since that cost replaces the
traced kernel, the kernel is skipped while counting (``na2d`` returns v unchanged), which makes
tracing several times faster; MACs depend on shapes only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from unittest import mock

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import (
    addmm_flop_jit,
    bmm_flop_jit,
    conv_flop_jit,
    einsum_flop_jit,
    get_shape,
    linear_flop_jit,
    matmul_flop_jit,
)
from torch import Tensor, nn

from plgvit_mm.ops import NeighborhoodAttention2D
from plgvit_mm.ops import neighborhood_attention as na_module


def sdpa_flop_jit(inputs: list, outputs: list) -> int:
    """MACs of ``scaled_dot_product_attention``: q.k^T plus attn.v.

    q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev) -> prod(...) * Lq * Lk * (E + Ev).
    """
    q_shape, k_shape, v_shape = (get_shape(x) for x in inputs[:3])
    batch = 1
    for size in q_shape[:-2]:
        batch *= size
    return batch * q_shape[-2] * k_shape[-2] * (q_shape[-1] + v_shape[-1])


def baddbmm_flop_jit(inputs: list, outputs: list) -> int:
    """MACs of ``baddbmm(input, batch1, batch2)``: those of ``bmm(batch1, batch2)``."""
    return bmm_flop_jit(inputs[1:3], outputs)


MAC_OPS = {
    "aten::_convolution": conv_flop_jit,
    "aten::linear": linear_flop_jit,
    "aten::addmm": addmm_flop_jit,
    "aten::mm": matmul_flop_jit,
    "aten::matmul": matmul_flop_jit,
    "aten::bmm": bmm_flop_jit,
    "aten::baddbmm": baddbmm_flop_jit,
    "aten::baddbmm_": baddbmm_flop_jit,
    "aten::einsum": einsum_flop_jit,
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
}
"""Traced ops that are counted, with mmengine's (fvcore's) handles (one MAC per multiply-add)."""
NON_MAC_OPS = (
    "aten::batch_norm",
    "aten::group_norm",
    "aten::layer_norm",
    "aten::instance_norm",
    "aten::upsample_nearest2d",
    "aten::upsample_bilinear2d",
    "aten::adaptive_avg_pool2d",
    "aten::grid_sampler",
)
"""Ops mmengine counts by default that are not multiply-accumulates; ignored here."""


@dataclass
class MacCount:
    """Result of :func:`count_macs` for one forward pass of the given inputs (batch included).

    Attributes:
        total: all MACs of the forward pass.
        by_module: MACs per module name ('' is the whole model), descendants included.
        attention: the neighborhood-attention MACs contained in ``total``.
        unsupported_ops: traced ops the counter ignores, with their call counts.
    """

    total: int
    by_module: dict[str, int]
    attention: int = 0
    unsupported_ops: dict[str, int] = field(default_factory=dict)


def _ancestors(name: str) -> list[str]:
    """'a.b.c' -> ['a.b.c', 'a.b', 'a', '']."""
    parts = name.split(".") if name else []
    return [".".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _skipped_kernel(q: Tensor, k: Tensor, v: Tensor, *args, **kwargs) -> Tensor:
    """Stand-in for the layer's ``na2d_validated`` while counting: same output shape, no work
    (the attention cost is added apart)."""
    return v


def count_macs(model: nn.Module, inputs: Tensor | tuple[Tensor, ...]) -> MacCount:
    """Count the MACs of ``model(*inputs)`` (run once in eval mode, without gradients).

    Example: ``count_macs(timm.create_model('nat_tiny'), torch.randn(1, 3, 224, 224)).total``
    is about 4.30e9.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    names = {m: n for n, m in model.named_modules()}
    attention: Counter[str] = Counter()

    def record(module: NeighborhoodAttention2D, args: tuple, _output: Tensor) -> None:
        batch, height, width, _ = args[0].shape
        attention[names[module]] += int(batch) * module.attention_macs(int(height), int(width))

    hooks = [
        m.register_forward_hook(record)
        for m in model.modules()
        if isinstance(m, NeighborhoodAttention2D)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), mock.patch.object(na_module, "na2d_validated", _skipped_kernel):
            analyzer = FlopAnalyzer(model, inputs).clear_op_handles()
            analyzer.set_op_handle(**MAC_OPS).set_op_handle(**dict.fromkeys(NON_MAC_OPS))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analyzer.tracer_warnings("none")
            by_module = dict(analyzer.by_module())
            unsupported = dict(analyzer.unsupported_ops())
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)

    for name, macs in attention.items():
        module = model.get_submodule(name)
        prefix = f"{name}." if name else ""
        children = sum(by_module.get(prefix + c, 0) for c, _ in module.named_children())
        traced_own = by_module.get(name, 0) - children
        for scope in _ancestors(name):
            by_module[scope] = by_module.get(scope, 0) - traced_own + macs
    return MacCount(
        total=by_module[""],
        by_module=by_module,
        attention=sum(attention.values()),
        unsupported_ops=unsupported,
    )
