"""The dense-backbone contract shared by NAT/DiNAT and PLG-ViT/LW-PLG-ViT.

A family's dense backbone subclasses :class:`DenseBackbone` (an MMEngine ``BaseModule``) and
provides four things:

- ``stem_name`` / ``stages_name``: attribute names of its stem and its stages;
- ``forward_stages(x, count)``: the outputs of the first ``count`` stages, in the family's layout;
- ``output_map(index, feature)``: stage ``index``'s output through ``norm{index}``, NCHW;
- ``convert_checkpoint(checkpoint, source)``: the family's key map, returning a
  :class:`ConvertedCheckpoint`;

and calls :meth:`DenseBackbone.setup_outputs` at the end of ``__init__``. The base gives the rest:
``out_indices`` / ``frozen_stages`` validation, the ``norm{i}`` output norms, freezing through
``train()``, ``init_weights`` (``init_cfg=dict(type='Pretrained', checkpoint=PATH,
allow_partial=False)`` through the family converter and
:func:`plgvit_mm.utils.checkpoint_convert.load_state_dict_checked`), and timm's feature API
(``forward_intermediates``, ``prune_intermediate_layers``, ``feature_info``) on which
``timm.create_model(..., features_only=True)`` builds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from plgvit_mm.utils.checkpoint_convert import (
    LoadReport,
    load_state_dict_checked,
    unwrap_state_dict,
)

PRETRAINED_KEYS = ("type", "checkpoint", "map_location", "allow_partial", "prefix")
"""Keys of ``init_cfg=dict(type='Pretrained', ...)`` that the dense backbones understand."""

_OUTPUT_NORM = re.compile(r"^norm(\d+)\.")


@dataclass(frozen=True)
class ConvertedCheckpoint:
    """A checkpoint in a backbone's key layout.

    ``state_dict``: tensors under the backbone's keys; ``fresh``: key prefixes of the backbone
    that this kind of checkpoint lacks by design (they keep their initialisation).
    """

    state_dict: dict[str, Tensor]
    fresh: tuple[str, ...] = ()


def check_out_indices(out_indices: Sequence[int], num_stages: int) -> tuple[int, ...]:
    """``out_indices`` as a tuple if increasing, unique and in [0, num_stages - 1]."""
    indices = tuple(out_indices)
    if (
        not indices
        or not all(isinstance(i, int) and 0 <= i < num_stages for i in indices)
        or list(indices) != sorted(set(indices))
    ):
        raise ValueError(
            f"out_indices {out_indices!r} must be increasing, unique stage indices in "
            f"[0, {num_stages - 1}]"
        )
    return indices


def check_frozen_stages(frozen_stages: int, num_stages: int) -> int:
    """``frozen_stages`` if in [-1, num_stages] (-1 none, 0 the stem, n the stem + stages < n)."""
    if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
        raise ValueError(
            f"frozen_stages {frozen_stages!r} must be in [-1, {num_stages}] "
            "(-1: nothing, 0: the stem, n: the stem and stages < n)"
        )
    return frozen_stages


def classifier_keys_to_dense(
    state_dict: Mapping[str, Tensor], own: Mapping[str, Tensor], num_stages: int
) -> dict[str, Tensor]:
    """A classifier or dense state dict in a dense backbone's layout.

    The classifier head (``head.*``) is dropped; the classifier's final norm (``norm.*``) becomes
    the last stage's output norm when the backbone has it, the file does not, and the shapes
    agree (else it is dropped); output norms the backbone does not have (``norm{i}`` of stages
    outside its ``out_indices``) are dropped.
    """
    last = f"norm{num_stages - 1}."
    final = {last + k[len("norm.") :]: v for k, v in state_dict.items() if k.startswith("norm.")}
    use_final = (
        bool(final)
        and not any(k.startswith(last) for k in state_dict)
        and all(k in own and own[k].shape == v.shape for k, v in final.items())
    )
    state = {
        k: v
        for k, v in state_dict.items()
        if not k.startswith(("head.", "norm.")) and not (_OUTPUT_NORM.match(k) and k not in own)
    }
    if use_final:
        state.update(final)
    return state


class DenseBackbone(BaseModule):
    """Base of the dense backbones: NCHW outputs of ``out_indices`` at strides 4, 8, 16, 32.

    See the module docstring for what a family provides. Attributes set by
    :meth:`setup_outputs`: ``out_indices``, ``frozen_stages``, ``stage_channels`` (all stages),
    ``out_channels`` (the returned ones) and timm's ``feature_info``.
    """

    stem_name: str = "stem"
    stages_name: str = "stages"

    def forward_stages(self, x: Tensor, count: int) -> Iterator[Tensor]:
        """Outputs of the first ``count`` stages of image ``x`` (B, C, H, W)."""
        raise NotImplementedError

    def output_map(self, index: int, feature: Tensor) -> Tensor:
        """Stage ``index``'s output through ``norm{index}`` as a contiguous NCHW map."""
        raise NotImplementedError

    def convert_checkpoint(self, checkpoint: Mapping, source: str) -> ConvertedCheckpoint:
        """The family's key map from any supported checkpoint layout to this backbone's."""
        raise NotImplementedError

    def setup_outputs(
        self,
        stage_channels: Sequence[int],
        reductions: Sequence[int],
        out_indices: Sequence[int],
        frozen_stages: int,
        norm_layer: Callable[[int], nn.Module],
    ) -> None:
        """Validate the output arguments, add ``norm{i}`` per output and freeze what is asked."""
        num_stages = len(stage_channels)
        self.out_indices = check_out_indices(out_indices, num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        self.stage_channels = list(stage_channels)
        self.out_channels = [self.stage_channels[i] for i in self.out_indices]
        for i in self.out_indices:
            self.add_module(f"norm{i}", norm_layer(self.stage_channels[i]))
        self.feature_info = [
            dict(num_chs=c, reduction=r, module=f"{self.stages_name}.{i}")
            for i, (c, r) in enumerate(zip(self.stage_channels, reductions, strict=True))
        ]
        self._freeze_stages()

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        stages = getattr(self, self.stages_name)[: self.frozen_stages]
        norms = [getattr(self, f"norm{i}") for i in self.out_indices if i < self.frozen_stages]
        return [getattr(self, self.stem_name), *stages, *norms]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> DenseBackbone:
        """Set the training mode; frozen parts stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """``init_cfg=dict(type='Pretrained', ...)`` goes through :meth:`load_pretrained`;
        other init_cfg types go to mmengine; without init_cfg the construction init stays."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            unknown = sorted(set(cfg) - set(PRETRAINED_KEYS))
            if unknown:
                raise ValueError(
                    f"{type(self).__name__}: init_cfg keys {unknown} not understood; "
                    f"Pretrained takes {PRETRAINED_KEYS[1:]}"
                )
            self.load_pretrained(**{k: v for k, v in cfg.items() if k != "type"})
            self._is_init = True
        else:
            super().init_weights()

    def load_pretrained(
        self,
        checkpoint: str,
        map_location: str = "cpu",
        allow_partial: bool = False,
        prefix: str | None = None,
    ) -> LoadReport:
        """Load a checkpoint file through the family converter and the strict reporting loader.

        ``prefix``: take only the keys under it (prefix removed) before converting. Raises
        ValueError with a summary when keys are missing, unexpected or mismatched, unless
        ``allow_partial``; see :func:`~plgvit_mm.utils.checkpoint_convert.load_state_dict_checked`.
        """
        if not checkpoint:
            raise ValueError(
                f'{type(self).__name__}: init_cfg Pretrained needs a "checkpoint" path, '
                f"got {self.init_cfg}"
            )
        source = str(checkpoint)
        raw = CheckpointLoader.load_checkpoint(source, map_location=map_location, logger="current")
        if prefix:
            state = unwrap_state_dict(raw, source)
            raw = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not raw:
                raise ValueError(f"{source}: no key starts with prefix {prefix!r}")
        converted = self.convert_checkpoint(raw, source)
        return load_state_dict_checked(
            self, converted.state_dict, source, fresh=converted.fresh, allow_partial=allow_partial
        )

    def _take_indices(self, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
        if indices is None:
            indices = self.out_indices
        take, last = feature_take_indices(len(self.stage_channels), indices)
        if not set(take) <= set(self.out_indices):
            raise ValueError(
                f"indices {tuple(take)} must be among out_indices {self.out_indices} "
                "(the stages with an output norm)"
            )
        return take, last

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = True,
        output_fmt: str = "NCHW",
        intermediates_only: bool = True,
    ) -> list[Tensor]:
        """timm's feature API: the outputs of stages ``indices`` (default ``out_indices``).

        Dense outputs always pass their ``norm{i}`` (``norm`` is accepted for timm's wrapper);
        stages after the last requested one are not run. ``output_fmt``: 'NCHW' or 'NHWC'.
        A dense backbone has no final feature map, so ``intermediates_only`` must be True.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt {output_fmt!r} must be 'NCHW' or 'NHWC'")
        if not intermediates_only:
            raise ValueError(f"{type(self).__name__} gives intermediates only (no final features)")
        take, last = self._take_indices(indices)
        count = last + 1 if stop_early else len(self.stage_channels)
        outs = [
            self.output_map(i, feature)
            for i, feature in enumerate(self.forward_stages(x, count))
            if i in take
        ]
        if output_fmt == "NHWC":
            outs = [o.permute(0, 2, 3, 1) for o in outs]
        return outs

    def prune_intermediate_layers(
        self,
        indices: int | Sequence[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """timm's feature API: drop the stages after the last of ``indices`` and unused norms."""
        take, last = self._take_indices(indices)
        for i in self.out_indices:
            if i not in take:
                delattr(self, f"norm{i}")
        stages = getattr(self, self.stages_name)
        setattr(self, self.stages_name, stages[: last + 1])
        self.out_indices = tuple(take)
        self.out_channels = [self.stage_channels[i] for i in take]
        return take

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(B, C, H, W) -> one (B, C_i, ceil(H / s_i), ceil(W / s_i)) map per ``out_indices``."""
        return tuple(self.forward_intermediates(x, self.out_indices))
