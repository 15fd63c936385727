"""PLG-ViT building blocks against explicit reference computations (CPU, small maps)."""

import pytest
import torch
import torch.nn.functional as F
from timm.layers.grn import GlobalResponseNorm
from timm.models.gcvit import Downsample2d

from plgvit_mm.models.layers import (
    CCFFFN,
    CCFFFNPlus,
    GlobalPooledAttention,
    LocalWindowAttention,
    LWDownsample,
    PLGSelfAttention,
    ccf_ffn,
)
from plgvit_mm.models.layers.biased_attention import BMM_MIN_BATCH, biased_attention
from plgvit_mm.models.layers.ccf_ffn import SUM_OF_SQUARES_CHUNK, OnePassGlobalResponseNorm
from plgvit_mm.models.layers.global_pooled_attention import upsample_tokens


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def swin_bias(table: torch.Tensor, coords: list[tuple[int, int]], size: int) -> torch.Tensor:
    """Swin relative position bias ``(heads, N, N)`` for token coordinates inside a window."""
    index = [
        (qi - ki + size - 1) * (2 * size - 1) + (qj - kj + size - 1)
        for qi, qj in coords
        for ki, kj in coords
    ]
    return table[index].view(len(coords), len(coords), -1).permute(2, 0, 1)


def full_attention(qkv: torch.Tensor, heads: int, bias: torch.Tensor) -> torch.Tensor:
    """Softmax attention over all tokens: ``qkv (B, N, 3C)``, ``bias (heads, N, N)`` -> (B, N, C)."""
    batch, tokens, channels3 = qkv.shape
    head_dim = channels3 // 3 // heads
    q, k, v = qkv.view(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1)) * head_dim**-0.5 + bias
    return (attn.softmax(-1) @ v).transpose(1, 2).reshape(batch, tokens, -1)


def reference_local(module: LocalWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Window by window, attention among the window's valid tokens only (no padding at all)."""
    ws, table = module.window_size, module.rel_pos.relative_position_bias_table
    qkv = module.qkv(x)
    out = torch.zeros_like(x)
    for top in range(0, x.shape[1], ws):
        for left in range(0, x.shape[2], ws):
            block = qkv[:, top : top + ws, left : left + ws]
            rows, cols = block.shape[1:3]
            coords = [(i, j) for i in range(rows) for j in range(cols)]
            result = full_attention(
                block.reshape(x.shape[0], rows * cols, -1),
                module.num_heads,
                swin_bias(table, coords, ws),
            )
            out[:, top : top + rows, left : left + cols] = result.view(x.shape[0], rows, cols, -1)
    return out


def randomise_bias(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "relative_position_bias_table" in name:
                param.normal_()


def test_local_attention_is_full_attention_on_one_window():
    module = LocalWindowAttention(dim=16, num_heads=2, window_size=7)
    randomise_bias(module)
    x = torch.randn(2, 7, 7, 16)
    coords = [(i, j) for i in range(7) for j in range(7)]
    expected = full_attention(
        module.qkv(x).view(2, 49, 48),
        2,
        swin_bias(module.rel_pos.relative_position_bias_table, coords, 7),
    )
    torch.testing.assert_close(module(x), expected.view(2, 7, 7, 16), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size", [(14, 21), (10, 17), (3, 5)])
def test_local_attention_matches_per_window_reference(size):
    module = LocalWindowAttention(dim=8, num_heads=2, window_size=7)
    randomise_bias(module)
    x = torch.randn(2, *size, 8)
    torch.testing.assert_close(module(x), reference_local(module, x), atol=1e-5, rtol=1e-5)


def test_padding_path_leaves_whole_windows_unchanged():
    """A window-multiple map equals the same region of a padded (larger) map, window by window."""
    module = LocalWindowAttention(dim=8, num_heads=2, window_size=7)
    x = torch.randn(1, 16, 19, 8)
    padded_path = module(x)[:, :14, :14]
    direct_path = module(x[:, :14, :14].contiguous())
    torch.testing.assert_close(padded_path, direct_path, atol=1e-6, rtol=1e-6)


def test_global_attention_matches_reference():
    module = GlobalPooledAttention(dim=12, num_heads=3, grid_size=7, pool="max_avg")
    randomise_bias(module)
    x = torch.randn(2, 23, 30, 12)
    x_nchw = x.permute(0, 3, 1, 2)
    pooled = F.adaptive_max_pool2d(x_nchw, 7) + F.adaptive_avg_pool2d(x_nchw, 7)
    tokens = pooled.flatten(2).transpose(1, 2)
    coords = [(i, j) for i in range(7) for j in range(7)]
    expected = full_attention(
        module.qkv(tokens), 3, swin_bias(module.rel_pos.relative_position_bias_table, coords, 7)
    )
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    up = F.interpolate(
        expected.transpose(1, 2).reshape(2, 12, 7, 7),
        size=(23, 30),
        mode="bilinear",
        align_corners=False,
    )
    torch.testing.assert_close(upsample_tokens(expected, 7, 23, 30), up.permute(0, 2, 3, 1))


def test_global_max_pool_drops_average():
    module = GlobalPooledAttention(dim=4, num_heads=1, grid_size=7, pool="max")
    x = torch.randn(1, 20, 15, 4)
    expected = F.adaptive_max_pool2d(x.permute(0, 3, 1, 2), 7).flatten(2).transpose(1, 2)
    torch.testing.assert_close(module.sample_tokens(x), expected)
    with pytest.raises(ValueError, match="'mean'"):
        GlobalPooledAttention(dim=4, num_heads=1, grid_size=7, pool="mean")


@pytest.mark.parametrize("branch_proj", [True, False])
@pytest.mark.parametrize("size", [(11, 9), (3, 4)])  # more / fewer tokens than channels
def test_plg_self_attention_projection_equals_concat(branch_proj, size):
    module = PLGSelfAttention(
        24,
        local_heads=2,
        global_heads=3,
        local_window=7,
        global_window=5,
        global_ratio=0.25,
        patch_sampling="max",
        branch_proj=branch_proj,
    )
    assert (module.local_dim, module.global_dim) == (18, 6)
    x = torch.randn(2, *size, 24)
    local = module.local_attn(x[..., :18])
    glob = module.global_attn(x[..., 18:])
    if branch_proj:
        local, glob = module.local_proj(local), module.global_proj(glob)
    expected = module.proj(torch.cat([local, upsample_tokens(glob, 5, *size)], dim=-1))
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)


def test_plg_self_attention_needs_both_branches():
    with pytest.raises(ValueError, match="both branches"):
        PLGSelfAttention(16, 1, 1, 7, 7, global_ratio=1.0)


def test_grn_is_identity_at_init_and_follows_convnext_v2():
    ffn = CCFFFNPlus(8, mlp_ratio=3)
    x = torch.randn(2, 5, 6, 24)
    torch.testing.assert_close(ffn.grn(x), x)
    with torch.no_grad():
        ffn.grn.weight.normal_()
        ffn.grn.bias.normal_()
    g = x.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()
    n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
    expected = ffn.grn.weight * (x * n) + ffn.grn.bias + x
    torch.testing.assert_close(ffn.grn(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size", [(5, 6), (200, 170)])  # one chunk; 3 chunks + a partial one
def test_one_pass_grn_equals_timm_grn_in_values_and_gradients(size):
    ours = OnePassGlobalResponseNorm(24).double()
    timm_grn = GlobalResponseNorm(24).double()
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    timm_grn.load_state_dict(ours.state_dict())  # same keys: weight, bias
    rows_per_chunk = SUM_OF_SQUARES_CHUNK // 24
    assert size == (5, 6) or size[0] * size[1] // rows_per_chunk == 3
    x = torch.randn(2, *size, 24, dtype=torch.float64, requires_grad=True)
    out_ours, out_timm = ours(x), timm_grn(x)
    torch.testing.assert_close(out_ours, out_timm, atol=1e-12, rtol=1e-12)
    grad = torch.randn_like(out_ours)
    grads_ours = torch.autograd.grad(out_ours, (x, ours.weight, ours.bias), grad)
    grads_timm = torch.autograd.grad(out_timm, (x, timm_grn.weight, timm_grn.bias), grad)
    for a, b in zip(grads_ours, grads_timm, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_ccf_ffn_plus_matches_concat_formula():
    ffn = CCFFFNPlus(8, mlp_ratio=3)
    with torch.no_grad():
        ffn.grn.weight.normal_()
    x = torch.randn(2, 5, 6, 8)
    pointwise = F.gelu(ffn.fc1(x))
    depthwise = F.gelu(ffn.conv_dw(pointwise.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    expected = ffn.fc2(torch.cat([pointwise, ffn.grn(depthwise)], dim=-1))
    torch.testing.assert_close(ffn(x), expected, atol=1e-5, rtol=1e-5)
    assert ffn.fc2.in_features == 48


def test_ccf_ffn_matches_formula():
    ffn = CCFFFN(8, mlp_ratio=4)
    x = torch.randn(1, 5, 6, 8)
    hidden = F.gelu(ffn.norm1(ffn.fc1(x)))
    hidden = ffn.conv_dw(hidden.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(ffn(x), ffn.fc2(F.gelu(ffn.norm2(hidden))), atol=1e-5, rtol=1e-5)


def test_lw_downsample_shapes_and_parameter_saving():
    lw, original = LWDownsample(64, 128), Downsample2d(64, 128)
    assert lw(torch.randn(1, 64, 15, 20)).shape == (1, 128, 8, 10)
    assert lw.conv_block.se.fc1.out_channels == 8  # SE reduction 1/8
    assert isinstance(lw.conv_block.act, torch.nn.SiLU)
    n_lw = sum(p.numel() for p in lw.parameters())
    n_original = sum(p.numel() for p in original.parameters())
    assert (n_lw, n_original) == (15424, 80832)  # ~81% fewer ("about 80%" in the paper)


@pytest.mark.parametrize("size", [(15, 20), (16, 16), (33, 7)])
def test_lw_downsample_equals_its_module_composition(size):
    """The even-position evaluation is the value of LN -> MBConv -> strided 1x1 -> dw3x3 -> LN
    run module by module, in values and gradients (float64, odd and even sizes)."""
    lw = LWDownsample(12, 24).double()
    with torch.no_grad():
        for p in lw.parameters():
            p.normal_(std=0.3)
    x = torch.randn(2, 12, *size, dtype=torch.float64, requires_grad=True)
    ours = lw(x)
    composed = lw.norm2(lw.conv_dw(lw.reduction(lw.conv_block(lw.norm1(x)))))
    torch.testing.assert_close(ours, composed, atol=1e-12, rtol=1e-12)
    grad = torch.randn_like(ours)
    inputs = (x, *lw.parameters())
    for a, b in zip(
        torch.autograd.grad(ours, inputs, grad),
        torch.autograd.grad(composed, inputs, grad),
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("band_elements", [1, 3 * 9 * 24, 10**6])  # 1-row bands, 3 rows, one band
@pytest.mark.parametrize("shape", [(2, 13, 9, 8), (1, 1, 5, 8), (1, 2, 3, 8)])
def test_ccf_ffn_plus_banded_inference_equals_full_map(monkeypatch, shape, band_elements):
    """Row bands with halo rows, GRN folded into fc2: the full-map value (float64), taken
    automatically without autograd on large maps; with autograd the full-map path runs."""
    ffn = CCFFFNPlus(8, mlp_ratio=3).double()
    with torch.no_grad():
        for p in ffn.parameters():
            p.normal_(std=0.5)
    x = torch.randn(*shape, dtype=torch.float64)
    expected = ffn(x)  # autograd on: full-map path
    monkeypatch.setattr(ccf_ffn, "BAND_ELEMENTS", band_elements)
    monkeypatch.setattr(ccf_ffn, "BANDED_MIN_ELEMENTS", 1)
    calls = []
    banded = CCFFFNPlus.forward_banded

    def recording(self, t):
        calls.append(t.shape)
        return banded(self, t)

    monkeypatch.setattr(CCFFFNPlus, "forward_banded", recording)
    with torch.no_grad():
        out = ffn(x)
    assert calls == [x.shape]
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    assert ffn(x).requires_grad and len(calls) == 1  # autograd: the banded path is not taken
    with torch.no_grad():  # not on other devices either (shape-only 'meta' tensors here)
        assert ffn.to("meta")(x.to("meta")).shape == x.shape and len(calls) == 1


@pytest.mark.parametrize(
    "bias_batch", [1, 10**6]
)  # rel-pos bias broadcast over windows; per window
def test_biased_attention_equals_sdpa(bias_batch):
    """The CPU bmm path equals torch's scaled_dot_product_attention (float64, values and
    gradients), with -inf (padded) keys and permuted (non-contiguous) q, k, v as the layers pass."""
    windows = BMM_MIN_BATCH // 2  # x 2 heads: the bmm path
    qkv = torch.randn(windows, 49, 3, 2, 8, dtype=torch.float64, requires_grad=True)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (windows, 2, 49, 8) views
    bias = torch.randn(min(bias_batch, windows), 2, 49, 49, dtype=torch.float64)
    bias[..., -5:] = float("-inf")
    ours = biased_attention(q, k, v, bias)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-12)
    grad = torch.randn_like(ours)
    torch.testing.assert_close(
        torch.autograd.grad(ours, qkv, grad)[0],
        torch.autograd.grad(expected, qkv, grad)[0],
        atol=1e-12,
        rtol=1e-12,
    )
