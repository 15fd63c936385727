"""tools/analysis_tools/record_demo_run.py: runs accumulate with their median and range, a run on
other data is refused, and the command-line entry reads tools/test.py's metrics file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "analysis_tools"))
import record_demo_run  # noqa: E402

DATA = {"generator_version": 1, "seed": 0, "test_seed": 1, "counts": {"test": 100}}


def run(bbox: float, segm: float, seed: int, wall_s: int = 1000) -> dict:
    return {
        "coco/bbox_mAP": bbox,
        "coco/segm_mAP": segm,
        "threads": 2,
        "wall_s": wall_s,
        "iterations": 1250,
        "seed": seed,
    }


def test_runs_accumulate_with_median_and_range(tmp_path):
    path = tmp_path / "demo_runs.json"
    record_demo_run.add_run(path, run(0.64, 0.73, 0, 1068), DATA)
    record_demo_run.add_run(path, run(0.70, 0.78, 1, 1100), DATA)
    record = record_demo_run.add_run(path, run(0.61, 0.75, 2, 1000), DATA)
    assert json.loads(path.read_text()) == record
    assert record["split"] == "test" and record["data"] == DATA
    assert [r["seed"] for r in record["runs"]] == [0, 1, 2]
    assert record["median"] == {"coco/bbox_mAP": 0.64, "coco/segm_mAP": 0.75, "wall_s": 1068}
    assert record["range"]["coco/bbox_mAP"] == [0.61, 0.70]
    assert record["range"]["coco/segm_mAP"] == [0.73, 0.78]


def test_runs_on_other_data_or_incomplete_runs_are_refused(tmp_path):
    path = tmp_path / "demo_runs.json"
    record_demo_run.add_run(path, run(0.64, 0.73, 0), DATA)
    with pytest.raises(ValueError, match="recorded on split 'test'"):
        record_demo_run.add_run(path, run(0.64, 0.73, 1), {**DATA, "test_seed": 5})
    with pytest.raises(ValueError, match="missing"):
        record_demo_run.add_run(path, {"coco/bbox_mAP": 0.5}, DATA)
    assert len(json.loads(path.read_text())["runs"]) == 1


@pytest.mark.slow
def test_command_line_reads_the_metrics_and_the_manifest(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "generator.json").write_text(json.dumps(DATA))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"coco/bbox_mAP": 0.651, "coco/segm_mAP": 0.744}))
    record = tmp_path / "runs.json"
    args = ["--metrics", str(metrics), "--data", str(data), "--iterations", "20", "--seed", "3"]
    args += ["--wall-s", "42", "--loadavg-start", "1.5", "--threads", "2"]
    script = REPO / "tools" / "analysis_tools" / "record_demo_run.py"
    subprocess.run([sys.executable, str(script), str(record), *args], check=True)
    saved = json.loads(record.read_text())
    assert saved["runs"][0]["coco/bbox_mAP"] == 0.651 and saved["runs"][0]["loadavg_start"] == 1.5
    assert saved["runs"][0]["iterations"] == 20 and saved["data"] == DATA
