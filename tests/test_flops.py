"""The shared MAC counter: published NAT numbers and hand-counted modules."""

from __future__ import annotations

import pytest
import timm
import torch
from mmengine.analysis import FlopAnalyzer
from torch import Tensor, nn

import plgvit_mm.models.backbones.nat  # noqa: F401  (registers nat_*)
from plgvit_mm import ops
from plgvit_mm.ops import NeighborhoodAttention2D
from plgvit_mm.utils.flops import count_macs

# MACs at 224 x 224 published in the NAT paper (its "FLOPs"; docs/design/nat.md), recounted.
NAT_GMACS = {"mini": 2.70, "tiny": 4.30, "small": 7.77, "base": 13.68}


@pytest.mark.parametrize("arch", list(NAT_GMACS))
def test_nat_macs_at_224_match_published(arch):
    with torch.device("meta"):  # skip the slow random init: MACs depend on shapes only
        model = timm.create_model(f"nat_{arch}")
    model.to_empty(device="cpu").requires_grad_(False)
    for tensor in model.state_dict().values():
        tensor.zero_()
    result = count_macs(model, torch.randn(1, 3, 224, 224))
    assert result.total / 1e9 == pytest.approx(NAT_GMACS[arch], rel=0.02)
    parts = ("patch_embed", "levels", "norm", "head")
    assert sum(result.by_module[p] for p in parts) == result.total
    assert result.by_module["levels"] == sum(result.by_module[f"levels.{i}"] for i in range(4))
    # 2 * H * W * k^2 * C per layer, summed over the levels (56, 28, 14, 7 px; 64 * 2^i ch).
    depths = (3, 4, 6, 5) if arch == "mini" else (3, 4, 18, 5)
    width = {"mini": 64, "tiny": 64, "small": 96, "base": 128}[arch]
    expected = sum(2 * (56 >> i) ** 2 * 49 * width * 2**i * d for i, d in enumerate(depths))
    assert result.attention == expected


def _linear_macs(tokens: int, fan_in: int, fan_out: int) -> int:
    return tokens * fan_in * fan_out


@pytest.mark.parametrize(
    ("shape", "kernel", "dilation", "padded"),
    [
        ((2, 10, 12, 64), 7, 1, (10, 12)),
        ((1, 5, 9, 64), 7, 1, (7, 9)),  # legacy padding: qkv and attention on 7 x 9
        ((1, 10, 16, 64), 7, 2, (14, 16)),  # dilation 2 needs 14 rows
    ],
)
def test_neighborhood_attention_layer_is_counted_exactly(shape, kernel, dilation, padded):
    batch, height, width, dim = shape
    layer = NeighborhoodAttention2D(dim, 2, kernel, dilation=dilation)
    hp, wp = padded
    expected = (
        batch * _linear_macs(hp * wp, dim, 3 * dim)  # qkv on the padded map
        + batch * _linear_macs(height * width, dim, dim)  # proj after cropping
        + batch * 2 * hp * wp * kernel**2 * dim
    )  # q.k and attn.v
    result = count_macs(layer, torch.randn(shape))
    assert result.total == expected
    assert result.attention == batch * 2 * hp * wp * kernel**2 * dim


class TracedKernelNA(NeighborhoodAttention2D):
    """NA layer whose kernel call the counter cannot skip: its traced matmuls must be replaced."""

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        q, k, v = self.qkv(x).reshape(b, h, w, 3, self.num_heads, self.head_dim).unbind(3)
        out = ops.na2d(q, k, v, self.kernel_size, self.dilation, rpb=self.rpb)
        return self.proj(out.reshape(b, h, w, c))


def test_traced_attention_kernel_is_not_double_counted():
    layer, x = TracedKernelNA(64, 2, 7), torch.randn(1, 16, 16, 64)
    expected = _linear_macs(256, 64, 256) + 2 * 256 * 49 * 64
    assert count_macs(nn.Sequential(layer), x).total == expected
    analyzer = FlopAnalyzer(layer, (x,))
    analyzer.unsupported_ops_warnings(False)
    assert analyzer.total() > _linear_macs(256, 64, 256)  # the trace does see kernel matmuls


class MatmulAttention(nn.Module):
    """Global self-attention with plain matmuls (as in PLG-ViT), on (B, N, C) tokens."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


def test_plain_matmul_attention_and_norms():
    model = nn.Sequential(nn.LayerNorm(48), MatmulAttention(48, 3), nn.GELU())
    result = count_macs(model, torch.randn(2, 50, 48))
    expected = 2 * (_linear_macs(50, 48, 144) + _linear_macs(50, 48, 48) + 2 * 50 * 50 * 48)
    assert result.total == expected  # norms and activations are not MACs
    assert result.attention == 0


def test_scaled_dot_product_attention_is_counted():
    """SDPA (used by the PLG-ViT attention branches) counts q.k^T plus attn.v."""

    class Attn(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 12, 8), torch.randn(2, 3, 12, 5)
    assert count_macs(Attn(), (q, k, v)).total == 2 * 3 * 10 * 12 * (8 + 5)
