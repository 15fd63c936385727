"""Whole-model checkpoints that must fit the model exactly (tools/test.py, tools/image_demo.py).

mmengine loads a checkpoint of another model or class count with ``strict=False`` and a plain
"missing keys" / "size mismatch" log line, and evaluation then runs on partly random weights.
:func:`check_checkpoint_matches` compares the file's state dict with the model's and raises
:class:`CheckpointMismatchError` with a summary (counts and the first names of each kind) unless
the caller accepts a partial load (the tools' ``--allow-partial-load``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

SHOWN = 5  # names listed per kind in the summary


class CheckpointMismatchError(ValueError):
    """A whole-model checkpoint leaves weights missing, unexpected or of another shape."""


@dataclass
class CheckpointMismatch:
    """Keys of a checkpoint compared with a model's state dict."""

    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    shape: list[str] = field(default_factory=list)  # "key: file (a, b) vs model (c, d)"
    matched: int = 0

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shape)

    def summary(self) -> str:
        parts = [f"{self.matched} tensors match"]
        for name, keys in (
            ("missing from the file", self.missing),
            ("unexpected (not in the model)", self.unexpected),
            ("of another shape", self.shape),
        ):
            if keys:
                more = f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
                parts.append(f"{len(keys)} {name}: {', '.join(keys[:SHOWN])}{more}")
        return "; ".join(parts)


def model_state_dict(checkpoint: dict) -> dict:
    """The model weights of an mmengine checkpoint (``state_dict``) or of a bare state dict,
    with DataParallel ``module.`` prefixes removed."""
    state = checkpoint.get("state_dict", checkpoint)
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}


def compare_state_dicts(model: nn.Module, state: dict) -> CheckpointMismatch:
    own = model.state_dict()
    result = CheckpointMismatch(
        missing=[k for k in own if k not in state],
        unexpected=[k for k in state if k not in own],
    )
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            result.shape.append(
                f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}"
            )
        elif key in own:
            result.matched += 1
    return result


def check_checkpoint_matches(model: nn.Module, path: str, allow_partial: bool = False) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``path`` holds every weight of ``model`` with
    its shape and nothing else (``allow_partial``: only log the summary)."""
    model = getattr(model, "module", model)  # DDP wrapper
    checkpoint = _load_checkpoint(path, map_location="cpu")
    mismatch = compare_state_dicts(model, model_state_dict(checkpoint))
    if not mismatch:
        return
    message = f"checkpoint '{path}' does not fit {type(model).__name__}: {mismatch.summary()}"
    if not allow_partial:
        raise CheckpointMismatchError(
            f"{message}. Is it a checkpoint of this config (same model and number of classes)? "
            "Pass --allow-partial-load to evaluate with the unmatched weights left as "
            "initialised."
        )
    print_log(f"--allow-partial-load: {message}", logger="current", level=30)
