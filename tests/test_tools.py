"""Command-line tools: checked --cfg-options, train/test option handling, get_flops (against the
shared MAC counter), benchmark and image_demo on generated images."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from plgvit_mm.cli.config import (  # noqa: E402
    TRUST_ENV_VAR,
    UnknownConfigKeyError,
    allow_untrusted_checkpoints,
    check_override_keys,
    load_config,
)

MASKRCNN = str(REPO / "configs" / "maskrcnn_lwplgvit_a_coco.py")


def _tool(name: str):
    """Import tools/NAME.py (under another module name: tools/test.py would clash with stdlib)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UPERNET = str(REPO / "configs" / "upernet_lwplgvit_r_ade20k.py")


def _toy_config() -> Config:
    return Config(
        dict(
            model=dict(backbone=dict(type="X", depth=50), init_cfg=None),
            pipeline=[dict(type="A"), dict(type="B", scale=(1, 2))],
        )
    )


def test_override_keys_that_exist_pass_and_plus_adds_new_ones():
    options = {
        "model.backbone.depth": 18,
        "pipeline.1.scale": (3, 4),
        "+model.backbone.extra": True,
    }
    checked = check_override_keys(_toy_config(), options)
    assert checked == {
        "model.backbone.depth": 18,
        "pipeline.1.scale": (3, 4),
        "model.backbone.extra": True,
    }


@pytest.mark.parametrize(
    "key, message",
    [
        ("model.backbone.dpeth", r"'model.backbone' has no key 'dpeth'\. Did you mean: depth\?"),
        ("modle.backbone.depth", r"'the top level' has no key 'modle'\. Did you mean: model\?"),
        ("pipeline.2.type", r"'pipeline' is a list of 2 items; '2' is no index in it"),
        ("model.init_cfg.checkpoint", r"'model.init_cfg' is a NoneType \(None\), not a dict"),
    ],
)
def test_override_key_typos_fail_naming_the_key(key, message):
    with pytest.raises(UnknownConfigKeyError, match=message) as error:
        check_override_keys(_toy_config(), {key: 1}, source="cfg.py")
    assert f"key '{key}' does not exist in cfg.py" in str(error.value)
    assert f"'+{key}=...'" in str(error.value)


def test_load_config_merges_checked_options(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("model = dict(depth=50, norm=dict(type='BN'))\nlr = 0.1\n")
    cfg = load_config(str(path), {"model.norm.type": "GN", "lr": 0.2, "+work_dir": "w"})
    assert (cfg.model.norm.type, cfg.lr, cfg.work_dir, cfg.model.depth) == ("GN", 0.2, "w", 50)
    with pytest.raises(UnknownConfigKeyError, match="'model' has no key 'dept'"):
        load_config(str(path), {"model.dept": 18})
    with pytest.raises(FileNotFoundError, match="missing.py"):
        load_config(str(tmp_path / "missing.py"))


def test_trust_checkpoint_flag_sets_the_opt_in(monkeypatch):
    monkeypatch.delenv(TRUST_ENV_VAR, raising=False)
    allow_untrusted_checkpoints()
    assert os.environ[TRUST_ENV_VAR] == "1"


# ---- tools on the real configs (need mmdet / mmseg) ------------------------------------------

mm = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("mmdet", "mmseg", "mmcv")),
    reason="needs mmdet, mmseg and mmcv",
)


@mm
@pytest.mark.slow
def test_train_cli_rejects_a_cfg_options_typo_and_applies_flags(tmp_path):
    train = _tool("train")

    args = train.parse_args([MASKRCNN, "--cfg-options", "model.backbone.drop_path_rat=0.2"])
    with pytest.raises(
        UnknownConfigKeyError,
        match=r"key 'model.backbone.drop_path_rat' does not exist .*"
        r"Did you mean: drop_path_rate\?",
    ):
        train.build_train_config(args)

    args = train.parse_args(
        [
            MASKRCNN,
            "--resume",
            "--seed",
            "3",
            "--deterministic",
            "--cfg-options",
            "train_dataloader.batch_size=4",
        ]
    )
    cfg = train.build_train_config(args)
    assert (cfg.resume, cfg.load_from, cfg.train_dataloader.batch_size) == (True, None, 4)
    assert cfg.randomness == dict(seed=3, deterministic=True)
    assert cfg.work_dir == os.path.join("work_dirs", "maskrcnn_lwplgvit_a_coco")
    with pytest.raises(FileNotFoundError, match="--resume: checkpoint 'nope.pth'"):
        train.build_train_config(train.parse_args([MASKRCNN, "--resume", "nope.pth"]))
    amp = train.build_train_config(train.parse_args([MASKRCNN, "--amp"]))
    expected = "AmpOptimWrapper" if torch.cuda.is_available() else "CPUAmpOptimWrapper"
    assert amp.optim_wrapper.type == expected


@mm
def test_test_cli_show_dir_enables_the_visualization_hooks(tmp_path):
    test_tool = _tool("test")

    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"")
    cfg = test_tool.build_test_config(
        test_tool.parse_args([MASKRCNN, str(checkpoint), "--show-dir", str(tmp_path / "pictures")])
    )
    hook = cfg.default_hooks.visualization
    assert (hook.type, hook.draw, hook.interval) == ("DetVisualizationHook", True, 1)
    assert hook.test_out_dir == str(tmp_path / "pictures")
    assert (cfg.load_from, cfg.resume) == (str(checkpoint), False)
    cfg = test_tool.build_test_config(
        test_tool.parse_args([UPERNET, str(checkpoint), "--show-dir", str(tmp_path / "seg")])
    )
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.visualizer.save_dir == str(tmp_path / "seg")
    with pytest.raises(FileNotFoundError, match="checkpoint 'absent.pth' does not exist"):
        test_tool.build_test_config(test_tool.parse_args([UPERNET, "absent.pth"]))


@mm
@pytest.mark.parametrize("config, shape", [(UPERNET, (64, 96)), (MASKRCNN, (128, 128))])
@pytest.mark.slow
def test_get_flops_uses_the_shared_counter(tmp_path, config, shape):
    get_flops = _tool("get_flops")
    from mmengine.registry import MODELS

    from plgvit_mm.utils.flops import count_macs

    result = get_flops.main(
        [config, "--shape", *map(str, shape), "--json-out", str(tmp_path / "flops.json")]
    )
    cfg = Config.fromfile(config)
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    expected = count_macs(backbone, torch.randn(1, 3, *shape)).total
    assert result["backbone_macs"] == expected
    assert result["backbone_params"] == sum(p.numel() for p in backbone.parameters())
    assert result["macs"] > result["backbone_macs"] > 0  # heads add to the backbone
    assert result["input_hw"] == list(shape) and (tmp_path / "flops.json").is_file()


@mm
@pytest.mark.parametrize(
    "config, options",
    [
        (UPERNET, ["test_dataloader.dataset.pipeline.1.scale=(96,96)"]),
        (
            MASKRCNN,
            [
                "test_dataloader.dataset.pipeline.1.scale=(96,96)",
                "model.test_cfg.rpn.max_per_img=20",
            ],
        ),
    ],
)
def test_benchmark_times_the_whole_model(tmp_path, config, options):
    benchmark = _tool("benchmark")

    result = benchmark.main(
        [
            config,
            "--shape",
            "48",
            "64",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--device",
            "cpu",
            "--json-out",
            str(tmp_path / "bench.json"),
            "--cfg-options",
            *options,
        ]
    )
    # the test pipeline resizes 48 x 64 to fit (96, 96) keeping the ratio
    assert result["pipeline_output_hw"] == [72, 96]
    assert result["repeats"] == 2 and result["min_ms"] <= result["median_ms"]
    assert result["fps"] == pytest.approx(1000 / result["median_ms"], rel=1e-2)
    assert (tmp_path / "bench.json").is_file()


@mm
@pytest.mark.parametrize("config", [MASKRCNN, UPERNET])
@pytest.mark.slow
def test_image_demo_saves_a_picture_of_the_image_size(tmp_path, config):
    image_demo = _tool("image_demo")
    from PIL import Image

    from plgvit_mm.datasets.synthetic_shapes import make_sample

    image_path = tmp_path / "shapes.png"
    Image.fromarray(make_sample(np.random.default_rng(0), 80, 120).image).save(image_path)
    out = tmp_path / "out" / "prediction.png"
    image_demo.main(
        [
            str(image_path),
            config,
            "--out",
            str(out),
            "--score-thr",
            "0.0",
            "--cfg-options",
            "test_dataloader.dataset.pipeline.1.scale=(96,96)",
        ]
    )
    assert Image.open(out).size == (120, 80)


MONO3D = str(REPO / "configs" / "mono3d_lwplgvit_r_kitti.py")
MONO3D_SMALL = [
    "test_dataloader.dataset.pipeline.2.scale=(192,64)",
    "test_dataloader.dataset.pipeline.3.size=(192,64)",
]


@mm
def test_benchmark_times_a_mono3d_model_with_the_given_intrinsics(tmp_path):
    benchmark = _tool("benchmark")
    calib = next((REPO / "tests" / "data" / "kitti_mini" / "training" / "calib").iterdir())

    result = benchmark.main(
        [
            MONO3D,
            "--shape",
            "75",
            "248",
            "--calib",
            str(calib),
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--device",
            "cpu",
            "--cfg-options",
            *MONO3D_SMALL,
        ]
    )
    # 75 x 248 is resized to 58 x 192 (ratio kept), then padded to the fixed 64 x 192 input
    assert result["task"] == "mono3d" and result["repeats"] == 2
    assert result["pipeline_output_hw"] == [64, 192]
    assert result["fps"] == pytest.approx(1000 / result["median_ms"], rel=1e-2)


@mm
def test_benchmark_of_a_mono3d_config_names_the_missing_calibration():
    benchmark = _tool("benchmark")
    with pytest.raises(SystemExit, match="--calib"):
        benchmark.main([MONO3D, "--device", "cpu", "--cfg-options", *MONO3D_SMALL])
