"""Train a detector, segmentor, mono 3D detector or ImageNet classifier with mmengine's Runner.

    python tools/train.py configs/maskrcnn_lwplgvit_a_coco.py [--work-dir DIR] [--amp]
        [--resume [CKPT]] [--cfg-options KEY=VALUE ...] [--seed N --deterministic]
    python tools/train.py configs/cls_lwplgvit_a_in1k.py     # ImageNet-1k pretraining
    bash tools/dist_train.sh CONFIG NUM_GPUS [ARGS]            # torchrun, --launcher pytorch

Checkpoints and logs go to ``--work-dir`` (default ``work_dirs/CONFIG_NAME``). ``--resume``
without a path continues from the work dir's ``last_checkpoint``. Before anything is built, the
dataset files and the backbone's pretrained weights are checked; what is missing is reported in
one message with the ways on (plgvit_mm.cli.preflight). The full config goes to the work dir
(log file and dumped copy); ``--print-config`` also prints it on the console.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from plgvit_mm.cli.config import (
    add_config_arguments,
    allow_untrusted_checkpoints,
    default_work_dir,
    load_config,
    prepare_cpu_distributed,
    set_launcher,
    set_local_rank_env,
)
from plgvit_mm.cli.preflight import PreflightError, check_training_inputs
from plgvit_mm.engine import QuietConsoleRunner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="directory for logs and checkpoints")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CKPT",
        help="resume from CKPT, or, without a value, from the latest checkpoint in the work dir",
    )
    parser.add_argument(
        "--amp",
        action="store_true",
        help="mixed precision: fp16 AmpOptimWrapper on a GPU, bf16 autocast on CPU",
    )
    parser.add_argument(
        "--auto-scale-lr",
        action="store_true",
        help="scale the LR linearly with the total batch size "
        "(config's auto_scale_lr.base_batch_size)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic algorithms (with --seed)"
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow loading checkpoints that need a full unpickle (runs code "
        "from the file: only for files you trust)",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher for distributed training",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the full config on the console too"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def build_train_config(args: argparse.Namespace) -> Config:
    """The config with every command-line choice applied."""
    cfg = load_config(args.config, args.cfg_options)
    set_launcher(cfg, args.launcher)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    if args.amp and torch.cuda.is_available():
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    elif args.amp:  # mmengine's AmpOptimWrapper refuses CPUs: bf16 autocast, fp32 weights
        cfg.optim_wrapper.type = "CPUAmpOptimWrapper"
    if args.auto_scale_lr:
        if "base_batch_size" not in cfg.get("auto_scale_lr", {}):
            raise ValueError(
                f"--auto-scale-lr: {args.config} has no auto_scale_lr=dict(base_batch_size=...)"
            )
        cfg.auto_scale_lr.enable = True
    if args.seed is not None or args.deterministic:
        cfg.randomness = dict(seed=args.seed, deterministic=args.deterministic)
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"--resume: checkpoint '{args.resume}' does not exist")
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def build_runner(cfg: Config, print_config: bool = False) -> Runner:
    """The config's ``runner_type``, else :class:`QuietConsoleRunner` (mmengine's ``Runner`` with
    ``print_config``)."""
    if "runner_type" in cfg:
        return RUNNERS.build(cfg)
    return (Runner if print_config else QuietConsoleRunner).from_cfg(cfg)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_local_rank_env(args.local_rank)
    if args.trust_checkpoint:
        allow_untrusted_checkpoints()
    cfg = build_train_config(args)
    check_training_inputs(cfg, args.config)
    prepare_cpu_distributed(cfg)
    build_runner(cfg, args.print_config).train()


if __name__ == "__main__":
    try:
        main()
    except PreflightError as err:
        sys.exit(f"tools/train.py: {err}")
