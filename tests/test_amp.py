"""Mixed precision on the CPU: every backbone runs forward + backward under bfloat16 autocast
with finite outputs/gradients close to float32; neighborhood attention stays finite and accurate
in float16 at large logits; ``CPUAmpOptimWrapper`` (``tools/train.py --amp`` on a CPU) runs the
model in bfloat16 and keeps float32 weights. GPU counterpart: tools/gpu_amp_check.py."""

from __future__ import annotations

import pytest
import torch
from mmengine.registry import MODELS
from torch import nn

import plgvit_mm  # noqa: F401
from plgvit_mm.engine import CPUAmpOptimWrapper
from plgvit_mm.ops import na2d

BACKBONES = {
    "nat_mini": dict(type="NAT", arch="mini"),
    "dinat_mini": dict(type="DiNAT", arch="mini", dilations="coco"),
    "plgvit_tiny": dict(type="PLGViT", arch="tiny"),
    "lwplgvit_a": dict(type="LWPLGViT", arch="a"),
    "lwplgvit_r": dict(type="LWPLGViT", arch="r"),
}
RELATIVE_TOLERANCE = 0.05  # ||bf16 - fp32|| / ||fp32|| per output level; bf16 has 8 bits


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return ((approx.double() - exact.double()).norm() / exact.double().norm()).item()


@pytest.mark.parametrize("name", list(BACKBONES))
@pytest.mark.slow
def test_backbone_bf16_autocast_forward_backward_matches_fp32(name):
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES[name], drop_path_rate=0.0)).eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = model(x)
    assert [tuple(o.shape) for o in outs] == [tuple(r.shape) for r in reference]
    for level, (out, ref) in enumerate(zip(outs, reference, strict=True)):
        assert torch.isfinite(out).all(), (name, level)
        error = relative_error(out, ref)
        print(f"{name} level {level}: relative error {error:.4f}")
        assert error < RELATIVE_TOLERANCE, (name, level, error)
    sum(o.float().square().mean() for o in outs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(
        g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads
    )


@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (5, 2)])
def test_na2d_float16_stays_finite_and_accurate_at_large_logits(kernel, dilation):
    """q.k logits up to ~1e4 (far beyond what exp() survives in float16): the op must
    subtract the row maximum and accumulate in float32."""
    torch.manual_seed(0)
    q, k = (torch.randn(1, 12, 12, 2, 16) * 40).half(), (torch.randn(1, 12, 12, 2, 16) * 40).half()
    v, rpb = torch.randn(1, 12, 12, 2, 16).half(), torch.randn(2, 2 * kernel - 1, 2 * kernel - 1)
    rpb = rpb.half()
    # float64 on the same (float16-rounded) inputs: the error is the op's own
    exact = na2d(
        q.double(), k.double(), v.double(), kernel, dilation, rpb=rpb.double(), backend="reference"
    )
    half = na2d(q, k, v, kernel, dilation, rpb=rpb, backend="reference")
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    print(f"na2d fp16 k={kernel} d={dilation}: relative error {relative_error(half, exact):.2e}")
    assert relative_error(half, exact) < 0.02


def test_cpu_amp_optim_wrapper_runs_bf16_forward_with_fp32_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 1))
    wrapper = CPUAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    x = torch.randn(4, 8)
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().square().mean())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
