"""The CSR (exact k^2) CPU path of neighborhood attention vs the float64 oracle and tiled path."""

from __future__ import annotations

import pytest
import torch
from test_na2d import make_inputs, oracle_na2d

from plgvit_mm.ops import na2d_csr, na2d_reference
from plgvit_mm.ops.na2d_csr import csr_pattern
from plgvit_mm.ops.na_windows import axis_neighbors

CASES = [  # size, kernel, dilation, batch, heads, with rpb
    ((12, 13), (3, 3), (1, 1), 2, 3, True),
    ((15, 17), (5, 5), (2, 2), 1, 2, True),
    ((14, 21), (7, 7), (1, 3), 1, 1, False),
    ((16, 11), (5, 3), (3, 2), 2, 1, True),
]


def _csr(q, k, v, kernel, dilation, rpb, scale):
    assert na2d_csr.unsupported_reason(q, kernel, 0.0) is None
    return na2d_csr.na2d_csr(q, k, v, kernel, dilation, rpb, scale)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_pattern_rows_and_transpose_match_the_axis_tables():
    size, kernel, dilation = (9, 11), (3, 5), (2, 1)
    pattern = csr_pattern(size, kernel, dilation, 2, 1, torch.device("cpu"))
    rows, cols = axis_neighbors(9, 3, 2), axis_neighbors(11, 5, 1)
    values = torch.arange(1, pattern.col.numel() + 1, dtype=torch.float64)  # all nonzero
    dense = torch.sparse_csr_tensor(
        pattern.crow, pattern.col, values, pattern.size, check_invariants=True
    ).to_dense()
    dense_t = torch.sparse_csr_tensor(
        pattern.crow_t,
        pattern.col_t,
        values[pattern.perm.long()],
        pattern.size,
        check_invariants=True,
    ).to_dense()
    assert torch.equal(dense_t, dense.T)  # the key-major pattern is the exact transpose
    n = 9 * 11
    for block in range(2):
        for y, x in ((0, 0), (4, 7), (8, 10)):
            row = block * n + y * 11 + x
            expected = sorted(
                block * n + int(ky) * 11 + int(kx) for ky in rows[0][y] for kx in cols[0][x]
            )
            assert dense[row].nonzero().flatten().tolist() == expected


@pytest.mark.parametrize("size,kernel,dilation,batch,heads,with_rpb", CASES)
def test_csr_forward_and_gradients_match_oracle(size, kernel, dilation, batch, heads, with_rpb):
    q, k, v, rpb = make_inputs(batch, *size, heads, 4, kernel, with_rpb, requires_grad=True)
    leaves = [t for t in (q, k, v, rpb) if t is not None]
    grad_out = torch.randn(q.shape, dtype=q.dtype, generator=torch.Generator().manual_seed(1))
    out = _csr(q, k, v, kernel, dilation, rpb, 0.6)
    expected = oracle_na2d(q, k, v, kernel, dilation, rpb, 0.6)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    got = torch.autograd.grad(out, leaves, grad_out)
    want = torch.autograd.grad(expected, leaves, grad_out)
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-11)


def test_csr_float32_within_1e5_of_float64_oracle_at_a_nat_shape():
    q, k, v, rpb = make_inputs(1, 28, 30, 2, 32, (7, 7), seed=4, requires_grad=True)
    grad_out = torch.randn(q.shape, dtype=q.dtype, generator=torch.Generator().manual_seed(2))
    expected = oracle_na2d(q, k, v, (7, 7), (1, 1), rpb, 32**-0.5)
    want = torch.autograd.grad(expected, (q, k, v, rpb), grad_out)
    low = [t.detach().float().requires_grad_() for t in (q, k, v, rpb)]
    out = _csr(*low[:3], (7, 7), (1, 1), low[3], 32**-0.5)
    assert out.dtype == torch.float32
    assert (out.double() - expected).abs().max().item() <= 1e-5
    got = torch.autograd.grad(out, low, grad_out.float())
    for g, e in zip(got, want, strict=True):
        assert ((g.double() - e).abs().max() / e.abs().max()).item() <= 1e-5


def test_csr_equals_tiled_path_and_backward_is_deterministic():
    q, k, v, rpb = make_inputs(2, 19, 23, 2, 8, (5, 5), dtype=torch.float32, requires_grad=True)
    tiled = na2d_reference.na2d_tiled(q, k, v, (5, 5), (2, 1), rpb, 0.3)
    fast = _csr(q, k, v, (5, 5), (2, 1), rpb, 0.3)
    torch.testing.assert_close(fast, tiled, rtol=0, atol=1e-6)
    grads = [
        torch.autograd.grad(_csr(q, k, v, (5, 5), (2, 1), rpb, 0.3).square().sum(), (q, k, v, rpb))
        for _ in range(2)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


def test_reference_dispatch():
    big = torch.zeros(1, 14, 14, 1, 4)
    assert na2d_csr.unsupported_reason(big, (7, 7), 0.0) is None
    assert "too small" in na2d_csr.unsupported_reason(big[:, :7, :7], (7, 7), 0.0)
    assert "dropout" in na2d_csr.unsupported_reason(big, (7, 7), 0.1)
    assert "dtype" in na2d_csr.unsupported_reason(big.bfloat16(), (7, 7), 0.0)
    assert "device" in na2d_csr.unsupported_reason(big.to("meta"), (7, 7), 0.0)
    q, k, v, rpb = make_inputs(1, 14, 14, 2, 4, (7, 7))
    out = na2d_reference.na2d_reference(q, k, v, (7, 7), (1, 1), rpb, 0.5)
    assert torch.equal(out, na2d_csr.na2d_csr(q, k, v, (7, 7), (1, 1), rpb, 0.5))


def test_tiled_chunks_match_single_chunk(monkeypatch):
    q, k, v, rpb = make_inputs(2, 19, 23, 2, 4, (5, 5))
    whole = na2d_reference.na2d_tiled(q, k, v, (5, 5), (2, 2), rpb, 0.5)
    torch.testing.assert_close(
        whole, oracle_na2d(q, k, v, (5, 5), (2, 2), rpb, 0.5), rtol=0, atol=1e-12
    )
    monkeypatch.setattr(na2d_reference, "CHUNK_LOGITS", 1)  # one tile per chunk
    torch.testing.assert_close(
        na2d_reference.na2d_tiled(q, k, v, (5, 5), (2, 2), rpb, 0.5), whole, rtol=0, atol=0
    )
