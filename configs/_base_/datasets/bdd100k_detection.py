# BDD100K 2D detection (10 classes, data/bdd100k, 720 x 1280 images under images/100k/{train,val}/).
# The labels are converted to COCO format first:
#   python tools/dataset_converters/bdd100k_to_coco.py \
#       data/bdd100k/labels/det_20/det_train.json data/bdd100k/annotations/det_train_coco.json
#   (same for det_val.json -> det_val_coco.json)
# Train: random shorter side 600-800 (longer <= 1333), flip; test at the native 720 x 1280.
# 2 images per GPU; COCO bbox metric.
dataset_type = "CocoDataset"
data_root = "data/bdd100k/"
classes = (
    "pedestrian",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
    "traffic light",
    "traffic sign",
)
metainfo = dict(classes=classes)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(
        type="RandomChoiceResize",
        scales=[(1333, 600), (1333, 640), (1333, 680), (1333, 720), (1333, 760), (1333, 800)],
        keep_ratio=True,
    ),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(1333, 720), keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(
        type="PackDetInputs",
        meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
    ),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    batch_sampler=dict(type="AspectRatioBatchSampler"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file="annotations/det_train_coco.json",
        data_prefix=dict(img="images/100k/train/"),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file="annotations/det_val_coco.json",
        data_prefix=dict(img="images/100k/val/"),
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(
    type="CocoMetric",
    ann_file=data_root + "annotations/det_val_coco.json",
    metric="bbox",
    format_only=False,
)
test_evaluator = val_evaluator
