"""plgvit_mm: LW-PLG-ViT, PLG-ViT and NAT/DiNAT for dense prediction in OpenMMLab.

``import plgvit_mm`` makes torch checkpoint loading safe for mmengine checkpoints (see
:mod:`plgvit_mm.utils.checkpoint_safety`), registers the neighborhood-attention ops and the
backbones (torch, timm and mmengine only), and, when mmdet and mmcv are importable, the mono 3D
dataset, transforms, models and the KITTI metric (mmdet registries).
"""

from importlib.util import find_spec

from .utils import checkpoint_safety
from .version import __version__

checkpoint_safety.install()

from . import engine, models, ops  # noqa: E402  (after the loader patch)

OPENMMLAB_DETECTION_AVAILABLE = find_spec("mmdet") is not None and find_spec("mmcv") is not None
if OPENMMLAB_DETECTION_AVAILABLE:
    from . import datasets, evaluation  # noqa: E402,F401
    from .models import mono3d, necks  # noqa: E402,F401

__all__ = [
    "__version__",
    "engine",
    "models",
    "ops",
    "checkpoint_safety",
    "OPENMMLAB_DETECTION_AVAILABLE",
]
