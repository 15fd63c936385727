# DiNAT-Tiny dense backbone (plgvit_mm.models.backbones.nat.DiNAT) with the COCO dilation
# schedule (level 0 [1, 28, 1], ...; docs/design/nat.md, DiNAT schedules); use
# dilations='ade20k' for 512 px segmentation.
# Use next to a detector/segmentor base (``_delete_`` replaces its ResNet):
#   model = dict(backbone={{_base_.backbone}},
#                neck=dict(in_channels={{_base_.backbone_channels}}))
backbone = dict(
    _delete_=True,
    type="DiNAT",
    arch="tiny",
    dilations="coco",
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    with_cp=False,
    init_cfg=dict(
        type="Pretrained",
        checkpoint="https://shi-labs.com/projects/dinat/checkpoints/imagenet1k/"
        "dinat_tiny_in1k_224.pth",
    ),
)
backbone_channels = [64, 128, 256, 512]
