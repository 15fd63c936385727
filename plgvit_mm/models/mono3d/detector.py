"""Monocular 3D detector: backbone -> stride-4 fusion neck -> CenterNet-style mono 3D head."""

from __future__ import annotations

import copy

from mmdet.models.detectors import BaseDetector, SingleStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class Mono3DDetector(SingleStageDetector):
    """Single-image 3D detector (MonoDLE / MonoCon style) for mmengine's Runner.

    The neck's ``in_channels`` may be left out: it is then the backbone's ``out_channels``,
    so any backbone of the contract (NCHW maps at strides 4-32) plugs in unchanged.

    Inputs come from mmdet's ``DetDataPreprocessor``; every data sample's metainfo must hold
    ``cam2img`` (4x4 P2 of the network input image), ``homography_matrix`` (original ->
    input image, 3x3) and ``ori_shape``. Training samples carry ``gt_instances`` with
    ``bboxes`` (N, 4), ``labels`` (N,) and ``bboxes_3d`` (N, 7 camera boxes x y z h w l ry).
    ``predict`` fills ``pred_instances`` with ``bboxes`` (original image), ``scores``,
    ``labels``, ``bboxes_3d`` and ``alphas`` (see Mono3DCenterHead.predict_by_feat), the
    fields KittiMono3DMetric reads.
    """

    def __init__(
        self,
        backbone: ConfigType,
        neck: ConfigType,
        bbox_head: ConfigType,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        data_preprocessor: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        neck = copy.deepcopy(neck)
        if neck.get("in_channels") is None:
            neck["in_channels"] = list(self.backbone.out_channels)
        self.neck = MODELS.build(neck)
        bbox_head = copy.deepcopy(bbox_head)
        bbox_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
        self.bbox_head = MODELS.build(bbox_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
