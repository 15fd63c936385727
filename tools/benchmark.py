"""Inference speed of a whole detector or segmentor (data preprocessor + model + postprocessing).

    python tools/benchmark.py CONFIG [CHECKPOINT] [--shape H W] [--dataset] [--warmup 5]
        [--repeats 30] [--device cuda:0] [--json-out result.json] [--cfg-options ...]
    python tools/benchmark.py configs/mono3d_lwplgvit_a_kitti.py --calib CALIB   # mono 3D

Images are generated (random noise of H x W, default 800 x 1333; 375 x 1242, KITTI's size, for
mono 3D configs, which also need ``--calib``: a KITTI calibration file or 9 / 12 numbers) or,
with ``--dataset``, read from the config's test set (with their own calibration); either way the
config's test pipeline resizes them. Each timed step
is ``model.test_step`` on one image (CUDA synchronised); the result is the median over
``--repeats`` steps after ``--warmup`` untimed ones. Without CHECKPOINT the weights are random,
which changes no shape (detectors still keep their top-k proposals).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mono3d_demo import load_intrinsics

from plgvit_mm.cli.config import add_config_arguments, allow_untrusted_checkpoints, load_config
from plgvit_mm.cli.inference import build_inference_model, is_mono3d, make_batch, task_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint (optional)")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="size of the generated images before the test pipeline "
        "(default 800 1333; 375 1242 for mono 3D configs)",
    )
    parser.add_argument(
        "--calib",
        help="mono 3D configs with generated images: intrinsics "
        "(KITTI calib file, or 9 / 12 numbers of a 3x3 / 3x4 "
        "matrix)",
    )
    parser.add_argument(
        "--dataset",
        action="store_true",
        help="use the config's test images instead of generated ones",
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps")
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json-out", help="write the result as JSON here")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a checkpoint that needs a full unpickle",
    )
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.repeats < 1:
        parser.error("--warmup must be >= 0 and --repeats >= 1")
    if args.shape is not None and min(args.shape) < 32:
        parser.error(f"--shape must be at least 32 x 32, got {args.shape}")
    return args


def generated_batches(
    cfg: Config,
    height: int,
    width: int,
    count: int,
    cam2img: np.ndarray | None = None,
    seed: int = 0,
):
    """``count`` single-image batches of uniform noise, through the test pipeline
    (``cam2img``: the intrinsics a mono 3D config needs)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        yield make_batch(cfg, [image], cam2img)


def dataset_batches(cfg: Config, count: int):
    """The first ``count`` batches of the config's test dataloader (batch size 1)."""
    loader_cfg = dict(cfg.test_dataloader, batch_size=1, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    if len(loader) < count:
        raise ValueError(
            f"--dataset: the test set has {len(loader)} images, --warmup + --repeats needs {count}"
        )
    for index, batch in enumerate(loader):
        if index == count:
            return
        yield batch


def benchmark(model: torch.nn.Module, batches, warmup: int) -> tuple[list[float], tuple]:
    """Seconds per timed ``test_step`` and the (H, W) of the last image after the test pipeline
    (the data preprocessor may pad it further)."""
    cuda = next(model.parameters()).is_cuda
    times, input_shape = [], ()
    with torch.no_grad():
        for index, batch in enumerate(batches):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.test_step(batch)
            if cuda:
                torch.cuda.synchronize()
            if index >= warmup:
                times.append(time.perf_counter() - start)
            input_shape = tuple(batch["data_samples"][0].img_shape)
    return times, input_shape


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.trust_checkpoint:
        allow_untrusted_checkpoints()
    cfg = load_config(args.config, args.cfg_options)
    mono3d = is_mono3d(cfg)
    shape = args.shape or ((375, 1242) if mono3d else (800, 1333))
    cam2img = None
    if mono3d and not args.dataset:
        if args.calib is None:
            raise SystemExit(
                "benchmark.py: error: a mono 3D config with generated images needs "
                "--calib (KITTI calibration file or 9 / 12 matrix numbers), or "
                "use --dataset"
            )
        cam2img = load_intrinsics(args.calib)
    model = build_inference_model(cfg, args.checkpoint, args.device)
    count = args.warmup + args.repeats
    batches = (
        dataset_batches(cfg, count)
        if args.dataset
        else generated_batches(cfg, *shape, count, cam2img)
    )
    times, input_shape = benchmark(model, batches, args.warmup)
    median = statistics.median(times)
    result = dict(
        config=args.config,
        task="mono3d" if mono3d else task_of(cfg),
        device=args.device,
        device_name=(
            torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
        ),
        torch_threads=torch.get_num_threads(),
        images="dataset" if args.dataset else f"generated {shape[0]} x {shape[1]}",
        pipeline_output_hw=list(input_shape),
        warmup=args.warmup,
        repeats=args.repeats,
        median_ms=round(1000 * median, 3),
        mean_ms=round(1000 * statistics.fmean(times), 3),
        min_ms=round(1000 * min(times), 3),
        fps=round(1.0 / median, 3),
        params=sum(p.numel() for p in model.parameters()),
    )
    print(json.dumps(result, indent=1))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
