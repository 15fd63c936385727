"""GPU backends of na2d vs the reference: Triton kernels in the Triton interpreter on CPU (a
subprocess, since TRITON_INTERPRET must be set before the kernels are defined), eager flex on
CPU, and the real compiled paths when CUDA is present."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from plgvit_mm.ops import na2d, select_backend
from plgvit_mm.ops.na2d_flex import _block_mask, flex_na2d

CASES = [  # batch, height, width, heads, head_dim, kernel, dilation, with rpb
    (1, 9, 19, 2, 16, 3, 1, True),
    (2, 12, 11, 1, 16, 5, 2, True),
    (1, 14, 15, 1, 32, 7, 1, False),
    (1, 13, 9, 1, 16, 3, (4, 3), True),
]


def _inputs(batch, height, width, heads, dim, kernel, dtype, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    qkv = [
        torch.randn(batch, height, width, heads, dim, generator=gen, dtype=torch.float64)
        for _ in range(3)
    ]
    rpb = torch.randn(heads, 2 * kernel - 1, 2 * kernel - 1, generator=gen, dtype=torch.float64)
    return [t.to(device=device, dtype=dtype).requires_grad_() for t in (*qkv, rpb)]


@pytest.mark.slow
def test_triton_kernels_in_interpreter_match_reference():
    script = textwrap.dedent(
        f"""
        import os
        os.environ["TRITON_INTERPRET"] = "1"
        import torch
        from plgvit_mm.ops import na2d, select_backend
        cases = {CASES!r}
        for batch, height, width, heads, dim, kernel, dilation, with_rpb in cases:
            gen = torch.Generator().manual_seed(0)
            leaves = [torch.randn(batch, height, width, heads, dim, generator=gen,
                                  dtype=torch.float64) for _ in range(3)]
            leaves.append(torch.randn(heads, 2 * kernel - 1, 2 * kernel - 1, generator=gen,
                                      dtype=torch.float64))
            if not with_rpb:
                leaves.pop()
            grad = torch.randn(leaves[0].shape, generator=gen, dtype=torch.float64)
            fp32 = [t.float().requires_grad_() for t in leaves]
            assert select_backend("auto", fp32[0], None, 0.0)[0] == "triton"
            rpb = fp32[3] if with_rpb else None
            out = na2d(*fp32[:3], kernel, dilation, rpb=rpb, backend="triton")
            got = torch.autograd.grad(out, fp32, grad.float())
            ref_leaves = [t.requires_grad_() for t in leaves]
            ref_rpb = ref_leaves[3] if with_rpb else None
            ref = na2d(*ref_leaves[:3], kernel, dilation, rpb=ref_rpb, backend="reference")
            expected = torch.autograd.grad(ref, ref_leaves, grad)
            assert out.dtype == torch.float32
            errors = [(out.double() - ref).abs().max().item()]
            errors += [(g.double() - e).abs().max().item() for g, e in zip(got, expected)]
            assert max(errors) <= 1e-4, (kernel, dilation, errors)
            print("ok", kernel, dilation, max(errors))
        """
    )
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok") == len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_flex_formulation_matches_reference_on_cpu(case):
    batch, height, width, heads, dim, kernel, dilation, with_rpb = case
    q, k, v, rpb = _inputs(batch, height, width, heads, dim, kernel, torch.float32)
    pair = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    rpb = rpb if with_rpb else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager flex warns that it is unfused
        out = flex_na2d(q, k, v, (kernel, kernel), pair, rpb, 0.3, compiled=False)
        expected = na2d(q, k, v, kernel, dilation, rpb=rpb, scale=0.3, backend="reference")
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("backend", ["triton", "flex"])
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
def test_gpu_backend_matches_float64_reference(backend, dtype, atol):
    leaves = _inputs(2, 40, 57, 2, 32, 7, torch.float64, device="cuda")
    grad = torch.randn_like(leaves[0])
    expected_out = na2d(*leaves[:3], 7, 2, rpb=leaves[3], backend="reference")
    expected = torch.autograd.grad(expected_out, leaves, grad)
    low = [t.detach().to(dtype).requires_grad_() for t in leaves[:3]]
    rpb = leaves[3].detach().float().requires_grad_()  # float32 table, as under autocast
    assert select_backend(backend, low[0], rpb, 0.0)[0] == backend
    out = na2d(*low, 7, 2, rpb=rpb, backend=backend)
    got = torch.autograd.grad(out, [*low, rpb], grad.to(dtype))
    assert out.dtype == dtype
    assert (out.double() - expected_out).abs().max().item() <= atol
    for g, e in zip(got, expected, strict=True):
        scale = e.abs().max().item()
        assert (g.double() - e).abs().max().item() <= atol * max(scale, 1.0)


@cuda
def test_triton_is_the_cuda_default_and_deterministic():
    q, k, v, rpb = _inputs(1, 30, 31, 2, 32, 7, torch.bfloat16, device="cuda")
    assert select_backend("auto", q, rpb, 0.0)[0] == "triton"
    assert select_backend("auto", q, rpb, 0.1)[0] == "reference"  # dropout falls back
    grads = [
        torch.autograd.grad(na2d(q, k, v, 7, rpb=rpb).float().square().sum(), (q, k, v, rpb))
        for _ in range(2)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "size,kernel,dilation",
    [((20, 37), (7, 7), (1, 1)), ((33, 50), (5, 3), (3, 2)), ((16, 48), (3, 3), (1, 1))],
)
def test_flex_block_mask_equals_generic_block_mask(size, kernel, dilation):
    """The tile-reach block mask keeps exactly the blocks flex's own create_block_mask keeps."""
    from torch.nn.attention.flex_attention import create_block_mask

    ours, ys, xs = _block_mask(size, kernel, dilation, torch.device("cpu"))
    n = ys.numel()
    generic = create_block_mask(ours.mask_mod, None, None, n, n, device="cpu")
    assert torch.equal(ours.to_dense(), generic.to_dense())
    assert ours.to_dense().sum() < ours.to_dense().numel()  # the mask is sparse here
