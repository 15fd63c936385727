"""The mono 3D detector as one ONNX graph: image + camera matrix -> decoded top-k boxes.

Decoding is the box coder's own :meth:`Mono3DBoxCoder.decode_batch` (local-maximum pooling,
top-k over classes and cells, gathers, unprojection), traced into the graph, so the exported
model decodes exactly as ``Mono3DDetector.predict`` does, minus the per-image score threshold
and the mapping back to the original image (both need per-image metadata: ONNX consumers apply
``heatmap_scores > score_thr`` themselves, tools/deployment/ort_inference.py does).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .export_targets import (
    ExportTarget,
    Normalize,
    _build_openmmlab,
    _normalize_from,
    load_weights,
)

OUTPUT_NAMES = ("labels", "scores", "heatmap_scores", "bboxes_2d", "boxes_3d", "alphas")
"""Graph outputs, each (B, K, ...): class index (int64), score (heatmap peak x depth
confidence), heatmap peak, 2D box x1 y1 x2 y2 (input pixels), camera box x y z h w l ry
(bottom centre, metres), observation angle alpha (radians)."""


class Mono3DGraph(nn.Module):
    """``(image (B, 3, H, W) RGB 0-255, cam2img (B, 4, 4) of that image)`` -> OUTPUT_NAMES."""

    def __init__(self, detector: nn.Module, normalize: Normalize) -> None:
        super().__init__()
        self.normalize = normalize
        self.detector = detector
        test_cfg = detector.bbox_head.test_cfg
        self.topk = int(test_cfg["topk"])
        self.kernel = int(test_cfg["local_maximum_kernel"])

    def forward(self, image: Tensor, cam2img: Tensor) -> tuple[Tensor, ...]:
        from plgvit_mm.models.mono3d.center_head import MAIN_BRANCHES

        head = self.detector.bbox_head
        outputs = head(self.detector.extract_feat(self.normalize(image)))
        main = {name: outputs[name] for name in MAIN_BRANCHES}
        decoded = head.box_coder.decode_batch(main, cam2img, topk=self.topk, kernel=self.kernel)
        return tuple(decoded[name] for name in OUTPUT_NAMES)


def kitti_like_cam2img(batch: int, height: int, width: int) -> Tensor:
    """(B, 4, 4) KITTI-like P2 (focal 721.5 px, principal point at the image centre)."""
    cam2img = torch.tensor(
        [
            [721.5377, 0.0, width / 2, 44.857],
            [0.0, 721.5377, height / 2, 0.2164],
            [0.0, 0.0, 1.0, 0.0027],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return cam2img.expand(batch, 4, 4).clone()


def mono3d_target(cfg, checkpoint: str | Path | None = None) -> ExportTarget:
    """Export target of a ``Mono3DDetector`` config (+ checkpoint)."""
    detector = _build_openmmlab(cfg, "mmdet")
    if checkpoint is not None:
        load_weights(detector, checkpoint)
    return ExportTarget(
        kind="mono 3D detector",
        module=Mono3DGraph(detector, _normalize_from(cfg)).eval(),
        input_names=("image", "cam2img"),
        output_names=OUTPUT_NAMES,
        default_shape=(384, 1280),
        image_range=(0.0, 255.0),
        extra_inputs=(kitti_like_cam2img,),
        hw_dynamic=False,
    )
