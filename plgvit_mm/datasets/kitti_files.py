"""Reading and writing KITTI object files: labels/results, calibrations and ImageSets.

Label line (15 fields; result files add a 16th, the score)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

bbox in pixels, dimensions h w l in metres, location = BOTTOM centre of the box in the
rectified camera-2 frame (x right, y down, z forward), angles in radians.

Calibration file: ``KEY: v0 v1 ...`` lines, row-major; P0..P3 (3x4), R0_rect (3x3),
Tr_velo_to_cam and Tr_imu_to_velo (3x4). Only P2 is required (labels live in the rectified
camera frame, so projecting them needs P2 alone). KITTI-raw's ``calib_cam_to_cam.txt``
(``P_rect_02``) is read too; unknown keys are ignored.

Every writer is atomic (temporary file in the target folder, then ``os.replace``), so an
interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.atomic_file import atomic_write_text

LABEL_FIELDS = 15
RESULT_FIELDS = 16
LABEL_PRECISION = 2  # decimals of KITTI's label files
RESULT_PRECISION = 4  # decimals of the result files written here
CALIB_SHAPES: dict[str, tuple[int, int]] = {
    "P0": (3, 4),
    "P1": (3, 4),
    "P2": (3, 4),
    "P3": (3, 4),
    "R0_rect": (3, 3),
    "Tr_velo_to_cam": (3, 4),
    "Tr_imu_to_velo": (3, 4),
}
REQUIRED_CALIB_KEYS = ("P2",)


@dataclass
class KittiObjects:
    """The N objects of one label or result file, as column arrays.

    Attributes:
        names: (N,) str, object types ('Car', 'Van', 'DontCare', ...).
        truncated: (N,) float64 in [0, 1] (-1 for DontCare / unknown).
        occluded: (N,) int64, 0 visible .. 3 unknown (-1 for DontCare / unknown).
        alpha: (N,) float64 observation angle, radians (-10 = unknown).
        bbox: (N, 4) float64, x1 y1 x2 y2 in pixels.
        dimensions: (N, 3) float64, h w l in metres.
        location: (N, 3) float64, bottom centre x y z in the rectified camera frame, metres.
        rotation_y: (N,) float64, yaw around the camera y axis, radians.
        score: (N,) float64 detection scores, or None for ground-truth labels.
    """

    names: np.ndarray
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    bbox: np.ndarray
    dimensions: np.ndarray
    location: np.ndarray
    rotation_y: np.ndarray
    score: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.names = np.asarray(self.names, dtype=str).reshape(-1)
        n = len(self.names)
        self.truncated = _column(self.truncated, (n,), "truncated", np.float64)
        self.occluded = _column(self.occluded, (n,), "occluded", np.int64)
        self.alpha = _column(self.alpha, (n,), "alpha", np.float64)
        self.bbox = _column(self.bbox, (n, 4), "bbox", np.float64)
        self.dimensions = _column(self.dimensions, (n, 3), "dimensions", np.float64)
        self.location = _column(self.location, (n, 3), "location", np.float64)
        self.rotation_y = _column(self.rotation_y, (n,), "rotation_y", np.float64)
        if self.score is not None:
            self.score = _column(self.score, (n,), "score", np.float64)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def empty(cls, with_score: bool = False) -> KittiObjects:
        """Zero objects (an image without labels or detections)."""
        return cls(
            names=np.zeros(0, dtype=str),
            truncated=[],
            occluded=[],
            alpha=[],
            bbox=np.zeros((0, 4)),
            dimensions=np.zeros((0, 3)),
            location=np.zeros((0, 3)),
            rotation_y=[],
            score=np.zeros(0) if with_score else None,
        )

    @property
    def boxes3d(self) -> np.ndarray:
        """(N, 7) camera boxes ``x y z h w l rotation_y`` (see plgvit_mm.structures)."""
        return np.concatenate([self.location, self.dimensions, self.rotation_y[:, None]], axis=1)

    def select(self, index: np.ndarray | Sequence[int] | slice) -> KittiObjects:
        """A subset of the objects (boolean mask, integer indices or slice)."""
        return KittiObjects(
            names=self.names[index],
            truncated=self.truncated[index],
            occluded=self.occluded[index],
            alpha=self.alpha[index],
            bbox=self.bbox[index],
            dimensions=self.dimensions[index],
            location=self.location[index],
            rotation_y=self.rotation_y[index],
            score=None if self.score is None else self.score[index],
        )


def _column(value, shape: tuple[int, ...], name: str, dtype) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.size == 0 and int(np.prod(shape)) == 0:
        return array.reshape(shape)
    if array.shape != shape:
        raise ValueError(f"KittiObjects.{name}: expected shape {shape}, got {array.shape}")
    return array


def _parse_floats(tokens: Sequence[str], source: str | Path, lineno: int, what: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise ValueError(
            f"{source}:{lineno}: expected {what} as numbers, got {' '.join(tokens)!r}"
        ) from None


def read_label_file(path: str | os.PathLike) -> KittiObjects:
    """Read a KITTI label (15 fields a line) or result file (16 fields, last = score).

    Raises FileNotFoundError if the file is missing and ValueError naming the file and line
    for a malformed line (see :func:`parse_label_text`).
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        return parse_label_text(f.read(), str(path))


def parse_label_text(text: str, source: str = "<text>") -> KittiObjects:
    """Parse KITTI label/result lines; ``source`` names the text in error messages.

    Blank lines are skipped; no lines give zero objects. All lines must have the same field
    count (15, or 16 with scores).
    """
    rows: list[list[str]] = []
    linenos: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) not in (LABEL_FIELDS, RESULT_FIELDS):
            raise ValueError(
                f"{source}:{lineno}: expected {LABEL_FIELDS} fields (type truncated occluded "
                f"alpha x1 y1 x2 y2 h w l x y z rotation_y) or {RESULT_FIELDS} (+ score), "
                f"got {len(tokens)}: {line.strip()!r}"
            )
        if rows and len(tokens) != len(rows[0]):
            raise ValueError(
                f"{source}:{lineno}: expected {len(rows[0])} fields like line {linenos[0]}, "
                f"got {len(tokens)} (label and result lines cannot be mixed)"
            )
        rows.append(tokens)
        linenos.append(lineno)
    if not rows:
        return KittiObjects.empty()
    values = np.empty((len(rows), len(rows[0]) - 1), dtype=np.float64)
    for i, (tokens, lineno) in enumerate(zip(rows, linenos, strict=True)):
        values[i] = _parse_floats(tokens[1:], source, lineno, f"fields 2..{len(tokens)}")
        if values[i, 1] != round(values[i, 1]):
            raise ValueError(
                f"{source}:{lineno}: expected an integer occlusion level (-1..3), got {tokens[2]!r}"
            )
    return KittiObjects(
        names=np.array([r[0] for r in rows], dtype=str),
        truncated=values[:, 0],
        occluded=values[:, 1].astype(np.int64),
        alpha=values[:, 2],
        bbox=values[:, 3:7],
        dimensions=values[:, 7:10],
        location=values[:, 10:13],
        rotation_y=values[:, 13],
        score=values[:, 14] if values.shape[1] == RESULT_FIELDS - 1 else None,
    )


def format_label_lines(objects: KittiObjects, precision: int = LABEL_PRECISION) -> str:
    """KITTI label text for ``objects`` (16 fields when they carry scores).

    ``precision`` decimals for every float (KITTI's labels use 2, result files here 4);
    scores get at least 4.
    """
    p = precision
    lines = []
    for i in range(len(objects)):
        floats = [
            objects.alpha[i],
            *objects.bbox[i],
            *objects.dimensions[i],
            *objects.location[i],
            objects.rotation_y[i],
        ]
        line = (
            f"{objects.names[i]} {objects.truncated[i]:.{p}f} {objects.occluded[i]:d} "
            + " ".join(f"{v:.{p}f}" for v in floats)
        )
        if objects.score is not None:
            line += f" {objects.score[i]:.{max(p, 4)}f}"
        lines.append(line)
    return "".join(line + "\n" for line in lines)


def write_label_file(
    path: str | os.PathLike, objects: KittiObjects, precision: int = LABEL_PRECISION
) -> None:
    """Write ``objects`` as a KITTI label/result file, atomically (see format_label_lines)."""
    for name in objects.names:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"{path}: object type {name!r} must be one word")
    atomic_write_text(format_label_lines(objects, precision), path)


@dataclass
class KittiCalib:
    """Matrices of one KITTI calibration file (None where the file has no such line).

    P0..P3: (3, 4) projection matrices of the rectified cameras; R0_rect: (3, 3);
    Tr_velo_to_cam, Tr_imu_to_velo: (3, 4). All float64.
    """

    P2: np.ndarray
    P0: np.ndarray | None = None
    P1: np.ndarray | None = None
    P3: np.ndarray | None = None
    R0_rect: np.ndarray | None = None
    Tr_velo_to_cam: np.ndarray | None = None
    Tr_imu_to_velo: np.ndarray | None = None

    @property
    def cam2img(self) -> np.ndarray:
        """(4, 4) float64: P2 with a last row (0, 0, 0, 1)."""
        return projection_to_cam2img(self.P2)


def projection_to_cam2img(projection: np.ndarray) -> np.ndarray:
    """(3, 3), (3, 4) or (4, 4) intrinsics/projection -> (4, 4) ``cam2img``."""
    projection = np.asarray(projection, dtype=np.float64)
    if projection.shape not in ((3, 3), (3, 4), (4, 4)):
        raise ValueError(f"expected a 3x3, 3x4 or 4x4 camera matrix, got {projection.shape}")
    cam2img = np.eye(4)
    cam2img[: projection.shape[0], : projection.shape[1]] = projection
    return cam2img


# KITTI-raw ``calib_cam_to_cam.txt`` keys read as their object-benchmark equivalents
RAW_CALIB_KEYS = {
    "P_rect_00": "P0",
    "P_rect_01": "P1",
    "P_rect_02": "P2",
    "P_rect_03": "P3",
    "R_rect_00": "R0_rect",
}


def read_calib_file(path: str | os.PathLike) -> KittiCalib:
    """Read a KITTI calibration file; P2 is required, the other keys optional.

    Reads the object benchmark's files (``P2: ...``) and KITTI-raw's
    ``calib_cam_to_cam.txt`` (``P_rect_02`` is the left colour camera's P2, ``R_rect_00``
    R0_rect); lines with other keys (``calib_time``, ``S_02``, ``K_02``, ...) are ignored.
    Raises ValueError naming the file and line for a wrong value count, a non-number or a
    repeated key, and naming the file when P2 is missing.
    """
    path = Path(path)
    matrices: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            raw_key, sep, rest = line.partition(":")
            key = RAW_CALIB_KEYS.get(raw_key.strip(), raw_key.strip())
            if not sep or key not in CALIB_SHAPES:
                continue
            shape = CALIB_SHAPES[key]
            tokens = rest.split()
            if len(tokens) != shape[0] * shape[1]:
                raise ValueError(
                    f"{path}:{lineno}: expected {shape[0] * shape[1]} values for "
                    f"{raw_key.strip()} ({shape[0]}x{shape[1]}), got {len(tokens)}"
                )
            if key in matrices:
                raise ValueError(f"{path}:{lineno}: {key} appears twice")
            matrices[key] = np.array(
                _parse_floats(tokens, path, lineno, f"{raw_key.strip()} values"), dtype=np.float64
            ).reshape(shape)
    missing = [k for k in REQUIRED_CALIB_KEYS if k not in matrices]
    if missing:
        raise ValueError(
            f"{path}: missing {', '.join(missing)} (the left colour camera "
            'projection matrix: a "P2: ..." line with 12 values, or "P_rect_02: ..." in '
            "KITTI-raw's calib_cam_to_cam.txt)"
        )
    return KittiCalib(**matrices)


def write_calib_file(path: str | os.PathLike, calib: KittiCalib) -> None:
    """Write ``calib`` in KITTI's layout (``%.12e`` values, keys in the official order)."""
    lines = []
    for key, shape in CALIB_SHAPES.items():
        matrix = getattr(calib, key)
        if matrix is None:
            continue
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != shape:
            raise ValueError(f"{path}: {key} must be {shape[0]}x{shape[1]}, got {matrix.shape}")
        lines.append(f"{key}: " + " ".join(f"{v:.12e}" for v in matrix.reshape(-1)) + "\n")
    atomic_write_text("".join(lines), path)


def read_image_set(path: str | os.PathLike) -> list[str]:
    """Frame ids of an ImageSets file, one per line (blank lines skipped), in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageSets file not found: {path} (one frame id per line, e.g. ImageSets/val.txt)"
        )
    ids = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 1:
                raise ValueError(f"{path}:{lineno}: expected one frame id, got {line.strip()!r}")
            ids.append(tokens[0])
    return ids
