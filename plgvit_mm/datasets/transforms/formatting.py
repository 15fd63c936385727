"""Packing a mono 3D sample into mmdet's inputs / DetDataSample."""

from __future__ import annotations

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

MONO3D_META_KEYS = (
    "img_id",
    "img_path",
    "label_path",
    "sample_idx",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "cam2img",
    "ori_cam2img",
    "homography_matrix",
    "zoom",
)


@TRANSFORMS.register_module()
class PackMono3DInputs(PackDetInputs):
    """mmdet's PackDetInputs plus the 3D boxes and camera metadata.

    ``gt_instances``: ``bboxes`` (N, 4), ``labels`` (N,), ``bboxes_3d`` (N, 7 camera boxes);
    metainfo: ``MONO3D_META_KEYS`` present in the results (``cam2img`` is the 4x4 P2 of the
    network input image, ``ori_cam2img`` that of the file, ``zoom`` the random zoom of
    Mono3DRandomShiftScale).
    """

    mapping_table = {**PackDetInputs.mapping_table, "gt_bboxes_3d": "bboxes_3d"}

    def __init__(self, meta_keys: tuple[str, ...] = MONO3D_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)
