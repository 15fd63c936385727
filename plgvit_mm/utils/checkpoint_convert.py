"""Model-independent pieces of checkpoint conversion: unwrapping, prefixes, loading with a report.

Backbone-specific key maps live next to their model (e.g. ``checkpoint_filter_fn`` in
``plgvit_mm/models/backbones/nat.py``); these helpers only move tensors between layouts and say
clearly which keys did not fit.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .atomic_file import atomic_write_bytes

STATE_DICT_KEYS = ("state_dict", "model", "module", "state_dict_ema")
"""Keys under which training frameworks nest the weights (mmengine, timm/DeiT, old mmcv, EMA)."""


def unwrap_state_dict(checkpoint: Mapping, source: str = "checkpoint") -> dict[str, Tensor]:
    """Return the tensor dict of a checkpoint: bare, or nested under one of STATE_DICT_KEYS.

    The DDP prefix ``module.`` is removed. Raises ValueError (naming ``source``) when no tensors
    are found.
    """
    state = checkpoint
    for key in STATE_DICT_KEYS:
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(
            f"{source}: no tensors found (top-level keys {sorted(checkpoint)[:8]}); expected a "
            f"state dict, bare or under one of {STATE_DICT_KEYS}"
        )
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def select_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keys under ``prefix`` with the prefix removed, or the dict unchanged if none has it.

    E.g. ``prefix='backbone.'`` extracts the backbone of an mmdet/mmseg detector checkpoint and
    drops its neck and heads.
    """
    if not any(k.startswith(prefix) for k in state_dict):
        return dict(state_dict)
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_state_dict_reported(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    source: str,
    expected_missing: tuple[str, ...] = (),
    logger: str = "current",
) -> tuple[list[str], list[str]]:
    """Load ``state_dict`` non-strictly and report what did not fit, by key name.

    Shape mismatches raise ValueError listing every offending key with both shapes (nothing is
    loaded then). Missing keys starting with one of ``expected_missing`` are logged at INFO
    level (they keep their initialisation by design), other missing and unexpected keys at
    WARNING level. Returns ``(missing, unexpected)``.
    """
    own = model.state_dict()
    bad_shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad_shapes:
        raise ValueError(
            f"{source}: shape mismatch for {len(bad_shapes)} key(s):\n  " + "\n  ".join(bad_shapes)
        )
    result = model.load_state_dict(state_dict, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    fresh = [k for k in missing if k.startswith(expected_missing)]
    absent = [k for k in missing if not k.startswith(expected_missing)]
    if fresh:
        print_log(
            f"{source}: kept initialisation of {fresh} (not part of this checkpoint kind)",
            logger=logger,
        )
    if absent:
        print_log(f"{source}: missing keys {absent}", logger=logger, level=30)
    if unexpected:
        print_log(f"{source}: unexpected keys {unexpected}", logger=logger, level=30)
    return missing, unexpected


def save_atomic(obj: object, path: str) -> None:
    """torch.save ``obj`` to ``path`` atomically (a crash never leaves a truncated file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)
