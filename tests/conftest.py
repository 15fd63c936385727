"""Shared test setup: fixed thread count so runs on the 2-core CI machine are predictable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Absolute path of the repository checkout."""
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _restore_mmengine_default_scope():
    """Each test starts with the default registry scope it found: mmengine keeps the latest
    ``DefaultScope`` (set by Runners, ``init_default_scope`` and the mm*.apis) process-wide,
    and ``Registry.build`` switches to it, so an mmseg test would otherwise make a later mmdet
    build look in mmseg's registries."""
    from mmengine.registry import DefaultScope

    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
