"""``LoadImageFromFile`` with clear errors for missing and unreadable image files.

mmcv's transform reports a missing file as a bare ``FileNotFoundError`` from the file backend
and an undecodable one as ``AssertionError: failed to load image`` (or a cv2 error).
:class:`CheckedLoadImageFromFile` (same arguments) raises ``FileNotFoundError`` /
``ValueError`` naming the file, its size and what was expected. With ``ignore_empty=True`` it
instead skips the sample with a warning and a running count (mmengine's dataset then draws
another sample). Grayscale and RGBA files need nothing special: ``color_type='color'`` (the
default) decodes them to 3-channel BGR.
"""

from __future__ import annotations

import os.path as osp

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv ``LoadImageFromFile`` with file-naming errors (see the module docstring);
    :attr:`num_skipped` counts the files skipped under ``ignore_empty=True``."""

    num_skipped = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # mmcv returns None on some failures under ignore_empty; let it raise, decide here
        self.skip_unreadable, self.ignore_empty = self.ignore_empty, False

    def transform(self, results: dict) -> dict | None:
        path = results["img_path"]
        try:
            return super().transform(results)
        except Exception as err:  # noqa: BLE001  (every decoder/backend failure is reported)
            problem = self._describe(path, err)
            if not self.skip_unreadable:
                error_type = FileNotFoundError if not osp.exists(path) else ValueError
                raise error_type(problem) from err
            CheckedLoadImageFromFile.num_skipped += 1
            print_log(
                f"skipping sample ({CheckedLoadImageFromFile.num_skipped} so far): {problem}",
                logger="current",
                level=30,
            )
            return None

    def _describe(self, path: str, err: Exception) -> str:
        if not osp.exists(path):
            return (
                f"image file '{path}' does not exist (check data_root and "
                "data_prefix.img in the config, and the file names in the annotations)"
            )
        return (
            f"image file '{path}' ({osp.getsize(path)} bytes) could not be decoded with "
            f"imdecode_backend='{self.imdecode_backend}' ({type(err).__name__}: {err}); "
            "expected a complete PNG/JPEG/BMP/TIFF file (re-export or remove it)"
        )
