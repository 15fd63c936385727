"""tools/analysis_tools/record_mono3d_demo.py on a run laid out like the demo's, built from the
real KITTI fixture: the labels scored as results, a learning curve, the bar's exit status."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from plgvit_mm.datasets.kitti_files import read_label_file, write_label_file
from plgvit_mm.evaluation.kitti_eval import evaluate_kitti_folders

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "analysis_tools"))
import record_mono3d_demo  # noqa: E402

FIXTURE = REPO / "tests" / "data" / "kitti_mini" / "training" / "label_2"
CONFIG = "configs/demo/mono3d_lwplgvit_a_synthetic.py"


@pytest.fixture
def run(tmp_path):
    """A data root whose three splits are the fixture's frames, and a work dir with the test
    results (labels with score 1, depth 10 % too far at iteration 20), metrics and scalars."""
    data, work = tmp_path / "data", tmp_path / "work"
    shutil.copytree(FIXTURE, data / "training" / "label_2")
    (data / "ImageSets").mkdir()
    for split in ("train", "val", "test"):
        (data / "ImageSets" / f"{split}.txt").write_text("000000\n000007\n000008\n")
    for folder, depth_scale in (("results_test", 1.0), ("results_val_iter20", 1.1)):
        for label in FIXTURE.glob("*.txt"):
            objects = read_label_file(label)
            objects.location[:, 2] *= depth_scale
            objects.score = np.ones(len(objects))
            write_label_file(work / folder / label.name, objects)
    for name, folder in (
        ("metrics_test.json", "results_test"),
        ("metrics_val_iter20.json", "results_val_iter20"),
    ):
        metrics = evaluate_kitti_folders(data / "training" / "label_2", work / folder)
        (work / name).write_text(json.dumps({f"kitti/{k}": v for k, v in metrics.items()}))
    scalars = work / "scalars.json"
    scalars.write_text(
        "\n".join(
            json.dumps(e)
            for e in (
                {"iter": 10, "loss": 9.0},
                {"iter": 20, "loss": 7.5, "loss_depth": 5.0, "lr": 0.1},
                {"step": 1},
            )
        )
    )
    return data, work


def args(data: Path, work: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--metrics", str(work / "metrics_test.json"), "--results", str(work / "results_test"),
        "--data", str(data), "--config", str(REPO / CONFIG), "--iterations", "20",
        "--threads", "2", "--train-s", "100", "--eval-s", "7", "--loadavg", "0.5", "1.5",
        "--out", str(out), *extra,
    ]  # fmt: skip


def test_record_of_a_run_below_the_bar(run, tmp_path, capsys):
    data, work = run
    out = tmp_path / "record.json"
    curve = [
        "--curve",
        f"20:{work / 'metrics_val_iter20.json'}",
        "--train-scalars",
        str(work / "scalars.json"),
    ]
    assert record_mono3d_demo.main(args(data, work, out, *curve)) == 1
    printed = capsys.readouterr().out
    assert "MISSES the bar" in printed and "1 min 47 s" in printed
    record = json.loads(out.read_text())
    # labels as results on three frames: 5 moderate Cars, perfect AP40 = 100 * 4 / 40
    assert record["kitti/Car_BEV_AP40_moderate_loose"] == pytest.approx(10.0)
    assert record["wall_s"] == 107 and record["frames"] == 3 and record["train_size"] == 3
    assert record["input_size"] == [128, 416] and record["loadavg_end"] == 1.5
    localisation = record["car_localisation"]
    assert localisation["labelled"] == 5 and localisation["found"] == 1.0
    assert localisation["depth_error_m"] == 0.0
    (point,) = record["curve"]
    assert record["curve_split"] == "val" and point["iteration"] == 20
    assert point["train_loss"] == 7.5 and point["train_loss_terms"] == {"loss_depth": 5.0}
    assert point["car_depth_error_relative"] == pytest.approx(0.1)
    assert point["kitti/Car_2D_AP40_moderate_loose"] == pytest.approx(10.0)


def test_a_run_that_meets_the_bar_exits_0(run, tmp_path):
    data, work = run
    metrics = json.loads((work / "metrics_test.json").read_text())
    metrics.update({k: 60.0 for k in record_mono3d_demo.BAR})
    (work / "metrics_test.json").write_text(json.dumps(metrics))
    out = tmp_path / "record.json"
    assert record_mono3d_demo.main(args(data, work, out)) == 0
    assert "curve" not in json.loads(out.read_text())


def test_a_metrics_file_without_kitti_keys_is_named(run, tmp_path):
    data, work = run
    (work / "metrics_test.json").write_text(json.dumps({"coco/bbox_mAP": 0.5}))
    with pytest.raises(KeyError, match="metrics_test.json: no kitti/Car_BEV_AP40_moderate_loose"):
        record_mono3d_demo.main(args(data, work, tmp_path / "record.json"))
    assert not (tmp_path / "record.json").exists()
