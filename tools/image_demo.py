"""Run a detector or segmentor on one image and save a picture of the prediction.

    python tools/image_demo.py IMAGE CONFIG [CHECKPOINT] --out result.png [--score-thr 0.3]
        [--device cpu] [--allow-partial-load] [--cfg-options KEY=VALUE ...]

Detection configs draw boxes and masks (mmdet.apis.inference_detector), segmentation configs
the class map (mmseg.apis.inference_model). Without CHECKPOINT the weights are random. A
checkpoint that leaves weights of the model missing, unexpected or of another shape is an error
with a summary (``--allow-partial-load`` accepts it).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import mmcv

from plgvit_mm.cli.checkpoint_match import CheckpointMismatchError, check_checkpoint_matches
from plgvit_mm.cli.config import add_config_arguments, allow_untrusted_checkpoints, load_config
from plgvit_mm.cli.inference import build_inference_model, draw_prediction, task_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", help="image file")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint file")
    parser.add_argument("--out", required=True, help="where to save the picture")
    parser.add_argument(
        "--score-thr", type=float, default=0.3, help="detection: draw boxes scoring at least this"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda:0")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a checkpoint that needs a full unpickle (runs code from the "
        "file: only for files you trust)",
    )
    parser.add_argument(
        "--allow-partial-load",
        action="store_true",
        help="run even if the checkpoint leaves weights missing, unexpected or of another shape",
    )
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    if args.trust_checkpoint:
        allow_untrusted_checkpoints()
    if not osp.isfile(args.image):
        raise FileNotFoundError(f"image '{args.image}' does not exist")
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint '{args.checkpoint}' does not exist")
    cfg = load_config(args.config, args.cfg_options)
    if args.checkpoint is not None:
        check_checkpoint_matches(
            build_inference_model(cfg, None, "cpu"), args.checkpoint, args.allow_partial_load
        )
    model = build_inference_model(cfg, args.checkpoint, args.device)
    if task_of(cfg) == "det":
        from mmdet.apis import inference_detector

        prediction = inference_detector(model, args.image)
    else:
        from mmseg.apis import inference_model

        prediction = inference_model(model, args.image)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    image_rgb = mmcv.imread(args.image, channel_order="rgb")
    draw_prediction(model, image_rgb, prediction, args.out, args.score_thr)
    print(f"saved {args.out}")
    return args.out


if __name__ == "__main__":
    try:
        main()
    except CheckpointMismatchError as err:
        sys.exit(f"tools/image_demo.py: {err}")
