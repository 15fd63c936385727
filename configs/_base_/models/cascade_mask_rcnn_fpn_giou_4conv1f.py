# Cascade Mask R-CNN + FPN as in the Swin / NAT 3x recipes: mmdet's cascade-mask-rcnn_r50_fpn.py
# with three class-specific box heads of 4 shared convs + 1 fc (SyncBN), decoded-box GIoU
# regression (loss weight 10) and stage-wise target stds 0.1/0.2, 0.05/0.1, 0.033/0.067.
# Experiment configs replace the backbone and set model.neck.in_channels.
_base_ = ["mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py"]

head_norm_cfg = dict(type="SyncBN", requires_grad=True)


def _box_head(target_stds):
    return dict(
        type="ConvFCBBoxHead",
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(
            type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0], target_stds=target_stds
        ),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=head_norm_cfg,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type="GIoULoss", loss_weight=10.0),
    )


model = dict(
    roi_head=dict(
        bbox_head=[
            _box_head([0.1, 0.1, 0.2, 0.2]),
            _box_head([0.05, 0.05, 0.1, 0.1]),
            _box_head([0.033, 0.033, 0.067, 0.067]),
        ]
    )
)
