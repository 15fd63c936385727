# PLG-ViT-Tiny dense backbone (plgvit_mm.models.backbones.plgvit.PLGViT), strides 4/8/16/32.
# init_cfg: ImageNet-1k weights (none are published): train them with
# configs/cls_plgvit_tiny_in1k.py, or give any classifier checkpoint of this arch (tools/train.py's
# or a timm `plgvit_tiny` state_dict()) with model.backbone.init_cfg.checkpoint=PATH;
# init_cfg=None trains from scratch.
# Use next to a detector/segmentor base (``_delete_`` replaces its ResNet):
#   model = dict(backbone=_base_.backbone, neck=dict(in_channels=_base_.backbone_channels))
backbone = dict(
    _delete_=True,
    type="PLGViT",
    arch="tiny",
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    with_cp=False,
    init_cfg=dict(type="Pretrained", checkpoint="checkpoints/plgvit_tiny_in1k.pth"),
)
backbone_channels = [64, 128, 256, 512]
