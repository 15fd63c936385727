"""torch.compile(fullgraph=True) and torch.export of every family, dense backbone and timm
classifier, on CPU against eager (float32, rtol 1e-4); NAT layers appear as the registered op
``plgvit_mm::na2d``. One Inductor compile of a NAT block."""

from __future__ import annotations

import pytest
import timm
import torch

import plgvit_mm  # noqa: F401  (registers the models)
from plgvit_mm.models.backbones import LWPLGViT, PLGViT
from plgvit_mm.models.backbones.nat import NAT, DiNAT

pytestmark = pytest.mark.slow

NAT_SMALL = dict(
    embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), mlp_ratio=2.0, layer_scale=None
)
SMALL_PLG = dict(depths=(1, 1, 1, 1))
MODELS = {
    "NAT": lambda: NAT(arch=NAT_SMALL, drop_path_rate=0.0),
    "DiNAT": lambda: DiNAT(arch=NAT_SMALL, dilations="coco", drop_path_rate=0.0),
    "PLGViT": lambda: PLGViT("tiny", **SMALL_PLG, drop_path_rate=0.0),
    "LWPLGViT": lambda: LWPLGViT("r", **SMALL_PLG, drop_path_rate=0.0),
    "nat_mini": lambda: timm.create_model("nat_mini", depths=(1, 1, 2, 1)),
    "dinat_mini": lambda: timm.create_model("dinat_mini", depths=(1, 1, 2, 1)),
    "plgvit_tiny": lambda: timm.create_model("plgvit_tiny", **SMALL_PLG),
    "lw_plgvit_r": lambda: timm.create_model("lw_plgvit_r", **SMALL_PLG),
}
NA_FAMILIES = ("NAT", "DiNAT", "nat_mini", "dinat_mini")


def _model_and_input(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return MODELS[name]().eval(), torch.randn(1, 3, 64, 96)


def _assert_equal_outputs(got, expected) -> None:
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_compile_fullgraph_equals_eager(name):
    model, x = _model_and_input(name)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        _assert_equal_outputs(compiled(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_export_equals_eager(name):
    model, x = _model_and_input(name)
    program = torch.export.export(model, (x,))
    ops = [n.target for n in program.graph.nodes if n.op == "call_function"]
    num_na = ops.count(torch.ops.plgvit_mm.na2d.default)
    assert num_na == (sum(NAT_SMALL["depths"]) if name in NA_FAMILIES else 0)
    with torch.no_grad():
        _assert_equal_outputs(program.module()(x), model(x))


def test_inductor_compile_of_a_nat_block_equals_eager():
    torch.manual_seed(0)
    block = NAT(arch=NAT_SMALL, drop_path_rate=0.0).levels[1].blocks[0].eval()
    x = torch.randn(1, 9, 12, block.norm1.normalized_shape[0])
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    with torch.no_grad():
        _assert_equal_outputs(compiled(x), block(x))
