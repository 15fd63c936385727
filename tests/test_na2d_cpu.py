"""The fused C++ CPU neighborhood-attention forward vs the brute-force oracle and the reference."""

from __future__ import annotations

import warnings

import pytest
import torch
from test_na2d import make_inputs, oracle_na2d

from plgvit_mm.ops import NeighborhoodAttention2D, backends, na2d, select_backend
from plgvit_mm.ops import na2d_cpu as cpu_module
from plgvit_mm.ops.na2d_reference import na2d_tiled


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    assert cpu_module.extension_error() is None, cpu_module.extension_error()


def _kernel(q, k, v, kernel, dilation, rpb, scale):
    return torch.ops.plgvit_mm.na2d_cpu_forward(q, k, v, rpb, list(kernel), list(dilation), scale)


CASES = [  # size, kernel, dilation, batch, heads, head_dim, with rpb
    ((13, 17), (3, 5), (2, 1), 2, 3, 8, True),  # one border chunk per row, dilated rows
    ((30, 31), (7, 7), (2, 3), 1, 2, 32, True),  # dilated columns: interior and border chunks
    ((7, 7), (7, 7), (1, 1), 1, 4, 32, True),  # every window is the whole map
    ((14, 14), (7, 7), (1, 1), 1, 2, 32, False),  # no bias
    ((21, 9), (5, 3), (1, 3), 2, 2, 12, True),  # head_dim not a multiple of 8, W < 2 chunks
    ((9, 40), (3, 9), (3, 1), 1, 1, 5, True),  # wide kernel, odd head_dim
    ((9, 17), (3, 3), (1, 5), 1, 2, 8, True),  # float64 (4 lanes): a chunk gathered per lane
]


@pytest.mark.parametrize("size,kernel,dilation,batch,heads,dim,with_rpb", CASES)
def test_float64_equals_oracle(size, kernel, dilation, batch, heads, dim, with_rpb):
    q, k, v, rpb = make_inputs(batch, *size, heads, dim, kernel, with_rpb=with_rpb)
    scale = dim**-0.5
    out = _kernel(q, k, v, kernel, dilation, rpb, scale)
    expected = oracle_na2d(q, k, v, kernel, dilation, rpb, scale)
    assert out.is_contiguous() and out.shape == q.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "size,heads,dilation",
    [
        ((56, 56), 2, 1),
        ((28, 28), 4, 1),
        ((14, 14), 8, 1),
        ((7, 7), 16, 1),
        ((28, 28), 4, 4),
        ((25, 61), 2, 3),
    ],  # NAT-T's levels at 224, then DiNAT-style dilations
)
def test_float32_qkv_views_within_1e5_of_float64(size, heads, dilation):
    """The layer's inputs: q, k, v unbound from the (B, H, W, 3, heads, 32) qkv projection."""
    gen = torch.Generator().manual_seed(1)
    qkv = torch.randn(1, *size, 3, heads, 32, generator=gen)
    rpb = torch.randn(heads, 13, 13, generator=gen)
    q, k, v = qkv.unbind(3)
    assert not q.is_contiguous()
    dil = (dilation, dilation)
    out = _kernel(q, k, v, (7, 7), dil, rpb, 32**-0.5)
    expected = na2d_tiled(*(t.double() for t in (q, k, v)), (7, 7), dil, rpb.double(), 32**-0.5)
    torch.testing.assert_close(out, expected.float(), rtol=0, atol=1e-5)


def test_any_strides_and_large_logits():
    """Head_dim of stride 2 and logits of magnitude ~1e2-1e3: no overflow, float32-accurate."""
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 16, 19, 10, 2, generator=gen).transpose(-1, -2) for _ in range(3))
    q = q * 30
    rpb = torch.randn(2, 9, 9, generator=gen) * 10
    assert q.stride(-1) == 2
    out = _kernel(q, k, v, (5, 5), (1, 2), rpb, 1.0)
    expected = oracle_na2d(q.double(), k.double(), v.double(), (5, 5), (1, 2), rpb.double(), 1.0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-4)  # float32 logits ~1e3
    reference = na2d_tiled(q, k, v, (5, 5), (1, 2), rpb, 1.0)
    assert (out - expected).abs().max() <= 2 * (reference.double() - expected).abs().max()


def test_auto_uses_the_kernel_without_gradients_and_the_reference_with_them():
    q, k, v, rpb = make_inputs(1, 9, 10, 2, 4, (3, 3), dtype=torch.float32)
    assert select_backend("auto", q, rpb, 0.0)[0] == "cpu"
    assert select_backend("auto", q, rpb, 0.1)[0] == "reference"  # attention dropout
    assert select_backend("auto", q.bfloat16(), rpb, 0.0)[0] == "reference"
    q, k, v, rpb = make_inputs(1, 9, 10, 2, 4, (3, 3), requires_grad=True)
    assert select_backend("auto", q, rpb, 0.0)[0] == "reference"
    with torch.no_grad():
        assert select_backend("auto", q, rpb, 0.0)[0] == "cpu"
        fused = na2d(q, k, v, 3, rpb=rpb)
    out = na2d(q, k, v, 3, rpb=rpb)  # autograd: the reference path
    out.sum().backward()
    assert q.grad is not None and rpb.grad is not None
    torch.testing.assert_close(fused, out.detach(), rtol=0, atol=1e-12)


def test_named_cpu_backend_with_gradients_falls_back_with_warning(monkeypatch):
    monkeypatch.setattr(backends, "_warned", set())
    q, k, v, rpb = make_inputs(1, 8, 9, 2, 4, (3, 3), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="backend 'cpu' unavailable \\(gradients needed"):
        out = na2d(q, k, v, 3, rpb=rpb, backend="cpu")
    assert out.requires_grad


def test_module_in_eval_equals_reference_backend():
    torch.manual_seed(0)
    layer = NeighborhoodAttention2D(64, 2, 7, dilation=2).eval()
    x = torch.randn(2, 17, 30, 64)
    with torch.inference_mode():
        fused = layer(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            from plgvit_mm.ops import na_backend

            with na_backend("reference"):
                expected = layer(x)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(rpb=torch.zeros(2, 7, 7)), "rpb must be \\(heads, 2\\*ky-1, 2\\*kx-1\\)"),
        (dict(kernel=(4, 3)), "kernel_size must be odd"),
        (dict(q=torch.zeros(1, 9, 9, 2, 4, dtype=torch.float16)), "float32 or float64"),
        (dict(k=torch.zeros(1, 9, 8, 2, 4)), "k and v must have q's shape"),
        (dict(dilation=(4, 1)), "smaller than kernel_size \\* dilation"),
    ],
)
def test_op_checks_its_arguments(change, message):
    args = dict(
        q=torch.zeros(1, 9, 9, 2, 4),
        k=torch.zeros(1, 9, 9, 2, 4),
        v=torch.zeros(1, 9, 9, 2, 4),
        kernel=(3, 3),
        dilation=(1, 1),
        rpb=torch.zeros(2, 5, 5),
    )
    args.update(change)
    with pytest.raises(RuntimeError, match=message):
        _kernel(args["q"], args["k"], args["v"], args["kernel"], args["dilation"], args["rpb"], 1.0)


def test_build_failure_warns_once_and_falls_back(monkeypatch):
    def broken() -> None:
        raise RuntimeError("Error building extension 'plgvit_mm_na2d_cpu'\nc++: not found")

    monkeypatch.setattr(cpu_module, "build_extension", broken)
    cpu_module.extension_error.cache_clear()
    try:
        q, k, v, rpb = make_inputs(1, 8, 9, 2, 4, (3, 3))
        with pytest.warns(RuntimeWarning, match="kernel unavailable \\(c\\+\\+: not found\\)"):
            assert select_backend("auto", q, rpb, 0.0)[0] == "reference"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert "c++: not found" in cpu_module.extension_error()
    finally:
        cpu_module.extension_error.cache_clear()
    monkeypatch.undo()
    assert cpu_module.extension_error() is None


def test_build_directory_is_per_torch_python_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PLGVIT_MM_CACHE", str(tmp_path))
    directory = cpu_module.build_directory()
    assert directory.parent == tmp_path / "torch_extensions"
    assert (
        directory.name.startswith("py")
        and f"torch{torch.__version__.split('+')[0]}" in directory.name
    )


def test_module_calls_the_kernel_exactly_when_na2d_would(monkeypatch):
    """The layer's direct call (no argument checks) follows na2d's backend choice."""
    from plgvit_mm.ops import na_backend

    calls = []
    real = cpu_module.na2d_cpu
    monkeypatch.setattr(cpu_module, "na2d_cpu", lambda *a: calls.append(1) or real(*a))
    layer = NeighborhoodAttention2D(32, 2, 5)
    x = torch.randn(1, 9, 11, 32)
    with torch.no_grad():
        layer.eval()(x)
        assert len(calls) == 1
        with na_backend("reference"):
            layer(x)
        assert len(calls) == 1
        layer.train()(x)  # no attention dropout: still the fused forward
        assert len(calls) == 2
    layer(x)  # gradients needed: the reference path
    monkeypatch.setenv("PLGVIT_MM_NA_BACKEND", "reference")
    with torch.no_grad():
        layer.eval()(x)
    assert len(calls) == 2
