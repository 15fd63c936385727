# COCO instance segmentation (mmdet's coco_instance.py: data/coco, 2 images per GPU, bbox + segm
# CocoMetric) with the multi-scale + DETR-style crop training augmentation of the NAT and
# Swin 3x recipes: random shorter side 480-800 (longer <= 1333), or resize to 400-600, random
# crop 384-600, then resize to 480-800. Loading is validated: ValidatedCocoDataset names the file,
# entry and key of malformed annotations and counts the ones mmdet skips; CheckedLoadImageFromFile
# names missing or corrupt images (README, Troubleshooting).
_base_ = ["mmdet::_base_/datasets/coco_instance.py"]

multi_scales = [
    (480, 1333),
    (512, 1333),
    (544, 1333),
    (576, 1333),
    (608, 1333),
    (640, 1333),
    (672, 1333),
    (704, 1333),
    (736, 1333),
    (768, 1333),
    (800, 1333),
]
train_pipeline = [
    dict(type="CheckedLoadImageFromFile", backend_args=None),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="RandomFlip", prob=0.5),
    dict(
        type="RandomChoice",
        transforms=[
            [dict(type="RandomChoiceResize", scales=multi_scales, keep_ratio=True)],
            [
                dict(
                    type="RandomChoiceResize",
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True,
                ),
                dict(
                    type="RandomCrop",
                    crop_type="absolute_range",
                    crop_size=(384, 600),
                    allow_negative_crop=True,
                ),
                dict(type="RandomChoiceResize", scales=multi_scales, keep_ratio=True),
            ],
        ],
    ),
    dict(type="PackDetInputs"),
]
train_dataloader = dict(dataset=dict(type="ValidatedCocoDataset", pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type="ValidatedCocoDataset"))
test_dataloader = val_dataloader
