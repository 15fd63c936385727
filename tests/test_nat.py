"""NAT / DiNAT backbones and timm models against docs/design/nat.md (variants, checkpoint formats).

Official key layouts, shapes and a functional forward pass are written here from that document,
independently of plgvit_mm's modules; the models must reproduce them exactly.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS
from torch import Tensor

import plgvit_mm.models.backbones.nat  # noqa: F401  (registers NAT, DiNAT, nat_*, dinat_*)
from plgvit_mm.models.backbones.nat import NAT, DiNAT, NATClassifier, convert_state_dict
from plgvit_mm.ops import na2d

ROOT = Path(__file__).resolve().parents[1]

# docs/design/nat.md, variants: C, depths, heads, mlp ratio, layer scale; params classifier / backbone (M).
SPEC = {
    "mini": (64, (3, 4, 6, 5), (2, 4, 8, 16), 3, None, 19.98, 19.47),
    "tiny": (64, (3, 4, 18, 5), (2, 4, 8, 16), 3, None, 27.90, 27.39),
    "small": (96, (3, 4, 18, 5), (3, 6, 12, 24), 2, 1e-5, 50.74, 49.98),
    "base": (128, (3, 4, 18, 5), (4, 8, 16, 32), 2, 1e-5, 89.77, 88.75),
}
# A reduced variant with every feature (layer scale, dilation, small-map padding) for fast
# numerical checks; head_dim 32 as published.
SMALL_ARCH = dict(
    embed_dim=64, depths=(2, 2, 2, 1), num_heads=(2, 4, 8, 16), mlp_ratio=2.0, layer_scale=1e-5
)


def official_layout(
    embed_dim: int,
    depths,
    heads,
    mlp_ratio: float,
    layer_scale,
    kernel: int = 7,
    dense: bool = False,
    out_indices=(0, 1, 2, 3),
) -> dict[str, tuple]:
    """Key -> shape of an official checkpoint (docs/design/nat.md, checkpoint formats): classifier, or backbone (``dense``)."""
    c = embed_dim
    shapes = {
        "patch_embed.proj.0.weight": (c // 2, 3, 3, 3),
        "patch_embed.proj.0.bias": (c // 2,),
        "patch_embed.proj.1.weight": (c, c // 2, 3, 3),
        "patch_embed.proj.1.bias": (c,),
        "patch_embed.norm.weight": (c,),
        "patch_embed.norm.bias": (c,),
    }
    for i, (depth, h) in enumerate(zip(depths, heads, strict=True)):
        d, hidden = c * 2**i, int(c * 2**i * mlp_ratio)
        for j in range(depth):
            p = f"levels.{i}.blocks.{j}."
            shapes.update(
                {
                    p + "norm1.weight": (d,),
                    p + "norm1.bias": (d,),
                    p + "attn.qkv.weight": (3 * d, d),
                    p + "attn.qkv.bias": (3 * d,),
                    p + "attn.rpb": (h, 2 * kernel - 1, 2 * kernel - 1),
                    p + "attn.proj.weight": (d, d),
                    p + "attn.proj.bias": (d,),
                    p + "norm2.weight": (d,),
                    p + "norm2.bias": (d,),
                    p + "mlp.fc1.weight": (hidden, d),
                    p + "mlp.fc1.bias": (hidden,),
                    p + "mlp.fc2.weight": (d, hidden),
                    p + "mlp.fc2.bias": (d,),
                }
            )
            if layer_scale is not None:
                shapes.update({p + "gamma1": (d,), p + "gamma2": (d,)})
        if i < len(depths) - 1:
            p = f"levels.{i}.downsample."
            shapes.update(
                {
                    p + "reduction.weight": (2 * d, d, 3, 3),
                    p + "norm.weight": (2 * d,),
                    p + "norm.bias": (2 * d,),
                }
            )
    last = c * 2 ** (len(depths) - 1)
    if dense:
        for i in out_indices:
            shapes.update({f"norm{i}.weight": (c * 2**i,), f"norm{i}.bias": (c * 2**i,)})
    else:
        shapes.update(
            {
                "norm.weight": (last,),
                "norm.bias": (last,),
                "head.weight": (1000, last),
                "head.bias": (1000,),
            }
        )
    return shapes


def random_official_state(layout: dict[str, tuple], seed: int = 0) -> dict[str, Tensor]:
    """Random tensors for a layout; norms, gammas and biases far from their init so they matter."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        t = torch.randn(shape, generator=gen)
        if len(shape) > 1 and not key.endswith("rpb"):
            t = t / math.sqrt(math.prod(shape[1:]))
        elif re.search(r"norm\d*\.weight$", key):
            t = 1 + 0.2 * t
        else:
            t = 0.3 * t
        state[key] = t
    return state


def reference_forward(
    state: dict[str, Tensor], x: Tensor, heads, dilations, kernel: int = 7
) -> tuple[list[Tensor], Tensor]:
    """NAT forward written from docs/design/nat.md: level outputs (B, H, W, C) before downsampling, logits."""

    def ln(t: Tensor, name: str) -> Tensor:
        return F.layer_norm(t, t.shape[-1:], state[name + ".weight"], state[name + ".bias"])

    x = F.conv2d(x, state["patch_embed.proj.0.weight"], state["patch_embed.proj.0.bias"], 2, 1)
    x = F.conv2d(x, state["patch_embed.proj.1.weight"], state["patch_embed.proj.1.bias"], 2, 1)
    x = ln(x.permute(0, 2, 3, 1), "patch_embed.norm")
    outs = []
    for i, (h, level_dilations) in enumerate(zip(heads, dilations, strict=True)):
        for j, dil in enumerate(level_dilations):
            p = f"levels.{i}.blocks.{j}."
            y = ln(x, p + "norm1")
            b, hh, ww, d = y.shape
            hp, wp = max(hh, kernel * dil), max(ww, kernel * dil)
            y = F.pad(y, (0, 0, 0, wp - ww, 0, hp - hh))  # legacy zero padding of small maps
            qkv = F.linear(y, state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"])
            q, k, v = qkv.reshape(b, hp, wp, 3, h, d // h).unbind(3)  # rows q, k, v; head-major
            a = na2d(q, k, v, kernel, dil, rpb=state[p + "attn.rpb"])
            a = a.reshape(b, hp, wp, d)[:, :hh, :ww]
            a = F.linear(a, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
            x = x + state.get(p + "gamma1", 1.0) * a
            m = F.gelu(
                F.linear(ln(x, p + "norm2"), state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])
            )
            m = F.linear(m, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
            x = x + state.get(p + "gamma2", 1.0) * m
        outs.append(x)
        if i < len(heads) - 1:
            x = F.conv2d(
                x.permute(0, 3, 1, 2), state[f"levels.{i}.downsample.reduction.weight"], None, 2, 1
            ).permute(0, 2, 3, 1)
            x = ln(x, f"levels.{i}.downsample.norm")
    logits = None
    if "head.weight" in state:
        logits = F.linear(ln(x, "norm").mean((1, 2)), state["head.weight"], state["head.bias"])
    return outs, logits


def dense_reference(state: dict[str, Tensor], outs: list[Tensor]) -> list[Tensor]:
    """Dense backbone outputs from reference level outputs: norm{i}, then NCHW."""
    return [
        F.layer_norm(o, o.shape[-1:], state[f"norm{i}.weight"], state[f"norm{i}.bias"]).permute(
            0, 3, 1, 2
        )
        for i, o in enumerate(outs)
    ]


def to_hf(state: dict[str, Tensor], prefix: str = "nat.") -> dict[str, Tensor]:
    """Official -> HuggingFace layout, written from the key map of docs/design/nat.md (checkpoint formats)."""
    block_map = {
        "norm1": "layernorm_before",
        "attn.rpb": "attention.self.rpb",
        "attn.proj": "attention.output.dense",
        "norm2": "layernorm_after",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }
    hf: dict[str, Tensor] = {}
    for key, v in state.items():
        parts = key.split(".")
        if key.startswith("patch_embed.proj."):
            hf[prefix + "embeddings.patch_embeddings.projection." + key[17:]] = v
        elif key.startswith("patch_embed.norm."):
            hf[prefix + "embeddings.norm." + parts[-1]] = v
        elif ".downsample." in key:
            hf[prefix + "encoder." + key] = v
        elif key.startswith("levels."):
            base = f"{prefix}encoder.levels.{parts[1]}.layers.{parts[3]}."
            rest = ".".join(parts[4:])
            if rest.startswith("attn.qkv."):
                for name, chunk in zip(("query", "key", "value"), v.chunk(3, 0), strict=True):
                    hf[f"{base}attention.self.{name}.{parts[-1]}"] = chunk.clone()
            elif rest in ("gamma1", "gamma2"):
                hf[base + "layer_scale_parameters"] = torch.stack(
                    [state[key[:-1] + "1"], state[key[:-1] + "2"]]
                )
            else:
                module = rest if rest == "attn.rpb" else rest.rsplit(".", 1)[0]
                hf[base + block_map[module] + rest[len(module) :]] = v
        elif key.startswith("norm."):
            hf[prefix + "layernorm." + parts[-1]] = v
        elif key.startswith("head."):
            hf["classifier." + parts[-1]] = v
        else:  # norm{i}
            hf[f"hidden_states_norms.stage{int(key[4]) + 1}.{parts[-1]}"] = v
    return hf


def _state_shapes(model: torch.nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", list(SPEC))
def test_key_layout_and_param_counts_equal_spec(arch):
    c, depths, heads, ratio, ls, cls_m, backbone_m = SPEC[arch]
    with torch.device("meta"):
        classifier = timm.create_model(f"nat_{arch}")
        backbone = MODELS.build(dict(type="NAT", arch=arch))
    cls_layout = official_layout(c, depths, heads, ratio, ls)
    dense_layout = official_layout(c, depths, heads, ratio, ls, dense=True)
    assert _state_shapes(classifier) == cls_layout
    assert _state_shapes(backbone) == dense_layout
    for model, target in ((classifier, cls_m), (backbone, backbone_m)):
        count = sum(p.numel() for p in model.parameters()) / 1e6
        assert count == pytest.approx(target, rel=2e-3)
        assert (
            count
            == sum(
                math.prod(s) for s in (cls_layout if model is classifier else dense_layout).values()
            )
            / 1e6
        )


def test_dinat_variants_and_schedules():
    with torch.device("meta"):
        dinat_small = timm.create_model("dinat_small")
        dinat_base = MODELS.build(dict(type="DiNAT", arch="base", dilations="coco"))
        tiny_ade = MODELS.build(dict(type="DiNAT", arch="tiny", dilations="ade20k"))
    assert not any("gamma" in k for k in dinat_small.state_dict())  # DiNAT-S: no layer scale
    assert "levels.0.blocks.0.gamma1" in dinat_base.state_dict()
    assert dinat_small.dilations == ((1, 8, 1), (1, 4, 1, 4), (1, 2) * 9, (1,) * 5)
    assert dinat_base.dilations == (
        (1, 28, 1),
        (1, 7, 1, 14),
        (1, 3, 1, 5, 1, 7) * 3,
        (1, 3, 1, 3, 1),
    )
    assert tiny_ade.dilations == ((1, 16, 1), (1, 4, 1, 8), (1, 2, 1, 3, 1, 4) * 3, (1, 2, 1, 2, 1))
    attn = tiny_ade.levels[2].blocks[5].attn
    assert (attn.kernel_size, attn.dilation) == ((7, 7), (4, 4))
    mini = timm.create_model("dinat_mini", pretrained=False)
    assert mini.dilations[2] == (1, 2, 1, 2, 1, 2)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"unknown NAT arch 'huge'.*\['base', 'mini', 'small', "):
        NAT(arch="huge")
    with pytest.raises(ValueError, match="schedule"):
        DiNAT(arch="tiny", dilations="cityscapes")
    with pytest.raises(ValueError, match="one int >= 1 per block"):
        NAT(arch="mini", dilations=[[1, 2], [1] * 4, [1] * 6, [1] * 5])
    with pytest.raises(ValueError, match="frozen_stages 5"):
        NAT(arch="mini", frozen_stages=5)
    with pytest.raises(ValueError, match="out_indices"):
        NAT(arch="mini", out_indices=(2, 1))


@pytest.mark.parametrize("dilations", [((1, 1), (1, 1), (1, 1), (1,)), "coco"])
def test_official_classifier_state_dict_matches_spec_forward(dilations):
    """Random official-layout weights -> our classifier == the documented forward pass. With the
    COCO schedule at 96 x 80 px every dilated block runs the small-map padding path
    (level 0: 24 x 20 < 7 * 28)."""
    cfg = SMALL_ARCH
    model = NATClassifier(**cfg, dilations=dilations, drop_path_rate=0.0).eval()
    layout = official_layout(
        cfg["embed_dim"], cfg["depths"], cfg["num_heads"], cfg["mlp_ratio"], cfg["layer_scale"]
    )
    state = random_official_state(layout)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 96, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs, logits = reference_forward(state, x, cfg["num_heads"], model.dilations)
        torch.testing.assert_close(model(x), logits, rtol=1e-4, atol=1e-4)
        ours = list(model.forward_levels(x))
    for o, r in zip(ours, outs, strict=True):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def _save(obj, path: Path) -> str:
    torch.save(obj, path)
    return str(path)


@pytest.fixture(scope="module")
def dense_case(tmp_path_factory):
    """Official mmdet-style backbone checkpoint (with neck keys) and its reference outputs."""
    cfg = SMALL_ARCH
    layout = official_layout(
        cfg["embed_dim"],
        cfg["depths"],
        cfg["num_heads"],
        cfg["mlp_ratio"],
        cfg["layer_scale"],
        dense=True,
    )
    state = random_official_state(layout, seed=3)
    x = torch.randn(1, 3, 97, 131, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        outs, _ = reference_forward(state, x, cfg["num_heads"], [(1,) * d for d in cfg["depths"]])
    folder = tmp_path_factory.mktemp("nat_ckpt")
    ckpt = {
        "meta": {"epoch": 36},
        "state_dict": {
            **{"backbone." + k: v for k, v in state.items()},
            "neck.lateral_convs.0.conv.weight": torch.zeros(4, 4, 1, 1),
        },
    }
    return dict(
        state=state,
        x=x,
        expected=dense_reference(state, outs),
        path=_save(ckpt, folder / "mmdet_nat.pth"),
        folder=folder,
    )


def _build_loaded(path: str, **kwargs) -> NAT:
    model = MODELS.build(
        dict(
            type="NAT",
            arch=SMALL_ARCH,
            drop_path_rate=0.0,
            init_cfg=dict(type="Pretrained", checkpoint=path),
            **kwargs,
        )
    )
    model.init_weights()
    return model.eval()


def test_mmdet_checkpoint_loads_through_init_cfg(dense_case):
    model = _build_loaded(dense_case["path"])
    ckpt = torch.load(dense_case["path"])
    assert set(convert_state_dict(ckpt, model)) == set(model.state_dict())
    with torch.no_grad():
        outs = model(dense_case["x"])
    assert [tuple(o.shape[2:]) for o in outs] == [(25, 33), (13, 17), (7, 9), (4, 5)]
    for o, r in zip(outs, dense_case["expected"], strict=True):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def test_classifier_checkpoint_into_backbone_keeps_dense_norms(tmp_path):
    cfg = SMALL_ARCH
    state = random_official_state(
        official_layout(cfg["embed_dim"], cfg["depths"], cfg["num_heads"], 2.0, 1e-5), seed=5
    )
    model = _build_loaded(_save(state, tmp_path / "cls.pth"))
    own = model.state_dict()
    for key, value in state.items():
        if not key.startswith(("norm.", "head.")):
            assert torch.equal(own[key], value), key
    assert torch.equal(own["norm2.weight"], torch.ones(256))  # dense norms start at identity


@pytest.mark.slow
def test_hf_layout_round_trip_is_exact(dense_case, tmp_path):
    """Official -> HF (spec map) -> our converter, via init_cfg and via the converter tool."""
    hf_backbone = to_hf(dense_case["state"], prefix="")  # transformers NatBackbone layout
    model = _build_loaded(_save(hf_backbone, tmp_path / "hf_backbone.bin"))
    for key, value in dense_case["state"].items():
        assert torch.equal(model.state_dict()[key], value), key
    with torch.no_grad():
        outs = model(dense_case["x"])
    for o, r in zip(outs, dense_case["expected"], strict=True):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)

    spec = importlib.util.spec_from_file_location(
        "nat2plgvitmm", ROOT / "tools/model_converters/nat2plgvitmm.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    classifier = timm.create_model("nat_mini").eval()
    hf_path = _save(to_hf(classifier.state_dict()), tmp_path / "hf_cls.bin")
    out_path = tmp_path / "converted" / "nat_mini.pth"
    assert tool.main([hf_path, str(out_path), "--arch", "mini", "--target", "classifier"]) == 0
    converted = torch.load(out_path)["state_dict"]
    assert converted.keys() == classifier.state_dict().keys()
    assert all(torch.equal(converted[k], v) for k, v in classifier.state_dict().items())
    reloaded = copy.deepcopy(classifier)
    for tensor in reloaded.state_dict().values():
        tensor.zero_()
    reloaded.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (reloaded(x) - classifier(x)).abs().max().item() == 0.0
    assert not list(out_path.parent.glob(".tmp_*"))
    bad = _save(
        {"nat.encoder.levels.0.layers.0.mystery.weight": torch.zeros(1)}, tmp_path / "bad.bin"
    )
    with pytest.raises(ValueError, match="mystery"):
        tool.main([bad, str(tmp_path / "never.pth"), "--arch", "mini"])
    assert not (tmp_path / "never.pth").exists()


def test_rpb_of_other_kernel_is_resized_with_warning_and_bad_shapes_named(dense_case, tmp_path):
    state = dict(dense_case["state"])
    state["levels.1.blocks.0.attn.rpb"] = torch.full((4, 9, 9), 0.25)  # kernel 5 table
    path = _save(state, tmp_path / "k5.pth")
    with pytest.warns(UserWarning, match=r"levels.1.blocks.0.attn.rpb resized .*\(4, 9, 9\)"):
        model = _build_loaded(path)
    rpb = model.state_dict()["levels.1.blocks.0.attn.rpb"]
    assert rpb.shape == (4, 13, 13)
    torch.testing.assert_close(rpb, torch.full((4, 13, 13), 0.25))  # bicubic keeps constants
    state["levels.1.blocks.0.mlp.fc1.weight"] = torch.zeros(5, 128)
    with (
        pytest.raises(ValueError, match=r"levels.1.blocks.0.mlp.fc1.weight: checkpoint \(5, 128\)"),
        pytest.warns(UserWarning, match="resized"),
    ):
        _build_loaded(_save(state, tmp_path / "bad.pth"))


def test_acceptance_tiny_257x511_and_mini_224():
    x = torch.randn(1, 3, 257, 511)
    model = MODELS.build(dict(type="NAT", arch="tiny")).eval()
    assert model.out_channels == [64, 128, 256, 512]
    with torch.no_grad():
        outs = model(x)
        assert [tuple(o.shape) for o in outs] == [
            (1, c, math.ceil(257 / s), math.ceil(511 / s))
            for c, s in zip((64, 128, 256, 512), (4, 8, 16, 32), strict=True)
        ]
        mini = MODELS.build(dict(type="NAT", arch="mini", out_indices=(1, 3))).eval()
        assert [tuple(o.shape) for o in mini(torch.randn(1, 3, 224, 224))] == [
            (1, 128, 28, 28),
            (1, 512, 7, 7),
        ]


def test_shapes_at_800x1216_and_32x33():
    """Strides at the COCO test size (one block per level keeps it fast; the tokenizer and
    downsamplers set the shapes) and at the smallest supported odd size."""
    arch = dict(SMALL_ARCH, depths=(1, 1, 1, 1))
    model = MODELS.build(dict(type="DiNAT", arch=arch, dilations="coco")).eval()
    with torch.no_grad():
        assert [tuple(o.shape) for o in model(torch.randn(1, 3, 800, 1216))] == [
            (1, 64, 200, 304),
            (1, 128, 100, 152),
            (1, 256, 50, 76),
            (1, 512, 25, 38),
        ]
        assert [tuple(o.shape[2:]) for o in model(torch.randn(1, 3, 32, 33))] == [
            (8, 9),
            (4, 5),
            (2, 3),
            (1, 2),
        ]


@pytest.mark.parametrize("frozen_stages", [-1, 0, 1, 2, 3, 4])
def test_frozen_stages(frozen_stages):
    with torch.device("meta"):
        model = NAT(arch="mini", frozen_stages=frozen_stages, out_indices=(1, 2, 3))
    prefixes = [] if frozen_stages < 0 else ["patch_embed."]
    prefixes += [f"levels.{i}." for i in range(max(frozen_stages, 0))]
    prefixes += [f"norm{i}." for i in (1, 2, 3) if i < frozen_stages]
    model.train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith(tuple(prefixes))}
    for name, module in model.named_modules():
        if name:
            assert module.training != (name + ".").startswith(tuple(prefixes)), name


def test_with_cp_gives_same_gradients():
    torch.manual_seed(0)
    arch = dict(SMALL_ARCH, depths=(1, 1, 1, 1))
    plain = NAT(arch=arch, drop_path_rate=0.0)
    ckpt = NAT(arch=arch, drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32)
    for model in (plain, ckpt):
        sum(o.square().mean() for o in model.train()(x)).backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_timm_models_features_only_and_no_weight_decay():
    assert set(timm.list_models("*nat_*")) >= {f"{f}_{a}" for f in ("nat", "dinat") for a in SPEC}
    classifier = timm.create_model("nat_mini")
    assert classifier.no_weight_decay() == {
        n for n in classifier.state_dict() if n.endswith(".attn.rpb")
    }
    assert len(classifier.no_weight_decay()) == sum(SPEC["mini"][1])
    features = timm.create_model("nat_mini", features_only=True).eval()
    assert features.feature_info.channels() == [64, 128, 256, 512]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    dense = NAT(arch="mini").eval()
    dense.load_state_dict(features.model.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for f, d in zip(features(x), dense(x), strict=True):
            assert torch.equal(f, d)
    two = timm.create_model("dinat_mini", features_only=True, out_indices=(1, 2))
    assert two.feature_info.channels() == [128, 256]
    assert not any(k.startswith(("norm0", "norm3", "levels.3")) for k in two.model.state_dict())


@pytest.mark.parametrize("name", ["nat_mini", "nat_tiny", "nat_small", "nat_base", "dinat_tiny"])
def test_config_fragments_replace_a_resnet_and_build(name, tmp_path):
    fragment = ROOT / f"configs/_base_/models/backbone_{name}.py"
    (tmp_path / "detector.py").write_text(
        "model = dict(backbone=dict(type='ResNet', depth=50), neck=dict(in_channels=[1]))\n"
    )
    (tmp_path / "experiment.py").write_text(
        f"_base_ = ['./detector.py', '{fragment}']\n"
        "model = dict(backbone={{_base_.backbone}},\n"
        "             neck=dict(in_channels={{_base_.backbone_channels}}))\n"
    )
    cfg = Config.fromfile(tmp_path / "experiment.py")
    assert "depth" not in cfg.model.backbone
    with torch.device("meta"):
        backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    assert backbone.out_channels == cfg.model.neck.in_channels
    assert cfg.model.backbone.init_cfg.checkpoint.endswith(
        f"{name}.pth" if name[0] == "n" else f"{name}_in1k_224.pth"
    )


def test_conv_weights_are_channels_last_and_stay_so_through_loading():
    """oneDNN's CPU layout (no weight reorder per call); values and keys are untouched."""
    model = MODELS.build(dict(type="NAT", arch="mini"))
    state = {k: v.contiguous() * 1.5 for k, v in model.state_dict().items()}  # NCHW copies
    model.load_state_dict(state)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5  # tokenizer (2) and three downsamplers
    for conv in convs:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_eval_fast_paths_equal_the_module_calls_they_skip():
    """NATMlp and NATBlock skip identity dropout/drop-path modules in eval only."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type="NAT", arch="mini", drop_path_rate=0.3)).eval()
    block = model.levels[1].blocks[1]
    x = torch.randn(1, 9, 11, block.norm1.normalized_shape[0])
    with torch.no_grad():
        y = block.attn(block.norm1(x))
        y = x + block.drop_path(y)
        mlp = block.mlp
        expected = y + block.drop_path(
            mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(mlp.act(mlp.fc1(block.norm2(y)))))))
        )
        torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    block.train()
    torch.manual_seed(1)
    first = block(x)
    torch.manual_seed(1)
    assert torch.equal(first, block(x)) and not torch.equal(first, expected)  # drop path is active
