# UperNet with NAT-Mini, ADE20K (150 classes), 160k iterations, 512 x 512 crops.
# Reference (NAT paper, UperNet 160k, ADE20K val): mIoU single / multi-scale 45.1 / 46.4.
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 6e-5; for a total batch B use
# lr = 6e-5 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_nat_mini.py (official ImageNet-1k checkpoint, downloaded).
_base_ = [
    "./_base_/models/upernet.py",
    "./_base_/models/backbone_nat_mini.py",
    "./_base_/datasets/ade20k_512x512.py",
    "./_base_/schedules/seg_adamw_160k.py",
    "./_base_/seg_runtime.py",
]

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=_base_.backbone,
    decode_head=dict(in_channels=_base_.backbone_channels, num_classes=150),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2], num_classes=150),
)
train_dataloader = dict(batch_size=2)
