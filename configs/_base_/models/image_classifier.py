# ImageNet-1k classifier around one of our dense backbones (mmpretrain 1.2.0 ImageClassifier):
# backbone, last stage only (with its output norm) -> global average pooling -> Linear.
# Its parameters are the timm classifier's: timm's final norm is the backbone's last output norm
# (`backbone.norm3`), timm's fc is `head.fc`. So a checkpoint of this model initialises the
# dense backbone of every detection / segmentation / mono 3D config of the same arch through
# model.backbone.init_cfg.checkpoint (the other output norms start freshly initialised).
# Targets: Mixup (alpha 0.8) or CutMix (alpha 1.0), one of the two per batch (timm's switch
# probability 0.5), with label smoothing 0.1 (DeiT / Swin / NAT).
# A config sets model.backbone (type, arch, drop_path_rate) and model.head.in_channels.
model = dict(
    type="ImageClassifier",
    backbone=dict(out_indices=(3,), init_cfg=None),
    neck=dict(type="GlobalAveragePooling"),
    head=dict(
        type="LinearClsHead",
        num_classes=1000,  # ImageNet-1k; equal to the dataset's num_classes
        init_cfg=dict(type="TruncNormal", layer="Linear", std=0.02, bias=0.0),
        loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, mode="original"),
        cal_acc=False,
    ),
    train_cfg=dict(augments=[dict(type="Mixup", alpha=0.8), dict(type="CutMix", alpha=1.0)]),
)
