# The README's main job (tools/run_demo.sh): configs/maskrcnn_lwplgvit_a_coco.py trained from
# scratch on CPU on the synthetic shapes dataset (500 train / 100 val images of 192 x 192 with 1-4
# solid squares, circles and triangles; data/synthetic_coco in COCO format, written by
# plgvit_mm/datasets/synthetic_shapes.py; 192 rather than the calibration's 256 px for CPU time).
# The LW-PLG-ViT-A backbone is unchanged (random init); for CPU speed the heads are slimmed as
# calibrated in docs/design/performance_targets.md: GroupNorm FPN and heads at 128 channels, a mask head
# of 2 convs (4 in the base config), RoIAlign sampling_ratio 2 through torchvision's roi_align,
# RPN/RoI samplers of 128/32 (RoI positives up to half), 200 proposals. AdamW 8e-4 with a linear
# warm-up and cosine decay, batch 4 on one process, 1250 iterations (~0.8 s each on 2 cores).
# Measured (bbox / segm mAP on the 100 val images; every run 192 px, AdamW 8e-4 unless noted):
#   this config, 1250 iterations, `make demo` on 2 idle cores        0.718 / 0.798 (18 min 13 s)
#   the same with 1 thread, beside another run                        0.649 / 0.720
#   RoI sampler 64 with positives up to a quarter, 1150 iterations      0.628 / 0.715
#   RoI sampler 64, positives up to half, 1100 iterations                0.598 / 0.686 (too slow)
#   same at 256 px, 750 iterations                                      0.496 / 0.567
#   4-conv mask head, mmcv RoIAlign, RoI sampler 64, 800 iterations      0.498 / 0.583
#     (2e-4: 0.395 / 0.480; 5e-4: 0.461 / 0.542; 1e-3 for 900 iterations: 0.489 / 0.595)
# For comparison, mmdet's ResNet-18 (GroupNorm) in this config's place: 0.617 / 0.718 after 400
# iterations. Target: bbox mAP >= 0.6 within 20 minutes on 2 cores.
_base_ = ["../maskrcnn_lwplgvit_a_coco.py"]

data_root = "data/synthetic_coco/"
classes = ("square", "circle", "triangle")
max_iters = 1250
image_size = (192, 192)  # (W, H) of the generated images; Resize keeps other sizes comparable
warmup_iters = 100
head_channels = 128
head_norm = dict(type="GN", num_groups=32, requires_grad=True)
# torchvision's roi_align: the same op as mmcv's (aligned=True; equal outputs), ~3.5x faster
# forward and ~1.2x faster backward on CPU.
roi_layer = dict(sampling_ratio=2, use_torchvision=True)

model = dict(
    backbone=dict(drop_path_rate=0.0, init_cfg=None),
    neck=dict(out_channels=head_channels, norm_cfg=head_norm),
    rpn_head=dict(in_channels=head_channels, feat_channels=head_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=head_channels, roi_layer=roi_layer),
        bbox_head=dict(in_channels=head_channels, fc_out_channels=512, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=head_channels, roi_layer=roi_layer),
        mask_head=dict(
            num_convs=2,
            in_channels=head_channels,
            conv_out_channels=head_channels,
            norm_cfg=head_norm,
            num_classes=len(classes),
        ),
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=200),
        rcnn=dict(sampler=dict(num=32, pos_fraction=0.5)),
    ),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200), rcnn=dict(max_per_img=20)),
)

train_pipeline = [
    dict(type="CheckedLoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
# named LoadImageFromFile: mmdet's DetInferencer replaces that step for in-memory images
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=image_size, keep_ratio=True),  # sets scale_factor (mask pasting)
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(
        type="PackDetInputs",
        meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
    ),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="annotations/instances_train2017.json",
        data_prefix=dict(img="train2017/"),
        pipeline=train_pipeline,
    ),
)
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="val2017/"),
        pipeline=test_pipeline,
    ),
)
test_evaluator = dict(ann_file=data_root + "annotations/instances_val2017.json")
# tools/run_demo.sh evaluates once after training with tools/test.py.
val_dataloader = None
val_evaluator = None
val_cfg = None

train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=8e-4, weight_decay=0.05), clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type="CosineAnnealingLR",
        T_max=max_iters - warmup_iters,
        eta_min=1e-6,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
    ),
]
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=20),
    checkpoint=dict(
        type="ResumableCheckpointHook", by_epoch=False, interval=max_iters, max_keep_ckpts=1
    ),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
