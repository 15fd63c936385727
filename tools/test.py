"""Evaluate a checkpoint on the config's test set with mmengine's Runner.

    python tools/test.py CONFIG CKPT [--work-dir DIR] [--show-dir DIR] [--metrics-out FILE]
        [--cfg-options KEY=VALUE ...]
    bash tools/dist_test.sh CONFIG CKPT NUM_GPUS [ARGS]        # torchrun, --launcher pytorch

Prints the metrics (e.g. ``coco/bbox_mAP``, ``coco/segm_mAP``, ``mIoU``) as one JSON line;
``--show-dir`` saves a picture of the predictions for every test image.
"""

from __future__ import annotations

import argparse
import json
import numbers
import os.path as osp

from config_cli import (
    add_config_arguments,
    allow_untrusted_checkpoints,
    default_work_dir,
    load_config,
    prepare_cpu_distributed,
    set_launcher,
    set_local_rank_env,
)
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


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
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    printable = {k: float(v) if isinstance(v, numbers.Real) else str(v) for k, v in metrics.items()}
    print("metrics: " + json.dumps(printable))
    if args.metrics_out:
        with open(args.metrics_out, "w", encoding="utf-8") as handle:
            json.dump(printable, handle, indent=1)
    return printable


if __name__ == "__main__":
    main()
