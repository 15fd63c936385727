# ADE20K (150 classes, data/ade/ADEChallengeData2016): mmseg's ade20k.py — random resize of
# (2048, 512) by 0.5-2.0, 512 x 512 crops, flip, photometric distortion; test at shorter side
# 512; 4 images per GPU by default (our configs set 2 per GPU x 8 GPUs = 16); mIoU.
_base_ = ["mmseg::_base_/datasets/ade20k.py"]
