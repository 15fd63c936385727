"""The dense-backbone contract (plgvit_mm/models/backbones/base.py) on NAT and LW-PLG-ViT:
argument checks, the strict reporting loader on generated checkpoints of every supported
format (dense, mmdet/mmseg, timm classifier, mmpretrain ImageClassifier), partial loads and
the feature API."""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from mmengine.logging import MMLogger
from mmengine.registry import MODELS

import plgvit_mm  # noqa: F401  (registers the backbones)
from plgvit_mm.models.backbones import LWPLGViT
from plgvit_mm.models.backbones.nat import NAT, NATClassifier

NAT_SMALL = dict(
    embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), mlp_ratio=2.0, layer_scale=None
)
NAT_DEEPER = dict(NAT_SMALL, depths=(1, 1, 3, 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _save(obj, path) -> str:
    torch.save(obj, path)
    return str(path)


def _loaded(cls, path: str, **kwargs):
    model = cls(
        init_cfg=dict(type="Pretrained", checkpoint=path, **kwargs.pop("cfg", {})), **kwargs
    )
    model.init_weights()
    return model.eval()


def _capture_log(caplog):
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    return logger


@pytest.mark.parametrize(
    "build", [lambda **kw: NAT(arch=NAT_SMALL, **kw), lambda **kw: LWPLGViT("r", **kw)]
)
def test_one_error_form_for_out_indices_and_frozen_stages(build):
    with torch.device("meta"):
        for bad in [(2, 1), (0, 0), (4,), ()]:
            with pytest.raises(ValueError, match=r"out_indices .* must be increasing, unique"):
                build(out_indices=bad)
        for bad in (-2, 5):
            with pytest.raises(ValueError, match=rf"frozen_stages {bad} must be in \[-1, 4\]"):
                build(frozen_stages=bad)


@pytest.mark.parametrize("kind", ["dense", "mmdet", "prefix"])
def test_dense_and_detector_checkpoints_load_exactly(tmp_path, kind):
    source = LWPLGViT("r", drop_path_rate=0.0).eval()
    state = source.state_dict()
    cfg = {}
    if kind == "mmdet":
        ckpt = {
            "meta": {},
            "state_dict": {
                **{f"backbone.{k}": v for k, v in state.items()},
                "neck.lateral.weight": torch.zeros(1),
                "rpn_head.conv.weight": torch.zeros(1),
            },
        }
    elif kind == "prefix":
        ckpt, cfg = {f"teacher.{k}": v for k, v in state.items()}, dict(prefix="teacher.")
    else:
        ckpt = state
    model = _loaded(LWPLGViT, _save(ckpt, tmp_path / "ckpt.pth"), arch="r", cfg=cfg)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("family", ["nat", "lw_plgvit"])
def test_timm_classifier_state_dict_final_norm_becomes_last_output_norm(tmp_path, caplog, family):
    if family == "nat":
        classifier = NATClassifier(**NAT_SMALL)  # what timm.create_model("nat_*") builds
        backbone_cls, kwargs = NAT, dict(arch=NAT_SMALL)
    else:
        classifier = timm.create_model("lw_plgvit_r")
        backbone_cls, kwargs = LWPLGViT, dict(arch="r")
    with torch.no_grad():
        classifier.norm.weight.uniform_(0.5, 1.5)
    state = classifier.state_dict()
    _capture_log(caplog)
    with caplog.at_level(logging.INFO):
        model = _loaded(backbone_cls, _save(state, tmp_path / "cls.pth"), **kwargs)
    own = model.state_dict()
    assert torch.equal(own["norm3.weight"], state["norm.weight"])
    for key in own:
        if not key.startswith(("norm0.", "norm1.", "norm2.", "norm3.")):
            assert torch.equal(own[key], state[key]), key
    assert torch.equal(own["norm0.weight"], torch.ones_like(own["norm0.weight"]))
    assert "kept initialisation (not part of this checkpoint kind) (6): norm0.weight" in caplog.text


@pytest.mark.slow
def test_mmpretrain_image_classifier_checkpoint_loads(tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier

    # an earlier test may have left another default scope (e.g. mmdet) in place
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        classifier = ImageClassifier(
            backbone=dict(type="LWPLGViT", arch="r", out_indices=(3,)),
            neck=dict(type="GlobalAveragePooling"),
            head=dict(type="LinearClsHead", num_classes=10, in_channels=384),
        )
    path = _save({"meta": {"epoch": 1}, "state_dict": classifier.state_dict()}, tmp_path / "e.pth")
    model = MODELS.build(
        dict(type="LWPLGViT", arch="r", init_cfg=dict(type="Pretrained", checkpoint=path))
    )
    model.init_weights()
    own = model.state_dict()
    for key, value in classifier.backbone.state_dict().items():
        assert torch.equal(own[key], value), key
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)[3], classifier.backbone.eval()(x)[0])


def test_file_of_another_arch_is_an_error_naming_the_mismatch(tmp_path):
    path = _save(NAT(arch=NAT_SMALL).state_dict(), tmp_path / "small.pth")
    with pytest.raises(ValueError) as error:
        _loaded(NAT, path, arch=NAT_DEEPER)
    message = str(error.value)
    assert "checkpoint does not fit NAT: 13 missing, 0 unexpected, 0 mismatched key(s)" in message
    assert "missing (13): levels.2.blocks.2.norm1.weight, " in message and "(+8 more)" in message
    assert "blocks per stage: checkpoint (1, 1, 2, 1) vs model (1, 1, 3, 1)" in message
    assert "allow_partial=True" in message
    wider = _save(NAT(arch=dict(NAT_SMALL, embed_dim=64)).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(ValueError, match=r"mismatched \(\d+\): patch_embed.proj.0.weight: "):
        _loaded(NAT, wider, arch=NAT_SMALL)


def test_allow_partial_loads_what_fits_with_a_short_summary(tmp_path, caplog):
    deeper = NAT(arch=NAT_DEEPER)
    path = _save(deeper.state_dict(), tmp_path / "deeper.pth")
    _capture_log(caplog)
    with caplog.at_level(logging.INFO):
        model = _loaded(NAT, path, arch=NAT_SMALL, cfg=dict(allow_partial=True))
    for key, value in model.state_dict().items():
        assert torch.equal(value, deeper.state_dict()[key]), key
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "0 missing, 13 unexpected, 0 mismatched" in warning
    assert len(warning) < 600


def test_foreign_checkpoint_and_bad_init_cfg_are_clear_errors(tmp_path):
    path = _save({"conv.weight": torch.zeros(1)}, tmp_path / "foreign.pth")
    with pytest.raises(
        ValueError, match="no key matches NAT; checkpoint keys \\(1\\): conv.weight"
    ):
        _loaded(NAT, path, arch=NAT_SMALL, cfg=dict(allow_partial=True))
    with pytest.raises(ValueError, match=r"init_cfg keys \['strict'\] not understood"):
        _loaded(NAT, path, arch=NAT_SMALL, cfg=dict(strict=False))


@pytest.mark.parametrize(
    "build", [lambda: NAT(arch=NAT_SMALL).eval(), lambda: LWPLGViT("r", drop_path_rate=0.0).eval()]
)
def test_feature_api_prunes_to_the_requested_outputs(build):
    model = build()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full = model(x)
        assert [o.shape[1] for o in full] == model.out_channels
        nhwc = model.forward_intermediates(x, indices=[1, 2], output_fmt="NHWC")
        for got, want in zip(nhwc, full[1:3], strict=True):
            assert torch.equal(got.permute(0, 3, 1, 2), want)
        assert model.prune_intermediate_layers([1, 2]) == [1, 2]
        assert model.out_indices == (1, 2) and not hasattr(model, "norm3")
        for got, want in zip(model(x), full[1:3], strict=True):
            assert torch.equal(got, want)
    with pytest.raises(ValueError, match=r"indices \(0,\) must be among out_indices \(1, 2\)"):
        model.forward_intermediates(x, indices=[0])
