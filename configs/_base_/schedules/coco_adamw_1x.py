# COCO 1x: 12 epochs with the NAT / Swin detection recipe. AdamW lr 1e-4, weight decay 0.05,
# none on norms and relative position biases (NAT `rpb`, Swin/PLG-ViT
# `relative_position_bias_table`); linear warm-up over 1000 iterations; LR x0.1 at epochs 8, 11.
# The LR assumes a total batch of 16 images (8 GPUs x 2). Linear rule for another total batch B:
# lr = 1e-4 * B / 16, or pass --auto-scale-lr to tools/train.py.
# Mixed precision: tools/train.py --amp (AmpOptimWrapper, dynamic loss scale).
max_epochs = 12
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type="MultiStepLR", begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            "norm": dict(decay_mult=0.0),
            "rpb": dict(decay_mult=0.0),
            "relative_position_bias_table": dict(decay_mult=0.0),
        }
    ),
)
auto_scale_lr = dict(enable=False, base_batch_size=16)
