"""tools/deployment/benchmark_onnx.py: export once into --export-dir, time later, JSON report;
its section in docs/benchmarks.md (tools/analysis_tools/make_benchmark_docs.py --onnx-json)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load(TOOLS / "deployment" / "benchmark_onnx.py", "benchmark_onnx_tool")


def test_arguments_that_do_not_go_together(tool, capsys):
    for argv, message in (
        (["--export-only"], "--export-only needs --export-dir"),
        (["--models", "lw_plgvit_a"], "--out is required"),
    ):
        with pytest.raises(SystemExit) as exit_:
            tool.parse_args(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_export_only_then_timing_reuses_the_graph(tool, tmp_path, monkeypatch):
    folder, out = tmp_path / "graphs", tmp_path / "report.json"
    common = ["--models", "lw_plgvit_r", "--shapes", "32x64", "--export-dir", str(folder)]
    assert tool.main([*common, "--export-only"]) == 0
    (graph,) = folder.iterdir()
    assert graph.name == "lw_plgvit_r_32x64.onnx" and not out.exists()
    written = graph.stat().st_mtime_ns
    timing = ["--rounds-small", "2", "--warmup", "0", "--threads", "1", "--out", str(out)]
    assert tool.main([*common, *timing]) == 0
    assert graph.stat().st_mtime_ns == written  # reused, not exported again
    report = json.loads(out.read_text())
    assert report["complete"] and report["environment"]["threads"] == 1
    (result,) = report["results"]
    assert result["model"] == "lw_plgvit_r" and result["shape"] == [32, 64]
    assert result["rounds"] == 2 and result["parity"]["max_rel"] <= 1e-4
    assert result["onnx_bytes"] == graph.stat().st_size
    assert result["ratio_median"] == pytest.approx(
        result["onnxruntime_ms"]["median"] / result["pytorch_ms"]["median"]
    )
    monkeypatch.syspath_prepend(str(TOOLS / "analysis_tools"))  # its sibling modules
    docs = _load(TOOLS / "analysis_tools" / "make_benchmark_docs.py", "make_benchmark_docs_tool")
    lines = docs.onnx_section(report, out)
    (row,) = [line for line in lines if line.startswith("| lw_plgvit_r |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "32x64" and cells[4] == f"{result['ratio_median']:.2f}"
    assert cells[5] == "<= 1.0" and cells[9] == f"{graph.stat().st_size / 1e6:.0f}"
    assert cells[6].startswith("MET" if result["ratio_median"] <= 1.0 else "NOT MET")
