"""KITTI files, the KITTI mono 3D dataset and the mono 3D transforms.

``plgvit_mm.datasets.kitti_files`` needs numpy only; the dataset and the transforms use the
mmdet registries and are imported here only when mmdet and mmcv are importable.
"""

from importlib.util import find_spec

from . import kitti_files

__all__ = ["kitti_files"]

if find_spec("mmdet") is not None and find_spec("mmcv") is not None:
    from . import checked_loading, coco_checks, transforms  # noqa: F401
    from .kitti_mono3d import KittiMono3DDataset  # noqa: F401

    __all__ += ["KittiMono3DDataset", "transforms"]
