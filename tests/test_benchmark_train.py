"""tools/analysis_tools/benchmark_train.py: package configs resolve, the generated batch matches its shapes, one
timed iteration really trains (weights move), and the report names each config with its ratios."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "analysis_tools"))
import benchmark_train  # noqa: E402

from plgvit_mm.cli.config import load_config  # noqa: E402

UPERNET_R = "configs/upernet_lwplgvit_r_ade20k.py"
MASKRCNN_R = "configs/maskrcnn_lwplgvit_r_coco.py"


def test_package_configs_resolve_and_unknown_packages_are_named():
    cfg = load_config("mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py")
    assert cfg.model.type == "MaskRCNN" and cfg.model.backbone.depth == 50
    with pytest.raises(FileNotFoundError, match="package 'nopackage' is not installed"):
        load_config("nopackage::x.py")
    with pytest.raises(FileNotFoundError, match="looked for .*mmdet.*no_such.py"):
        load_config("mmdet::no_such.py")


def test_detection_batch_boxes_and_labels_match_the_masks():
    batch = benchmark_train.make_batch("det", 2, 96, 128, seed=3)
    assert [tuple(x.shape) for x in batch["inputs"]] == [(3, 96, 128)] * 2
    for sample in batch["data_samples"]:
        instances = sample.gt_instances
        masks = torch.as_tensor(instances.masks.to_ndarray()).bool()
        assert masks.shape[1:] == (96, 128) and len(masks) == len(instances.labels) >= 1
        for box, mask in zip(instances.bboxes.tensor, masks, strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            expected = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
            assert torch.equal(box, expected)
        assert set(instances.labels.tolist()) <= {0, 1, 2}
        assert sample.img_shape == (96, 128)


def test_segmentation_batch_labels_the_shapes():
    det = benchmark_train.make_batch("det", 1, 80, 80, seed=5)["data_samples"][0].gt_instances
    seg = benchmark_train.make_batch("seg", 1, 80, 80, seed=5)["data_samples"][0]
    label_map = seg.gt_sem_seg.data[0]
    expected = torch.zeros(80, 80, dtype=label_map.dtype)
    for label, mask in zip(det.labels, det.masks.to_ndarray(), strict=True):
        expected[torch.as_tensor(mask).bool()] = int(label) + 1
    assert torch.equal(label_map, expected) and int(label_map.max()) >= 1


@pytest.mark.slow
def test_one_timed_iteration_updates_the_weights():
    trainee, task = benchmark_train.build_trainee(UPERNET_R, torch.device("cpu"), amp=False)
    assert task == "seg" and trainee.model.training
    before = {n: p.detach().clone() for n, p in trainee.model.named_parameters()}
    data = benchmark_train.make_batch("seg", 2, 64, 64)  # BN in the PPM needs 2
    assert benchmark_train.train_step_seconds(trainee, data, torch.device("cpu")) > 0
    moved = [n for n, p in trainee.model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("backbone.") for n in moved)
    assert any(n.startswith("decode_head.") for n in moved)
    # AdamW: fp32 weights and two moments stay resident after the step (gradients are freed)
    fp32_mib = 4 * trainee.params / 2**20
    assert 3 * fp32_mib <= benchmark_train.state_mib(trainee) < 3.1 * fp32_mib


@pytest.mark.slow
def test_report_against_the_mmdet_r50_config(tmp_path):
    out = tmp_path / "train.json"
    report = benchmark_train.main(
        [
            "--task",
            "det",
            "--configs",
            MASKRCNN_R,
            benchmark_train.REFERENCE["det"],
            "--shape",
            "64",
            "64",
            "--batch",
            "1",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    (result,) = report["results"]
    assert result["task"] == "det" and result["shape"] == [64, 64]
    ours, r50 = result["rows"]
    assert ours["config"] == MASKRCNN_R and ours["model"] == "LWPLGViT"
    assert r50["model"] == "ResNet" and r50["time_vs_r50"] == 1.0
    assert np.isclose(ours["time_vs_r50"], ours["median_s"] / r50["median_s"])
    assert 20e6 < ours["params"] < r50["params"]  # LW-R Mask R-CNN (COCO heads) vs R-50's 44M

    import make_benchmark_docs

    text = "\n".join(make_benchmark_docs.train_section(report, out))
    assert "Mask R-CNN + FPN (COCO heads): batch 1 x 64x64" in text
    assert (
        f"| maskrcnn_lwplgvit_r_coco | {ours['params'] / 1e6:.2f} | {ours['median_s']:.3f} | "
        f"{ours['time_vs_r50']:.2f} |" in text
    )
    with pytest.raises(ValueError, match="not a plgvit_mm.benchmark_train/1 report"):
        make_benchmark_docs.train_section({"schema": "x"}, out)


def test_a_config_of_the_other_task_is_refused():
    with pytest.raises(ValueError, match="upernet_lwplgvit_r_ade20k.py is a seg config"):
        benchmark_train.main(["--task", "det", "--configs", UPERNET_R, "--shape", "64", "64"])


@pytest.mark.slow
def test_default_configs_exist_from_any_directory_and_amp_needs_cuda(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for task, configs in benchmark_train.DEFAULT_CONFIGS.items():
        for config in configs:
            assert load_config(config).default_scope == {"det": "mmdet", "seg": "mmseg"}[task]
            if "::" not in config:
                assert benchmark_train.display_name(config).startswith("configs/")
    with pytest.raises(SystemExit):
        benchmark_train.main(["--task", "det", "--amp"])


def test_the_docs_generator_knows_this_report_schema():
    import make_benchmark_docs

    assert make_benchmark_docs.TRAIN_SCHEMA == benchmark_train.SCHEMA
