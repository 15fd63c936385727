# LW-PLG-ViT-R dense backbone (plgvit_mm.models.backbones.plgvit.LWPLGViT), strides 4/8/16/32.
# init_cfg expects an ImageNet-1k classification checkpoint of timm's `lw_plgvit_r`; none is
# published, so train one or set model.backbone.init_cfg=None to start from scratch.
# Use next to a detector/segmentor base (``_delete_`` replaces its ResNet):
#   model = dict(backbone=_base_.backbone, neck=dict(in_channels=_base_.backbone_channels))
backbone = dict(
    _delete_=True,
    type="LWPLGViT",
    arch="r",
    drop_path_rate=0.1,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    with_cp=False,
    init_cfg=dict(type="Pretrained", checkpoint="checkpoints/lw_plgvit_r_in1k.pth"),
)
backbone_channels = [32, 64, 192, 384]
