"""KittiMono3DMetric (mmengine BaseMetric in mmdet's registry): keys, result files, tool parity."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from mmdet.registry import METRICS  # noqa: E402

from plgvit_mm.datasets.kitti_files import read_label_file  # noqa: E402
from plgvit_mm.evaluation.kitti_metric import KittiMono3DMetric  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "data" / "kitti_mini"
LABELS = FIXTURE / "training" / "label_2"
CLASSES = ("Car", "Pedestrian", "Cyclist")


def samples(with_label_path):
    """Data samples as the evaluator passes them: the labels as predictions, tensors."""
    out = []
    for i, frame in enumerate(("000000", "000007", "000008")):
        labels = read_label_file(LABELS / f"{frame}.txt")
        keep = np.isin(labels.names, CLASSES)
        objects = labels.select(keep)
        pred = dict(
            bboxes=torch.tensor(objects.bbox, dtype=torch.float32),
            bboxes_3d=torch.tensor(objects.boxes3d, dtype=torch.float32),
            scores=torch.linspace(0.9, 0.3, len(objects)),
            labels=torch.tensor([CLASSES.index(n) for n in objects.names]),
        )
        if i != 1:  # one image without alphas: computed from ry and the location
            pred["alphas"] = torch.tensor(objects.alpha)
        sample = dict(img_id=frame, pred_instances=pred)
        if with_label_path:
            sample["label_path"] = str(LABELS / f"{frame}.txt")
        out.append(sample)
    return out


@pytest.mark.parametrize("use_label_dir", [True, False])
def test_metric_keys_values_and_result_files(tmp_path, use_label_dir):
    metric = METRICS.build(
        dict(
            type="KittiMono3DMetric",
            result_dir=str(tmp_path),
            label_dir=str(LABELS) if use_label_dir else None,
        )
    )
    assert isinstance(metric, KittiMono3DMetric)
    metric.process({}, samples(with_label_path=not use_label_dir))
    results = metric.evaluate(3)
    assert len(results) == 3 * 3 * 2 * 6 + 3 * 3 * 2
    assert results["kitti/Car_2D_AP40_moderate_strict"] == pytest.approx(10.0)
    assert results["kitti/Car_3D_AP11_hard_loose"] == pytest.approx(200 / 11)
    assert results["kitti/Car_AOS_AP40_easy_strict"] == pytest.approx(2.5, abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.txt", "000007.txt", "000008.txt"]
    written = read_label_file(tmp_path / "000008.txt")
    assert written.score is not None and len(written) == 6
    np.testing.assert_allclose(
        written.location, read_label_file(LABELS / "000008.txt").location[:6], atol=1e-4
    )
    spec = importlib.util.spec_from_file_location(
        "kitti_eval_tool", REPO_ROOT / "tools" / "kitti_eval.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(LABELS), str(tmp_path)]) == results


def test_metric_without_labels_writes_files_only(tmp_path):
    metric = KittiMono3DMetric(result_dir=str(tmp_path))
    metric.process({}, samples(with_label_path=False))
    assert metric.evaluate(3) == {}
    assert len(list(tmp_path.iterdir())) == 3
    metric = KittiMono3DMetric()
    metric.process({}, samples(with_label_path=False))
    with pytest.raises(ValueError, match="label_dir"):
        metric.evaluate(3)


def test_metric_rejects_bad_predictions():
    metric = KittiMono3DMetric(label_dir=str(LABELS))
    bad = samples(with_label_path=False)[:1]
    del bad[0]["pred_instances"]["bboxes_3d"]
    with pytest.raises(ValueError, match="bboxes_3d"):
        metric.process({}, bad)
    bad = samples(with_label_path=False)[:1]
    bad[0]["pred_instances"]["labels"][:] = 5
    with pytest.raises(ValueError, match="labels must index"):
        metric.process({}, bad)
