# Mask R-CNN + FPN: mmdet's mask-rcnn_r50_fpn.py (RPN, 2-fc box head, 4-conv mask head,
# RoIAlign, 80 COCO classes, BN-free heads). Experiment configs replace the ResNet backbone
# (model.backbone with _delete_=True) and set model.neck.in_channels to the backbone's
# out_channels (checked by tests/test_configs.py).
_base_ = ["mmdet::_base_/models/mask-rcnn_r50_fpn.py"]
