"""Training-iteration time and peak memory of whole detectors and segmentors, side by side.

Every config is built as its training run builds it (model with the config's losses and
samplers, optim wrapper from ``cfg.optim_wrapper``: optimizer, per-parameter rules, gradient
clipping; SyncBN reverted to BN as in a single-process run), with random weights (backbone
``init_cfg``/``pretrained`` dropped: nothing is downloaded). One timed iteration is
``model.train_step``: data preprocessor, forward, losses, backward and optimizer step. All configs
of a task get the SAME generated batch: synthetic-shapes images of H x W
(:mod:`plgvit_mm.datasets.synthetic_shapes`) packed by mmdet's ``PackDetInputs`` (boxes, labels,
instance masks) or mmseg's ``PackSegInputs`` (label map), so the comparison is data-for-data.
Models are interleaved (A B C ... per round) after warm-up rounds (the first step allocates the
optimizer state); medians of the timed rounds, pinned thread count.

Peak memory: on CUDA the allocator's peak during one iteration, everything included (weights,
gradients, optimizer state: the figure mmdet/mmseg print as ``memory``); on CPU the growth of the
resident set during one iteration (gradients, activations and temporaries; the weights and
optimizer state resident between iterations are reported separately as ``state_mib``).

Default configs: ours against mmdet's Mask R-CNN R-50 and Swin-T (1x) and mmseg's UperNet R-50
and Swin-T (ADE20K 160k); see docs/design/performance_targets.md:

    python tools/analysis_tools/benchmark_train.py --json docs/benchmarks_train.json           # CPU, both tasks
    python tools/analysis_tools/benchmark_train.py --task det --configs configs/maskrcnn_lwplgvit_r_coco.py \\
        mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py --shape 256 256 --repeats 1
    python tools/analysis_tools/benchmark_train.py --device cuda --amp --shape 800 1216 --batch 2   # GPU
"""

from __future__ import annotations

import argparse
import copy
import json
import os.path as osp
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mmdet
import mmengine
import mmseg
import numpy as np
import torch
from benchmark_backbones import machine_info as backbone_machine_info
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from plgvit_mm.cli.config import REPO_ROOT, load_config
from plgvit_mm.datasets.synthetic_shapes import make_sample
from plgvit_mm.utils.atomic_file import atomic_write_text
from plgvit_mm.utils.cpu_allocator import ALLOCATOR_MODES, set_cpu_allocator
from plgvit_mm.utils.peak_memory import peak_memory_mib

SCHEMA = "plgvit_mm.benchmark_train/1"
REFERENCE = {
    "det": "mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py",
    "seg": "mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py",
}
DEFAULT_CONFIGS = {  # ours are found from the repository root, wherever the tool runs
    "det": [
        *(
            osp.join(REPO_ROOT, "configs", f"maskrcnn_{name}_coco.py")
            for name in (
                "lwplgvit_a",
                "lwplgvit_r",
                "plgvit_tiny",
                "nat_mini",
                "nat_tiny",
                "dinat_tiny",
            )
        ),
        REFERENCE["det"],
        "mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py",
    ],
    "seg": [
        *(
            osp.join(REPO_ROOT, "configs", f"upernet_{name}_ade20k.py")
            for name in (
                "lwplgvit_a",
                "lwplgvit_r",
                "plgvit_tiny",
                "nat_mini",
                "nat_tiny",
                "dinat_tiny",
            )
        ),
        REFERENCE["seg"],
        "mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py",
    ],
}
SCOPE_TASK = {"mmdet": "det", "mmseg": "seg"}


@dataclass
class Trainee:
    """One config ready to step: its model, optim wrapper and the size of its resident state."""

    config: str
    model: nn.Module
    optim_wrapper: OptimWrapper
    params: int


def display_name(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it (package names as given)."""
    if "::" in path:
        return path
    relative = osp.relpath(osp.abspath(path), REPO_ROOT)
    return path if relative.startswith("..") else relative


def training_config(path: str, amp: bool) -> Config:
    """The config with random backbone weights (nothing downloaded); AMP in bf16 if asked."""
    cfg = load_config(path)
    if cfg.get("default_scope") not in SCOPE_TASK:
        raise ValueError(
            f"{path}: default_scope must be 'mmdet' or 'mmseg' (a detector or a "
            f"segmentor), got {cfg.get('default_scope')!r}"
        )
    if "pretrained" in cfg.model:
        cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    if amp:
        cfg.optim_wrapper = dict(cfg.optim_wrapper, type="AmpOptimWrapper", dtype="bfloat16")
    return cfg


def build_trainee(path: str, device: torch.device, amp: bool) -> tuple[Trainee, str]:
    """Model (initialised, train mode, on ``device``) and optim wrapper of ``path``; its task."""
    cfg = training_config(path, amp)
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    model = model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    params = sum(p.numel() for p in model.parameters())
    return Trainee(display_name(path), model, optim_wrapper, params), SCOPE_TASK[cfg.default_scope]


def make_batch(task: str, batch: int, height: int, width: int, seed: int = 0) -> dict:
    """``dict(inputs, data_samples)`` of ``batch`` synthetic-shapes images (uint8 CHW), packed by
    mmdet's PackDetInputs (boxes, labels, masks; classes 0-2) or mmseg's PackSegInputs (label map:
    0 background, 1-3 shapes)."""
    from mmdet.datasets.transforms import PackDetInputs
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    from mmseg.datasets.transforms import PackSegInputs

    rng = np.random.default_rng(seed)
    packed: dict[str, list] = dict(inputs=[], data_samples=[])
    for index in range(batch):
        sample = make_sample(rng, height=height, width=width)
        results = dict(
            img=np.ascontiguousarray(sample.image[..., ::-1]),
            img_id=index,
            img_path=f"synthetic_{index}.png",
            ori_shape=(height, width),
            img_shape=(height, width),
            scale_factor=(1.0, 1.0),
            flip=False,
            flip_direction=None,
        )
        labels = np.array([shape.label for shape in sample.shapes], dtype=np.int64)
        if task == "det":
            boxes = np.array(
                [
                    [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                    for ys, xs in (np.nonzero(mask) for mask in sample.masks)
                ],
                dtype=np.float32,
            )
            results.update(
                gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=labels,
                gt_ignore_flags=np.zeros(len(labels), dtype=bool),
                gt_masks=BitmapMasks(sample.masks.astype(np.uint8), height, width),
            )
            out = PackDetInputs().transform(results)
        else:
            label_map = np.zeros((height, width), dtype=np.uint8)
            for label, mask in zip(labels, sample.masks, strict=True):
                label_map[mask] = label + 1
            results.update(gt_seg_map=label_map, reduce_zero_label=False)
            out = PackSegInputs().transform(results)
        packed["inputs"].append(out["inputs"])
        packed["data_samples"].append(out["data_samples"])
    return packed


def train_step_seconds(trainee: Trainee, data: dict, device: torch.device) -> float:
    """Wall time of one ``train_step`` (CUDA synchronised); raises on a non-finite loss."""
    data = copy.deepcopy(data)  # train_step moves/modifies the batch; not part of the timing
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    losses = trainee.model.train_step(data, trainee.optim_wrapper)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    total = sum(v for k, v in losses.items() if "loss" in k)
    if not torch.isfinite(torch.as_tensor(total)):
        raise FloatingPointError(f"{trainee.config}: non-finite loss {float(total)} ({losses})")
    return elapsed


def state_mib(trainee: Trainee) -> float:
    """Weights, buffers and optimizer state in MiB: what stays resident between iterations
    (gradients are freed by the optim wrapper's ``zero_grad`` and count in the peak)."""
    tensors = [*trainee.model.parameters(), *trainee.model.buffers()]
    for state in trainee.optim_wrapper.optimizer.state.values():
        tensors += [v for v in state.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def peak_mib(trainee: Trainee, data: dict, device: torch.device) -> float | None:
    """Peak memory of one iteration (module doc: whole allocator peak on CUDA, growth on CPU)."""
    if device.type != "cuda":
        return peak_memory_mib(lambda: train_step_seconds(trainee, data, device), device)
    torch.cuda.reset_peak_memory_stats(device)
    train_step_seconds(trainee, data, device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def measure_task(
    task: str, configs: Sequence[str], args: argparse.Namespace, device: torch.device
) -> dict:
    """Median iteration time, peak memory and resident state of each config of one task."""
    trainees = []
    for path in configs:
        trainee, config_task = build_trainee(path, device, args.amp)
        if config_task != task:
            raise ValueError(f"{path} is a {config_task} config, listed under --task {task}")
        trainees.append(trainee)
    data = make_batch(task, args.batch, *args.shape)
    started = time.perf_counter()
    samples: dict[str, list[float]] = {t.config: [] for t in trainees}
    for round_index in range(args.warmup + args.repeats):
        for trainee in trainees:
            seconds = train_step_seconds(trainee, data, device)
            if round_index >= args.warmup:
                samples[trainee.config].append(seconds)
        print(
            f"[{time.perf_counter() - started:6.0f}s] {task}: round {round_index + 1}/"
            f"{args.warmup + args.repeats} done",
            flush=True,
        )
    rows = []
    for trainee in trainees:
        times = samples[trainee.config]
        rows.append(
            dict(
                config=trainee.config,
                model=trainee.model.backbone.__class__.__name__,
                params=trainee.params,
                median_s=statistics.median(times),
                times_s=times,
                peak_mib=peak_mib(trainee, data, device),
                state_mib=state_mib(trainee),
            )
        )
    reference = next((r for r in rows if r["config"] == REFERENCE[task]), None)
    for row in rows:
        row["time_vs_r50"] = row["median_s"] / reference["median_s"] if reference else None
        mem, ref_mem = row["peak_mib"], reference and reference["peak_mib"]
        row["peak_vs_r50"] = mem / ref_mem if mem and ref_mem else None
    return dict(task=task, shape=list(args.shape), batch=args.batch, rows=rows)


def machine_info(device: torch.device, threads: int) -> dict:
    """The backbone benchmark's machine facts plus the OpenMMLab package versions."""
    return dict(
        backbone_machine_info(device, threads),
        mmengine=mmengine.__version__,
        mmdet=mmdet.__version__,
        mmseg=mmseg.__version__,
    )


def print_report(report: dict) -> None:
    memory = "peak MiB (all)" if report["machine"]["device"] == "cuda" else "peak growth MiB"
    for result in report["results"]:
        h, w = result["shape"]
        print(
            f"\n{result['task']}: batch {result['batch']} x {h}x{w}, "
            f"{report['warmup']} warm-up + {report['repeats']} timed rounds"
        )
        print(
            f"{'config':70s} {'params M':>8s} {'s/iter':>7s} {'x R-50':>6s} "
            f"{memory:>15s} {'x R-50':>6s} {'state MiB':>9s}"
        )
        for row in result["rows"]:
            ratio = f"{row['time_vs_r50']:.2f}" if row["time_vs_r50"] else "-"
            mem = f"{row['peak_mib']:.0f}" if row["peak_mib"] is not None else "-"
            mem_ratio = f"{row['peak_vs_r50']:.2f}" if row["peak_vs_r50"] else "-"
            print(
                f"{row['config']:70s} {row['params'] / 1e6:8.2f} {row['median_s']:7.3f} "
                f"{ratio:>6s} {mem:>15s} {mem_ratio:>6s} {row['state_mib']:9.0f}"
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=["det", "seg", "all"], default="all")
    parser.add_argument(
        "--configs",
        nargs="+",
        help="configs of the one --task (default: ours + the R-50/Swin-T peers)",
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=(512, 512),
        metavar=("H", "W"),
        help="generated image size (default 512 512: ADE20K's crop)",
    )
    parser.add_argument("--batch", type=int, default=2, help="images per iteration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--amp", action="store_true", help="bf16 mixed precision through mmengine's AmpOptimWrapper"
    )
    parser.add_argument(
        "--allocator",
        default="retain",
        choices=ALLOCATOR_MODES,
        help="CPU malloc: 'retain' keeps freed memory for reuse (no page faults "
        "per pass; plgvit_mm/utils/cpu_allocator.py), 'system' the defaults",
    )
    parser.add_argument("--json", type=Path, help="write the report here")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.configs and args.task == "all":
        parser.error("--configs needs --task det or --task seg")
    if args.warmup < 1 or args.repeats < 1 or args.batch < 1:
        parser.error(
            "--warmup, --repeats and --batch must be >= 1 (the first step allocates "
            "the optimizer state)"
        )
    if args.amp and not args.device.startswith("cuda"):
        parser.error("--amp needs --device cuda (mmengine's AmpOptimWrapper)")
    if min(args.shape) < 64:
        parser.error(f"--shape must be at least 64 x 64, got {args.shape}")
    torch.set_num_threads(args.threads)
    allocator = set_cpu_allocator(args.allocator)
    torch.manual_seed(0)
    MMLogger.get_instance("benchmark_train", log_level="WARNING")  # no per-parameter init log
    device = torch.device(args.device)
    tasks = ["det", "seg"] if args.task == "all" else [args.task]
    report = dict(
        schema=SCHEMA,
        machine=machine_info(device, torch.get_num_threads()),
        cpu_allocator=allocator,
        warmup=args.warmup,
        repeats=args.repeats,
        amp=args.amp,
        results=[],
    )
    for task in tasks:
        configs = args.configs or DEFAULT_CONFIGS[task]
        report["results"].append(measure_task(task, configs, args, device))
        if args.json is not None:  # partial results survive a time limit
            atomic_write_text(json.dumps(report, indent=1) + "\n", args.json)
    print_report(report)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
