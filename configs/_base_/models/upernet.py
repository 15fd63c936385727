# UperNet (mmseg's upernet_swin.py): PPM + FPN decode head with 512 channels on the four
# backbone levels, auxiliary FCN head on level 3 (loss weight 0.4), SyncBN in the heads
# (reverted to BN by mmengine when not distributed), whole-image inference.
# Experiment configs replace the backbone (model.backbone with _delete_=True) and set
# decode_head.in_channels / auxiliary_head.in_channels from the backbone's out_channels.
_base_ = ["mmseg::_base_/models/upernet_swin.py"]
