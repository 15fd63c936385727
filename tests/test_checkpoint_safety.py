"""Checkpoint loading on torch >= 2.6: mmengine checkpoints load through the allow-list,
resume restores the runner state, untrusted pickles are refused with the opt-in named."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
from torch.utils.data import DataLoader

import plgvit_mm  # noqa: F401  (installs the safe loader)
from plgvit_mm.utils.checkpoint_safety import TRUST_ENV_VAR, UntrustedCheckpointError


class _Regressor(BaseModel):
    """y = w x + b with an MSE loss; mmengine's data flow (inputs, targets)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets, mode="tensor"):
        out = self.fc(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        if mode == "loss":
            return {"loss": ((out - targets) ** 2).mean()}
        return out


def _loader() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=gen)
    y = x.sum(1, keepdim=True)
    data = [dict(inputs=x[i], targets=y[i]) for i in range(32)]
    return DataLoader(
        data,
        batch_size=4,
        shuffle=False,
        collate_fn=lambda b: dict(
            inputs=torch.stack([d["inputs"] for d in b]),
            targets=torch.stack([d["targets"] for d in b]),
        ),
    )


def _runner(work_dir, max_iters: int, resume: bool = False) -> Runner:
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=_loader(),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
            logger=dict(type="LoggerHook", interval=1),
        ),
        resume=resume,
        randomness=dict(seed=0),
        default_scope="mmengine",
        experiment_name=f"ckpt_{max_iters}_{resume}",
    )


def test_runner_checkpoint_loads_and_resumes(tmp_path):
    runner = _runner(tmp_path, max_iters=4)
    runner.train()
    ckpt_path = tmp_path / "iter_4.pth"
    assert ckpt_path.is_file()

    # numpy scalars/arrays in meta and the message hub survive a weights-only load
    ckpt = _load_checkpoint(str(ckpt_path), map_location="cpu")
    assert ckpt["meta"]["iter"] == 4
    hub = ckpt["message_hub"]
    assert "train/loss" in hub["log_scalars"]
    history = hub["log_scalars"]["train/loss"]
    assert len(history.data[0]) == 4  # HistoryBuffer rebuilt with its 4 logged losses
    assert np.isfinite(history.current())

    # resume=True continues from iteration 4 with the optimizer state intact
    resumed = _runner(tmp_path, max_iters=6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    state = resumed.optim_wrapper.optimizer.state_dict()["state"]
    assert all("momentum_buffer" in s for s in state.values())


def test_numpy_scalars_in_meta_round_trip(tmp_path):
    path = tmp_path / "meta.pth"
    meta = dict(
        epoch=np.int64(3),
        best=np.float64(0.5),
        arr=np.arange(3, dtype=np.float32),
        dataset_meta=dict(classes=("car", "person"), palette=[(1, 2, 3), (4, 5, 6)]),
    )
    torch.save(dict(meta=meta, state_dict=collections.OrderedDict(w=torch.ones(2))), path)
    loaded = _load_checkpoint(str(path), map_location="cpu")
    assert loaded["meta"]["epoch"] == 3 and isinstance(loaded["meta"]["epoch"], np.int64)
    np.testing.assert_array_equal(loaded["meta"]["arr"], np.arange(3, dtype=np.float32))
    assert loaded["meta"]["dataset_meta"]["classes"] == ("car", "person")


class _Payload:
    """A class outside the allow-list: unpickling it would run its reduce."""

    def __reduce__(self):
        return (print, ("payload executed",))


def test_untrusted_pickle_is_refused_with_opt_in_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(TRUST_ENV_VAR, raising=False)
    path = tmp_path / "evil.pth"
    torch.save(dict(state_dict={}, payload=_Payload()), path)
    with pytest.raises(UntrustedCheckpointError) as info:
        _load_checkpoint(str(path), map_location="cpu")
    message = str(info.value)
    assert "--trust-checkpoint" in message and TRUST_ENV_VAR in message and str(path) in message
    assert "payload executed" not in capsys.readouterr().out
    assert isinstance(info.value, pickle.UnpicklingError)

    # through mmengine's load_checkpoint (used by init_cfg=Pretrained and tools) too
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path), map_location="cpu")

    monkeypatch.setenv(TRUST_ENV_VAR, "1")
    with pytest.warns(UserWarning, match=TRUST_ENV_VAR):
        _load_checkpoint(str(path), map_location="cpu")
    assert "payload executed" in capsys.readouterr().out


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        _load_checkpoint(str(tmp_path / "nope.pth"))


class _GetattrEscape:
    """Reaches a numpy method through ``getattr``: allowed only for HistoryBuffer methods."""

    def __reduce__(self):
        return (getattr, (np.ndarray, "tofile"))


def test_getattr_is_restricted_to_history_buffer(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV_VAR, raising=False)
    path = tmp_path / "getattr.pth"
    torch.save(dict(x=_GetattrEscape()), path)
    with pytest.raises(UntrustedCheckpointError, match="not allowed"):
        _load_checkpoint(str(path), map_location="cpu")
