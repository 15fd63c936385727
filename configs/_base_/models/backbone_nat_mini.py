# NAT-Mini dense backbone (plgvit_mm.models.backbones.nat.NAT), strides 4/8/16/32.
# drop_path_rate: the COCO Mask R-CNN value; ADE20K UperNet uses 0.2
# (docs/design/nat.md, NAT architecture).
# Use next to a detector/segmentor base (``_delete_`` replaces its ResNet):
#   model = dict(backbone={{_base_.backbone}},
#                neck=dict(in_channels={{_base_.backbone_channels}}))
backbone = dict(
    _delete_=True,
    type="NAT",
    arch="mini",
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    with_cp=False,
    init_cfg=dict(
        type="Pretrained",
        checkpoint="https://shi-labs.com/projects/nat/checkpoints/CLS/nat_mini.pth",
    ),
)
backbone_channels = [64, 128, 256, 512]
