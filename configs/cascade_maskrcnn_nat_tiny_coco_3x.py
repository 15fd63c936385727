# Cascade Mask R-CNN + FPN (4conv1fc GIoU heads) with NAT-Tiny, COCO 3x (36 epochs,
# LR steps at 27 and 33), multi-scale + DETR-style crop augmentation.
# Reference (NAT paper, Cascade Mask R-CNN 3x, COCO val2017): box AP / mask AP 51.4 / 44.5.
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 1e-4; for a total batch B use
# lr = 1e-4 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_nat_tiny.py (official ImageNet-1k checkpoint, downloaded).
_base_ = [
    "./_base_/models/cascade_mask_rcnn_fpn_giou_4conv1f.py",
    "./_base_/models/backbone_nat_tiny.py",
    "./_base_/datasets/coco_instance_ms_crop.py",
    "./_base_/schedules/coco_adamw_3x.py",
    "./_base_/det_runtime.py",
]

model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    neck=dict(in_channels=_base_.backbone_channels),
)
