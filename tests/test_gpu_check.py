"""tools/gpu_check.sh and its Python half: argument errors, the report helpers, and (slow) the
smoke stage's whole pipeline as a CPU dry run: generated data, three tools/train.py runs with
--resume (float32 on the CPU), the CUDA-test selection and the AMP check, and the JSON report's
schema."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.sh"
SMOKES = ("maskrcnn_lwplgvit_a", "upernet_nat_tiny", "mono3d_lwplgvit_a")


def _helper():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", REPO / "tools" / "analysis_tools" / "gpu_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run_script(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHON=sys.executable, **env),
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--stage", "train"], "usage: tools/gpu_check.sh OUT_DIR --stage"),
        (["--stage", "smoke", "--fast"], "unknown argument '--fast'"),
        (["--stage", "wheelhouse"], "--stage wheelhouse needs --wheelhouse DIR"),
    ],
)
def test_bad_arguments_name_what_is_expected(tmp_path, args, message):
    result = _run_script(str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert message in result.stderr + result.stdout


def test_install_rejects_a_malformed_cuda_arch(tmp_path):
    """--mmcv-wheel stops at the architecture check, before touching any environment."""
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "install.sh"), "--mmcv-wheel", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(
            os.environ,
            PLGVIT_MM_CUDA_ARCH="sm_90",
            PLGVIT_MM_PYTHON=sys.executable,
            PLGVIT_MM_CACHE=str(tmp_path / "cache"),
        ),
    )
    assert result.returncode != 0
    assert "PLGVIT_MM_CUDA_ARCH='sm_90': expected a compute capability MAJOR.MINOR" in (
        result.stderr
    )
    assert not (tmp_path / "dist").exists() and not (tmp_path / "cache").exists()


def test_losses_are_read_from_every_run_and_judged_by_thirds(tmp_path):
    helper = _helper()
    first, second = tmp_path / "20260101_000000", tmp_path / "20260101_000100"
    for run, rows in ((first, [(1, 3.0), (2, 2.5), (3, 2.0)]), (second, [(4, 1.5)])):
        (run / "vis_data").mkdir(parents=True)
        lines = [json.dumps(dict(lr=1e-4, loss=loss, iter=i, memory=10)) for i, loss in rows]
        lines.append(json.dumps(dict(lr=1e-4, iter=3)))  # a record without a loss is skipped
        (run / "vis_data" / "scalars.json").write_text("\n".join(lines) + "\n")
    assert helper.logged_losses(tmp_path) == [(1, 3.0), (2, 2.5), (3, 2.0), (4, 1.5)]
    assert helper.losses_fall([3.0, 2.9, 2.8, 2.7, 2.9, 2.5])
    assert not helper.losses_fall([2.0, 2.1, 2.2, 2.0, 2.3, 2.4])
    assert not helper.losses_fall([1.0, 1.0, 1.0])


def test_amp_summary_turns_failures_into_booleans():
    helper = _helper()
    report = dict(
        backbones=dict(nat_mini={}, dinat_mini={}),
        na2d=dict(reference=[{}], triton=[{}], flex=[]),
        failures=["dinat_mini float16: {...}", "na2d triton: {...}"],
    )
    summary = helper.amp_summary(report, status=1)
    assert summary == dict(
        passed=False,
        backbones=dict(nat_mini=True, dinat_mini=False),
        na2d=dict(reference=True, triton=False, flex=False),
    )
    assert helper.amp_summary(dict(backbones={}, na2d={}, failures=[]), 0)["passed"] is True


def test_merge_bench_keeps_the_header_and_every_result(tmp_path):
    helper = _helper()
    parts = []
    for task in ("det", "seg"):
        path = tmp_path / f"{task}.json"
        path.write_text(json.dumps(dict(schema="s", machine=dict(device="cuda"), results=[task])))
        parts.append(path)
    out = tmp_path / "merged.json"
    assert helper.merge_bench(out, parts) == 0
    assert json.loads(out.read_text()) == dict(
        schema="s", machine=dict(device="cuda"), results=["det", "seg"]
    )
    assert helper.merge_bench(out, [parts[0], tmp_path / "missing.json"]) == 1


@pytest.mark.parametrize("name", SMOKES)
def test_smoke_configs_inherit_the_experiment_and_change_data_and_schedule(tmp_path, name):
    if importlib.util.find_spec("mmdet") is None or importlib.util.find_spec("mmseg") is None:
        pytest.skip("the configs inherit mmdet/mmseg base configs")
    from mmengine.config import Config

    helper = _helper()
    profile = helper.CPU
    config = Config.fromfile(helper.write_config(tmp_path, name, tmp_path / "data", profile))
    experiment = Config.fromfile(REPO / "configs" / helper.SMOKES[name].config)
    assert config.model.type == experiment.model.type
    assert config.model.backbone.type == experiment.model.backbone.type
    assert config.model.backbone.get("init_cfg") is None  # nothing downloaded
    assert config.train_cfg == dict(type="IterBasedTrainLoop", max_iters=profile.iters)
    assert config.val_cfg is None and config.val_dataloader is None
    assert config.test_cfg is None and config.test_dataloader is None
    assert config.optim_wrapper.optimizer.type == experiment.optim_wrapper.optimizer.type
    assert config.optim_wrapper.optimizer.lr == helper.SMOKES[name].lr
    assert config.param_scheduler == [
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5)
    ]
    checkpoint = config.default_hooks.checkpoint
    assert checkpoint.type == experiment.default_hooks.checkpoint.type
    assert (checkpoint.by_epoch, checkpoint.interval) == (False, profile.iters)
    assert config.default_hooks.logger.interval == 1
    assert (config.log_processor.by_epoch, config.log_processor.window_size) == (False, 1)
    dataset = config.train_dataloader.dataset
    assert dataset.data_root == f"{tmp_path / 'data'}/"
    assert config.train_dataloader.batch_size == profile.batch
    resize = next(t for t in dataset.pipeline if "Resize" in t["type"])
    expected = profile.kitti_input if name.startswith("mono3d") else (profile.image,) * 2
    assert tuple(resize["scale"]) == tuple(expected)


def _keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keys(value)}
    if isinstance(node, list):
        return {k for value in node for k in _keys(value)}
    return set()


@pytest.mark.slow
def test_smoke_stage_dry_run_on_cpu(tmp_path):
    docs_json = REPO / "docs" / "gpu_check.json"
    docs_before = docs_json.read_bytes() if docs_json.exists() else None
    out = tmp_path / "out"
    result = _run_script(str(out), "--stage", "smoke", "--dry-run", timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report) == {"device", "torch", "cuda", "smokes", "cuda_tests", "amp_check"}
    assert "failures" not in _keys(report)
    assert report["device"].startswith("cpu")
    assert set(report["smokes"]) == set(SMOKES)
    iters, resume_iters = 9, 2  # the CPU profile of tools/analysis_tools/gpu_check.py
    for name in SMOKES:
        smoke = report["smokes"][name]
        assert set(smoke) == {"losses", "passed", "resumed"}
        assert smoke["passed"] is True and smoke["resumed"] is True, (name, smoke)
        losses = smoke["losses"]
        assert len(losses) == iters + resume_iters
        assert all(isinstance(x, float) and math.isfinite(x) for x in losses)
        third = iters // 3
        assert sum(losses[iters - third : iters]) < sum(losses[:third]), (name, losses)
        work = out / "work" / name
        assert (work / f"iter_{iters}.pth").is_file()
        assert (
            (work / "last_checkpoint")
            .read_text()
            .strip()
            .endswith(f"iter_{iters + resume_iters}.pth")
        )
        assert f"resumed epoch: 0, iter: {iters}" in (work / "resume.log").read_text()

    tests = report["cuda_tests"]
    assert set(tests) == {"passed", "skipped", "failed"}
    assert all(isinstance(v, int) for v in tests.values())
    assert tests["passed"] == 0 and tests["failed"] == 0 and tests["skipped"] > 0  # no CUDA
    amp = report["amp_check"]
    assert isinstance(amp["passed"], bool)
    assert all(isinstance(v, bool) for v in amp["backbones"].values())
    assert set(amp["na2d"]) == {"reference", "triton", "flex"}
    assert amp["na2d"]["reference"] is True  # the float64-checked CPU path
    assert docs_json.exists() == (docs_before is not None)
    if docs_before is not None:
        assert docs_json.read_bytes() == docs_before  # a dry run never writes docs/
