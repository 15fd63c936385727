# KITTI 3D object detection, left colour camera (data/kitti, official layout: training/
# {image_2,label_2,calib}, ImageSets/{train,val}.txt; see docs/design/driving_data.md).
# Train on ImageSets/train.txt (3712 frames), evaluate on ImageSets/val.txt (3769 frames).
# Input 384 x 1280 (H x W): images (375 x 1242) are resized keeping the ratio and padded.
# Train: flip 0.5, random shift/zoom (MonoDLE's crop augmentation), photometric distortion.
dataset_type = "KittiMono3DDataset"
data_root = "data/kitti/"
input_size = (1280, 384)  # (W, H)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadMono3DAnnotations"),
    dict(type="Mono3DRandomFlip", prob=0.5),
    dict(type="Mono3DRandomShiftScale", shift_ratio=0.1, scale_ratio=0.4, prob=0.5),
    dict(type="Mono3DResize", scale=input_size, keep_ratio=True),
    dict(type="PhotoMetricDistortion"),
    dict(type="Pad", size=input_size),
    dict(type="PackMono3DInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadMono3DAnnotations"),
    dict(type="Mono3DResize", scale=input_size, keep_ratio=True),
    dict(type="Pad", size=input_size),
    dict(type="PackMono3DInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="ImageSets/train.txt",
        data_prefix=dict(img="training/image_2", calib="training/calib", label="training/label_2"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="ImageSets/val.txt",
        data_prefix=dict(img="training/image_2", calib="training/calib", label="training/label_2"),
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type="KittiMono3DMetric")
test_evaluator = val_evaluator
