"""``tools/dist_train.sh CONFIG 2``: two torchrun processes on the CPU (gloo) train the tiny
UperNet + LW-PLG-ViT-A config: gradients are all-reduced (both ranks end with bit-identical
parameters; BN running statistics stay per process), only rank 0 writes the checkpoint (holding both ranks' random states), and
``--resume`` continues the two-process run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmseg")

from test_reliability import logged_losses, write_upernet_tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

DUMP_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankParamsHook(Hook):
    """Test helper: every rank saves its model parameters (not the per-process BN
    statistics) after training."""

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        params = {name: p.detach() for name, p in model.named_parameters()}
        torch.save(params, f"{runner.work_dir}/params_rank{get_rank()}.pth")
'''

SUFFIX = """
custom_imports = dict(imports=['plgvit_mm', 'plgvit_mm.engine', 'dump_rank_params'],
                      allow_failed_imports=False)
# torch's SyncBatchNorm runs on GPUs only: the CPU/gloo test uses per-process BN in the heads
norm_cfg = dict(type='BN', requires_grad=True)
model.update(decode_head=dict(model['decode_head'], norm_cfg=norm_cfg),
             auxiliary_head=dict(model['auxiliary_head'], norm_cfg=norm_cfg))
custom_hooks = [dict(type='DumpRankParamsHook')]
"""


def dist_train(config: Path, work_dir: Path, *extra: str, port: int) -> str:
    env = dict(
        os.environ,
        PYTHONPATH=f"{REPO}{os.pathsep}{config.parent}",
        OMP_NUM_THREADS="1",
        PYTHON=str(Path(os.sys.executable)),
        PORT=str(port),
    )
    result = subprocess.run(
        [
            "bash",
            str(REPO / "tools" / "dist_train.sh"),
            str(config),
            "2",
            "--work-dir",
            str(work_dir),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    return log


def test_two_process_gloo_training_syncs_saves_once_and_resumes(tmp_path):
    config = write_upernet_tiny_config(tmp_path, max_iters=2)
    config.write_text(config.read_text() + SUFFIX)
    (tmp_path / "dump_rank_params.py").write_text(DUMP_HOOK)
    work_dir = tmp_path / "work"

    log = dist_train(config, work_dir, port=29611)
    assert "Distributed launcher: pytorch" in log or "launcher: pytorch" in log
    first = [torch.load(work_dir / f"params_rank{r}.pth") for r in (0, 1)]
    assert first[0].keys() == first[1].keys()
    for key in first[0]:
        assert torch.equal(first[0][key], first[1][key]), key
    checkpoint = torch.load(work_dir / "iter_2.pth", weights_only=False)
    assert len(checkpoint["meta"]["rng_states"]) == 2
    for key, value in first[0].items():
        assert torch.equal(checkpoint["state_dict"][key], value), key
    assert sorted(p.name for p in work_dir.glob("*.pth")) == [
        "iter_2.pth",
        "params_rank0.pth",
        "params_rank1.pth",
    ]
    assert not list(work_dir.glob("*.partial"))

    log = dist_train(
        config, work_dir, "--resume", "--cfg-options", "train_cfg.max_iters=4", port=29612
    )
    assert "resumed epoch: 0, iter: 2" in log
    assert (work_dir / "last_checkpoint").read_text() == str(work_dir / "iter_4.pth")
    assert sorted(logged_losses(work_dir)) == [1, 2, 3, 4]
    resumed = [torch.load(work_dir / f"params_rank{r}.pth") for r in (0, 1)]
    for key in resumed[0]:
        assert torch.equal(resumed[0][key], resumed[1][key]), key
    assert any(not torch.equal(resumed[0][k], first[0][k]) for k in resumed[0])
