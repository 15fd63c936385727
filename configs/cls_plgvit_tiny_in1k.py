# PLG-ViT-Tiny ImageNet-1k classifier (224 x 224), the pretraining of the PLG-ViT-Tiny backbone
# of the detection and segmentation configs.
# Published: 83.4% top-1 with 27M parameters (PLG-ViT, Ebert et al., Sensors 2023); no weights
# are public. Parameters equal timm's plgvit_tiny (tested).
# Recipe (DeiT / Swin / NAT; _base_ files): AdamW lr 1e-3 for a total batch of 1024 (8 GPUs x
# 128; linear rule lr = 1e-3 * B / 1024 for a total batch B, or tools/train.py --auto-scale-lr),
# weight decay 0.05 without norms, biases and relative position tables, 20 warm-up epochs then
# cosine decay, 300 epochs; RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; EMA optional (_base_/cls_runtime.py).
# Stochastic depth 0.2: Swin-T's rate (Liu et al. 2021), the recipe and size class PLG-ViT-T
# is trained in; the PLG-ViT paper's own rate is not known here.
# Data: data/imagenet (data/README.md); another class count N: the keys named by the dataset's
# error (model.head.num_classes, data_preprocessor.num_classes and the loaders' num_classes).
# Hand-off: python tools/train.py configs/cls_plgvit_tiny_in1k.py writes
# work_dirs/cls_plgvit_tiny_in1k/epoch_300.pth; copy it to
# checkpoints/plgvit_tiny_in1k.pth (the path the dense configs expect) or pass
# --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/cls_plgvit_tiny_in1k/epoch_300.pth to
# maskrcnn_plgvit_tiny_coco.py, upernet_plgvit_tiny_ade20k.py
_base_ = [
    "./_base_/models/image_classifier.py",
    "./_base_/datasets/imagenet_224.py",
    "./_base_/schedules/imagenet_adamw_300e.py",
    "./_base_/cls_runtime.py",
]

model = dict(
    backbone=dict(type="PLGViT", arch="tiny", drop_path_rate=0.2), head=dict(in_channels=512)
)
