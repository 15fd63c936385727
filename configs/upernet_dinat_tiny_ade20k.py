# UperNet with DiNAT-Tiny, ADE20K (150 classes), 160k iterations, 512 x 512 crops.
# Reference (DiNAT paper, UperNet 160k, ADE20K val): mIoU single / multi-scale 47.8 / 48.8.
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 6e-5; for a total batch B use
# lr = 6e-5 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_dinat_tiny.py (official ImageNet-1k checkpoint, downloaded).
_base_ = [
    "./_base_/models/upernet.py",
    "./_base_/models/backbone_dinat_tiny.py",
    "./_base_/datasets/ade20k_512x512.py",
    "./_base_/schedules/seg_adamw_160k.py",
    "./_base_/seg_runtime.py",
]

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(_base_.backbone, dilations="ade20k", drop_path_rate=0.3),
    decode_head=dict(in_channels=_base_.backbone_channels, num_classes=150),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2], num_classes=150),
)
train_dataloader = dict(batch_size=2)
