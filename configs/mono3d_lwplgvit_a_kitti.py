# Monocular 3D detection on KITTI: LW-PLG-ViT-A -> stride-4 fusion neck -> CenterNet-style head
# (MonoDLE skeleton + MonoCon auxiliary keypoint heads), 384 x 1280 input.
#
# Reference numbers (Car, AP3D R40, KITTI val, Easy / Moderate / Hard), DLA-34 backbones:
#   MonoCon 26.33 / 19.03 / 16.00 (AdamW, batch 8 on 1 GPU, 200 epochs, cyclic LR)
#   MonoDLE 17.45 / 13.66 / 11.68 (Adam 1.25e-3, batch 16, 140 epochs, steps at 90 / 120)
#   GUPNet 22.76 / 16.46 / 13.72; mmdet3d SMOKE AP11 moderate 13.85.
# Run-to-run spread on KITTI is about +-0.5-1 AP; small batches cost several AP.
# Assumptions: batch 8 in total (1 GPU x 8; with N GPUs set train_dataloader.batch_size=8/N or
# scale the LR linearly: auto_scale_lr base_batch_size=8); AdamW lr 2.25e-4 (MonoCon's base
# LR), 500-iteration linear warm-up, cosine decay over 200 epochs; gradient norm clip 35.
# Depth is learnt focal-normalised (Mono3DBoxCoder.reference_focal = KITTI's f_u), which keeps
# the random zoom of the pipeline consistent with the depth targets.
# The backbone starts from ImageNet weights: set backbone.init_cfg=dict(type='Pretrained',
# checkpoint=PATH) (none can be downloaded here).
_base_ = ["./_base_/datasets/kitti_mono3d.py", "./_base_/det_runtime.py"]

model = dict(
    type="Mono3DDetector",
    data_preprocessor=dict(
        type="DetDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
    ),
    backbone=dict(type="LWPLGViT", arch="a", drop_path_rate=0.1, init_cfg=None),
    # the neck's in_channels default to the backbone's out_channels
    neck=dict(type="Stride4FusionNeck", out_channels=64),
    bbox_head=dict(
        type="Mono3DCenterHead",
        in_channels=64,
        num_classes=3,
        feat_channels=256,
        num_alpha_bins=12,
        use_keypoint_heads=True,
        box_coder=dict(
            type="Mono3DBoxCoder", stride=4, num_alpha_bins=12, reference_focal=721.5377
        ),
    ),
    train_cfg=dict(min_depth=2.0, gaussian_overlap=0.7),
    test_cfg=dict(topk=50, local_maximum_kernel=3, score_thr=0.2),
)

max_epochs = 200
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2.25e-4, betas=(0.95, 0.99), weight_decay=1e-5),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(
        type="CosineAnnealingLR",
        T_max=max_epochs,
        eta_min=2.25e-7,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    ),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=50),
    checkpoint=dict(
        type="ResumableCheckpointHook",
        interval=10,
        max_keep_ckpts=3,
        save_best="kitti/Car_3D_AP40_moderate_strict",
        rule="greater",
    ),
)
