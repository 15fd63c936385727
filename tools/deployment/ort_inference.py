"""Run an exported model with ONNX Runtime on one image and save the same picture as the
PyTorch demos (tools/image_demo.py for segmentors, tools/mono3d_demo.py for mono 3D).

    python tools/deployment/ort_inference.py upernet.onnx IMAGE --config CFG --out seg.png
    python tools/deployment/ort_inference.py mono3d.onnx IMAGE --config CFG --calib CALIB \\
        --out boxes.png [--score-thr 0.2]

The config gives the preprocessing (mono 3D: its test pipeline, which also adapts the camera
matrix), class names and palette. Backbone and detector-feature graphs have no picture: their
output shapes are printed. Exit status 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="exported .onnx file")
    parser.add_argument("image", help="image file")
    parser.add_argument("--config", help="config the model was exported from")
    parser.add_argument("--out", help="picture to save (segmentor and mono 3D graphs)")
    parser.add_argument("--calib", help="mono 3D: KITTI calib file or 9 / 12 numbers")
    parser.add_argument("--score-thr", type=float, default=None, help="mono 3D heatmap threshold")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    return parser.parse_args(argv)


def _mono3d_demo():
    """tools/mono3d_demo.py as a module (its intrinsics reader and picture renderer)."""
    spec = importlib.util.spec_from_file_location("mono3d_demo", REPO_ROOT / "tools/mono3d_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _static_size(session) -> tuple[int, int] | None:
    shape = session.get_inputs()[0].shape
    return (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:]) else None


def segment(session, image_path: str, cfg, out: str) -> dict:
    """Per-pixel classes of the image, drawn by the config's mmseg visualizer."""
    import mmcv
    import torch
    import torch.nn.functional as F
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import DATASETS, VISUALIZERS
    from mmseg.structures import SegDataSample

    init_default_scope("mmseg")
    image_rgb = mmcv.imread(image_path, channel_order="rgb")
    height, width = image_rgb.shape[:2]
    size = _static_size(session) or (height, width)
    resized = mmcv.imresize(image_rgb, (size[1], size[0])).astype(np.float32)
    feed = {session.get_inputs()[0].name: resized.transpose(2, 0, 1)[None]}
    (logits,) = session.run(None, feed)
    logits = F.interpolate(torch.from_numpy(logits), (height, width), mode="bilinear")
    classes = logits.argmax(1)
    sample = SegDataSample(pred_sem_seg=PixelData(data=classes))
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name="ort_inference", save_dir=None))
    visualizer.dataset_meta = DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO
    visualizer.add_datasample(
        "prediction", image_rgb, data_sample=sample, draw_gt=False, show=False, out_file=out
    )
    return {"out": out, "classes_present": sorted(int(c) for c in classes.unique())}


def detect_mono3d(session, image_path: str, cfg, calib: str, out: str, score_thr) -> dict:
    """3D boxes of the image (test pipeline of the config), drawn as tools/mono3d_demo.py does."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    import plgvit_mm  # noqa: F401  (registers the mono 3D transforms)

    demo = _mono3d_demo()
    init_default_scope("mmdet")
    cam2img = demo.load_intrinsics(calib)
    dataset_cfg = cfg.test_dataloader.dataset
    data = Compose(dataset_cfg.pipeline)(
        dict(img_path=image_path, img_id=Path(image_path).stem, cam2img=cam2img.tolist(),
             instances=[])
    )  # fmt: skip
    image = data["inputs"].flip(0).float()[None].numpy()  # BGR uint8 -> RGB float
    net_cam2img = np.asarray(data["data_samples"].metainfo["cam2img"], dtype=np.float32)[None]
    names = [i.name for i in session.get_inputs()]
    outputs = session.run(None, {names[0]: image, names[1]: net_cam2img})
    result = dict(zip([o.name for o in session.get_outputs()], outputs, strict=True))
    if score_thr is None:
        score_thr = cfg.model.get("test_cfg", {}).get("score_thr", 0.2)
    keep = result["heatmap_scores"][0] > score_thr
    classes = DATASETS.get(dataset_cfg.type).METAINFO["classes"]
    labels = result["labels"][0][keep]
    pred_names = np.array([classes[i] for i in labels], dtype=str)
    boxes, scores = result["boxes_3d"][0][keep], result["scores"][0][keep]
    picture = demo.render(demo.read_image(image_path), cam2img, pred=(boxes, pred_names, scores))
    _write_png(picture, out)
    return {"out": out, "detections": int(keep.sum()), "score_thr": score_thr}


def _write_png(picture: np.ndarray, out: str) -> None:
    """Save a BGR picture as PNG, atomically (as tools/mono3d_demo.py does)."""
    import cv2

    from plgvit_mm.utils.atomic_file import atomic_write_bytes

    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise ValueError(f"--out {out}: the picture cannot be encoded as PNG")
    atomic_write_bytes(encoded.tobytes(), out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from plgvit_mm.deployment.onnx_runtime import ort_session

    try:
        for name in ("model", "image", "config"):
            path = getattr(args, name)
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{name} {path}: no such file")
        session = ort_session(args.model, threads=args.threads)
        output_names = [o.name for o in session.get_outputs()]
        kind = ("segmentor" if "seg_logits" in output_names
                else "mono3d" if "boxes_3d" in output_names else "features")  # fmt: skip
        if kind == "features":
            import cv2
            from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

            # backbone graphs take normalised images (ImageNet statistics, as in pretraining)
            size = _static_size(session) or (224, 224)
            image = cv2.resize(cv2.imread(args.image)[..., ::-1], (size[1], size[0])) / 255.0
            image = (image - IMAGENET_DEFAULT_MEAN) / IMAGENET_DEFAULT_STD
            feed = image.astype(np.float32).transpose(2, 0, 1)[None]
            outputs = session.run(None, {session.get_inputs()[0].name: feed})
            report = {n: list(o.shape) for n, o in zip(output_names, outputs, strict=True)}
        else:
            if args.config is None or args.out is None:
                raise ValueError(f"a {kind} graph needs --config and --out")
            from mmengine.config import Config

            cfg = Config.fromfile(args.config)
            if kind == "segmentor":
                report = segment(session, args.image, cfg, args.out)
            else:
                if args.calib is None:
                    raise ValueError("a mono 3D graph needs --calib (camera intrinsics)")
                report = detect_mono3d(
                    session, args.image, cfg, args.calib, args.out, args.score_thr
                )
    except (ValueError, FileNotFoundError) as err:
        print(f"ort_inference: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
