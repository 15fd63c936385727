# Cityscapes semantic segmentation (19 classes, data/cityscapes, *_labelTrainIds.png made by
# cityscapesscripts' createTrainIdLabelImgs): mmseg's cityscapes.py — random resize of
# (2048, 1024) by 0.5-2.0, 512 x 1024 crops, 2 images per GPU; mIoU.
_base_ = ["mmseg::_base_/datasets/cityscapes.py"]
