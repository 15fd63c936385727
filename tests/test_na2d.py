"""Neighborhood attention op vs an independent brute-force oracle (docs/design/neighborhood_attention.md), CPU, float64."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F

from plgvit_mm.ops import NeighborhoodAttention2D, backends, na2d, na_backend, select_backend
from plgvit_mm.ops import na2d_reference as reference_module
from plgvit_mm.ops.na_windows import axis_neighbors, axis_tiles


# ---------------------------------------------------------------- independent oracle
def oracle_axis(length: int, kernel: int, dilation: int) -> list[list[int]]:
    """Keys of every query on one axis, by the documented rule, with plain python."""
    radius = kernel // 2
    keys = []
    for i in range(length):
        group, inner = i % dilation, i // dilation
        members = list(range(group, length, dilation))  # the dilation group, in order
        start = min(max(inner - radius, 0), len(members) - kernel)
        keys.append(members[start : start + kernel])
    return keys


def oracle_na2d(q, k, v, kernel, dilation, rpb, scale):
    """Full softmax attention over all H*W keys with an (HW)x(HW) mask and bias built in loops."""
    batch, height, width, heads, dim = q.shape
    (ky, kx), (dy, dx) = kernel, dilation
    rows, cols = oracle_axis(height, ky, dy), oracle_axis(width, kx, dx)
    n = height * width
    allowed = torch.zeros(n, n, dtype=torch.bool)
    bias_y = torch.zeros(n, n, dtype=torch.long)
    bias_x = torch.zeros(n, n, dtype=torch.long)
    for y in range(height):
        for x in range(width):
            keys = [(ky_pos, kx_pos) for ky_pos in rows[y] for kx_pos in cols[x]]
            flat = torch.tensor([ky_pos * width + kx_pos for ky_pos, kx_pos in keys])
            allowed[y * width + x, flat] = True
            bias_y[y * width + x, flat] = torch.tensor([(yk - y) // dy + ky - 1 for yk, _ in keys])
            bias_x[y * width + x, flat] = torch.tensor([(xk - x) // dx + kx - 1 for _, xk in keys])
    qf = (q * scale).permute(0, 3, 1, 2, 4).reshape(batch, heads, n, dim)
    kf = k.permute(0, 3, 1, 2, 4).reshape(batch, heads, n, dim)
    vf = v.permute(0, 3, 1, 2, 4).reshape(batch, heads, n, dim)
    logits = qf @ kf.transpose(-1, -2)
    if rpb is not None:
        logits = logits + rpb[:, bias_y, bias_x]
    logits = logits.masked_fill(~allowed, float("-inf"))
    out = logits.softmax(-1) @ vf
    return out.view(batch, heads, height, width, dim).permute(0, 2, 3, 1, 4)


def make_inputs(
    batch,
    height,
    width,
    heads,
    dim,
    kernel,
    with_rpb=True,
    dtype=torch.float64,
    requires_grad=False,
    seed=0,
):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (
        torch.randn(batch, height, width, heads, dim, generator=gen, dtype=dtype) for _ in range(3)
    )
    ky, kx = kernel
    rpb = (
        torch.randn(heads, 2 * ky - 1, 2 * kx - 1, generator=gen, dtype=dtype) if with_rpb else None
    )
    tensors = [q, k, v] + ([rpb] if with_rpb else [])
    for t in tensors:
        t.requires_grad_(requires_grad)
    return q, k, v, rpb


# ---------------------------------------------------------------- 1-D tables
@pytest.mark.parametrize(
    "length,kernel,dilation,query,keys,bias",
    [
        (10, 7, 1, 0, list(range(0, 7)), list(range(6, 13))),
        (10, 7, 1, 3, list(range(0, 7)), list(range(3, 10))),
        (10, 7, 1, 9, list(range(3, 10)), list(range(0, 7))),
        (15, 3, 2, 0, [0, 2, 4], [2, 3, 4]),
        (15, 3, 2, 13, [9, 11, 13], [0, 1, 2]),
    ],
)
def test_axis_tables_hand_examples(length, kernel, dilation, query, keys, bias):
    got_keys, got_bias = axis_neighbors(length, kernel, dilation)
    assert got_keys[query].tolist() == keys
    assert got_bias[query].tolist() == bias


@pytest.mark.parametrize("kernel", [3, 5, 7, 9, 11, 13])
@pytest.mark.parametrize("dilation", [1, 2, 3, 4])
def test_axis_tables_match_oracle(kernel, dilation):
    for length in (kernel * dilation, kernel * dilation + 1, kernel * dilation + 2 * dilation + 3):
        keys, bias = axis_neighbors(length, kernel, dilation)
        expected = oracle_axis(length, kernel, dilation)
        assert keys.tolist() == expected
        for i, row in enumerate(expected):
            assert len(set(row)) == kernel
            assert bias[i].tolist() == [(j - i) // dilation + kernel - 1 for j in row]
        assert int(bias.min()) >= 0 and int(bias.max()) <= 2 * kernel - 2


@pytest.mark.parametrize("tile", [1, 3, 8])
def test_axis_tiles_cover_every_window(tile):
    length, kernel, dilation = 23, 5, 3
    tables = axis_tiles(length, kernel, dilation, tile)
    keys, bias = axis_neighbors(length, kernel, dilation)
    n_tiles, size = tables.query.shape
    for pos in range(length):
        t, s = divmod(int(tables.slot[pos]), size)
        assert int(tables.query[t, s]) == pos
        in_window = tables.halo[t][tables.valid[t, s]]
        assert sorted(in_window.tolist()) == keys[pos].tolist()
        assert sorted(tables.bias[t, s][tables.valid[t, s]].tolist()) == sorted(bias[pos].tolist())


# ---------------------------------------------------------------- forward vs oracle
def _sampled_forward_cases():
    """A spread of the (kernel 3..13) x (dilation 1..4) grid with varied map/batch/head shapes."""
    rng = random.Random(3)
    cases = []
    for kernel in (3, 5, 7, 9, 11, 13):
        dilations = (1, 2, 3, 4) if kernel <= 5 else (1, 2 if kernel > 9 else 3)
        for dilation in dilations:
            side = kernel * dilation
            height = side + rng.choice((0, 1, dilation + 2))
            width = side + rng.choice((0, 2, 3 * dilation + 1))
            if side > 24:  # keep the (HW)^2 oracle small
                height, width = side, side + 1
            cases.append(
                (
                    height,
                    width,
                    kernel,
                    dilation,
                    rng.choice((1, 2)),
                    rng.choice((1, 3)),
                    rng.random() < 0.75,
                )
            )
    # exact k*d maps, (y, x) kernel/dilation pairs
    cases += [(9, 9, 3, 3, 2, 2, True), (7, 7, 7, 1, 1, 2, False), (12, 20, 3, 4, 1, 1, True)]
    return cases


@pytest.mark.parametrize(
    "height,width,kernel,dilation,batch,heads,with_rpb", _sampled_forward_cases()
)
def test_forward_matches_oracle(height, width, kernel, dilation, batch, heads, with_rpb):
    pair = (kernel, kernel)
    q, k, v, rpb = make_inputs(batch, height, width, heads, 4, pair, with_rpb)
    out = na2d(q, k, v, kernel, dilation, rpb=rpb)
    expected = oracle_na2d(q, k, v, pair, (dilation, dilation), rpb, 4**-0.5)
    assert out.dtype == torch.float64 and out.shape == q.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kernel,dilation,size", [((3, 5), (2, 1), (8, 9)), ((5, 3), (1, 3), (6, 10))]
)
def test_forward_matches_oracle_per_axis_pairs(kernel, dilation, size):
    q, k, v, rpb = make_inputs(2, *size, 2, 3, kernel)
    out = na2d(q, k, v, kernel, dilation, rpb=rpb, scale=0.7)
    torch.testing.assert_close(
        out, oracle_na2d(q, k, v, kernel, dilation, rpb, 0.7), rtol=0, atol=1e-12
    )


def test_chunked_tiles_match_single_chunk(monkeypatch):
    q, k, v, rpb = make_inputs(2, 19, 23, 2, 4, (5, 5))
    whole = na2d(q, k, v, 5, 2, rpb=rpb)
    monkeypatch.setattr(reference_module, "CHUNK_LOGITS", 1)  # one tile per chunk
    torch.testing.assert_close(na2d(q, k, v, 5, 2, rpb=rpb), whole, rtol=0, atol=0)


def test_window_equal_to_map_is_full_attention():
    kernel = 5
    q, k, v, rpb = make_inputs(2, kernel, kernel, 3, 8, (kernel, kernel))
    pos = torch.arange(kernel)
    rel = pos[None, :] - pos[:, None] + kernel - 1  # (query, key) index per axis
    bias = rpb[:, rel[:, None, :, None], rel[None, :, None, :]].reshape(3, kernel**2, kernel**2)
    flat = [t.permute(0, 3, 1, 2, 4).reshape(2, 3, kernel**2, 8) for t in (q, k, v)]
    full = F.scaled_dot_product_attention(*flat, attn_mask=bias)
    out = na2d(q, k, v, kernel, rpb=rpb).permute(0, 3, 1, 2, 4).reshape(2, 3, kernel**2, 8)
    torch.testing.assert_close(out, full, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "size,kernel,dilation,with_rpb",
    [((9, 11), 3, 2, True), ((7, 8), 7, 1, True), ((13, 12), 5, 2, False), ((12, 14), 3, 4, True)],
)
def test_gradients_match_oracle(size, kernel, dilation, with_rpb):
    pair = (kernel, kernel)
    q, k, v, rpb = make_inputs(2, *size, 2, 4, pair, with_rpb, requires_grad=True)
    grad_out = torch.randn(q.shape, dtype=q.dtype, generator=torch.Generator().manual_seed(1))
    leaves = [t for t in (q, k, v, rpb) if t is not None]
    got = torch.autograd.grad(na2d(q, k, v, kernel, dilation, rpb=rpb), leaves, grad_out)
    expected = torch.autograd.grad(
        oracle_na2d(q, k, v, pair, (dilation, dilation), rpb, 0.5), leaves, grad_out
    )
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-11)


@pytest.mark.parametrize("size,kernel,dilation", [((4, 5), 3, 1), ((6, 7), 3, 2)])
def test_gradcheck(size, kernel, dilation):
    q, k, v, rpb = make_inputs(1, *size, 2, 2, (kernel, kernel), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: na2d(*t[:3], kernel, dilation, rpb=t[3]), (q, k, v, rpb), fast_mode=True
    )


def test_backward_is_deterministic():
    q, k, v, rpb = make_inputs(2, 15, 17, 2, 8, (5, 5), dtype=torch.float32, requires_grad=True)
    grads = [
        torch.autograd.grad(na2d(q, k, v, 5, 2, rpb=rpb).square().sum(), (q, k, v, rpb))
        for _ in range(2)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- dtypes
def test_float32_error_vs_float64_oracle():
    q, k, v, rpb = make_inputs(2, 21, 26, 2, 32, (7, 7), seed=5)
    expected = oracle_na2d(q, k, v, (7, 7), (2, 2), rpb, 32**-0.5)
    out = na2d(q.float(), k.float(), v.float(), 7, 2, rpb=rpb.float())
    assert out.dtype == torch.float32
    assert (out.double() - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("dtype,atol", [(torch.bfloat16, 3e-2), (torch.float16, 4e-3)])
def test_half_types(dtype, atol):
    q, k, v, rpb = make_inputs(1, 14, 15, 2, 16, (7, 7), seed=2)
    expected = oracle_na2d(q, k, v, (7, 7), (1, 1), rpb, 0.25)
    out = na2d(q.to(dtype), k.to(dtype), v.to(dtype), 7, rpb=rpb.float())
    assert out.dtype == dtype
    assert (out.double() - expected).abs().max().item() <= atol


# ---------------------------------------------------------------- bad arguments
def _bad_call(**overrides):
    q, k, v, rpb = make_inputs(1, 8, 9, 2, 4, (3, 3))
    args = dict(q=q, k=k, v=v, kernel_size=3, dilation=1, rpb=rpb)
    args.update(overrides)
    return na2d(args.pop("q"), args.pop("k"), args.pop("v"), **args)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(kernel_size=4), "kernel_size must be odd and > 1, got 4"),
        (dict(kernel_size=1), "kernel_size must be odd and > 1, got 1"),
        (dict(kernel_size=(3, 6)), r"got \(3, 6\)"),
        (dict(kernel_size=3.0), "kernel_size must be an int"),
        (dict(dilation=0), "dilation must be >= 1, got 0"),
        (dict(dilation=3), r"height 8 < kernel_size \* dilation = 3 \* 3 = 9"),
        (dict(kernel_size=(3, 5), dilation=(1, 2), rpb=None), r"width 9 < .* 5 \* 2 = 10"),
        (
            dict(k=torch.zeros(1, 8, 9, 2, 5, dtype=torch.float64)),
            r"k shape \(1, 8, 9, 2, 5\) != q shape \(1, 8, 9, 2, 4\)",
        ),
        (dict(v=torch.zeros(1, 8, 9, 2, 4)), "v dtype torch.float32 != q dtype torch.float64"),
        (
            dict(v=torch.zeros(1, 8, 9, 2, 4, dtype=torch.float64, device="meta")),
            "v device meta != q device cpu",
        ),
        (dict(q=torch.zeros(8, 9, 2, 4)), r"q must be \(B, H, W, heads, head_dim\)"),
        (dict(rpb=torch.zeros(2, 5, 4)), r"rpb shape \(2, 5, 4\) != .* = \(2, 5, 5\)"),
        (dict(rpb=torch.zeros(3, 5, 5)), r"rpb shape \(3, 5, 5\)"),
        (dict(attn_drop=1.0), r"attn_drop must be in \[0, 1\), got 1.0"),
        (dict(backend="cudnn"), r"unknown neighborhood-attention backend 'cudnn'; valid: \('auto'"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        _bad_call(**overrides)


def test_integer_inputs_raise():
    q = torch.zeros(1, 3, 3, 1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="floating point, got torch.int64"):
        na2d(q, q, q, 3)


# ---------------------------------------------------------------- backend selection
def test_backend_selection(monkeypatch):
    q, _, _, rpb = make_inputs(1, 8, 9, 2, 4, (3, 3))
    assert select_backend("auto", q, rpb, 0.0)[0] == "cpu"  # the fused CPU forward
    with na_backend("reference"):
        assert _bad_call().shape == q.shape
    monkeypatch.setenv("PLGVIT_MM_NA_BACKEND", "nope")
    with pytest.raises(ValueError, match="PLGVIT_MM_NA_BACKEND: unknown .* 'nope'"):
        _bad_call()
    with na_backend("reference"):  # the context wins over the environment
        _bad_call()
    _bad_call(backend="reference")  # the argument wins too
    with pytest.raises(ValueError, match="valid: "):
        with na_backend("fast"):
            pass


@pytest.mark.parametrize("name", ["triton", "flex"])
def test_gpu_backend_on_cpu_falls_back_with_warning(name, monkeypatch):
    monkeypatch.setattr(backends, "_warned", set())
    q, k, v, rpb = make_inputs(1, 8, 9, 2, 4, (3, 3))
    expected = na2d(q, k, v, 3, rpb=rpb, backend="reference")
    with pytest.warns(RuntimeWarning, match=f"backend '{name}' unavailable .* using 'reference'"):
        out = na2d(q, k, v, 3, rpb=rpb, backend=name)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per reason
        assert select_backend(name, q, rpb, 0.0)[0] == "reference"


# ---------------------------------------------------------------- module
def _module_reference(module, x):
    """The module's math spelled out with the oracle (qkv rows q, k, v head-major)."""
    batch, height, width, dim = x.shape
    heads = module.num_heads
    qkv = x @ module.qkv.weight.T + module.qkv.bias
    q, k, v = qkv.view(batch, height, width, 3, heads, dim // heads).unbind(3)
    out = oracle_na2d(q, k, v, module.kernel_size, module.dilation, module.rpb, module.scale)
    return out.reshape(batch, height, width, dim) @ module.proj.weight.T + module.proj.bias


def test_module_parameters_and_forward():
    torch.manual_seed(0)
    module = NeighborhoodAttention2D(12, 3, 5, dilation=2).double()
    assert {n: tuple(p.shape) for n, p in module.named_parameters()} == {
        "qkv.weight": (36, 12),
        "qkv.bias": (36,),
        "rpb": (3, 9, 9),
        "proj.weight": (12, 12),
        "proj.bias": (12,),
    }
    assert 0.005 < module.rpb.std().item() < 0.04  # trunc_normal_(std=.02)
    assert (module.dim, module.num_heads, module.kernel_size, module.dilation) == (
        12,
        3,
        (5, 5),
        (2, 2),
    )
    assert module.attention_macs(14, 16) == 2 * 14 * 16 * 25 * 12
    assert "kernel_size=(5, 5), dilation=(2, 2)" in repr(module)
    with torch.no_grad():
        module.rpb.normal_()  # make a wrong bias orientation visible
    x = torch.randn(2, 11, 13, 12, dtype=torch.float64)
    torch.testing.assert_close(module(x), _module_reference(module, x), rtol=0, atol=1e-12)


def test_module_without_bias_and_qkv_bias():
    module = NeighborhoodAttention2D(8, 2, 3, qkv_bias=False, rel_pos_bias=False, qk_scale=0.3)
    assert module.rpb is None and module.qkv.bias is None and module.scale == 0.3
    assert "rpb" not in dict(module.named_parameters())
    assert module(torch.randn(1, 4, 5, 8)).shape == (1, 4, 5, 8)


@pytest.mark.parametrize("size", [(3, 9), (5, 5), (2, 2)])
def test_module_pads_small_inputs_like_legacy_natten(size):
    module = NeighborhoodAttention2D(8, 2, 3, dilation=(2, 1)).double()
    with torch.no_grad():
        module.rpb.normal_()
    x = torch.randn(2, *size, 8, dtype=torch.float64)
    hp, wp = max(size[0], 6), max(size[1], 3)
    padded = F.pad(x, (0, 0, 0, wp - size[1], 0, hp - size[0]))  # zero rows/cols right/bottom
    expected = _module_reference(module, padded)[:, : size[0], : size[1]]
    torch.testing.assert_close(module(x), expected, rtol=0, atol=1e-12)
    assert module.attention_macs(*size) == 2 * hp * wp * 9 * 8
    module.pad_small_inputs = False
    with pytest.raises(ValueError, match=rf"feature map {size[0]}x{size[1]} is smaller than"):
        module(x)


def test_module_attention_dropout_only_in_training():
    torch.manual_seed(0)
    module = NeighborhoodAttention2D(8, 2, 3, attn_drop=0.5)
    x = torch.randn(1, 6, 6, 8)
    module.eval()
    assert torch.equal(module(x), module(x))
    module.train()
    assert not torch.allclose(module(x), module(x))


def test_module_rejects_bad_configuration():
    with pytest.raises(ValueError, match="dim 10 must be a positive multiple of num_heads 3"):
        NeighborhoodAttention2D(10, 3, 7)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        NeighborhoodAttention2D(8, 2, 6)
    with pytest.raises(ValueError, match=r"input channels 4 != dim 8"):
        NeighborhoodAttention2D(8, 2, 3)(torch.zeros(1, 5, 5, 4))


# ---------------------------------------------------------------- memory
@pytest.mark.slow
def test_nat_tiny_stage1_800x1216_forward_fits_2gib():
    """NAT-Tiny stage 1 at 800x1216 (200x304 tokens, 2 heads x 32, k=7, B=1), no autograd."""
    script = textwrap.dedent(
        """
        import resource, torch
        from plgvit_mm.ops import na2d
        torch.set_num_threads(2)
        q, k, v = (torch.randn(1, 200, 304, 2, 32) for _ in range(3))
        rpb = torch.randn(2, 13, 13)
        with torch.no_grad():
            na2d(q[:, :14, :14], k[:, :14, :14], v[:, :14, :14], 7, rpb=rpb)  # warm up
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out = na2d(q, k, v, 7, rpb=rpb)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert out.shape == q.shape and torch.isfinite(out).all()
        print((after - before) * 1024)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    peak_increase = int(result.stdout.split()[-1])
    assert peak_increase < 2 * 1024**3, f"peak RSS grew by {peak_increase / 2**20:.0f} MiB"


def test_never_builds_a_quadratic_tensor(monkeypatch):
    """The largest intermediate is O(H * W * k^2): far below (H * W)^2 on a 40x40 map."""
    sizes = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a, b):
        out = real_matmul(a, b)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    q, k, v, rpb = make_inputs(1, 40, 40, 1, 4, (5, 5))
    na2d(q, k, v, 5, rpb=rpb, backend="reference")
    assert sizes and max(sizes) <= 40 * 40 * 5 * 5 * 4 < (40 * 40) ** 2 // 4
