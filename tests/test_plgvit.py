"""PLG-ViT / LW-PLG-ViT backbones and timm models: shapes, parameter counts, loading, freezing."""

import math

import pytest
import timm
import torch
import torch.utils.checkpoint
from mmengine.registry import MODELS

from plgvit_mm.models.backbones.plgvit import (
    LW_ARCHS,
    LWPLGViT,
    PLGViT,
    PLGViTClassifier,
    resolve_arch,
)
from plgvit_mm.models.layers import GlobalPooledAttention

# ImageNet-1k classifier parameters of the presets (documented in docs/design/plgvit.md).
CLASSIFIER_PARAMS = {
    "plgvit_tiny": 26_683_950,
    "plgvit_small": 52_309_772,
    "plgvit_base": 92_305_420,
    "lw_plgvit_a": 5_327_294,
    "lw_plgvit_r": 4_859_999,
}
PUBLISHED_PARAMS = {"plgvit_tiny": 27e6, "plgvit_small": 52e6, "plgvit_base": 91e6}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backbones():
    torch.manual_seed(0)
    return {"tiny": PLGViT("tiny").eval(), "a": LWPLGViT("a").eval(), "r": LWPLGViT("r").eval()}


@pytest.mark.parametrize("name", sorted(CLASSIFIER_PARAMS))
def test_classifier_parameter_counts(name):
    with torch.device("meta"):
        model = timm.create_model(name)
    params = sum(p.numel() for p in model.parameters())
    assert params == CLASSIFIER_PARAMS[name]
    if name in PUBLISHED_PARAMS:
        assert abs(params / PUBLISHED_PARAMS[name] - 1) <= 0.03
    else:
        assert 4.5e6 <= params <= 5.5e6


@pytest.mark.parametrize(
    "arch,size",
    [
        ("tiny", (224, 224)),
        ("a", (224, 224)),
        ("r", (224, 224)),
        ("tiny", (257, 511)),
        ("a", (257, 511)),
        ("r", (257, 511)),
        ("a", (384, 1280)),
        ("r", (384, 1280)),
        ("r", (800, 1216)),
        ("r", (32, 32)),
        ("r", (33, 45)),
    ],
)
def test_output_shapes(backbones, arch, size):
    model = backbones[arch]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    expected = [
        (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
        for c, s in zip(model.out_channels, (4, 8, 16, 32), strict=True)
    ]
    assert [tuple(o.shape) for o in outs] == expected
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("name", ["lw_plgvit_a", "plgvit_tiny"])
def test_outputs_are_contiguous_nchw(backbones, name):
    """mmcv's CPU RoIAlign reads raw NCHW memory: channels-last strides (a permuted view, which
    FPN's convolutions propagate) gave Mask R-CNN's RoI heads scrambled features."""
    from mmcv.ops import RoIAlign

    model = backbones["a" if name == "lw_plgvit_a" else "tiny"]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 128))
        feats = timm.create_model(name, features_only=True)(torch.randn(1, 3, 64, 64))
    assert all(o.is_contiguous() for o in (*outs, *feats))
    rois = torch.tensor([[0.0, 4.0, 8.0, 60.0, 40.0]])
    roi_align = RoIAlign((7, 7), 1 / 4, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(roi_align(outs[0], rois), roi_align(outs[0].clone(), rois))


def test_out_channels_and_out_indices():
    assert PLGViT("tiny").out_channels == [64, 128, 256, 512]
    assert LWPLGViT("a").out_channels == [48, 96, 144, 384]
    assert LWPLGViT("r").out_channels == [32, 64, 192, 384]
    model = LWPLGViT("r", out_indices=(1, 3)).eval()
    assert model.out_channels == [64, 384]
    with torch.no_grad():
        assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [64, 384]


def test_registry_and_clear_errors():
    assert isinstance(MODELS.build(dict(type="LWPLGViT", arch="r")), LWPLGViT)
    with pytest.raises(ValueError, match=r"unknown arch 'x'; valid: \['a', 'r'\]"):
        LWPLGViT("x")
    with pytest.raises(ValueError, match=r"valid: \['base', 'small', 'tiny'\]"):
        PLGViT("huge")
    with pytest.raises(ValueError, match=r"missing architecture arguments \['local_heads'"):
        LWPLGViT(None, embed_dims=(32, 64, 128, 256), depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="decoupled=False requires"):
        PLGViT("tiny", global_heads=(2, 2, 2, 2))
    with pytest.raises(ValueError, match=">= 1 PLG block"):
        LWPLGViT("r", depths=(0, 1, 6, 2))
    with pytest.raises(ValueError, match="H, W >= 32"):
        LWPLGViT("r")(torch.randn(1, 3, 31, 64))


def test_explicit_lists_reproduce_preset():
    preset, explicit = LWPLGViT("a"), LWPLGViT(None, **LW_ARCHS["a"])
    assert explicit.arch == preset.arch
    shapes = {k: v.shape for k, v in preset.state_dict().items()}
    assert {k: v.shape for k, v in explicit.state_dict().items()} == shapes


def test_ablation_switches():
    coupled = LWPLGViT("a", decoupled=False)
    assert coupled.arch.global_heads == coupled.arch.local_heads
    assert coupled.arch.global_ratio == (0.5,) * 4
    original = LWPLGViT(
        "r", downsampler="fused_mbconv", ffn="ccf", patch_sampling="max_avg", expansion_channels=0
    )
    assert type(original.stages[1].downsample).__name__ == "Downsample2d"
    assert type(original.stages[0].blocks[0].ffn).__name__ == "CCFFFN"
    assert original.stages[0].blocks[0].attn.global_attn.pool == "max_avg"
    assert original.out_channels[3] == 256
    lw = resolve_arch(
        {},
        {},
        None,
        **LW_ARCHS["r"],
        downsampler="lw",
        ffn="ccf_plus",
        patch_sampling="max",
        decoupled=True,
    )
    assert lw == LWPLGViT("r").arch


def test_global_token_count_is_independent_of_input_size(backbones):
    model = backbones["r"]
    counts = []
    hooks = [
        m.qkv.register_forward_hook(lambda mod, inp, out: counts.append(inp[0].shape[1]))
        for m in model.modules()
        if isinstance(m, GlobalPooledAttention)
    ]
    per_size = {}
    with torch.no_grad():
        for size in (224, 800):
            counts.clear()
            model(torch.randn(1, 3, size, size))
            per_size[size] = list(counts)
    for hook in hooks:
        hook.remove()
    assert per_size[224] == per_size[800] == [49] * sum(model.arch.depths)


def test_frozen_stages_stay_frozen_in_train_mode():
    model = LWPLGViT("r", frozen_stages=2)
    model.train()
    frozen = [model.stem, model.stages[0], model.stages[1], model.norm0, model.norm1]
    for module in frozen:
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    for module in (model.stages[2], model.stages[3], model.norm2, model.norm3):
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    stem_only = LWPLGViT("r", frozen_stages=0).train()
    assert not stem_only.stem.training and stem_only.stages[0].training
    with pytest.raises(ValueError, match="frozen_stages"):
        LWPLGViT("r", frozen_stages=5)


def test_gradient_checkpointing_gives_same_gradients(monkeypatch):
    calls = []
    checkpoint = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(
        torch.utils.checkpoint,
        "checkpoint",
        lambda *args, **kwargs: calls.append(1) or checkpoint(*args, **kwargs),
    )
    torch.manual_seed(0)
    plain = LWPLGViT("r", drop_path_rate=0.0).train()
    checkpointed = LWPLGViT("r", drop_path_rate=0.0, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    for model in (plain, checkpointed):
        sum(o.sum() for o in model(x)).backward()
    assert len(calls) == sum(plain.arch.depths)
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "name,channels", [("lw_plgvit_a", [48, 96, 144, 384]), ("lw_plgvit_r", [32, 64, 192, 384])]
)
def test_timm_features_only(name, channels):
    model = timm.create_model(name, features_only=True).eval()
    assert model.feature_info.channels() == channels
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 96, 160))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 96 // s, 160 // s) for c, s in zip(channels, (4, 8, 16, 32), strict=True)
    ]
    model = timm.create_model(name, features_only=True, out_indices=(2, 3))
    assert model.feature_info.channels() == channels[2:]


def test_timm_classifier_head():
    model = timm.create_model("lw_plgvit_r", num_classes=10).eval()
    assert isinstance(model, PLGViTClassifier)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)
        features = model.forward_features(torch.randn(1, 3, 224, 224))
    assert features.shape == (1, 384, 7, 7)


@pytest.mark.parametrize("wrap", ["plain", "mmdet"])
def test_pretrained_init_from_timm_classifier(tmp_path, wrap):
    torch.manual_seed(1)
    classifier = timm.create_model("lw_plgvit_r").eval()
    state_dict = classifier.state_dict()
    if wrap == "mmdet":
        state_dict = {"state_dict": {f"backbone.{k}": v for k, v in state_dict.items()}}
    path = tmp_path / "classifier.pth"
    torch.save(state_dict, path)
    backbone = LWPLGViT("r", init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    backbone.init_weights()
    backbone.eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        outs = backbone(x)
        feature = classifier.stem(x)
        for i, stage in enumerate(classifier.stages):
            feature = stage(feature)
            assert torch.equal(outs[i], getattr(backbone, f"norm{i}")(feature))


def test_pretrained_init_rejects_foreign_checkpoint(tmp_path):
    path = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    backbone = LWPLGViT("r", init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    with pytest.raises(ValueError, match="no key matches"):
        backbone.init_weights()
