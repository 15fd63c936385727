# NAT-Tiny ImageNet-1k classifier (224 x 224); official weights exist (the NAT configs load
# them by URL): this config retrains them or trains a variant.
# Published: 83.2% top-1, 28M parameters (NAT, Hassani et al., CVPR 2023). Parameters equal
# timm's nat_tiny (tested).
# Recipe (DeiT / Swin / NAT; _base_ files): AdamW lr 1e-3 for a total batch of 1024 (8 GPUs x
# 128; linear rule lr = 1e-3 * B / 1024 for a total batch B, or tools/train.py --auto-scale-lr),
# weight decay 0.05 without norms, biases and relative position tables, 20 warm-up epochs then
# cosine decay, 300 epochs; RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; EMA optional (_base_/cls_runtime.py).
# Stochastic depth 0.2: NAT-Tiny's ImageNet rate (official NAT classification configs;
# docs/design/nat.md, NAT architecture table).
# Data: data/imagenet (data/README.md); another class count N: the keys named by the dataset's
# error (model.head.num_classes, data_preprocessor.num_classes and the loaders' num_classes).
# Hand-off: python tools/train.py configs/cls_nat_tiny_in1k.py writes
# work_dirs/cls_nat_tiny_in1k/epoch_300.pth; pass
# --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/cls_nat_tiny_in1k/epoch_300.pth to
# maskrcnn_nat_tiny_coco.py, upernet_nat_tiny_ade20k.py, mono3d_nat_tiny_kitti.py, ...
_base_ = [
    "./_base_/models/image_classifier.py",
    "./_base_/datasets/imagenet_224.py",
    "./_base_/schedules/imagenet_adamw_300e.py",
    "./_base_/cls_runtime.py",
]

model = dict(backbone=dict(type="NAT", arch="tiny", drop_path_rate=0.2), head=dict(in_channels=512))
