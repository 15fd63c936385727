"""Picture of monocular 3D boxes on an image plus a bird's-eye view.

    python tools/mono3d_demo.py IMAGE --calib CALIB [--label LABEL] [--result RESULT]
        [--config CFG --checkpoint CKPT] --out PNG
    python tools/mono3d_demo.py --kitti ROOT --ids ID [ID ...] [--results DIR] --out PNG

``--calib``: a KITTI calibration file (its ``P2``), KITTI-raw's ``calib_cam_to_cam.txt`` (its
``P_rect_02``), or a text file or a quoted string with the 9 / 12 numbers of a 3x3 intrinsic /
3x4 projection matrix (row-major). With ``--label`` (KITTI label file) the ground truth is
drawn in green; predictions, from a KITTI result file (``--result``) or from the model
(``--config`` and ``--checkpoint``), in class colours (score >= --score-thr). The
bird's-eye view at the right has axes in metres and reaches the farthest box.

The second form draws a grid, one row per frame of a KITTI-layout folder
(``ROOT/training/{image_2,calib,label_2}/ID``) with the result files ``DIR/ID.txt``.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys

import cv2
import numpy as np

INTRINSICS_REQUIRED = (
    "camera intrinsics are required to place 3D boxes: pass --calib with a KITTI "
    'calibration file (a "P2: ..." line) or a 3x3 / 3x4 camera matrix (a text file or a '
    "quoted string of 9 or 12 numbers, row-major)"
)
GT_COLOR = (60, 200, 60)
CLASS_COLORS = {"Car": (0, 140, 255), "Pedestrian": (255, 80, 200), "Cyclist": (255, 200, 0)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", help="image file")
    parser.add_argument("--calib", help="KITTI calib file or 3x3 / 3x4 camera matrix")
    parser.add_argument("--label", help="KITTI label file to draw as ground truth")
    parser.add_argument("--result", help="KITTI result file to draw as predictions")
    parser.add_argument("--kitti", help="KITTI-layout root (grid of --ids)")
    parser.add_argument("--ids", nargs="+", help="frame ids of the grid (with --kitti)")
    parser.add_argument("--results", help="folder of result files ID.txt (with --kitti)")
    parser.add_argument("--config", help="model config (with --checkpoint)")
    parser.add_argument("--checkpoint", help="model checkpoint (with --config)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--device", default="cpu", help="device for inference, e.g. cuda:0")
    parser.add_argument("--score-thr", type=float, default=0.3, help="prediction score cut")
    parser.add_argument(
        "--colors",
        type=int,
        help="write a palette PNG of at most this many colours (2-256; smaller files for docs)",
    )
    args = parser.parse_args(argv)
    if args.colors is not None and not 2 <= args.colors <= 256:
        parser.error(f"--colors {args.colors}: expected 2 to 256")
    if args.kitti is not None:
        if not args.ids:
            parser.error("--kitti needs --ids")
        return args
    if args.image is None:
        parser.error("give an IMAGE (or --kitti ROOT --ids ...)")
    if (args.config is None) != (args.checkpoint is None):
        parser.error("--config and --checkpoint go together")
    if args.calib is None:
        parser.error(INTRINSICS_REQUIRED)
    if args.label is None and args.config is None and args.result is None:
        parser.error("nothing to draw: give --label, --result and/or --config with --checkpoint")
    return args


def read_image(path: str) -> np.ndarray:
    """BGR uint8 image; FileNotFoundError when absent, ValueError when not decodable."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(
            f"image could not be decoded: {path} (a corrupt or truncated file, or a format "
            "OpenCV does not read)"
        )
    return image


def load_intrinsics(calib: str) -> np.ndarray:
    """(4, 4) ``cam2img`` from a KITTI calib file, a matrix file or a string of numbers."""
    from plgvit_mm.datasets.kitti_files import projection_to_cam2img, read_calib_file

    if osp.isfile(calib):
        with open(calib, encoding="utf-8") as f:
            text = f.read()
        if ":" in text:
            return read_calib_file(calib).cam2img
    else:
        text = calib
    try:
        values = [float(v) for v in re.split(r"[\s,;]+", text.strip()) if v]
    except ValueError:
        raise ValueError(
            f"--calib {calib!r}: not a KITTI calib file nor 9 / 12 numbers; " + INTRINSICS_REQUIRED
        ) from None
    if len(values) not in (9, 12):
        raise ValueError(
            f"--calib {calib!r}: expected 9 (3x3) or 12 (3x4) numbers, got {len(values)}"
        )
    return projection_to_cam2img(np.array(values).reshape(3, -1))


def predict(config: str, checkpoint: str, image: str, cam2img: np.ndarray, device: str):
    """(boxes_3d (N, 7), class names (N,), scores (N,)) of the model on ``image``."""
    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import plgvit_mm  # noqa: F401  (registers the mono 3D parts)

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get("default_scope", "mmdet"))
    model = MODELS.build(cfg.model)
    meta = load_checkpoint(model, checkpoint, map_location="cpu").get("meta", {})
    model.to(device).eval()
    dataset_cfg = cfg.test_dataloader.dataset
    classes = (
        meta.get("dataset_meta", {}).get("classes")
        or DATASETS.get(dataset_cfg.type).METAINFO["classes"]
    )
    pipeline = Compose(dataset_cfg.pipeline)
    data = pipeline(
        dict(
            img_path=image,
            img_id=osp.splitext(osp.basename(image))[0],
            cam2img=cam2img.tolist(),
            instances=[],
        )
    )
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0].pred_instances.cpu().numpy()
    names = np.array([classes[i] for i in result.labels], dtype=str)
    return result.bboxes_3d, names, result.scores


def render(image: np.ndarray, cam2img: np.ndarray, gt=None, pred=None) -> np.ndarray:
    """The image with projected boxes, and the bird's-eye view at its right (same height).

    ``gt``: (boxes (N, 7), names); ``pred``: (boxes (N, 7), names, scores).
    """
    from plgvit_mm.visualization import draw_bev, draw_boxes3d_on_image

    canvas, bev_sets = image, []
    legend = []
    if gt is not None:
        boxes, names = gt
        canvas = draw_boxes3d_on_image(canvas, boxes, cam2img, GT_COLOR, texts=list(names))
        bev_sets.append((boxes, GT_COLOR))
        legend.append(("ground truth", GT_COLOR))
    if pred is not None:
        boxes, names, scores = pred
        colors = [CLASS_COLORS.get(n, (0, 0, 255)) for n in names]
        texts = [f"{n} {s:.2f}" for n, s in zip(names, scores, strict=True)]
        canvas = draw_boxes3d_on_image(canvas, boxes, cam2img, colors, texts=texts)
        for name in dict.fromkeys(names):
            bev_sets.append((boxes[names == name], CLASS_COLORS.get(name, (0, 0, 255))))
        legend += [(f"predicted {n}", c) for n, c in CLASS_COLORS.items()]
    bev = draw_bev(bev_sets)
    for i, (text, color) in enumerate(legend):
        cv2.putText(
            bev, text, (60, 24 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA
        )
    scale = canvas.shape[0] / bev.shape[0]
    bev = cv2.resize(
        bev, (int(round(bev.shape[1] * scale)), canvas.shape[0]), interpolation=cv2.INTER_AREA
    )
    return np.concatenate([canvas, bev], 1)


def _objects(path: str | None, min_score: float | None = None):
    """(boxes (N, 7), names (N,), scores (N,) or None) of a label / result file, no DontCare."""
    from plgvit_mm.datasets.kitti_files import read_label_file

    if path is None or not osp.isfile(path):
        return None
    objects = read_label_file(path)
    if objects.score is None:
        objects.score = np.ones(len(objects))
    keep = objects.names != "DontCare"
    if min_score is not None and objects.score is not None:
        keep &= objects.score >= min_score
    objects = objects.select(keep)
    return objects.boxes3d, objects.names, objects.score


def render_grid(root: str, ids: list[str], results: str | None, score_thr: float) -> np.ndarray:
    """One row per frame: the image with ground truth and result boxes, and its BEV."""
    from plgvit_mm.datasets.kitti_files import read_calib_file

    rows = []
    for fid in ids:
        training = osp.join(root, "training")
        image = read_image(osp.join(training, "image_2", f"{fid}.png"))
        cam2img = read_calib_file(osp.join(training, "calib", f"{fid}.txt")).cam2img
        gt = _objects(osp.join(training, "label_2", f"{fid}.txt"))
        pred = None
        if results is not None:
            pred = _objects(osp.join(results, f"{fid}.txt"), score_thr)
        gt = None if gt is None else gt[:2]
        rows.append(render(image, cam2img, gt, pred))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.kitti is not None:
            picture = render_grid(args.kitti, args.ids, args.results, args.score_thr)
        else:
            picture = render_single(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"mono3d_demo.py: error: {error}", file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    from plgvit_mm.utils.atomic_file import atomic_write_bytes

    atomic_write_bytes(encode_png(picture, args.colors), args.out)
    print(f"wrote {args.out} ({picture.shape[1]} x {picture.shape[0]} px)")
    return 0


def encode_png(picture: np.ndarray, colors: int | None = None) -> bytes:
    """PNG bytes of a (H, W, 3) uint8 BGR picture; with ``colors``, a palette PNG of at most
    that many colours (median cut)."""
    if colors is None:
        ok, encoded = cv2.imencode(".png", picture)
        if not ok:
            raise OSError("cannot encode the picture as PNG")
        return encoded.tobytes()
    import io

    from PIL import Image

    rgb = Image.fromarray(np.ascontiguousarray(picture[..., ::-1]))
    buffer = io.BytesIO()
    rgb.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def render_single(args: argparse.Namespace) -> np.ndarray:
    """The picture of one image (first form of the usage)."""
    image = read_image(args.image)
    cam2img = load_intrinsics(args.calib)
    for path in (args.label, args.result):
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f"file not found: {path}")
    gt = pred = None
    if args.label:
        boxes, names, _ = _objects(args.label)
        gt = (boxes, names)
    if args.result:
        pred = _objects(args.result, args.score_thr)
    if args.config:
        boxes, names, scores = predict(
            args.config, args.checkpoint, args.image, cam2img, args.device
        )
        keep = scores >= args.score_thr
        pred = (boxes[keep], names[keep], scores[keep])
    return render(image, cam2img, gt, pred)


if __name__ == "__main__":
    sys.exit(main())
