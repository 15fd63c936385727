# LW-PLG-ViT-R dense backbone (plgvit_mm.models.backbones.plgvit.LWPLGViT), strides 4/8/16/32.
# init_cfg: ImageNet-1k weights (none are published): train them with
# configs/cls_lwplgvit_r_in1k.py, or give any classifier checkpoint of this arch
# (tools/train.py's, or a timm `lw_plgvit_r` state_dict()) with
# model.backbone.init_cfg.checkpoint=PATH; init_cfg=None trains from scratch.
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
