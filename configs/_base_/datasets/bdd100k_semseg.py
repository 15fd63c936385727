# BDD100K semantic segmentation (the 19 Cityscapes classes, 255 = ignore, data/bdd100k with
# images/10k/{train,val}/*.jpg and labels/sem_seg/masks/{train,val}/*.png): mmseg's
# bdd100k.py — random resize of (2048, 1024) by 0.5-2.0, 512 x 1024 crops, 2 images per GPU; mIoU.
_base_ = ["mmseg::_base_/datasets/bdd100k.py"]
