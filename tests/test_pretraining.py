"""ImageNet pretraining and its hand-off: the cls_* configs (parameters equal to timm's models,
the recipe's weight decay), the checked ImageNet dataset and image loader on bad input, the
pre-run checks of tools/train.py (missing weights, missing data, offline URLs), whole-model
checkpoint mismatches, the dist launchers' interpreter, and DetInferencer on the demo config.

Slow: every cls config trains 2 iterations through tools/train.py on a generated ImageNet-layout
folder and is evaluated by tools/test.py; the LW-A / NAT-T checkpoints initialise Mask R-CNN
LW-A, UperNet NAT-T and mono 3D LW-A (every backbone tensor from the file but the fresh output
norms), which then train 2 iterations; the headline command without its pretrained file fails
before loading data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmpretrain")
pytest.importorskip("mmdet")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import plgvit_mm  # noqa: E402,F401
import plgvit_mm.datasets.checked_imagenet  # noqa: E402,F401
from plgvit_mm.cli.checkpoint_match import (  # noqa: E402
    CheckpointMismatchError,
    check_checkpoint_matches,
)
from plgvit_mm.cli.preflight import PreflightError, check_training_inputs  # noqa: E402
from plgvit_mm.datasets.synthetic_imagenet import write_synthetic_imagenet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLS_CONFIGS = {  # config -> timm model with the same parameters
    "cls_lwplgvit_a_in1k": "lw_plgvit_a",
    "cls_lwplgvit_r_in1k": "lw_plgvit_r",
    "cls_plgvit_tiny_in1k": "plgvit_tiny",
    "cls_nat_mini_in1k": "nat_mini",
    "cls_nat_tiny_in1k": "nat_tiny",
}
HEADLINE = "configs/maskrcnn_lwplgvit_a_coco.py"


def _cls_config(name: str) -> Config:
    return Config.fromfile(str(REPO / "configs" / f"{name}.py"))


def _build_classifier(cfg: Config):
    from mmpretrain.registry import MODELS

    init_default_scope("mmpretrain")
    model_cfg = cfg.model.copy()
    model_cfg.data_preprocessor = cfg.data_preprocessor
    return MODELS.build(model_cfg)


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ configs


@pytest.mark.parametrize(
    "name",
    [
        "cls_lwplgvit_a_in1k",
        "cls_lwplgvit_r_in1k",
        pytest.param("cls_plgvit_tiny_in1k", marks=pytest.mark.slow),
        pytest.param("cls_nat_mini_in1k", marks=pytest.mark.slow),
        pytest.param("cls_nat_tiny_in1k", marks=pytest.mark.slow),
    ],
)
def test_classifier_has_the_timm_models_parameters(name):
    import timm

    model = _build_classifier(_cls_config(name))
    expected = _num_params(timm.create_model(CLS_CONFIGS[name]))
    assert _num_params(model) == expected
    if name == "cls_lwplgvit_a_in1k":
        assert expected == 5_327_294


def test_recipe_values_and_weight_decay_groups():
    from mmengine.optim import build_optim_wrapper

    cfg = _cls_config("cls_lwplgvit_a_in1k")
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ("AdamW", 1e-3, 0.05)
    assert cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, cosine.type, cosine.begin) == (
        "LinearLR",
        20,
        "CosineAnnealingLR",
        20,
    )
    assert [a.type for a in cfg.model.train_cfg.augments] == ["Mixup", "CutMix"]
    assert [a.alpha for a in cfg.model.train_cfg.augments] == [0.8, 1.0]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    steps = {step.type: step for step in cfg.train_dataloader.dataset.pipeline}
    assert steps["RandomErasing"].erase_prob == 0.25
    assert (steps["RandAugment"].magnitude_level, steps["RandAugment"].magnitude_std) == (9, 0.5)
    assert cfg.test_dataloader.dataset.pipeline[0].type == "LoadImageFromFile"
    assert cfg.model.backbone.drop_path_rate == 0.1

    model = _build_classifier(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): g["weight_decay"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        no_decay = param.ndim <= 1 or "relative_position_bias_table" in name
        assert decay[id(param)] == (0.0 if no_decay else 0.05), name
    nat = _build_classifier(_cls_config("cls_nat_mini_in1k"))
    wrapper = build_optim_wrapper(nat, _cls_config("cls_nat_mini_in1k").optim_wrapper)
    decay = {id(p): g["weight_decay"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    rpb = [p for n, p in nat.named_parameters() if n.endswith(".rpb")]
    assert rpb and all(decay[id(p)] == 0.0 for p in rpb)


def test_timm_classifier_state_dict_initialises_the_dense_backbone(tmp_path):
    import timm
    from mmengine.registry import MODELS

    classifier = timm.create_model("lw_plgvit_a")
    path = tmp_path / "lw_plgvit_a_timm.pth"
    torch.save(classifier.state_dict(), path)
    init = dict(type="Pretrained", checkpoint=str(path))
    backbone = MODELS.build(dict(type="LWPLGViT", arch="a", init_cfg=init))
    backbone.init_weights()
    fresh = MODELS.build(dict(type="LWPLGViT", arch="a")).state_dict()
    timm_state = classifier.state_dict()
    for key, value in backbone.state_dict().items():
        if key.startswith(("norm0.", "norm1.", "norm2.")):  # dense-only output norms
            assert torch.equal(value, fresh[key]), key
        else:  # the classifier's final norm is the last output norm
            source = "norm." + key.split(".", 1)[1] if key.startswith("norm3.") else key
            assert torch.equal(value, timm_state[source]), key


# ------------------------------------------------------------------ ImageNet bad input


def _imagenet(root: Path, **kwargs):
    from mmpretrain.registry import DATASETS

    init_default_scope("mmpretrain")
    return DATASETS.build(dict(type="CheckedImageNet", data_root=str(root), pipeline=[], **kwargs))


def test_folder_layout_loads_classes_and_labels(tmp_path):
    classes = write_synthetic_imagenet(str(tmp_path), num_classes=5, train_per_class=2)
    dataset = _imagenet(tmp_path, split="val", num_classes=5)
    assert dataset.metainfo["classes"] == tuple(classes)
    assert sorted(dataset.get_data_info(i)["gt_label"] for i in range(len(dataset))) == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_annotation_file_layout_and_its_bad_lines(tmp_path):
    write_synthetic_imagenet(str(tmp_path), num_classes=5)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "val.txt").write_text(
        "".join(f"class_{k:03d}/00000.JPEG {k}\n" for k in range(5))
    )
    dataset = _imagenet(tmp_path, split="val", num_classes=5)
    assert [dataset.get_data_info(i)["gt_label"] for i in range(5)] == [0, 1, 2, 3, 4]
    (tmp_path / "meta" / "val.txt").write_text("class_000/00000.JPEG 0\nno_label.JPEG\na.JPEG 7\n")
    with pytest.raises(ValueError, match=r"val\.txt: 2 lines .* in 0\.\.4: line 2: 'no_label"):
        _imagenet(tmp_path, split="val", num_classes=5)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_split", r"folder '.*/val' does not exist\. Expected .*/val/<class>/<image>\.JPEG"),
        ("empty_class", r"1 class folders hold no image .*class_002"),
        ("other_classes", r"missing in val: \[class_004\]; only in val: \[zebra\]"),
        ("class_count", r"has 5 class folders, the config expects num_classes=1000"),
    ],
)
def test_bad_imagenet_folders_name_what_is_wrong(tmp_path, damage, message):
    import shutil

    write_synthetic_imagenet(str(tmp_path), num_classes=5)
    num_classes = 5
    if damage == "no_split":
        shutil.rmtree(tmp_path / "val")
    elif damage == "empty_class":
        for image in (tmp_path / "val" / "class_002").iterdir():
            image.unlink()
    elif damage == "other_classes":
        (tmp_path / "val" / "class_004").rename(tmp_path / "val" / "zebra")
    else:
        num_classes = 1000
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        _imagenet(tmp_path, split="val", num_classes=num_classes)


def test_truncated_jpeg_is_named_by_the_training_loader(tmp_path):
    from mmengine.registry import TRANSFORMS

    write_synthetic_imagenet(str(tmp_path), num_classes=5)
    image = tmp_path / "train" / "class_000" / "00000.JPEG"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    step = _cls_config("cls_lwplgvit_a_in1k").train_dataloader.dataset.pipeline[0]
    loader = TRANSFORMS.build(step)
    with pytest.raises(
        ValueError, match=rf"image file '{image}' \(\d+ bytes\) could not be decoded"
    ):
        loader(dict(img_path=str(image)))


# ------------------------------------------------------------------ pre-run checks


def _headline_config(**options) -> Config:
    cfg = Config.fromfile(str(REPO / HEADLINE))
    cfg.merge_from_dict(options)
    return cfg


def test_missing_pretrained_file_names_the_three_ways_on(tmp_path, monkeypatch):
    from plgvit_mm.datasets.synthetic_shapes import write_synthetic_coco

    monkeypatch.chdir(tmp_path)
    write_synthetic_coco("data/coco", num_train=1, num_val=1, height=64, width=64, seed=0)
    with pytest.raises(PreflightError) as error:
        check_training_inputs(_headline_config(), HEADLINE)
    message = str(error.value)
    assert message.startswith("Pretrained backbone weights not found: checkpoints/lw_plgvit_a")
    for part in (
        "python tools/train.py configs/cls_lwplgvit_a_in1k.py",
        "--cfg-options model.backbone.init_cfg.checkpoint=/path/to/weights.pth",
        "--cfg-options model.backbone.init_cfg=None",
    ):
        assert part in message
    assert "Dataset files" not in message
    check_training_inputs(_headline_config(**{"model.backbone.init_cfg": None}), HEADLINE)


def test_missing_data_names_the_paths_and_every_redirect_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PreflightError) as error:
        check_training_inputs(_headline_config(**{"model.backbone.init_cfg": None}), HEADLINE)
    message = str(error.value)
    assert "train_dataloader: data/coco/annotations/instances_train2017.json" in message
    assert "val_evaluator.ann_file: data/coco/annotations/instances_val2017.json" in message
    assert (
        "--cfg-options train_dataloader.dataset.data_root=DIR/ val_dataloader.dataset.data_root="
        "DIR/ test_dataloader.dataset.data_root=DIR/ val_evaluator.ann_file=DIR/annotations/"
        "instances_val2017.json test_evaluator.ann_file=DIR/annotations/instances_val2017.json"
    ) in message


def test_offline_url_weights_name_the_url_and_the_local_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = "http://127.0.0.1:9/nat_tiny.pth"  # nothing listens on the discard port
    cfg = Config.fromfile(str(REPO / "configs" / "upernet_nat_tiny_ade20k.py"))
    cfg.model.backbone.init_cfg.checkpoint = url
    with pytest.raises(PreflightError) as error:
        check_training_inputs(cfg, "configs/upernet_nat_tiny_ade20k.py")
    message = str(error.value)
    assert f"could not be downloaded: {url}" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "nat_tiny.pth") in message
    assert "model.backbone.init_cfg.checkpoint=/path/to/nat_tiny.pth" in message
    shipped = Config.fromfile(str(REPO / "configs" / "upernet_nat_tiny_ade20k.py"))
    assert shipped.model.backbone.init_cfg.checkpoint.startswith("https://shi-labs.com/")


def test_whole_model_checkpoint_mismatch_is_summarised(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    other = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 5))
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {**other.state_dict(), "extra.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointMismatchError) as error:
        check_checkpoint_matches(model, str(path))
    assert str(error.value).startswith(
        f"checkpoint '{path}' does not fit Sequential: 2 tensors match; 1 unexpected (not in the "
        "model): extra.weight; 2 of another shape: 1.weight: file (5, 3) vs model (2, 3), "
        "1.bias: file (5,) vs model (2,)."
    )
    assert "--allow-partial-load" in str(error.value)
    check_checkpoint_matches(model, str(path), allow_partial=True)
    torch.save({"state_dict": model.state_dict()}, path)
    check_checkpoint_matches(model, str(path))


def test_dist_train_defaults_to_the_repository_venv(tmp_path):
    (tmp_path / "tools").mkdir()
    script = (REPO / "tools" / "dist_train.sh").read_text()
    (tmp_path / "tools" / "dist_train.sh").write_text(script)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "venv python $*"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    out = subprocess.run(
        ["bash", str(tmp_path / "tools" / "dist_train.sh"), "cfg.py", "2", "--amp"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[-1].startswith("venv python -m torch.distributed.run ")
    assert out[-1].endswith("/tools/train.py cfg.py --launcher pytorch --amp")
    env["PYTHON"] = "/bin/false"
    failed = subprocess.run(
        ["bash", str(REPO / "tools" / "dist_test.sh"), "cfg.py", "ckpt.pth", "1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2 and "/bin/false cannot import torch" in failed.stderr


def test_det_inferencer_runs_the_demo_config_with_its_checkpoint(tmp_path):
    import numpy as np
    from mmdet.apis import DetInferencer

    from plgvit_mm.cli.inference import build_inference_model

    config = str(REPO / "configs" / "demo" / "maskrcnn_lwplgvit_a_synthetic.py")
    model = build_inference_model(Config.fromfile(config), None, "cpu")
    checkpoint = tmp_path / "demo.pth"
    meta = dict(dataset_meta=dict(classes=("square", "circle", "triangle")))
    torch.save({"state_dict": model.state_dict(), "meta": meta}, checkpoint)
    inferencer = DetInferencer(model=config, weights=str(checkpoint), device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    (prediction,) = inferencer(image, return_datasamples=False)["predictions"]
    assert set(prediction) >= {"labels", "scores", "bboxes", "masks"}
    assert len(prediction["labels"]) == len(prediction["scores"]) == len(prediction["bboxes"])
    assert inferencer.model.dataset_meta["classes"] == meta["dataset_meta"]["classes"]


@pytest.mark.slow
def test_mmseg_inferencer_runs_an_upernet_config_with_a_checkpoint(tmp_path):
    import numpy as np
    from mmseg.apis import MMSegInferencer

    from plgvit_mm.cli.inference import build_inference_model

    config = str(REPO / "configs" / "upernet_lwplgvit_r_ade20k.py")
    model = build_inference_model(Config.fromfile(config), None, "cpu")
    checkpoint = tmp_path / "upernet.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, checkpoint)
    inferencer = MMSegInferencer(model=config, weights=str(checkpoint), device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    prediction = inferencer(image)["predictions"]
    assert prediction.shape == (64, 96) and prediction.max() < 150


# ------------------------------------------------------------------ end to end (slow)

CLS_TINY = """
_base_ = ['{base}']
num_classes = 5
data_root = '{root}'
data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes))
train_dataloader = dict(batch_size=5, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, num_classes=num_classes))
val_dataloader = dict(batch_size=5, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, num_classes=num_classes))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
param_scheduler = [  # the recipe's warm-up only: one epoch is shorter than its 20
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=1, convert_to_iter_based=True)
]
default_hooks = dict(logger=dict(interval=1))
"""
# 64 px crops (RandomResizedCrop, ResizeEdge + CenterCrop) instead of 224
CLS_SMALL_IMAGES = [
    f"{loader}.dataset.pipeline.{step}={value}"
    for loader, step, value in (
        ("train_dataloader", "1.scale", 64),
        ("val_dataloader", "1.scale", 72),
        ("val_dataloader", "2.crop_size", 64),
        ("test_dataloader", "1.scale", 72),
        ("test_dataloader", "2.crop_size", 64),
    )
]


def _run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


_PRETRAINED: dict[str, Path] = {}


def _tool(name: str):
    """tools/NAME.py as a module (run in-process: the slow tests pay Python's imports once)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """``pretrained(name)``: the epoch-1 checkpoint of ``configs/NAME.py`` trained 2 iterations
    through tools/train.py on a generated 5-class ImageNet folder (trained once per module)."""
    root = tmp_path_factory.mktemp("imagenet")
    write_synthetic_imagenet(str(root), num_classes=5, train_per_class=2, val_per_class=1)
    train_tool = _tool("train")

    def train(name: str) -> Path:
        if name not in _PRETRAINED:
            work = tmp_path_factory.mktemp(name)
            config = work / f"{name}_tiny.py"
            config.write_text(CLS_TINY.format(base=REPO / "configs" / f"{name}.py", root=root))
            argv = [str(config), "--work-dir", str(work), "--seed", "0"]
            train_tool.main([*argv, "--cfg-options", *CLS_SMALL_IMAGES])
            (log_file,) = work.glob("*/*.log")
            log = log_file.read_text()
            assert "Epoch(train) [1][2/2]" in log, log[-3000:]
            assert re.search(r"Epoch\(val\) \[1\]\[1/1\] +eta: ", log), log[-3000:]
            assert re.search(r"val: 5/5 images \(100%\), eta 0:00:00", log), log[-3000:]
            assert re.search(r"accuracy/top1: [\d.]+ +accuracy/top5: 100\.0", log), log[-3000:]
            _PRETRAINED[name] = work / "epoch_1.pth"
            _PRETRAINED[name + ".config"] = config
        return _PRETRAINED[name]

    return train


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLS_CONFIGS))
def test_cls_config_trains_two_iterations_and_tests(pretrained, name, tmp_path):
    checkpoint = pretrained(name)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert state["head.fc.weight"].shape[0] == 5
    assert any(k.startswith("backbone.norm3.") for k in state)
    if name != "cls_lwplgvit_a_in1k":  # tools/test.py once: the same code path for every config
        return
    config = str(_PRETRAINED[name + ".config"])
    metrics = _tool("test").main(
        [config, str(checkpoint), "--work-dir", str(tmp_path), "--cfg-options"]
        + CLS_SMALL_IMAGES[3:]
    )
    assert 0.0 <= metrics["accuracy/top1"] <= 100.0 and metrics["accuracy/top5"] == 100.0
    other = _PRETRAINED["cls_lwplgvit_r_in1k"] if "cls_lwplgvit_r_in1k" in _PRETRAINED else None
    if other is not None:  # a checkpoint of another arch: an error with a summary
        with pytest.raises(CheckpointMismatchError, match=r"does not fit ImageClassifier: \d+ "):
            _tool("test").main([config, str(other), "--work-dir", str(tmp_path)])


def _backbone_from(checkpoint: Path, backbone: dict) -> torch.nn.Module:
    from mmengine.registry import MODELS

    model = MODELS.build(
        dict(backbone, init_cfg=dict(type="Pretrained", checkpoint=str(checkpoint)))
    )
    model.init_weights()
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, backbone",
    [
        ("cls_lwplgvit_a_in1k", dict(type="LWPLGViT", arch="a")),
        ("cls_nat_tiny_in1k", dict(type="NAT", arch="tiny")),
    ],
)
def test_classifier_checkpoint_fills_every_dense_backbone_tensor(pretrained, name, backbone):
    state = torch.load(pretrained(name), map_location="cpu", weights_only=False)["state_dict"]
    model = _backbone_from(pretrained(name), backbone)
    fresh = type(model)(**{k: v for k, v in backbone.items() if k != "type"}).state_dict()
    for key, value in model.state_dict().items():
        if key.startswith(("norm0.", "norm1.", "norm2.")):  # dense-only output norms
            assert torch.equal(value, fresh[key]), key
        else:
            assert torch.equal(value, state["backbone." + key]), key


@pytest.mark.slow
def test_classifier_checkpoint_of_another_arch_is_an_error_naming_the_file(pretrained):
    checkpoint = pretrained("cls_lwplgvit_r_in1k")
    with pytest.raises((ValueError, RuntimeError, KeyError), match=re.escape(str(checkpoint))):
        _backbone_from(checkpoint, dict(type="LWPLGViT", arch="a"))


MASKRCNN_TINY = """
_base_ = ['{base}']
data_root = '{root}/'
classes = ('square', 'circle', 'triangle')
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='{checkpoint}')),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
"""

UPERNET_TINY = """
_base_ = ['{base}']
data_root = '{root}/'
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size),
             backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='{checkpoint}')))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = dict(dataset=dict(data_root=data_root))
train_cfg = dict(max_iters=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""

# the mono 3D configs start from init_cfg=None (their header says how to set the weights)
MONO3D_TINY = """
_base_ = ['{base}']
data_root = '{root}/'
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='{checkpoint}')))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = dict(dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(save_best=None))
"""
MONO3D_SMALL_IMAGES = [
    "train_dataloader.dataset.pipeline.4.scale=(320,96)",
    "train_dataloader.dataset.pipeline.6.size=(320,96)",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "pretraining, dense, template, data, options",
    [
        ("cls_lwplgvit_a_in1k", "maskrcnn_lwplgvit_a_coco", MASKRCNN_TINY, "coco", []),
        ("cls_nat_tiny_in1k", "upernet_nat_tiny_ade20k", UPERNET_TINY, "ade", []),
        (
            "cls_lwplgvit_a_in1k",
            "mono3d_lwplgvit_a_kitti",
            MONO3D_TINY,
            "kitti",
            MONO3D_SMALL_IMAGES,
        ),
    ],
)
def test_pretrained_checkpoint_initialises_and_trains_the_dense_model(
    pretrained, tmp_path, pretraining, dense, template, data, options
):
    from plgvit_mm.datasets.synthetic_shapes import write_synthetic_ade20k, write_synthetic_coco

    if data == "coco":
        root = tmp_path / "coco"
        write_synthetic_coco(str(root), num_train=4, num_val=1, height=96, width=96, seed=1)
    elif data == "ade":
        root = tmp_path / "ade"
        write_synthetic_ade20k(str(root), num_train=4, num_val=1, height=80, width=96, seed=2)
    else:
        root = REPO / "tests" / "data" / "kitti_mini"
    config = tmp_path / f"{dense}_tiny.py"
    config.write_text(
        template.format(
            base=REPO / "configs" / f"{dense}.py", root=root, checkpoint=pretrained(pretraining)
        )
    )
    result = _run(
        str(REPO / "tools" / "train.py"),
        str(config),
        "--work-dir",
        str(tmp_path / "work"),
        "--seed",
        "0",
        *(["--cfg-options", *options] if options else []),
        cwd=tmp_path,
    )
    log = result.stdout + result.stderr
    losses = [float(x) for x in re.findall(r"\[2/2\].* loss: ([\d.]+)", log)]
    assert len(losses) == 1 and losses[0] == losses[0], log[-3000:]  # 2 iterations, finite loss


@pytest.mark.slow
def test_headline_command_without_weights_fails_before_loading_data(tmp_path):
    from plgvit_mm.datasets.synthetic_shapes import write_synthetic_coco

    write_synthetic_coco(
        str(tmp_path / "data" / "coco"), num_train=2, num_val=1, height=64, width=64, seed=0
    )
    result = _run(str(REPO / "tools" / "train.py"), str(REPO / HEADLINE), cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert len(output.splitlines()) < 150, output
    assert "Pretrained backbone weights not found: checkpoints/lw_plgvit_a_in1k.pth" in output
    assert "python tools/train.py configs/cls_lwplgvit_a_in1k.py" in output
    assert "Traceback" not in output and "pkg_resources" not in output
    assert "loading annotations" not in output  # failed before any data was read

    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(
        str(REPO / "tools" / "train.py"),
        str(REPO / HEADLINE),
        "--cfg-options",
        "model.backbone.init_cfg=None",
        cwd=empty,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1 and len(output.splitlines()) < 150, output
    assert "Dataset files not found" in output
    assert "test_evaluator.ann_file=DIR/annotations/instances_val2017.json" in output
