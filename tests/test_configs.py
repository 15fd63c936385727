"""Every dense experiment config (configs/*.py and configs/demo/*.py; mono3d_* and the ImageNet
cls_* configs, tested in test_mono3d_model.py / test_pretraining.py, aside): the recipe it
states (optimizer, schedule, crops, classes, published reference), the model it builds (neck /
head input channels equal the backbone's ``out_channels``), the parameters it exempts from
weight decay, and one test-mode forward pass on a 64 x 64 image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import plgvit_mm  # noqa: E402,F401  (registers the backbones)

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
CONFIGS = sorted(
    p
    for p in CONFIG_DIR.rglob("*.py")
    if "_base_" not in p.parts and not p.name.startswith(("mono3d_", "cls_"))
)
NAME = re.compile(
    r"^(maskrcnn|cascade_maskrcnn|fasterrcnn|upernet)_"
    r"(lwplgvit_a|lwplgvit_r|plgvit_tiny|nat_mini|nat_tiny|nat_small|nat_base|"
    r"dinat_tiny)_(coco|ade20k|cityscapes|bdd100k|synthetic)(_3x)?\.py$"
)
BACKBONE = {  # name in the file name -> (type, arch)
    "lwplgvit_a": ("LWPLGViT", "a"),
    "lwplgvit_r": ("LWPLGViT", "r"),
    "plgvit_tiny": ("PLGViT", "tiny"),
    "nat_mini": ("NAT", "mini"),
    "nat_tiny": ("NAT", "tiny"),
    "nat_small": ("NAT", "small"),
    "nat_base": ("NAT", "base"),
    "dinat_tiny": ("DiNAT", "tiny"),
}
# Published references (docs/design/nat.md, published results; DiNAT paper): the header must quote them.
PUBLISHED = {
    "maskrcnn_nat_mini_coco": "46.5 / 41.7",
    "maskrcnn_nat_tiny_coco": "47.7 / 42.6",
    "maskrcnn_nat_small_coco": "48.4 / 43.2",
    "maskrcnn_dinat_tiny_coco": "48.6 / 43.5",
    "cascade_maskrcnn_nat_mini_coco": "50.3 / 43.6",
    "cascade_maskrcnn_nat_tiny_coco": "51.4 / 44.5",
    "cascade_maskrcnn_nat_small_coco": "52.0 / 44.9",
    "cascade_maskrcnn_nat_base_coco": "52.3 / 45.1",
    "upernet_nat_mini_ade20k": "45.1 / 46.4",
    "upernet_nat_tiny_ade20k": "47.1 / 48.4",
    "upernet_nat_small_ade20k": "48.0 / 49.5",
    "upernet_nat_base_ade20k": "48.5 / 49.7",
    "upernet_dinat_tiny_ade20k": "47.8 / 48.8",
}
NUM_CLASSES = {
    ("maskrcnn", "coco"): 80,
    ("cascade_maskrcnn", "coco"): 80,
    ("upernet", "ade20k"): 150,
    ("upernet", "cityscapes"): 19,
    ("maskrcnn", "cityscapes"): 8,
    ("fasterrcnn", "bdd100k"): 10,
    ("upernet", "bdd100k"): 19,
    ("maskrcnn", "synthetic"): 3,
}
ZERO_DECAY_KEYS = ("norm", "rpb", "relative_position_bias_table")


def _parse(path: Path) -> tuple[str, str, str, bool]:
    match = NAME.match(path.name)
    assert match, f"{path.name} does not follow {{model}}_{{backbone}}_{{dataset}}[_3x].py"
    model, backbone, dataset, three_x = match.groups()
    return model, backbone, dataset, bool(three_x)


def test_every_required_config_exists():
    names = {p.name for p in CONFIGS}
    required = {
        f"maskrcnn_{b}_coco{s}.py"
        for s in ("", "_3x")
        for b in (
            "lwplgvit_a",
            "lwplgvit_r",
            "plgvit_tiny",
            "nat_mini",
            "nat_tiny",
            "nat_small",
            "dinat_tiny",
        )
    }
    required |= {f"cascade_maskrcnn_nat_{a}_coco_3x.py" for a in ("mini", "tiny", "small", "base")}
    required |= {f"upernet_{b}_ade20k.py" for b in BACKBONE}
    required |= {
        f"{m}_lwplgvit_{a}_{d}.py"
        for a in ("a", "r")
        for m, d in (
            ("upernet", "cityscapes"),
            ("maskrcnn", "cityscapes"),
            ("fasterrcnn", "bdd100k"),
            ("upernet", "bdd100k"),
        )
    }
    assert required <= names, sorted(required - names)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_config_states_its_recipe(path):
    model_name, backbone_name, dataset, three_x = _parse(path)
    cfg = Config.fromfile(str(path))
    header = path.read_text().split("\n_base_ = ")[0]
    detection = model_name != "upernet"

    assert cfg.custom_imports == dict(imports=["plgvit_mm"], allow_failed_imports=False)
    assert cfg.default_scope == ("mmdet" if detection else "mmseg")
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == BACKBONE[backbone_name]
    assert backbone.out_indices == (0, 1, 2, 3)
    if backbone.type == "DiNAT":
        assert backbone.dilations == ("coco" if detection else "ade20k")
    # DetInferencer / MMSegInferencer replace the step named LoadImageFromFile for in-memory images
    assert cfg.test_dataloader.dataset.pipeline[0].type == "LoadImageFromFile"

    # header: batch assumption with the linear rule, published reference or the lack of one
    if dataset != "synthetic":
        assert "16 images in total (8 GPUs x 2)" in header and "linear rule" in header
        stem = path.stem.removesuffix("_3x")
        if stem in PUBLISHED:
            assert PUBLISHED[stem] in header
        else:
            assert "no published number is reproduced here" in header
        assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16

    optimizer = cfg.optim_wrapper.optimizer
    custom_keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert optimizer.type == "AdamW"
    assert all(custom_keys[k] == dict(decay_mult=0.0) for k in ZERO_DECAY_KEYS)
    if dataset == "synthetic":
        assert (optimizer.lr, cfg.train_cfg.max_iters) == (8e-4, 1250)
    elif detection:
        assert (optimizer.lr, optimizer.weight_decay) == (1e-4, 0.05)
        epochs, milestones = {
            ("coco", False): (12, [8, 11]),
            ("coco", True): (36, [27, 33]),
            ("cityscapes", False): (8, [7]),
            ("bdd100k", False): (12, [8, 11]),
        }[(dataset, three_x)]
        assert cfg.train_cfg.max_epochs == epochs
        assert cfg.param_scheduler[1].milestones == milestones
    else:
        assert (optimizer.lr, optimizer.weight_decay) == (6e-5, 0.01)
        iters = 160000 if dataset == "ade20k" else 80000
        warmup, poly = cfg.param_scheduler
        assert cfg.train_cfg.max_iters == iters
        assert (warmup.type, warmup.end) == ("LinearLR", 1500)
        assert (poly.type, poly.power, poly.end) == ("PolyLR", 1.0, iters)
        crop = (512, 512) if dataset == "ade20k" else (512, 1024)
        assert cfg.model.data_preprocessor.size == crop
        crops = [
            t.crop_size for t in cfg.train_dataloader.dataset.pipeline if t.type == "RandomCrop"
        ]
        assert crops == [crop]
    if dataset == "coco":  # multi-scale + DETR-style crop augmentation
        choice = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == "RandomChoice"]
        assert [[s.type for s in branch] for branch in choice[0].transforms] == [
            ["RandomChoiceResize"],
            ["RandomChoiceResize", "RandomCrop", "RandomChoiceResize"],
        ]

    num_classes = NUM_CLASSES[(model_name, dataset)]
    if detection:
        heads = cfg.model.roi_head.bbox_head
        for head in heads if isinstance(heads, list) else [heads]:
            assert head.num_classes == num_classes
        if "mask_head" in cfg.model.roi_head:
            assert cfg.model.roi_head.mask_head.num_classes == num_classes
    else:
        assert cfg.model.decode_head.num_classes == num_classes
        assert cfg.model.auxiliary_head.num_classes == num_classes


def _build(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == "mmdet":
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    cfg.model.backbone.init_cfg = None
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def _test_batch(detection: bool, size: int = 64) -> dict:
    image = (torch.rand(3, size, size) * 255).to(torch.uint8)
    meta = dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0))
    if detection:
        from mmdet.structures import DetDataSample

        sample = DetDataSample(metainfo=meta)
    else:
        from mmseg.structures import SegDataSample

        sample = SegDataSample(metainfo=meta)
    return dict(inputs=[image], data_samples=[sample])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
@pytest.mark.slow
def test_config_builds_model_and_predicts(path):
    cfg = Config.fromfile(str(path))
    detection = cfg.default_scope == "mmdet"
    one_x = path.with_name(path.name.replace("_3x.py", ".py"))
    if one_x != path and one_x.exists():  # a 3x config trains the 1x config's model longer
        assert cfg.model == Config.fromfile(str(one_x)).model
        return
    if detection:  # few proposals/detections keep the RoI heads cheap on CPU
        cfg.model.test_cfg.rpn.max_per_img = 20
        cfg.model.test_cfg.rcnn.max_per_img = 5
    torch.manual_seed(0)
    model = _build(cfg)
    channels = list(model.backbone.out_channels)
    if detection:
        assert list(cfg.model.neck.in_channels) == channels
    else:
        assert list(cfg.model.decode_head.in_channels) == channels
        aux = cfg.model.auxiliary_head
        assert aux.in_channels == channels[aux.in_index]

    # weight decay: zero exactly for norms and relative position biases
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        id(p): g["weight_decay"] for g in optim_wrapper.optimizer.param_groups for p in g["params"]
    }
    base_decay = cfg.optim_wrapper.optimizer.weight_decay
    names = dict(model.named_parameters())
    for name, param in names.items():
        expected = 0.0 if any(k in name for k in ZERO_DECAY_KEYS) else base_decay
        assert decay[id(param)] == expected, name
    backbone_names = [n for n in names if n.startswith("backbone.")]
    assert any("norm" in n for n in backbone_names)
    if cfg.model.backbone.type in ("NAT", "DiNAT"):
        assert any(n.endswith("rpb") for n in backbone_names)
    else:
        assert any("relative_position_bias_table" in n for n in backbone_names)

    model.eval()
    with torch.no_grad():
        (prediction,) = model.test_step(_test_batch(detection))
    if detection:
        boxes = prediction.pred_instances.bboxes
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) <= 5
        if "mask_head" in cfg.model.roi_head:
            assert tuple(prediction.pred_instances.masks.shape) == (len(boxes), 64, 64)
    else:
        seg = prediction.pred_sem_seg.data
        assert tuple(seg.shape) == (1, 64, 64)
        assert int(seg.max()) < cfg.model.decode_head.num_classes
