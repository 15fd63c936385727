# ImageNet-1k, 300 epochs with the DeiT / Swin / NAT optimiser (mmpretrain 1.2.0's
# imagenet_bs1024_adamw_swin.py): AdamW lr 1e-3 for a total batch of 1024 (DeiT's rule
# lr = 5e-4 * batch / 512), betas (0.9, 0.999), eps 1e-8, weight decay 0.05 except on norms,
# biases and other 1-D parameters (layer scales, GRN) and the relative position tables
# (NAT `rpb`, PLG-ViT `relative_position_bias_table`); linear warm-up from lr x 1e-3 over 20
# epochs (per iteration), then cosine decay to 1e-5 until epoch 300; gradient norm clipped at 5
# (Swin). Another total batch B: lr = 1e-3 * B / 1024, or tools/train.py --auto-scale-lr.
_base_ = ["mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py"]

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={".rpb": dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0),
)
