# Segmentation runtime (mmseg scope, iteration-based schedules): log every 50 iterations,
# checkpoint every 16k (3 kept; 80k configs: 8k), picture drawing for tools/test.py --show-dir.
_base_ = ["./default_runtime.py"]

default_scope = "mmseg"
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type="ResumableCheckpointHook", by_epoch=False, interval=16000, max_keep_ckpts=3
    ),
    visualization=dict(type="SegVisualizationHook"),
)
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=False)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="SegLocalVisualizer", vis_backends=vis_backends, name="visualizer")
