"""A small generated classification set in the ImageNet folder layout, for tests and CPU trials.

:func:`write_synthetic_imagenet` writes ``ROOT/{train,val}/<class>/<index>.JPEG``: class ``k``
is a filled disc of colour ``k`` (an evenly spaced hue) at a random position and size on a noisy
grey background, so a classifier can learn it in a few hundred steps::

    python -m plgvit_mm.datasets.synthetic_imagenet data/synthetic_imagenet --classes 5
"""

from __future__ import annotations

import argparse
import colorsys
import os
import os.path as osp

import numpy as np
from PIL import Image


def class_colour(index: int, num_classes: int) -> tuple[int, int, int]:
    """RGB colour (0-255) of class ``index``: evenly spaced hues, full saturation."""
    r, g, b = colorsys.hsv_to_rgb(index / num_classes, 1.0, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def synthetic_image(
    label: int, num_classes: int, size: int, rng: np.random.Generator
) -> Image.Image:
    """One ``size`` x ``size`` RGB image of class ``label``."""
    image = rng.normal(128, 20, (size, size, 3)).clip(0, 255)
    radius = rng.uniform(0.15, 0.35) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    image[disc] = class_colour(label, num_classes)
    return Image.fromarray(image.astype(np.uint8))


def write_synthetic_imagenet(
    root: str,
    num_classes: int = 5,
    train_per_class: int = 2,
    val_per_class: int = 1,
    size: int = 64,
    seed: int = 0,
) -> list[str]:
    """Write the folder-layout dataset under ``root``; returns the class names (``class_000``, ...)."""
    rng = np.random.default_rng(seed)
    classes = [f"class_{k:03d}" for k in range(num_classes)]
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, name in enumerate(classes):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                image = synthetic_image(label, num_classes, size, rng)
                image.save(osp.join(folder, f"{index:05d}.JPEG"), quality=95)
    return classes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="output folder (gets train/ and val/)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--train-per-class", type=int, default=64)
    parser.add_argument("--val-per-class", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_synthetic_imagenet(
        args.root, args.classes, args.train_per_class, args.val_per_class, args.size, args.seed
    )
    print(f"wrote {args.root}/{{train,val}}/class_*/ ({args.classes} classes)")


if __name__ == "__main__":
    main()
