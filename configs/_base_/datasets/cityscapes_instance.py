# Cityscapes instance segmentation (8 thing classes, data/cityscapes): mmdet's
# cityscapes_instance.py — COCO-style annotations/instancesonly_filtered_gtFine_{train,val}.json
# written by mmdet's tools/dataset_converters/cityscapes.py (needs cityscapesscripts), images
# under leftImg8bit/; train scale (2048, 800-1024), the train set repeated 8x per epoch,
# 1 image per GPU; COCO bbox/segm metric and the official Cityscapes instance metric.
_base_ = ["mmdet::_base_/datasets/cityscapes_instance.py"]
