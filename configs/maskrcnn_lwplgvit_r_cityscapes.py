# Mask R-CNN + FPN with LW-PLG-ViT-R, Cityscapes instance segmentation (8 classes),
# 8 epochs over the train set repeated 8x (LR step at epoch 7), scale (2048, 800-1024).
# Reference: no published number is reproduced here (LW-PLG-ViT-R is this project's
# calibration of the architecture and has not been trained on full data here).
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 1e-4; for a total batch B use
# lr = 1e-4 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_lwplgvit_r.py (ImageNet-1k init from a local file;
# --cfg-options model.backbone.init_cfg=None trains from scratch).
_base_ = [
    "./_base_/models/mask_rcnn_fpn.py",
    "./_base_/models/backbone_lwplgvit_r.py",
    "./_base_/datasets/cityscapes_instance.py",
    "./_base_/schedules/coco_adamw_1x.py",
    "./_base_/det_runtime.py",
]

model = dict(
    backbone=_base_.backbone,
    neck=dict(in_channels=_base_.backbone_channels),
    roi_head=dict(bbox_head=dict(num_classes=8), mask_head=dict(num_classes=8)),
)
train_dataloader = dict(batch_size=2)

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type="MultiStepLR", begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1),
]
