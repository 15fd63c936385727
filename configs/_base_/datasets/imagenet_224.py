# ImageNet-1k at 224 x 224 with the DeiT / Swin / NAT augmentation (the pipelines of mmpretrain
# 1.2.0's imagenet_bs64_swin_224.py): RandomResizedCrop 224 (bicubic), horizontal flip,
# RandAugment rand-m9-mstd0.5-inc1 (2 ops, magnitude 9 of 10, std 0.5, timm's increasing
# policies), random erasing p=0.25 (random fill); evaluation: shorter side 256 (bicubic), centre
# crop 224. Mixup / CutMix and label smoothing are in _base_/models/image_classifier.py.
# Data: data/imagenet/{train,val}/<class>/<image> (folder layout) or mmpretrain's annotation files
# data/imagenet/meta/{train,val}.txt (data/README.md). CheckedImageNet names a missing folder,
# empty class folders, class folders that differ between train and val, a class count other
# than num_classes and malformed annotation lines; CheckedLoadImageFromFile (training) names
# corrupt or truncated images (Pillow decoding: truncated JPEGs are errors, not grey tails).
# Batch: 128 images per GPU x 8 GPUs = 1024, the batch of the schedule's LR.
num_classes = 1000
data_root = "data/imagenet"
dataset_type = "CheckedImageNet"
# RGB mean / std of ImageNet (0-255); images are loaded BGR and flipped here
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type="CheckedLoadImageFromFile", imdecode_backend="pillow"),
    dict(type="RandomResizedCrop", scale=224, backend="pillow", interpolation="bicubic"),
    dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    dict(
        type="RandAugment",
        policies="timm_increasing",
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[104, 116, 124], interpolation="bicubic"),  # BGR mean
    ),
    dict(
        type="RandomErasing",
        erase_prob=0.25,
        mode="rand",
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=[103.53, 116.28, 123.675],  # BGR mean / std
        fill_std=[57.375, 57.12, 58.395],
    ),
    dict(type="PackInputs"),
]
# named LoadImageFromFile: mmpretrain's inferencer replaces that step for in-memory images
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="ResizeEdge", scale=256, edge="short", backend="pillow", interpolation="bicubic"),
    dict(type="CenterCrop", crop_size=224),
    dict(type="PackInputs"),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split="train",
        num_classes=num_classes,
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split="val",
        num_classes=num_classes,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="Accuracy", topk=(1, 5))
test_evaluator = val_evaluator
