"""Mono 3D transforms (mmdet registry) that keep image, boxes and ``cam2img`` consistent."""

from .formatting import MONO3D_META_KEYS, PackMono3DInputs
from .loading import LoadMono3DAnnotations
from .random_flip import Mono3DRandomFlip
from .random_shift_scale import Mono3DRandomShiftScale
from .resize import Mono3DResize

__all__ = [
    "MONO3D_META_KEYS",
    "LoadMono3DAnnotations",
    "Mono3DRandomFlip",
    "Mono3DRandomShiftScale",
    "Mono3DResize",
    "PackMono3DInputs",
]
