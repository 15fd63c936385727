"""The KITTI mono 3D metric for mmengine's evaluator (registered in mmdet's METRICS)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..datasets.kitti_files import (
    RESULT_PRECISION,
    KittiObjects,
    format_label_lines,
    parse_label_text,
    read_label_file,
)
from ..structures import rotation_y_to_alpha
from ..utils.atomic_file import atomic_write_text
from .kitti_eval import KITTI_CLASSES, count_ground_truth, evaluate_kitti
from .kitti_summary import format_kitti_summary


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def predictions_to_kitti(pred_instances: dict, classes: Sequence[str]) -> KittiObjects:
    """KITTI result objects from a prediction dict.

    Args:
        pred_instances: ``bboxes`` (N, 4) x1 y1 x2 y2 in original-image pixels, ``bboxes_3d``
            (N, 7) camera boxes x y z h w l ry (bottom centre, metres, radians), ``scores``
            (N,), ``labels`` (N,) indices into ``classes``, optional ``alphas`` (N,)
            (computed from ry and the location when absent). Tensors or arrays.
        classes: class names of the labels.
    Returns:
        KittiObjects with scores; truncated and occluded are -1 (unknown), as in KITTI results.
    """
    missing = [k for k in ("bboxes", "bboxes_3d", "scores", "labels") if k not in pred_instances]
    if missing:
        raise ValueError(
            f"pred_instances lacks {missing}; expected bboxes, bboxes_3d, scores, "
            f"labels (and optionally alphas), got {sorted(pred_instances)}"
        )
    boxes_3d = _numpy(pred_instances["bboxes_3d"]).reshape(-1, 7)
    labels = _numpy(pred_instances["labels"]).astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(
            f"prediction labels must index classes {tuple(classes)}, got "
            f"{sorted(set(labels.tolist()))}"
        )
    if "alphas" in pred_instances:
        alpha = _numpy(pred_instances["alphas"])
    else:
        alpha = rotation_y_to_alpha(boxes_3d[:, 6], boxes_3d[:, 0], boxes_3d[:, 2])
    num = len(labels)
    return KittiObjects(
        names=np.array(classes)[labels] if num else np.zeros(0, dtype=str),
        truncated=np.full(num, -1.0),
        occluded=np.full(num, -1),
        alpha=alpha,
        bbox=_numpy(pred_instances["bboxes"]).reshape(-1, 4),
        dimensions=boxes_3d[:, 3:6],
        location=boxes_3d[:, :3],
        rotation_y=boxes_3d[:, 6],
        score=_numpy(pred_instances["scores"]),
    )


@METRICS.register_module()
class KittiMono3DMetric(BaseMetric):
    """Official KITTI 2D / AOS / BEV / 3D AP (R11 and R40) of mono 3D predictions, on CPU.

    Ground truth is read from ``label_dir/<img_id>.txt`` when ``label_dir`` is given, else
    from each sample's ``label_path`` (set by KittiMono3DDataset). Detections are evaluated
    exactly as they are written to result files (``RESULT_PRECISION`` decimals), so
    ``tools/kitti_eval.py`` on ``result_dir`` reproduces the numbers.

    Args:
        classes: names of the predicted labels, in label order.
        label_dir: folder of KITTI label files, or None to use ``label_path``.
        result_dir: if given, one KITTI result file per image is written there (atomically);
            with no labels at all (the test split) only the files are written.
        collect_device, prefix: see mmengine's BaseMetric (keys read ``kitti/<name>``).
    """

    default_prefix = "kitti"

    def __init__(
        self,
        classes: Sequence[str] = KITTI_CLASSES,
        label_dir: str | None = None,
        result_dir: str | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = tuple(classes)
        self.label_dir = None if label_dir is None else Path(label_dir)
        self.result_dir = None if result_dir is None else Path(result_dir)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep, per image, its frame id, label path and result text."""
        for sample in data_samples:
            if "img_id" not in sample or "pred_instances" not in sample:
                raise ValueError(
                    "KittiMono3DMetric needs samples with img_id and "
                    f"pred_instances, got keys {sorted(sample)}"
                )
            frame_id = str(sample["img_id"])
            if self.label_dir is not None:
                label_path = str(self.label_dir / f"{frame_id}.txt")
            else:
                label_path = sample.get("label_path")
            detections = predictions_to_kitti(sample["pred_instances"], self.classes)
            self.results.append(
                dict(
                    frame_id=frame_id,
                    label_path=label_path,
                    result_text=format_label_lines(detections, RESULT_PRECISION),
                )
            )

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Write result files (if asked) and return the KITTI AP keys, in percent."""
        logger = MMLogger.get_current_instance()
        detections = [
            parse_label_text(r["result_text"], f"prediction of {r['frame_id']}") for r in results
        ]
        if self.result_dir is not None:
            for result in results:
                atomic_write_text(
                    result["result_text"], self.result_dir / f"{result['frame_id']}.txt"
                )
            logger.info(f"KITTI result files of {len(results)} images written to {self.result_dir}")
        unlabelled = [r["frame_id"] for r in results if r["label_path"] is None]
        if unlabelled:
            if self.result_dir is None:
                raise ValueError(
                    f"no labels for frames {unlabelled[:5]}...: give label_dir or "
                    "use a dataset with labels (or result_dir to only write "
                    "result files)"
                )
            logger.info("no labels (test split): result files written, nothing scored")
            return {}
        ground_truth = [read_label_file(r["label_path"]) for r in results]
        metrics = evaluate_kitti(ground_truth, detections, self.classes)
        counts = count_ground_truth(ground_truth, self.classes)
        logger.info(
            f"KITTI evaluation of {len(results)} images (AP in %):\n"
            + format_kitti_summary(metrics, counts, self.classes)
        )
        return metrics
