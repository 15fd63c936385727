"""Evaluate a checkpoint on the config's test set with mmengine's Runner.

    python tools/test.py CONFIG CKPT [--work-dir DIR] [--show-dir DIR] [--metrics-out FILE]
        [--allow-partial-load] [--cfg-options KEY=VALUE ...]
    bash tools/dist_test.sh CONFIG CKPT NUM_GPUS [ARGS]        # torchrun, --launcher pytorch

Prints the metrics (e.g. ``coco/bbox_mAP``, ``coco/segm_mAP``, ``mIoU``,
``accuracy/top1``/``accuracy/top5``) as one JSON line; ``--show-dir`` saves a picture of the
predictions for every test image. A checkpoint that leaves weights of the model missing,
unexpected or of another shape is an error with a summary (``--allow-partial-load`` accepts it).
Progress (images done, ETA) is logged every ``default_hooks.logger.interval`` batches.
"""

from __future__ import annotations

import argparse
import json
import numbers
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from plgvit_mm.cli.checkpoint_match import CheckpointMismatchError, check_checkpoint_matches
from plgvit_mm.cli.config import (
    add_config_arguments,
    allow_untrusted_checkpoints,
    default_work_dir,
    load_config,
    prepare_cpu_distributed,
    set_launcher,
    set_local_rank_env,
)
from plgvit_mm.engine import QuietConsoleRunner
from plgvit_mm.utils.atomic_file import atomic_write_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("--work-dir", help="directory for the log and metrics")
    parser.add_argument("--show-dir", help="save pictures of the predictions here")
    parser.add_argument("--metrics-out", help="also write the metrics to this JSON file")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a checkpoint that needs a full unpickle (runs code from the "
        "file: only for files you trust)",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher for distributed testing",
    )
    parser.add_argument(
        "--allow-partial-load",
        action="store_true",
        help="evaluate even if the checkpoint leaves weights missing, unexpected or of another "
        "shape (they stay as initialised)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the full config on the console too"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def enable_result_pictures(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook draw every test image into ``show_dir``.

    mmdet's ``DetVisualizationHook`` writes ``show_dir/IMAGE_NAME``; mmseg's
    ``SegVisualizationHook`` writes through the visualizer's backends under ``show_dir``.
    """
    hook = cfg.get("default_hooks", {}).get("visualization")
    if hook is None:
        raise ValueError(
            "--show-dir needs default_hooks.visualization "
            "(DetVisualizationHook or SegVisualizationHook) in the config"
        )
    hook.draw = True
    hook.interval = 1
    show_dir = osp.abspath(show_dir)
    if hook.type.endswith("DetVisualizationHook"):
        hook.test_out_dir = show_dir
    else:
        cfg.visualizer.save_dir = show_dir


def build_test_config(args: argparse.Namespace) -> Config:
    """The config with every command-line choice applied."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint '{args.checkpoint}' does not exist")
    cfg = load_config(args.config, args.cfg_options)
    set_launcher(cfg, args.launcher)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir:
        enable_result_pictures(cfg, args.show_dir)
    return cfg


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    set_local_rank_env(args.local_rank)
    if args.trust_checkpoint:
        allow_untrusted_checkpoints()
    cfg = build_test_config(args)
    prepare_cpu_distributed(cfg)
    if "runner_type" in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = (Runner if args.print_config else QuietConsoleRunner).from_cfg(cfg)
    check_checkpoint_matches(runner.model, args.checkpoint, args.allow_partial_load)
    metrics = runner.test()
    printable = {k: float(v) if isinstance(v, numbers.Real) else str(v) for k, v in metrics.items()}
    print("metrics: " + json.dumps(printable))
    if args.metrics_out:
        atomic_write_text(json.dumps(printable, indent=1), args.metrics_out)
    return printable


if __name__ == "__main__":
    try:
        main()
    except CheckpointMismatchError as err:
        sys.exit(f"tools/test.py: {err}")
