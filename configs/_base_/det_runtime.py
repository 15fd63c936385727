# Detection runtime (mmdet scope, epoch-based schedules): log every 50 iterations, checkpoint
# every epoch (3 kept), picture drawing for tools/test.py --show-dir.
_base_ = ["./default_runtime.py"]

default_scope = "mmdet"
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=50),
    checkpoint=dict(type="ResumableCheckpointHook", interval=1, max_keep_ckpts=3),
    visualization=dict(type="DetVisualizationHook"),
)
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=True)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="DetLocalVisualizer", vis_backends=vis_backends, name="visualizer")
