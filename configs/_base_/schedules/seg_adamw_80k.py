# Semantic segmentation, 80k iterations (driving data): the 160k recipe (AdamW lr 6e-5 for a
# total batch of 16, linear rule lr = 6e-5 * B / 16) with the poly decay ending at 80k and
# validation every 8k iterations.
_base_ = ["./seg_adamw_160k.py"]

max_iters = 80000
train_cfg = dict(max_iters=max_iters, val_interval=8000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
