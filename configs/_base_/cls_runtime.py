# ImageNet classification runtime (mmpretrain scope, epoch-based): log every 100 iterations,
# checkpoint every epoch (3 kept, atomic, resumable), no prediction pictures.
# EMA of the weights (optional, off as in Swin and NAT): add
#   custom_hooks = [dict(type="EMAHook", momentum=1e-4, priority="ABOVE_NORMAL")]
# to a config inheriting a cls_* config; checkpoints then hold the EMA weights in `state_dict`.
_base_ = ["./default_runtime.py"]

default_scope = "mmpretrain"
# the ImageNet dataset and checked loader need mmcv and mmpretrain only (not mmdet)
custom_imports = dict(
    imports=[
        "plgvit_mm",
        "plgvit_mm.datasets.checked_loading",
        "plgvit_mm.datasets.checked_imagenet",
    ],
    allow_failed_imports=False,
)
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=100),
    checkpoint=dict(type="ResumableCheckpointHook", interval=1, max_keep_ckpts=3),
    visualization=dict(type="VisualizationHook", enable=False),
)
log_processor = dict(type="LogProcessor", window_size=100, by_epoch=True)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="UniversalVisualizer", vis_backends=vis_backends)
randomness = dict(seed=None, deterministic=False)
