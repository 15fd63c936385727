# UperNet with LW-PLG-ViT-R, BDD100K semantic seg. (19 classes), 80k iterations, 512 x 1024 crops.
# Reference: no published number is reproduced here (LW-PLG-ViT-R is this project's
# calibration of the architecture and has not been trained on full data here).
# Batch: 16 images in total (8 GPUs x 2) for AdamW lr 6e-5; for a total batch B use
# lr = 6e-5 * B / 16 (linear rule; tools/train.py --auto-scale-lr). --amp: mixed precision.
# Backbone: _base_/models/backbone_lwplgvit_r.py (ImageNet-1k init from a local file;
# --cfg-options model.backbone.init_cfg=None trains from scratch).
_base_ = [
    "./_base_/models/upernet.py",
    "./_base_/models/backbone_lwplgvit_r.py",
    "./_base_/datasets/bdd100k_semseg.py",
    "./_base_/schedules/seg_adamw_80k.py",
    "./_base_/seg_runtime.py",
]

crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=_base_.backbone,
    decode_head=dict(in_channels=_base_.backbone_channels, num_classes=19),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2], num_classes=19),
)
train_dataloader = dict(batch_size=2)
default_hooks = dict(checkpoint=dict(interval=8000))
