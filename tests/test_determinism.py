"""``randomness=dict(seed=..., deterministic=True)``: two CPU training runs of the same config
(UperNet + LW-PLG-ViT-A, random resize/crop/flip and drop path) log identical losses; a run with
another seed does not (so the comparison can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from test_reliability import logged_losses, write_upernet_tiny_config  # noqa: E402

pytestmark = pytest.mark.slow


def train_losses(config: Path, work_dir: Path, seed: int) -> dict[int, float]:
    cfg = Config.fromfile(str(config))
    cfg.work_dir, cfg.experiment_name = str(work_dir), work_dir.name
    cfg.visualizer.name = f"visualizer_{work_dir.name}"  # instances are global, per name
    cfg.randomness = dict(seed=seed, deterministic=True)
    try:
        Runner.from_cfg(cfg).train()
    finally:  # mmengine switches deterministic algorithms on process-wide
        torch.use_deterministic_algorithms(False)
    return logged_losses(work_dir)


def test_seeded_deterministic_runs_log_identical_losses(tmp_path):
    config = write_upernet_tiny_config(tmp_path, max_iters=2)
    first = train_losses(config, tmp_path / "first", seed=7)
    second = train_losses(config, tmp_path / "second", seed=7)
    other_seed = train_losses(config, tmp_path / "other", seed=8)
    assert sorted(first) == [1, 2]
    assert first == second
    assert first != other_seed
