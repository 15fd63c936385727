"""Generated driving scenes in KITTI's 3D object format, with exact labels.

    python -m plgvit_mm.datasets.synthetic_kitti OUT --split train|val|test --frames N --seed S

Layout (KITTI's ``training/`` layout; every split is labelled, ids differ per split)::

    OUT/training/image_2/NNNNNN.png     375 x 1242 RGB
    OUT/training/label_2/NNNNNN.txt     KITTI label lines (15 fields)
    OUT/training/calib/NNNNNN.txt       P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    OUT/ImageSets/{train,val,test}.txt  the split's frame ids

Frame ids are ``SPLIT_ID_OFFSETS[split] + index`` and every frame draws from its own random
stream ``(seed, split, index)``, so the splits never share a frame or a stream and any frame
can be regenerated alone.

Scene: the camera of KITTI frame 000000 (its calibration file, P2 with the stereo baseline
terms) 1.65 m above a flat, textured road (asphalt noise, lane markings every 3.5 m, verges)
under a sky, horizon at the principal point's row. Cars, pedestrians and cyclists are shaded
boxes (Lambertian faces, a contact shadow) with KITTI-typical dimensions (class means of
KITTI's training set, 6 % spread), uniform yaw, 5-60 m ahead and within 15 m laterally,
never intersecting, drawn far to near so nearer objects occlude farther ones.

Labels, per object, from the rendering itself:
    bbox: the projection of the 3D box clipped to the image (pixel-centre coordinates);
    truncated: 1 - clipped / unclipped area of that projected 2D box;
    occluded: from the fraction of the object's own in-image silhouette hidden by objects
        drawn after it: 0 (< 5 %), 1 (< 50 %), 2 (the rest); objects with less than 10
        visible pixels or 5 % of their silhouette are left out (nothing shows);
    alpha: rotation_y - atan2(x, z); location: bottom centre on the road (y = 1.65).
Objects whose 2D box is under 15 px tall become DontCare lines (KITTI labels none so small).
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import os.path as osp
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..structures import box_corners, boxes_to_bbox2d, project_points, rotation_y_to_alpha
from ..utils.atomic_file import atomic_write_bytes, atomic_write_text
from .kitti_files import KittiCalib, KittiObjects, write_calib_file, write_label_file

IMAGE_SHAPE = (375, 1242)  # H x W
CAMERA_HEIGHT = 1.65  # metres above the road (KITTI's camera rig)
# the calibration of KITTI training frame 000000 (rows of 3x4 / 3x3 matrices)
KITTI_000000_CALIB = dict(
    P0=[[707.0493, 0.0, 604.0814, 0.0], [0.0, 707.0493, 180.5066, 0.0], [0.0, 0.0, 1.0, 0.0]],
    P1=[
        [707.0493, 0.0, 604.0814, -379.7842],
        [0.0, 707.0493, 180.5066, 0.0],
        [0.0, 0.0, 1.0, 0.0],
    ],
    P2=[
        [707.0493, 0.0, 604.0814, 45.75831],
        [0.0, 707.0493, 180.5066, -0.3454157],
        [0.0, 0.0, 1.0, 0.004981016],
    ],
    P3=[
        [707.0493, 0.0, 604.0814, -334.1081],
        [0.0, 707.0493, 180.5066, 2.33066],
        [0.0, 0.0, 1.0, 0.003201153],
    ],
    R0_rect=[
        [0.9999127984047, 0.01009263005108, -0.008511931635439],
        [-0.01012729015201, 0.9999405741692, -0.004037670791149],
        [0.008470674976707, 0.004123521968722, 0.9999555945396],
    ],
    Tr_velo_to_cam=[
        [0.006927963811904, -0.9999722242355, -0.002757828915492, -0.02457728981972],
        [-0.001162981963716, 0.002749836072326, -0.9999955296516, -0.06127237156034],
        [0.9999753236771, 0.006931141018867, -0.001143899047747, -0.332102894783],
    ],
    Tr_imu_to_velo=[
        [0.9999976158142, 0.000755307090003, -0.002035825978965, -0.8086758852005],
        [-0.0007854027207941, 0.9998897910118, -0.014822980389, 0.3195559084415],
        [0.002024406101555, 0.01482454035431, 0.9998881220818, -0.7997230887413],
    ],
)
SPLITS = ("train", "val", "test")
SPLIT_ID_OFFSETS = {"train": 0, "val": 300000, "test": 600000}
MAX_FRAMES = 300000  # per split (6-digit ids)
DEPTH_RANGE = (5.0, 60.0)  # metres ahead (box centre)
LATERAL_RANGE = 15.0  # metres left / right
DONTCARE_HEIGHT = 15.0  # px: smaller objects are DontCare
MIN_VISIBLE_PIXELS = 10
MIN_VISIBLE_FRACTION = 0.05
OCCLUSION_LEVELS = (0.05, 0.5)  # hidden fraction below which the level is 0, 1 (else 2)
DIMENSION_SPREAD = 0.06  # relative standard deviation of h w l


@dataclass(frozen=True)
class ClassSpec:
    """How many objects of a class a frame holds, their mean size and colours (RGB)."""

    name: str
    count: tuple[int, int]  # inclusive range per frame
    dims_mean: tuple[float, float, float]  # h w l, metres
    colors: tuple[tuple[int, int, int], ...]


# mean h w l: KITTI training set (MonoDLE / MonoCon's class means)
CLASS_SPECS = (
    ClassSpec(
        "Car",
        (3, 8),
        (1.526, 1.629, 3.883),
        ((200, 30, 30), (30, 60, 190), (220, 220, 225), (40, 40, 45), (150, 150, 160)),
    ),
    ClassSpec(
        "Pedestrian", (0, 3), (1.763, 0.661, 0.844), ((230, 170, 60), (120, 60, 150), (60, 160, 90))
    ),
    ClassSpec("Cyclist", (0, 2), (1.737, 0.597, 1.763), ((250, 120, 20), (20, 170, 200))),
)
# faces of box_corners' corner order, each listed so its normal can be taken from the centre
BOX_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (3, 0, 4, 7), (1, 2, 6, 5))
LIGHT = np.array([-0.4, -1.0, -0.3]) / np.linalg.norm([-0.4, -1.0, -0.3])  # towards the sun
SUBPIXEL_BITS = 4  # cv2 fill precision: 1/16 px


@dataclass
class Frame:
    """One generated frame: image (H, W, 3) uint8 RGB, its calibration, labels, and the
    rendering's bookkeeping: ``instance_map`` (H, W) int32, 0 = background, k + 1 = the k-th
    drawn object; ``boxes`` (K, 7) and ``names`` (K,) of the drawn objects in drawing order
    (far to near); ``label_index`` (K,) the line of each in ``labels`` (-1 if left out)."""

    image: np.ndarray
    calib: KittiCalib
    labels: KittiObjects
    instance_map: np.ndarray
    boxes: np.ndarray
    names: np.ndarray
    label_index: np.ndarray


def kitti_calib() -> KittiCalib:
    """The calibration of every generated frame (KITTI frame 000000's)."""
    return KittiCalib(**{k: np.array(v, dtype=np.float64) for k, v in KITTI_000000_CALIB.items()})


def frame_id(split: str, index: int) -> str:
    """The 6-digit id of frame ``index`` of ``split``."""
    if split not in SPLIT_ID_OFFSETS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= index < MAX_FRAMES:
        raise ValueError(f"frame index must be in [0, {MAX_FRAMES}), got {index}")
    return f"{SPLIT_ID_OFFSETS[split] + index:06d}"


def _camera_centre(p2: np.ndarray) -> np.ndarray:
    """The projection centre of P2 (3,): the point with P2 @ [c, 1] = 0."""
    return -np.linalg.solve(p2[:, :3], p2[:, 3])


def _sample_objects(rng: np.random.Generator, p2: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Non-intersecting boxes (K, 7) on the road, at least partly inside the image."""
    boxes, names, radii = [], [], []
    height, width = IMAGE_SHAPE
    for spec in CLASS_SPECS:
        for _ in range(rng.integers(spec.count[0], spec.count[1] + 1)):
            for _attempt in range(30):
                dims = np.array(spec.dims_mean) * (1 + DIMENSION_SPREAD * rng.standard_normal(3))
                z = rng.uniform(*DEPTH_RANGE)
                x = rng.uniform(-LATERAL_RANGE, LATERAL_RANGE)
                box = np.array([x, CAMERA_HEIGHT, z, *dims, rng.uniform(-math.pi, math.pi)])
                radius = math.hypot(dims[1], dims[2]) / 2
                if any(
                    math.hypot(x - b[0], z - b[2]) < radius + r + 0.3
                    for b, r in zip(boxes, radii, strict=True)
                ):
                    continue
                if box_corners(box)[:, 2].min() < 1.0:
                    continue
                x1, y1, x2, y2 = boxes_to_bbox2d(box, p2)
                if x2 < 0 or x1 > width - 1 or y2 < 0 or y1 > height - 1:
                    continue
                boxes.append(box)
                names.append(spec.name)
                radii.append(radius)
                break
    return np.array(boxes, dtype=np.float64).reshape(-1, 7), names


@functools.cache
def _road_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel (H, W) float32: road x and z in metres where the ray meets the road, the
    road mask, and the sky gradient weight (0 at the top, 1 at the horizon)."""
    p2 = kitti_calib().P2
    height, width = IMAGE_SHAPE
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    f, c_u, c_v = p2[0, 0], p2[0, 2], p2[1, 2]
    # ray through (u, v) meets the road y = CAMERA_HEIGHT at depth z (P2's baseline terms kept)
    denominator = v - c_v
    ground = denominator > 0.5
    z = np.where(
        ground,
        (f * CAMERA_HEIGHT + p2[1, 3] - v * p2[2, 3]) / np.where(ground, denominator, 1),
        1e4,
    )
    x = (u * (z + p2[2, 3]) - c_u * z - p2[0, 3]) / f
    sky = np.clip(v / max(c_v, 1.0), 0, 1)
    return x.astype(np.float32), z.astype(np.float32), ground, sky.astype(np.float32)


def _road(rng: np.random.Generator) -> np.ndarray:
    """Sky and textured road (H, W, 3) float32 RGB in [0, 255]."""
    height, width = IMAGE_SHAPE
    x, z, ground, t = _road_geometry()
    lane_offset = np.float32(rng.uniform(-1.75, 1.75))
    dash_phase = np.float32(rng.uniform(0, 12))
    lane_x = np.abs(np.remainder(x - lane_offset, np.float32(3.5)) - np.float32(1.75))
    dashes = np.remainder(z + dash_phase, np.float32(12.0)) < 6.0
    # lines 0.15 m wide, faded with distance so far lines do not alias
    marking = ((lane_x > 1.75 - 0.075) & dashes & (np.abs(x) < 9)) * np.clip(
        np.float32(1.5) - z / 60, 0, 1
    )
    verge = np.abs(x - lane_offset) > 9.5
    noise = cv2.resize(
        rng.standard_normal((48, 160), dtype=np.float32), (width, height), cv2.INTER_CUBIC
    )
    grain = rng.standard_normal((height, width), dtype=np.float32) * np.clip(20 / z, 0, 1)
    shade = 1 + 0.08 * noise + 0.05 * grain
    asphalt = np.float32([95.0, 95.0, 100.0]) * np.float32(rng.uniform(0.8, 1.2))
    grass = np.float32([70.0, 110.0, 55.0]) * np.float32(rng.uniform(0.8, 1.2))
    road = np.where(verge[..., None], grass, asphalt) * shade[..., None]
    road += (235.0 - road) * marking[..., None]
    sky_top, sky_bottom = np.float32([90.0, 140.0, 215.0]), np.float32([200.0, 215.0, 235.0])
    sky = sky_top + (sky_bottom - sky_top) * t[..., None]
    return np.where(ground[..., None], road, sky)


def _pixels(points: np.ndarray) -> np.ndarray:
    """cv2 fixed-point polygon vertices (N, 2) int32 of pixel-centre coordinates."""
    return np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32)


def render_frame(rng: np.random.Generator) -> Frame:
    """Sample a scene and draw it (see the module docstring)."""
    calib = kitti_calib()
    p2 = calib.P2
    height, width = IMAGE_SHAPE
    boxes, names = _sample_objects(rng, p2)
    eye = _camera_centre(p2)
    order = np.argsort(-np.hypot(boxes[:, 0] - eye[0], boxes[:, 2] - eye[2]), kind="stable")
    boxes, names = boxes[order], np.array(names, dtype=str)[order]
    image = _road(rng)
    corners = box_corners(boxes)  # (K, 8, 3)
    uv = project_points(corners, p2)[0]
    # contact shadows: the footprint, 15 % larger, darkened
    shadow = np.zeros((height, width), np.uint8)
    for k in range(len(boxes)):
        bottom = corners[k, :4]
        grown = bottom.mean(0) + 1.15 * (bottom - bottom.mean(0))
        cv2.fillConvexPoly(
            shadow, _pixels(project_points(grown, p2)[0]), 1, cv2.LINE_8, SUBPIXEL_BITS
        )
    image *= 1 - 0.45 * shadow[..., None]
    image = np.clip(image, 0, 255).astype(np.uint8)  # cv2 anti-aliases 8-bit images only
    instance_map = np.zeros((height, width), np.int32)
    silhouettes = []
    for k in range(len(boxes)):
        spec = next(s for s in CLASS_SPECS if s.name == names[k])
        base = np.array(spec.colors[rng.integers(len(spec.colors))], dtype=np.float64)
        base = np.clip(base * rng.uniform(0.8, 1.15), 0, 255)
        centre = corners[k].mean(0)
        # the object's own silhouette, drawn in a crop around its projection
        x0, y0 = np.clip(np.floor(uv[k].min(0)).astype(int) - 1, 0, None)
        x1, y1 = np.ceil(uv[k].max(0)).astype(int) + 2
        x1, y1 = min(x1, width), min(y1, height)
        own = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
        for face in BOX_FACES:
            points = corners[k, list(face)]
            normal = points.mean(0) - centre
            normal /= np.linalg.norm(normal)
            if normal @ (points.mean(0) - eye) >= 0:  # faces away from the camera
                continue
            color = base * (0.45 + 0.55 * max(0.0, float(normal @ LIGHT)))
            polygon = _pixels(uv[k, list(face)])
            cv2.fillConvexPoly(image, polygon, color.tolist(), cv2.LINE_AA, SUBPIXEL_BITS)
            cv2.fillConvexPoly(instance_map, polygon, k + 1, cv2.LINE_8, SUBPIXEL_BITS)
            offset = _pixels(np.array([x0, y0], dtype=np.float64))
            cv2.fillConvexPoly(own, polygon - offset, 1, cv2.LINE_8, SUBPIXEL_BITS)
        silhouettes.append(int(own.sum()) if x1 > x0 and y1 > y0 else 0)
    noisy = image.astype(np.float32) * np.float32(rng.uniform(0.85, 1.15))
    noisy += rng.standard_normal(image.shape, dtype=np.float32) * 2
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    labels, label_index = _labels(boxes, names, instance_map, silhouettes, p2)
    return Frame(image, calib, labels, instance_map, boxes, names, label_index)


def _labels(
    boxes: np.ndarray,
    names: np.ndarray,
    instance_map: np.ndarray,
    silhouettes: Sequence[int],
    p2: np.ndarray,
) -> tuple[KittiObjects, np.ndarray]:
    """KITTI label objects of the drawn boxes (see the module docstring), near to far."""
    visible = np.bincount(instance_map.ravel(), minlength=len(boxes) + 1)[1:]
    full = boxes_to_bbox2d(boxes, p2)
    clipped = boxes_to_bbox2d(boxes, p2, IMAGE_SHAPE)

    def area(b: np.ndarray) -> np.ndarray:
        return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)

    truncated = np.clip(1 - area(clipped) / np.maximum(area(full), 1e-9), 0, 1)
    own = np.maximum(np.asarray(silhouettes, dtype=np.float64), 1)
    hidden = 1 - visible / own
    occluded = np.digitize(hidden, OCCLUSION_LEVELS)
    shown = (visible >= MIN_VISIBLE_PIXELS) & (visible >= MIN_VISIBLE_FRACTION * own)
    label_index = np.full(len(boxes), -1)
    rows = []
    for k in np.nonzero(shown)[0][::-1]:  # near to far, like KITTI's files
        label_index[k] = len(rows)
        rows.append(k)
    rows = np.array(rows, dtype=np.int64)
    b = boxes[rows]
    dontcare = clipped[rows, 3] - clipped[rows, 1] < DONTCARE_HEIGHT
    labels = KittiObjects(
        names=np.where(dontcare, "DontCare", names[rows]),
        truncated=np.where(dontcare, -1.0, np.round(truncated[rows], 2)),
        occluded=np.where(dontcare, -1, occluded[rows]),
        alpha=np.where(dontcare, -10.0, rotation_y_to_alpha(b[:, 6], b[:, 0], b[:, 2])),
        bbox=clipped[rows],
        dimensions=np.where(dontcare[:, None], -1.0, b[:, 3:6]),
        location=np.where(dontcare[:, None], -1000.0, b[:, :3]),
        rotation_y=np.where(dontcare, -10.0, b[:, 6]),
    )
    return labels, label_index


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one frame: independent per (seed, split, index)."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def write_split(out: str, split: str, frames: int, seed: int) -> list[str]:
    """Generate ``frames`` frames of ``split`` under ``out`` (layout in the module docstring);
    returns their ids. Existing files of the same ids are replaced."""
    if frames <= 0 or frames > MAX_FRAMES:
        raise ValueError(f"--frames must be in [1, {MAX_FRAMES}], got {frames}")
    ids = []
    for index in range(frames):
        fid = frame_id(split, index)
        frame = render_frame(frame_rng(seed, split, index))
        buffer = io.BytesIO()
        Image.fromarray(frame.image).save(buffer, format="PNG", compress_level=1)
        atomic_write_bytes(buffer.getvalue(), osp.join(out, "training", "image_2", f"{fid}.png"))
        write_label_file(osp.join(out, "training", "label_2", f"{fid}.txt"), frame.labels)
        write_calib_file(osp.join(out, "training", "calib", f"{fid}.txt"), frame.calib)
        ids.append(fid)
    atomic_write_text("".join(f"{i}\n" for i in ids), osp.join(out, "ImageSets", f"{split}.txt"))
    return ids


def count_objects(out: str, split: str) -> dict[str, int]:
    """Labelled objects of a written split per class and KITTI difficulty (moderate cars:
    ``Car_moderate``), from its label files."""
    from ..evaluation.kitti_eval import DIFFICULTIES, MAX_OCCLUSION, MAX_TRUNCATION, MIN_HEIGHT
    from .kitti_files import read_image_set, read_label_file

    counts: dict[str, int] = {}
    for fid in read_image_set(osp.join(out, "ImageSets", f"{split}.txt")):
        labels = read_label_file(osp.join(out, "training", "label_2", f"{fid}.txt"))
        height = labels.bbox[:, 3] - labels.bbox[:, 1]
        for spec in CLASS_SPECS:
            is_class = labels.names == spec.name
            for d, name in enumerate(DIFFICULTIES):
                ok = (
                    is_class
                    & (labels.occluded <= MAX_OCCLUSION[d])
                    & (labels.truncated <= MAX_TRUNCATION[d])
                    & (height > MIN_HEIGHT[d])
                )
                key = f"{spec.name}_{name}"
                counts[key] = counts.get(key, 0) + int(ok.sum())
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plgvit_mm.datasets.synthetic_kitti",
        description="Generate KITTI-format driving scenes (image_2, label_2, calib, ImageSets).",
    )
    parser.add_argument("out", help="dataset root (KITTI layout: training/, ImageSets/)")
    parser.add_argument("--split", required=True, choices=SPLITS)
    parser.add_argument("--frames", type=int, required=True, help="frames to generate")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    try:
        ids = write_split(args.out, args.split, args.frames, args.seed)
    except ValueError as error:
        parser.error(str(error))
    counts = count_objects(args.out, args.split)
    print(
        f"{args.split}: {len(ids)} frames ({ids[0]}..{ids[-1]}) in {args.out}; "
        + ", ".join(f"{k} {v}" for k, v in counts.items() if k.endswith("moderate"))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
