# Mask R-CNN + FPN with DiNAT-Tiny, COCO 1x (12 epochs, LR steps at 8 and 11),
# multi-scale + DETR-style crop augmentation.
# Reference (DiNAT paper, Mask R-CNN 3x, COCO val2017): box AP / mask AP 48.6 / 43.5, 48M params,
# 258G FLOPs at 1280 x 800. No 1x number is published.
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 1e-4; for a total batch B use
# lr = 1e-4 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_dinat_tiny.py (official ImageNet-1k checkpoint, downloaded).
_base_ = [
    "./_base_/models/mask_rcnn_fpn.py",
    "./_base_/models/backbone_dinat_tiny.py",
    "./_base_/datasets/coco_instance_ms_crop.py",
    "./_base_/schedules/coco_adamw_1x.py",
    "./_base_/det_runtime.py",
]

model = dict(backbone=_base_.backbone, neck=dict(in_channels=_base_.backbone_channels))
