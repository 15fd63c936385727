"""Crash safety and exact resumption (plgvit_mm.engine).

- Atomic writes: a writer killed with SIGKILL in the middle of a large write leaves the old
  file intact (and ``last_checkpoint`` pointing at a complete checkpoint).
- ``ResumableCheckpointHook``: prune after save, random states saved and restored.
- End to end: ``tools/train.py`` (UperNet + LW-PLG-ViT-A on a generated ADE20K-format set) is
  killed with SIGKILL after its first checkpoint, resumed with ``--resume``, and its logged
  losses after resuming equal those of an uninterrupted run exactly.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from plgvit_mm.engine import (
    capture_rng_state,
    gather_rng_states,
    restore_rng_state,
)
from plgvit_mm.utils.atomic_file import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]


def test_rng_state_round_trip_through_safe_checkpoint_loading(tmp_path):
    """Restoring a captured state repeats python, numpy and torch draws; the state survives
    torch.save + mmengine's (weights-only) checkpoint loader without new safe globals."""
    from mmengine.runner.checkpoint import _load_checkpoint

    import plgvit_mm  # noqa: F401  (installs the safe loader)

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = tmp_path / "state.pth"
    torch.save({"meta": {"rng_states": gather_rng_states()}}, path)
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    restore_rng_state(_load_checkpoint(str(path))["meta"]["rng_states"][0])
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == first


def test_restore_rng_state_rejects_incomplete_state():
    state = capture_rng_state()
    del state["numpy"]
    with pytest.raises(ValueError, match=r"misses \['numpy'\]"):
        restore_rng_state(state)


WRITER = """
import sys, time
from plgvit_mm.utils.atomic_file import atomic_write_bytes
import plgvit_mm.utils.atomic_file as af
real_fsync = af.os.fsync
def slow_fsync(fd):                  # hold the process inside the write so it can be killed
    open(sys.argv[2], 'w').close()
    time.sleep(60)
af.os.fsync = slow_fsync
atomic_write_bytes(b'new' * 1000, sys.argv[1])
"""


@pytest.mark.slow
def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    target, started = tmp_path / "iter_2.pth", tmp_path / "started"
    atomic_write_bytes(b"old", target)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), str(started)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert writer.poll() is None and time.monotonic() < deadline, "writer never started"
        time.sleep(0.02)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert target.read_bytes() == b"old"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".iter_2.pth.")
    atomic_write_bytes(b"new", target)
    assert target.read_bytes() == b"new"


def test_atomic_write_leaves_the_permissions_of_a_plain_write(tmp_path):
    """New files get 0o666 minus the umask (not mkstemp's 0o600); a replaced file keeps its
    mode."""
    umask = os.umask(0o022)
    try:
        atomic_write_bytes(b"a", tmp_path / "new.bin")
        with open(tmp_path / "plain.bin", "wb") as handle:
            handle.write(b"a")
        assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644
        assert (tmp_path / "plain.bin").stat().st_mode == (tmp_path / "new.bin").stat().st_mode
        (tmp_path / "new.bin").chmod(0o640)
        atomic_write_bytes(b"b", tmp_path / "new.bin")
        assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640
    finally:
        os.umask(umask)


UPERNET_TINY = """
_base_ = ['{base}']
custom_imports = dict(imports=['plgvit_mm', 'plgvit_mm.engine'], allow_failed_imports=False)
data_root = '{root}/'
crop_size = (48, 48)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, drop_path_rate=0.2),
    decode_head=dict(channels=32, pool_scales=(1, 2)),
    auxiliary_head=dict(channels=16))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(56, 56), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers={num_workers}, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters}, val_interval=1000)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='ResumableCheckpointHook', by_epoch=False, interval=2,
                    max_keep_ckpts=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
"""


def write_upernet_tiny_config(tmp_path: Path, max_iters: int = 6, num_workers: int = 0) -> Path:
    """A tiny UperNet + LW-PLG-ViT-A config (48 x 48 crops) on a generated ADE20K-format set;
    random resize/crop/flip (numpy RNG) and drop path (torch RNG) make resumption sensitive
    to every random state."""
    from plgvit_mm.datasets.synthetic_shapes import write_synthetic_ade20k

    data = tmp_path / "ade"
    if not data.exists():
        write_synthetic_ade20k(str(data), num_train=6, num_val=1, height=56, width=56, seed=3)
    config = tmp_path / f"upernet_tiny_w{num_workers}.py"
    config.write_text(
        UPERNET_TINY.format(
            base=REPO / "configs" / "upernet_lwplgvit_a_ade20k.py",
            root=data,
            max_iters=max_iters,
            num_workers=num_workers,
        )
    )
    return config


def train_command(config: Path, work_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "tools" / "train.py"),
        str(config),
        "--work-dir",
        str(work_dir),
        *extra,
    ]


def train_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def logged_losses(work_dir: Path) -> dict[int, float]:
    """``{iteration: loss}`` from every run's json scalar log in ``work_dir``."""
    losses = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if "loss" in record:
                losses[record["iter"]] = record["loss"]
    return losses


def run_logged(command: list[str], log: Path) -> subprocess.Popen:
    """Start ``command`` with its output in ``log``."""
    with log.open("w") as handle:
        return subprocess.Popen(command, env=train_env(), stdout=handle, stderr=subprocess.STDOUT)


def wait_ok(process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    assert process.wait(timeout=timeout) == 0, log.read_text()[-4000:]


@pytest.mark.slow
def test_sigkill_then_resume_repeats_the_uninterrupted_losses(tmp_path):
    config = write_upernet_tiny_config(tmp_path)
    reference_dir, crashed_dir = tmp_path / "uninterrupted", tmp_path / "crashed"
    # the uninterrupted run and the run to be killed go side by side (one thread each)
    reference = run_logged(train_command(config, reference_dir), tmp_path / "reference.log")
    crashed = run_logged(train_command(config, crashed_dir), tmp_path / "crashed.log")
    pointer, deadline = crashed_dir / "last_checkpoint", time.monotonic() + 300
    while not pointer.exists():
        assert crashed.poll() is None, (tmp_path / "crashed.log").read_text()[-4000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()
    killed_at = Path(pointer.read_text())
    assert killed_at.is_file() and killed_at.name in ("iter_2.pth", "iter_4.pth")

    resumed_log = tmp_path / "resumed.log"
    wait_ok(run_logged(train_command(config, crashed_dir, "--resume"), resumed_log), resumed_log)
    wait_ok(reference, tmp_path / "reference.log")

    resumed_iter = int(killed_at.stem.split("_")[1])
    assert f"resumed epoch: 0, iter: {resumed_iter}" in resumed_log.read_text()
    reference_losses, crashed_losses = logged_losses(reference_dir), logged_losses(crashed_dir)
    assert sorted(reference_losses) == [1, 2, 3, 4, 5, 6]
    # iterations up to the kill come from the killed run, the rest from the resumed one
    assert crashed_losses == reference_losses
    assert sorted(p.name for p in crashed_dir.glob("*.pth")) == ["iter_6.pth"]
    assert pointer.read_text() == str(crashed_dir / "iter_6.pth")
