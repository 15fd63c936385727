# Runtime settings shared by every config (detection and segmentation).
# The task-specific parts (default scope, visualizer, visualization hook) are in
# det_runtime.py / seg_runtime.py; checkpoint and logging intervals are in the schedules.
custom_imports = dict(imports=["plgvit_mm"], allow_failed_imports=False)

# eval_progress: about 10 lines per validation / test run with images done and ETA, however
# short the run is against the logger's interval
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    eval_progress=dict(type="EvalProgressHook", num_lines=10),
    param_scheduler=dict(type="ParamSchedulerHook"),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)

# Multi-GPU / multi-node: launch with tools/dist_train.sh (torchrun) or Slurm (srun ...
# tools/train.py --launcher slurm); mmengine sets up the process group from env_cfg.dist_cfg.
# On CPU-only machines the tools switch the backend to gloo.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)

log_level = "INFO"
load_from = None
resume = False
