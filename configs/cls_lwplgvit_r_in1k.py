# LW-PLG-ViT-R ImageNet-1k classifier (224 x 224), the pretraining of the LW-PLG-ViT-R
# backbone of the detection, segmentation and mono 3D configs.
# Published: none for -R's accuracy here (LW-PLG-ViT paper, arXiv 2307.09120); this is the
# project's calibration of arch 'r': 4,859,999 parameters, equal to timm's lw_plgvit_r (tested).
# Recipe (DeiT / Swin / NAT; _base_ files): AdamW lr 1e-3 for a total batch of 1024 (8 GPUs x
# 128; linear rule lr = 1e-3 * B / 1024 for a total batch B, or tools/train.py --auto-scale-lr),
# weight decay 0.05 without norms, biases and relative position tables, 20 warm-up epochs then
# cosine decay, 300 epochs; RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; EMA optional (_base_/cls_runtime.py).
# Stochastic depth 0.1: as for LW-PLG-ViT-A (DeiT-Ti's rate, DeiT, Touvron et al. 2021; no
# LW-PLG-ViT rate is known here).
# Data: data/imagenet (data/README.md); another class count N: the keys named by the dataset's
# error (model.head.num_classes, data_preprocessor.num_classes and the loaders' num_classes).
# Hand-off: python tools/train.py configs/cls_lwplgvit_r_in1k.py writes
# work_dirs/cls_lwplgvit_r_in1k/epoch_300.pth; copy it to
# checkpoints/lw_plgvit_r_in1k.pth (the path the dense configs expect) or pass
# --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/cls_lwplgvit_r_in1k/epoch_300.pth to
# maskrcnn_lwplgvit_r_coco.py, upernet_lwplgvit_r_ade20k.py,
# mono3d_lwplgvit_r_kitti.py, ...
_base_ = [
    "./_base_/models/image_classifier.py",
    "./_base_/datasets/imagenet_224.py",
    "./_base_/schedules/imagenet_adamw_300e.py",
    "./_base_/cls_runtime.py",
]

model = dict(
    backbone=dict(type="LWPLGViT", arch="r", drop_path_rate=0.1), head=dict(in_channels=384)
)
