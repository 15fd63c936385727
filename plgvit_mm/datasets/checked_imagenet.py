"""ImageNet-1k for mmpretrain in either standard layout, checked before training starts.

Layouts under ``data_root`` (default ``data/imagenet``), per split ``train`` / ``val``:

- folder layout: ``SPLIT/<class>/*.JPEG`` (torchvision ``ImageFolder``); the classes are the
  sorted folder names, label = index;
- annotation-file layout (mmpretrain's): ``meta/SPLIT.txt`` with one ``relative/path label``
  line per image (paths relative to ``SPLIT/``, integer labels from 0); used when the file
  exists or ``ann_file`` is given.

:class:`CheckedImageNet` (mmpretrain ``DATASETS``; mmpretrain's ``CustomDataset`` underneath)
raises an error naming the folder, file or line for: a missing split folder (with both layouts
and the ``--cfg-options`` keys), a split folder without class folders, class folders without
images, class folders of ``val`` that differ from those of ``train`` (labels would shift), a
class count that differs from ``num_classes``, and annotation lines that are not
``path label`` or carry a label outside ``[0, num_classes)``. Corrupt or truncated images are
named by the checked image loader of the training pipeline
(:class:`~plgvit_mm.datasets.checked_loading.CheckedLoadImageFromFile`).
"""

from __future__ import annotations

import os
import os.path as osp

from mmengine.fileio import list_from_file
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif")
SPLITS = ("train", "val")
SHOWN = 5  # folders / lines named per error


def class_folders(folder: str) -> list[str]:
    """Sorted names of the sub-folders of ``folder``."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def has_image(folder: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> bool:
    """Whether ``folder`` (recursively) holds a file with one of ``extensions``; stops at the
    first one."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(name.lower().endswith(extensions) for name in files):
            return True
    return False


def _listing(items: list[str]) -> str:
    more = f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


@DATASETS.register_module()
class CheckedImageNet(CustomDataset):
    """ImageNet-style classification data in the folder or annotation-file layout (see the module
    docstring).

    Args:
        data_root: the dataset folder (``data/imagenet``).
        split: ``'train'`` or ``'val'``; images are under ``data_root/split/``.
        num_classes: the number of classes the model predicts (``model.head.num_classes``);
            ``None`` skips the class-count and label-range checks.
        ann_file: annotation file (default ``meta/SPLIT.txt`` when it exists, else the folder
            layout).
        **kwargs: mmpretrain ``CustomDataset`` / mmengine ``BaseDataset`` arguments (pipeline,
            metainfo, ...).
    """

    def __init__(
        self,
        data_root: str = "data/imagenet",
        split: str = "train",
        num_classes: int | None = None,
        ann_file: str = "",
        **kwargs,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"CheckedImageNet: split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.num_classes = num_classes
        if not ann_file and osp.isfile(osp.join(data_root, "meta", f"{split}.txt")):
            ann_file = osp.join("meta", f"{split}.txt")
        kwargs.setdefault("data_prefix", split)
        kwargs.setdefault("extensions", IMAGE_EXTENSIONS)
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = self.img_prefix
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f"ImageNet {self.split} images: folder '{folder}' does not exist. Expected "
                f"{folder}/<class>/<image>.JPEG (folder layout) or {folder}/<path> listed in "
                f"{osp.join(self.data_root, 'meta', self.split + '.txt')} as '<path> <label>' "
                "lines (annotation-file layout); see data/README.md. Point elsewhere with "
                f"--cfg-options {self.split}_dataloader.dataset.data_root=DIR"
            )
        if self.ann_file:
            self._check_annotation_file()
        else:
            self._check_class_folders(folder)
        return super().load_data_list()

    def _check_class_folders(self, folder: str) -> None:
        classes = class_folders(folder)
        if not classes:
            raise ValueError(
                f"ImageNet {self.split} images: '{folder}' has no class folders; expected "
                f"{folder}/<class>/<image> (one folder per class), or "
                f"{osp.join(self.data_root, 'meta', self.split + '.txt')} for the "
                "annotation-file layout"
            )
        empty = [osp.join(folder, c) for c in classes if not has_image(osp.join(folder, c))]
        if empty:
            raise ValueError(
                f"ImageNet {self.split} images: {len(empty)} class folders hold no image "
                f"({'/'.join(self.extensions)}): {_listing(empty)}; every class needs at least "
                "one image (remove the folder from both splits or add its images)"
            )
        train_folder = osp.join(self.data_root, "train")
        if self.split != "train" and osp.isdir(train_folder):
            train_classes = class_folders(train_folder)
            if train_classes != classes:
                missing = sorted(set(train_classes) - set(classes))
                extra = sorted(set(classes) - set(train_classes))
                raise ValueError(
                    f"ImageNet class folders differ between '{train_folder}' "
                    f"({len(train_classes)}) and '{folder}' ({len(classes)}): missing in "
                    f"{self.split}: [{_listing(missing)}]; only in {self.split}: "
                    f"[{_listing(extra)}]. Labels are folder indices, so both splits need the "
                    "same class folders"
                )
        if self.num_classes is not None and len(classes) != self.num_classes:
            raise ValueError(
                f"ImageNet {self.split} images: '{folder}' has {len(classes)} class folders, "
                f"the config expects num_classes={self.num_classes}. For your own class count N "
                "set --cfg-options model.head.num_classes=N data_preprocessor.num_classes=N "
                "train_dataloader.dataset.num_classes=N val_dataloader.dataset.num_classes=N"
            )

    def _check_annotation_file(self) -> None:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f"ImageNet {self.split} annotation file '{self.ann_file}' does not exist; "
                "expected '<path relative to the split folder> <label>' lines"
            )
        bad = []
        for number, line in enumerate(list_from_file(self.ann_file), start=1):
            parts = line.strip().rsplit(" ", 1)
            label = parts[1] if len(parts) == 2 else ""
            ok = label.lstrip("-").isdigit() and (
                0 <= int(label) < (self.num_classes or int(label) + 1)
            )
            if not ok:
                bad.append(f"line {number}: {line.strip()!r}")
        if bad:
            labels = f"0..{self.num_classes - 1}" if self.num_classes else "0, 1, ..."
            raise ValueError(
                f"{self.ann_file}: {len(bad)} lines are not '<relative/path> <label>' with an "
                f"integer label in {labels}: {_listing(bad)}"
            )
