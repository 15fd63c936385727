"""Model-independent pieces of checkpoint conversion: unwrapping, prefixes, loading with a report.

Backbone-specific key maps live next to their model (e.g. ``checkpoint_filter_fn`` in
``plgvit_mm/models/backbones/nat.py``); these helpers only move tensors between layouts and say
clearly which keys did not fit.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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


SHOWN_KEYS = 5
"""How many key names a load report lists per category (the rest are counted)."""

_STAGE_BLOCK = re.compile(r"^(levels|stages)\.(\d+)\.blocks\.(\d+)\.")


@dataclass(frozen=True)
class LoadReport:
    """Outcome of :func:`load_state_dict_checked` (key names of the model's state dict).

    ``loaded``: copied from the checkpoint; ``fresh``: kept their initialisation by design (the
    checkpoint kind has no such part); ``missing``: absent from the checkpoint otherwise;
    ``unexpected``: in the checkpoint, not in the model; ``mismatched``: ``"key: checkpoint
    (shape) vs model (shape)"`` lines, not loaded.
    """

    loaded: tuple[str, ...]
    fresh: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every key fitted (fresh keys aside)."""
        return not (self.missing or self.unexpected or self.mismatched)


def key_summary(label: str, keys: Sequence[str], shown: int = SHOWN_KEYS) -> str:
    """``"label (n): a, b, c, ... (+k more)"`` listing the first ``shown`` keys."""
    head = ", ".join(keys[:shown])
    more = f", ... (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return f"{label} ({len(keys)}): {head}{more}"


def blocks_per_stage(keys: Iterable[str]) -> tuple[int, ...]:
    """Blocks per stage named by ``levels.{i}.blocks.{j}.`` / ``stages.{i}.blocks.{j}.`` keys."""
    depth: dict[int, int] = {}
    for key in keys:
        if m := _STAGE_BLOCK.match(key):
            depth[int(m[2])] = max(depth.get(int(m[2]), 0), int(m[3]) + 1)
    return tuple(depth.get(i, 0) for i in range(max(depth) + 1)) if depth else ()


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    source: str,
    fresh: Sequence[str] = (),
    allow_partial: bool = False,
    logger: str = "current",
) -> LoadReport:
    """Load ``state_dict`` into ``model``, strict unless ``allow_partial``, with a short report.

    ``fresh``: key prefixes of the model that this checkpoint kind lacks by design (e.g. the
    dense output norms of a classifier file); they keep their initialisation and are logged at
    INFO level. Any other missing, unexpected or shape-mismatched key raises ValueError with a
    summary (counts, the first :data:`SHOWN_KEYS` names of each kind, the blocks per stage of
    checkpoint and model when they differ) and loads nothing; with ``allow_partial=True`` the
    keys that fit are loaded and the same summary is logged as a WARNING. A checkpoint sharing
    no key with the model always raises.
    """
    own = model.state_dict()
    fresh = tuple(fresh)
    mismatched = tuple(
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    )
    fitting = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    absent = [k for k in own if k not in state_dict]
    report = LoadReport(
        loaded=tuple(fitting),
        fresh=tuple(k for k in absent if k.startswith(fresh)),
        missing=tuple(k for k in absent if not k.startswith(fresh)),
        unexpected=tuple(k for k in state_dict if k not in own),
        mismatched=mismatched,
    )
    name = type(model).__name__
    if not fitting:
        raise ValueError(
            f"{source}: no key matches {name}; "
            + key_summary("checkpoint keys", list(state_dict))
            + "; "
            + key_summary("model keys", list(own))
        )
    if not report.complete:
        lines = [
            f"{source}: checkpoint does not fit {name}: {len(report.missing)} missing, "
            f"{len(report.unexpected)} unexpected, {len(report.mismatched)} mismatched key(s)"
        ]
        for label, keys in (
            ("missing", report.missing),
            ("unexpected", report.unexpected),
            ("mismatched", report.mismatched),
        ):
            if keys:
                lines.append("  " + key_summary(label, keys))
        depths = blocks_per_stage(state_dict), blocks_per_stage(own)
        if depths[0] != depths[1]:
            lines.append(f"  blocks per stage: checkpoint {depths[0]} vs model {depths[1]}")
        if not allow_partial:
            lines.append(
                "  (init_cfg=dict(type='Pretrained', checkpoint=..., allow_partial=True) loads "
                "the keys that fit)"
            )
            raise ValueError("\n".join(lines))
        print_log("\n".join(lines), logger=logger, level=logging.WARNING)
    model.load_state_dict(fitting, strict=False)
    message = f"{source}: loaded {len(fitting)} tensors into {name}"
    if report.fresh:
        kept = key_summary("kept initialisation (not part of this checkpoint kind)", report.fresh)
        message = f"{message}; {kept}"
    print_log(message, logger=logger)
    return report


def save_atomic(obj: object, path: str) -> None:
    """torch.save ``obj`` to ``path`` atomically (a crash never leaves a truncated file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)
