"""timm's model contract for nat_*, dinat_*, plgvit_*, lw_plgvit_*: every check of timm's own
``tests/test_models.py`` (forward, backward, default cfgs, torchscript, features_only,
forward_intermediates, FX forward / backward / torchscript; pretrained downloads excluded), run
on the models of each family at timm's test input sizes."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.layers import get_channel_dim, get_spatial_dim
from timm.models import get_notrace_functions, get_notrace_modules
from torchvision.models.feature_extraction import (
    NodePathTracer,
    create_feature_extractor,
    get_graph_node_names,
)

import plgvit_mm  # noqa: F401  (registers the models)

MODELS = ["nat_mini", "dinat_mini", "plgvit_tiny", "lw_plgvit_a", "lw_plgvit_r"]
QUICK = ["nat_mini", "lw_plgvit_r"]
"""Cheap members run in the fast subset; the rest of each check is marked slow."""


def _models(quick: bool = True) -> list:
    return [pytest.param(n, marks=() if quick and n in QUICK else pytest.mark.slow) for n in MODELS]


def _input(name: str, size: int, batch: int = 1) -> torch.Tensor:
    channels = timm.get_pretrained_cfg_value(name, "input_size")[0]
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", _models())
def test_forward_and_grad_checkpointing(name):
    model = timm.create_model(name).eval()
    x = _input(name, 128)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (1, 1000) and not out.isnan().any()
        model.set_grad_checkpointing()
        torch.testing.assert_close(model(x), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", _models())
def test_backward_reaches_every_parameter(name):
    model = timm.create_model(name, num_classes=42).train()
    out = model(_input(name, 128, batch=2))
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert out.shape == (2, 42) and not out.isnan().any()


@pytest.mark.parametrize("name", _models(quick=False))
def test_default_cfgs_heads_and_pooling(name):
    model = timm.create_model(name).eval()
    assert model.num_classes == 1000 and model.num_features > 0 and model.head_hidden_size > 0
    cfg = model.default_cfg
    spatial, channel = get_spatial_dim(model.output_fmt), get_channel_dim(model.output_fmt)
    x = _input(name, cfg["input_size"][-1])
    with torch.no_grad():
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        assert tuple(features.shape[i] for i in spatial) == cfg["pool_size"]
        assert features.shape[channel] == model.num_features
        assert pre_logits.shape == (1, model.head_hidden_size)
        model.reset_classifier(0)
        assert model.num_classes == 0
        assert model(x).shape == pre_logits.shape
        model.reset_classifier(0, "")
        unpooled = model(x)
        assert unpooled.ndim == 4 and tuple(unpooled.shape[i] for i in spatial) == cfg["pool_size"]
        bare = timm.create_model(name, num_classes=0, global_pool="").eval()
        assert bare(x).shape == unpooled.shape
    state = model.state_dict()
    fresh = timm.create_model(name).state_dict()
    assert cfg["classifier"] + ".weight" in fresh
    assert cfg["first_conv"] + ".weight" in state


@pytest.mark.parametrize("name", _models(quick=False))
def test_torchscript_forward_equals_eager(name):
    with timm.set_scriptable(True):
        model = timm.create_model(name).eval()
    scripted = torch.jit.script(model)
    x = _input(name, 128)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("feature_cls", [None, "getter"])
@pytest.mark.parametrize("name", _models())
def test_features_only(name, feature_cls):
    kwargs = {} if feature_cls is None else dict(feature_cls=feature_cls)
    model = timm.create_model(name, features_only=True, **kwargs).eval()
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) == 4 and reductions == [4, 8, 16, 32]
    with torch.no_grad():
        outs = model(_input(name, 96))
    assert len(outs) == len(channels)
    for c, r, o in zip(channels, reductions, outs, strict=True):
        assert o.shape == (1, c, math.ceil(96 / r), math.ceil(96 / r))
        assert not o.isnan().any()


@pytest.mark.parametrize("name", _models())
def test_forward_intermediates(name):
    model = timm.create_model(name).eval()
    info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    x = _input(name, 96)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x, output_fmt="NCHW")
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        for c, r, o in zip(info.channels(), info.reduction(), intermediates, strict=True):
            assert o.shape == (1, c, math.ceil(96 / r), math.ceil(96 / r))
        nhwc = model.forward_intermediates(
            x, indices=[1, 3], output_fmt="NHWC", intermediates_only=True
        )
        assert [o.permute(0, 3, 1, 2).shape for o in nhwc] == [
            intermediates[1].shape,
            intermediates[3].shape,
        ]
        last_two = model.forward_intermediates(x, indices=2, stop_early=True, norm=True)[1]
        torch.testing.assert_close(last_two[0], intermediates[2])
        final_nchw = final if model.output_fmt == "NCHW" else final.permute(0, 3, 1, 2)
        torch.testing.assert_close(last_two[1], final_nchw)
        model.set_grad_checkpointing()
        again, _ = model.forward_intermediates(x)
        torch.testing.assert_close(again, final, rtol=1e-4, atol=1e-5)
    taken = model.prune_intermediate_layers([0, 1], prune_norm=True)
    assert taken == [0, 1] and model.num_classes == 0
    with torch.no_grad():
        pruned = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    for got, want in zip(pruned, intermediates[:2], strict=True):
        torch.testing.assert_close(got, want)


def _fx_model(model: torch.nn.Module, train: bool = False) -> torch.nn.Module:
    """timm's FX feature extractor of the model output (its test's ``_create_fx_model``)."""
    tracer_kwargs = dict(
        leaf_modules=get_notrace_modules(),
        autowrap_functions=get_notrace_functions(),
        param_shapes_constant=True,
    )
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    train_return = [train_nodes[-1]]
    if train:
        graph = NodePathTracer(**tracer_kwargs).trace(model)
        nodes = list(reversed(graph.nodes))
        names = [n.name for n in nodes]
        train_return = [train_nodes[-names.index(n.name)] for n in nodes[0]._input_nodes]
    return create_feature_extractor(
        model,
        train_return_nodes=train_return,
        eval_return_nodes=[eval_nodes[-1]],
        tracer_kwargs=tracer_kwargs,
    )


@pytest.mark.parametrize("name", _models(quick=False))
def test_fx_forward_equals_eager(name):
    model = timm.create_model(name).eval()
    x = _input(name, 128)
    with torch.inference_mode():
        expected = model(x)
        fx_out = torch.cat(tuple(_fx_model(model)(x).values()))
    assert torch.equal(fx_out, expected)


@pytest.mark.parametrize("name", _models(quick=False))
def test_fx_backward_reaches_every_parameter(name):
    model = _fx_model(timm.create_model(name, num_classes=42).train(), train=True)
    out = torch.cat(tuple(model(_input(name, 128, batch=2)).values()))
    out.mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    assert out.shape[-1] == 42 and not out.isnan().any()


@pytest.mark.parametrize("name", _models(quick=False))
def test_fx_then_torchscript(name):
    with timm.set_scriptable(True):
        model = timm.create_model(name).eval()
    scripted = torch.jit.script(_fx_model(model))
    x = _input(name, 128)
    with torch.inference_mode():
        out = torch.cat(tuple(scripted(x).values()))
        torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-5)
