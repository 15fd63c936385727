"""What can be exported: backbones by name or config, and the graphs built from configs.

Each builder returns an :class:`ExportTarget`: an eval-mode module taking only tensors, its
input/output names, and the smallest image side it accepts. Whole-model graphs (segmentor,
detector features, mono 3D) take a float32 RGB image in 0-255, ``(B, 3, H, W)``, and normalise
it inside the graph with the config's ``data_preprocessor`` mean and std; backbone graphs take
the already normalised tensor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BACKBONE_TYPES = {"lw_plgvit": "LWPLGViT", "plgvit": "PLGViT", "nat": "NAT", "dinat": "DiNAT"}
"""``--model`` prefixes -> backbone classes (the suffix is the arch: ``lw_plgvit_a``,
``nat_tiny``, ...)."""
SEGMENTOR_TYPES = ("EncoderDecoder",)
DETECTOR_TYPES = ("MaskRCNN", "FasterRCNN", "CascadeRCNN")
MONO3D_TYPES = ("Mono3DDetector",)
MIN_IMAGE_SIDE = 32
"""Smallest input side of every backbone (four stride-2 stages after a stride-2 stem...)."""
DYNAMIC_EXAMPLE_BATCH = 2
"""Batch of the example a ``--dynamic`` export traces: torch.export specialises every dimension
of size 1 to a constant, so a batch-1 example would fix the graph's batch at 1."""


@dataclass
class ExportTarget:
    """A module ready for :func:`~plgvit_mm.deployment.onnx_export.export_onnx`.

    ``extra_inputs``: non-image example inputs (e.g. the camera matrix) as functions of the
    batch size; ``hw_dynamic``: whether H and W may be symbolic in a ``--dynamic`` export.
    """

    kind: str
    module: nn.Module
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    default_shape: tuple[int, int] = (224, 224)
    min_side: int = MIN_IMAGE_SIDE
    image_range: tuple[float, float] = (-2.0, 2.0)
    extra_inputs: tuple = field(default_factory=tuple)
    hw_dynamic: bool = True
    dynamic_min_side: int = MIN_IMAGE_SIDE

    def check_shape(self, height: int, width: int) -> None:
        """ValueError unless both sides are at least :attr:`min_side`."""
        if min(height, width) < self.min_side:
            raise ValueError(
                f"--shape {height} {width}: the {self.kind} needs H and W >= {self.min_side}"
            )

    def example_inputs(self, height: int, width: int, batch: int = 1, seed: int = 0):
        """Random example inputs of the given image size (image values in image_range)."""
        self.check_shape(height, width)
        gen = torch.Generator().manual_seed(seed)
        low, high = self.image_range
        image = torch.rand(batch, 3, height, width, generator=gen) * (high - low) + low
        return (image, *(make(batch, height, width) for make in self.extra_inputs))

    def dynamic_shapes(self, hw: bool) -> list[dict | None]:
        """``torch.export`` dynamic shapes: batch always, H/W when ``hw`` and supported."""
        batch = torch.export.Dim("batch", min=1, max=64)
        image = {0: batch}
        if hw and self.hw_dynamic:
            image[2] = torch.export.Dim("height", min=self.dynamic_min_side, max=4096)
            image[3] = torch.export.Dim("width", min=self.dynamic_min_side, max=4096)
        return [image, *({0: batch} for _ in self.extra_inputs)]


class BackboneGraph(nn.Module):
    """Backbone as an export graph: normalised image -> the NCHW feature maps (a tuple)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.backbone(image))


class Normalize(nn.Module):
    """(B, 3, H, W) RGB image in 0-255 -> (image - mean) / std, per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: Tensor) -> Tensor:
        return (image - self.mean) / self.std


class SegmentorGraph(nn.Module):
    """mmseg ``EncoderDecoder`` whole-image inference: image -> per-pixel class logits.

    ``(B, 3, H, W)`` RGB 0-255 -> ``(B, num_classes, H, W)``: normalise, backbone, neck, decode
    head, bilinear resize to the input size (as ``BaseDecodeHead.predict_by_feat``).
    """

    def __init__(self, segmentor: nn.Module, normalize: Normalize) -> None:
        super().__init__()
        self.normalize = normalize
        self.segmentor = segmentor

    def forward(self, image: Tensor) -> Tensor:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(self.normalize(image)))
        return F.interpolate(
            logits, size=image.shape[2:], mode="bilinear", align_corners=head.align_corners
        )


class DetectorFeaturesGraph(nn.Module):
    """Two-stage mmdet detector's ``extract_feat``: image -> backbone + FPN feature maps."""

    def __init__(self, detector: nn.Module, normalize: Normalize) -> None:
        super().__init__()
        self.normalize = normalize
        self.detector = detector

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.detector.extract_feat(self.normalize(image)))


def backbone_config(name: str) -> dict:
    """``--model`` name (``lw_plgvit_a``, ``plgvit_tiny``, ``nat_tiny``, ``dinat_tiny``, ...) ->
    backbone config dict; ValueError listing the accepted names otherwise."""
    match = re.fullmatch(r"(lw_plgvit|plgvit|dinat|nat)_([a-z]+)", name)
    if match is None:
        raise ValueError(
            f"--model {name!r}: expected <family>_<arch> with family one of "
            f"{sorted(BACKBONE_TYPES)} (e.g. lw_plgvit_a, lw_plgvit_r, plgvit_tiny, nat_tiny, "
            "dinat_tiny)"
        )
    family, arch = match.groups()
    return dict(type=BACKBONE_TYPES[family], arch=arch, drop_path_rate=0.0)


def _build_backbone(cfg: dict) -> nn.Module:
    from mmengine.registry import MODELS

    import plgvit_mm  # noqa: F401  (registers the backbones)

    cfg = {**cfg, "init_cfg": None}
    try:
        return MODELS.build(cfg)
    except (KeyError, ValueError) as err:
        raise ValueError(f"backbone {cfg.get('type')!r} (arch {cfg.get('arch')!r}): {err}") from err


def _state_dict(checkpoint: str | Path) -> dict[str, Tensor]:
    from mmengine.runner.checkpoint import CheckpointLoader

    loaded = CheckpointLoader.load_checkpoint(str(checkpoint), map_location="cpu")
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"{checkpoint}: not a state dict or an mmengine checkpoint")
    return loaded


def load_weights(module: nn.Module, checkpoint: str | Path, prefix: str = "") -> None:
    """Load ``checkpoint`` into ``module`` strictly (keys under ``prefix`` when present);
    ValueError naming the file and the missing/unexpected/mis-shaped keys on a mismatch."""
    state = _state_dict(checkpoint)
    if prefix and any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"checkpoint {checkpoint} does not match {type(module).__name__}: "
            f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}, "
            f"shape mismatches {shapes[:8]}"
        )
    module.load_state_dict(state, strict=True)


def unpadded_min_side(backbone: nn.Module) -> int:
    """Smallest image side at which no NAT/DiNAT level map is below kernel * dilation (level i
    has stride 4 * 2^i): symbolic sizes cannot take the legacy-padding branch."""
    side = MIN_IMAGE_SIDE
    for index, level in enumerate(getattr(backbone, "levels", ())):
        for block in level.blocks:
            (ky, kx), (dy, dx) = block.attn.kernel_size, block.attn.dilation
            side = max(side, max(ky * dy, kx * dx) * 4 * 2**index)
    return side


def backbone_target(cfg: dict, checkpoint: str | Path | None = None) -> ExportTarget:
    """Export target of a backbone config dict (four NCHW maps ``feat0`` .. ``feat3``)."""
    backbone = _build_backbone(cfg)
    if checkpoint is not None:
        load_weights(backbone, checkpoint, prefix="backbone.")
    n_out = len(getattr(backbone, "out_indices", (0, 1, 2, 3)))
    return ExportTarget(
        kind=f"{cfg['type']} backbone",
        module=BackboneGraph(backbone).eval(),
        input_names=("image",),
        output_names=tuple(f"feat{i}" for i in range(n_out)),
        # PLG-ViT window padding and chunk loops branch on the map size in Python
        hw_dynamic=cfg["type"] in ("NAT", "DiNAT"),
        dynamic_min_side=unpadded_min_side(backbone),
    )


def _normalize_from(cfg) -> Normalize:
    pre = cfg.model.get("data_preprocessor") or cfg.get("data_preprocessor") or {}
    mean, std = pre.get("mean"), pre.get("std")
    if mean is None or std is None:
        raise ValueError("config model.data_preprocessor needs mean and std for the export")
    return Normalize(mean, std)


def _build_openmmlab(cfg, scope: str) -> nn.Module:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope

    import plgvit_mm  # noqa: F401

    if scope == "mmseg":
        import mmseg.models  # noqa: F401
        from mmseg.registry import MODELS
    else:
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS
    model_cfg = cfg.model.copy()
    model_cfg.pop("data_preprocessor", None)
    if "backbone" in model_cfg:
        model_cfg["backbone"] = {**model_cfg["backbone"], "init_cfg": None}
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
    return revert_sync_batchnorm(model).eval()


def config_target(config: str | Path, checkpoint: str | Path | None = None) -> ExportTarget:
    """Export target of a config file: backbone, UperNet segmentor, two-stage detector
    (backbone + FPN features) or mono 3D detector; ValueError for other model types."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    model = cfg.get("model")
    if model is None and isinstance(cfg.get("backbone"), dict):  # a backbone base config
        return backbone_target(dict(cfg.backbone), checkpoint)
    kind = model.get("type") if isinstance(model, dict) else None
    if kind in BACKBONE_TYPES.values():
        return backbone_target(dict(model), checkpoint)
    if kind in SEGMENTOR_TYPES:
        segmentor = _build_openmmlab(cfg, "mmseg")
        if checkpoint is not None:
            load_weights(segmentor, checkpoint)
        return ExportTarget(
            kind="segmentor",
            module=SegmentorGraph(segmentor, _normalize_from(cfg)).eval(),
            input_names=("image",),
            output_names=("seg_logits",),
            default_shape=(512, 512),
            hw_dynamic=False,
            image_range=(0.0, 255.0),
        )
    if kind in DETECTOR_TYPES:
        detector = _build_openmmlab(cfg, "mmdet")
        if checkpoint is not None:
            load_weights(detector, checkpoint)
        n_out = detector.neck.num_outs if hasattr(detector.neck, "num_outs") else 5
        return ExportTarget(
            kind="detector features",
            module=DetectorFeaturesGraph(detector, _normalize_from(cfg)).eval(),
            input_names=("image",),
            output_names=tuple(f"fpn{i}" for i in range(n_out)),
            default_shape=(800, 1216),
            hw_dynamic=False,
            image_range=(0.0, 255.0),
        )
    if kind in MONO3D_TYPES:
        from .mono3d_graph import mono3d_target

        return mono3d_target(cfg, checkpoint)
    raise ValueError(
        f"{config}: model.type {kind!r} cannot be exported; supported: backbones "
        f"{sorted(BACKBONE_TYPES.values())}, segmentors {list(SEGMENTOR_TYPES)}, detectors "
        f"{list(DETECTOR_TYPES)} (backbone + FPN features), mono 3D {list(MONO3D_TYPES)}"
    )
