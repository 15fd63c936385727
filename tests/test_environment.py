"""The installed stack works together: mmcv's compiled ops, mmdet's Mask R-CNN and mmseg's
UperNet build and predict on CPU with torch 2.14, and plgvit_mm imports with everything."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_versions_and_imports():
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    import timm

    import plgvit_mm

    assert plgvit_mm.__version__
    assert mmcv.__version__ == "2.1.0"
    assert mmdet.__version__ == "3.3.0"
    assert mmseg.__version__ == "1.2.2"
    assert mmengine.__version__ == "0.10.7"
    assert timm.__version__ == "1.0.31"
    assert plgvit_mm.OPENMMLAB_DETECTION_AVAILABLE


def test_mmcv_compiled_ops_compute():
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]  # the overlapping second box (IoU 0.68) is suppressed

    feat = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    roi = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]])
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=1, aligned=True)(feat, roi)
    # each output cell samples the centre of a 2x2 block: bilinear average of its 4 pixels
    expected = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
    torch.testing.assert_close(out, expected)


@pytest.mark.slow
def test_mmdet_mask_rcnn_predicts_on_cpu():
    from mmdet.apis import inference_detector, init_detector
    from mmengine.hub import get_config

    cfg = get_config("mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py")
    model = init_detector(cfg, checkpoint=None, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (160, 224, 3), dtype=np.uint8)
    result = inference_detector(model, image)
    pred = result.pred_instances
    assert pred.bboxes.shape[1] == 4
    assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    assert result.metainfo["ori_shape"] == (160, 224)


@pytest.mark.slow
def test_mmseg_upernet_r50_builds_and_predicts_on_cpu():
    from mmengine.hub import get_config
    from mmseg.apis import inference_model, init_model

    cfg = get_config("mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py")
    model = init_model(cfg, checkpoint=None, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    result = inference_model(model, image)
    assert tuple(result.pred_sem_seg.data.shape) == (1, 96, 128)
    assert int(result.pred_sem_seg.data.max()) < 150
