"""The registered op ``plgvit_mm::na2d``: torch.library's own checks, and the NAT layer through
torch.compile(fullgraph=True), torch.export and TorchScript against eager."""

from __future__ import annotations

import pytest
import torch

from plgvit_mm.ops import NeighborhoodAttention2D, na2d, na_backend


def _qkv_rpb(shape=(1, 9, 10, 2, 8), kernel=3, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(*shape, generator=gen, dtype=dtype) for _ in range(3)]
    rpb = torch.randn(shape[3], 2 * kernel - 1, 2 * kernel - 1, generator=gen, dtype=dtype)
    return [t.requires_grad_() for t in (*tensors, rpb)]


@pytest.mark.slow
@pytest.mark.parametrize("with_rpb", [True, False])
def test_opcheck_schema_fake_and_autograd_registration(with_rpb):
    q, k, v, rpb = _qkv_rpb()
    args = (q, k, v, rpb if with_rpb else None, [3, 3], [2, 1], 0.3)
    torch.library.opcheck(torch.ops.plgvit_mm.na2d.default, args)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_op_forward_and_gradients_equal_the_eager_function(backend):
    q, k, v, rpb = _qkv_rpb()
    expected = na2d(q, k, v, 3, (2, 1), rpb, scale=0.3, backend=backend)
    grads_expected = torch.autograd.grad(expected.square().sum(), (q, k, v, rpb))
    out = torch.ops.plgvit_mm.na2d(q, k, v, rpb, [3, 3], [2, 1], 0.3, backend)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v, rpb))
    for got, want in zip(grads, grads_expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.fixture
def layer() -> NeighborhoodAttention2D:
    torch.manual_seed(0)
    return NeighborhoodAttention2D(32, 2, 5, dilation=2).eval()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_compiled_fullgraph_layer_equals_eager(layer, backend):
    x = torch.randn(2, 11, 13, 32)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad(), na_backend(backend):
        expected = layer(x)
        torch.testing.assert_close(compiled(x), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_compiled_training_step_gradients_equal_eager(layer):
    layer.train()
    x = torch.randn(1, 10, 12, 32, requires_grad=True)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    compiled(x).square().sum().backward()
    grads = [x.grad.clone(), layer.rpb.grad.clone(), layer.qkv.weight.grad.clone()]
    x.grad = None
    layer.zero_grad()
    layer(x).square().sum().backward()
    for got, want in zip(grads, [x.grad, layer.rpb.grad, layer.qkv.weight.grad], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_export_keeps_one_op_node_per_layer_and_matches_eager(layer):
    x = torch.randn(1, 12, 9, 32)  # width 9 < kernel * dilation: the padded path
    program = torch.export.export(layer, (x,))
    targets = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert targets.count(torch.ops.plgvit_mm.na2d.default) == 1
    decomposed = program.run_decompositions()
    assert torch.ops.plgvit_mm.na2d.default in [node.target for node in decomposed.graph.nodes]
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), layer(x), rtol=1e-4, atol=1e-6)


def test_scripted_layer_calls_the_op_and_matches_eager(layer):
    scripted = torch.jit.script(layer)
    assert "plgvit_mm::na2d" in str(scripted.graph)
    x = torch.randn(1, 14, 15, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), layer(x), rtol=1e-4, atol=1e-6)
