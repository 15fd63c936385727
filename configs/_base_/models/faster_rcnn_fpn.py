# Faster R-CNN + FPN: mmdet's faster-rcnn_r50_fpn.py (RPN, 2-fc box head, RoIAlign).
# Experiment configs replace the ResNet backbone (model.backbone with _delete_=True) and set
# model.neck.in_channels to the backbone's out_channels and the box head's num_classes.
_base_ = ["mmdet::_base_/models/faster-rcnn_r50_fpn.py"]
