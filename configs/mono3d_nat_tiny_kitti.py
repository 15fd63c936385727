# Monocular 3D detection on KITTI with NAT-Tiny; everything else, the recipe, the reference
# numbers (MonoCon DLA-34 Car AP3D R40 val moderate 19.03, MonoDLE 13.66) and the batch / LR
# assumptions (batch 8 in total, AdamW 2.25e-4, 200 epochs) are those of
# mono3d_lwplgvit_a_kitti.py. NAT-Tiny is larger (about 28M parameters): drop path 0.2.
_base_ = ["./mono3d_lwplgvit_a_kitti.py"]

model = dict(
    backbone=dict(_delete_=True, type="NAT", arch="tiny", drop_path_rate=0.2, init_cfg=None)
)
