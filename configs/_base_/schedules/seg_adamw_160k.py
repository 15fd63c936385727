# Semantic segmentation, 160k iterations with the NAT / Swin UperNet recipe: AdamW lr 6e-5,
# weight decay 0.01 (none on norms and relative position biases), linear warm-up over 1500
# iterations, then poly decay (power 1) to 0. The LR assumes a total batch of 16 images
# (8 GPUs x 2). Linear rule for another total batch B: lr = 6e-5 * B / 16, or --auto-scale-lr.
# Mixed precision: tools/train.py --amp.
max_iters = 160000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=16000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            "norm": dict(decay_mult=0.0),
            "rpb": dict(decay_mult=0.0),
            "relative_position_bias_table": dict(decay_mult=0.0),
        }
    ),
)
auto_scale_lr = dict(enable=False, base_batch_size=16)
