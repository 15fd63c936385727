# LW-PLG-ViT-A ImageNet-1k classifier (224 x 224), the pretraining of the LW-PLG-ViT-A
# backbone of the detection, segmentation and mono 3D configs.
# Published: 79.5% top-1 (LW-PLG-ViT paper, arXiv 2307.09120; its Table I layout is not public,
# this is the project's calibration of arch 'a': 5,327,294 parameters, equal to timm's
# lw_plgvit_a; tested).
# Recipe (DeiT / Swin / NAT; _base_ files): AdamW lr 1e-3 for a total batch of 1024 (8 GPUs x
# 128; linear rule lr = 1e-3 * B / 1024 for a total batch B, or tools/train.py --auto-scale-lr),
# weight decay 0.05 without norms, biases and relative position tables, 20 warm-up epochs then
# cosine decay, 300 epochs; RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; EMA optional (_base_/cls_runtime.py).
# Stochastic depth 0.1: the LW-PLG-ViT paper's rate is not known here; 0.1 is DeiT-Ti's (DeiT,
# Touvron et al. 2021: 0.1 for every DeiT), a model of the same size (5.7M parameters).
# Data: data/imagenet (data/README.md); another class count N: the keys named by the dataset's
# error (model.head.num_classes, data_preprocessor.num_classes and the loaders' num_classes).
# Hand-off: python tools/train.py configs/cls_lwplgvit_a_in1k.py writes
# work_dirs/cls_lwplgvit_a_in1k/epoch_300.pth; copy it to
# checkpoints/lw_plgvit_a_in1k.pth (the path the dense configs expect) or pass
# --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/cls_lwplgvit_a_in1k/epoch_300.pth to
# maskrcnn_lwplgvit_a_coco.py, upernet_lwplgvit_a_ade20k.py,
# mono3d_lwplgvit_a_kitti.py, ...
_base_ = [
    "./_base_/models/image_classifier.py",
    "./_base_/datasets/imagenet_224.py",
    "./_base_/schedules/imagenet_adamw_300e.py",
    "./_base_/cls_runtime.py",
]

model = dict(
    backbone=dict(type="LWPLGViT", arch="a", drop_path_rate=0.1), head=dict(in_channels=384)
)
