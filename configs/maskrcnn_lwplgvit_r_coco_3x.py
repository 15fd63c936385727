# Mask R-CNN + FPN with LW-PLG-ViT-R, COCO 3x (36 epochs, LR steps at 27 and 33),
# multi-scale + DETR-style crop augmentation.
# Reference: no published number is reproduced here (LW-PLG-ViT-R is this project's
# calibration of the architecture and has not been trained on full data here).
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 1e-4; for a total batch B use
# lr = 1e-4 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_lwplgvit_r.py (ImageNet-1k init from a local file;
# --cfg-options model.backbone.init_cfg=None trains from scratch).
_base_ = [
    "./_base_/models/mask_rcnn_fpn.py",
    "./_base_/models/backbone_lwplgvit_r.py",
    "./_base_/datasets/coco_instance_ms_crop.py",
    "./_base_/schedules/coco_adamw_3x.py",
    "./_base_/det_runtime.py",
]

model = dict(backbone=_base_.backbone, neck=dict(in_channels=_base_.backbone_channels))
