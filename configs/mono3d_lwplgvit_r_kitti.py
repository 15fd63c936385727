# Monocular 3D detection on KITTI with LW-PLG-ViT-R (smaller than -A); everything else, the
# recipe, the reference numbers (MonoCon DLA-34 Car AP3D R40 val moderate 19.03, MonoDLE 13.66)
# and the batch / LR assumptions (batch 8 in total, AdamW 2.25e-4, 200 epochs) are those of
# mono3d_lwplgvit_a_kitti.py.
_base_ = ["./mono3d_lwplgvit_a_kitti.py"]

model = dict(backbone=dict(type="LWPLGViT", arch="r", drop_path_rate=0.1, init_cfg=None))
