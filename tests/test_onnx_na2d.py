"""ONNX translation of neighborhood attention (plgvit_mm.ops.na2d_onnx) vs the reference op.

Every case exports a tiny module calling ``torch.ops.plgvit_mm.na2d``, runs it with ONNX Runtime
and compares with the reference backend in float32; the graphs must hold default-domain nodes
only.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from plgvit_mm.deployment.onnx_export import non_default_nodes  # noqa: E402
from plgvit_mm.deployment.onnx_runtime import ort_session, run_session  # noqa: E402
from plgvit_mm.ops import NeighborhoodAttention2D, na2d  # noqa: E402
from plgvit_mm.ops.na2d_onnx import onnx_translations  # noqa: E402


class NAOp(torch.nn.Module):
    """q, k, v -> torch.ops.plgvit_mm.na2d with a stored rpb table."""

    def __init__(self, heads: int, kernel, dilation, with_rpb: bool, scale: float = 0.3):
        super().__init__()
        self.kernel, self.dilation, self.scale = list(kernel), list(dilation), scale
        gen = torch.Generator().manual_seed(1)
        table = torch.randn(heads, 2 * kernel[0] - 1, 2 * kernel[1] - 1, generator=gen)
        self.rpb = torch.nn.Parameter(table) if with_rpb else None

    def forward(self, q, k, v):
        return torch.ops.plgvit_mm.na2d(q, k, v, self.rpb, self.kernel, self.dilation, self.scale)

    def reference(self, q, k, v):
        return na2d(q, k, v, tuple(self.kernel), tuple(self.dilation), self.rpb, self.scale,
                    backend="reference")  # fmt: skip


def _qkv(batch, height, width, heads=2, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, height, width, heads, dim, generator=gen) for _ in range(3))


def _export(module, inputs, dynamic_shapes=None, table=True):
    with torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            inputs,
            dynamo=True,
            custom_translation_table=onnx_translations() if table else None,
            dynamic_shapes=dynamic_shapes,
        )
    return program.model_proto


def _check(model, module, inputs, reference):
    assert non_default_nodes(model) == []
    session = ort_session(model.SerializeToString(), threads=1)
    (got,) = run_session(session, inputs)
    with torch.no_grad():
        want = reference(*inputs)
    torch.testing.assert_close(torch.from_numpy(got), want, atol=2e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "size, kernel, dilation, with_rpb",
    [
        ((9, 11), (3, 3), (1, 1), True),
        ((7, 7), (7, 7), (1, 1), True),  # one window: full attention
        ((15, 14), (3, 5), (2, 2), True),  # dilation groups of unequal length
        ((20, 9), (7, 3), (2, 3), False),
    ],
)
def test_static_translation_matches_reference(size, kernel, dilation, with_rpb):
    module = NAOp(2, kernel, dilation, with_rpb)
    inputs = _qkv(2, *size)
    _check(_export(module, inputs), module, inputs, module.reference)


@pytest.mark.slow
def test_dynamic_translation_matches_reference_at_other_sizes():
    module = NAOp(2, (3, 5), (2, 1), True)
    batch = torch.export.Dim("batch", min=1, max=8)
    height, width = torch.export.Dim("h", min=6, max=64), torch.export.Dim("w", min=5, max=64)
    dims = ({0: batch, 1: height, 2: width},) * 3
    model = _export(module, _qkv(2, 12, 10), dynamic_shapes=dims)
    for batch_size, size in ((2, (12, 10)), (1, (17, 13)), (3, (6, 5))):
        inputs = _qkv(batch_size, *size, seed=batch_size)
        _check(model, module, inputs, module.reference)


@pytest.mark.slow
def test_plain_export_of_the_layer_is_standard_and_exact():
    """``torch.onnx.export(model, args)`` without a translation table: the decomposition that
    ``import plgvit_mm.ops`` registers lowers the op; maps smaller than the kernel are padded."""
    torch.manual_seed(0)
    layer = torch.nn.Sequential(
        NeighborhoodAttention2D(16, 2, 5, dilation=2), NeighborhoodAttention2D(16, 2, 3)
    ).eval()
    x = torch.randn(1, 8, 12, 16)  # height 8 < 5 * 2: legacy zero padding
    model = _export(layer, (x,), table=False)
    _check(model, layer, (x,), layer)
