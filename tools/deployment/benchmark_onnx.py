"""ONNX Runtime (CPU) vs PyTorch eager latency of exported backbones, with parity figures.

    python tools/deployment/benchmark_onnx.py --models lw_plgvit_a lw_plgvit_r nat_tiny \\
        --shapes 224x224 384x1280 --threads 2 --out docs/onnx_benchmarks.json

Each backbone is exported at each shape (random weights, fp32, static shape) to a temporary
file. PyTorch runs eager under ``torch.no_grad()`` with ``torch.set_num_threads(threads)`` (NAT
uses its fused CPU kernel); ONNX Runtime runs the CPU execution provider with
``intra_op_num_threads=threads`` and no spinning between runs, batch 1, glibc allocator
'retain'. After warm-up, the two sides alternate within every round (the side that goes first
alternates too; each timed call follows one untimed call of the same side), so load from other
processes hits both sides alike; the JSON (rewritten after every model and shape, ``complete``
once all ran) holds the median and the minimum per side, their ratio, the max abs / rel
difference of the outputs, and the machine's 1-minute load average when it was written.

Exporting the large shapes takes minutes and needs no quiet machine; timing does. With
``--export-dir DIR`` the graphs are kept in DIR (``NAME_HxW.onnx``) and reused by later runs
(parity is still measured against eager every time); ``--export-only`` stops after exporting::

    python tools/deployment/benchmark_onnx.py --export-dir work_dirs/onnx_bench --export-only
    python tools/deployment/benchmark_onnx.py --export-dir work_dirs/onnx_bench \\
        --out docs/onnx_benchmarks.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lw_plgvit_a", "lw_plgvit_r", "nat_tiny"])
    parser.add_argument("--shapes", nargs="+", default=["224x224", "384x1280"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds-small", type=int, default=20, help="timed rounds at <= 224^2")
    parser.add_argument("--rounds-large", type=int, default=6, help="timed rounds above 224^2")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", help="JSON file to write (required unless --export-only)")
    parser.add_argument("--export-dir", help="keep the exported graphs here and reuse them")
    parser.add_argument(
        "--export-only", action="store_true", help="export into --export-dir, time nothing"
    )
    args = parser.parse_args(argv)
    if args.export_only and not args.export_dir:
        parser.error("--export-only needs --export-dir")
    if not args.export_only and not args.out:
        parser.error("--out is required (unless --export-only)")
    return args


def exported_graph(target, name: str, image, folder: Path) -> Path:
    """``folder/NAME_HxW.onnx``, exported now unless it is there already."""
    from plgvit_mm.deployment.onnx_export import export_onnx

    path = folder / f"{name}_{image.shape[2]}x{image.shape[3]}.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(
            target.module, (image,), path, input_names=target.input_names,
            output_names=target.output_names,
        )  # fmt: skip
    return path


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def benchmark(name: str, shape: tuple[int, int], args: argparse.Namespace) -> dict:
    import torch

    from plgvit_mm.deployment.export_targets import backbone_config, backbone_target
    from plgvit_mm.deployment.onnx_runtime import compare_outputs, ort_session, run_session

    torch.manual_seed(0)
    target = backbone_target(backbone_config(name))
    (image,) = target.example_inputs(*shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = exported_graph(target, name, image, Path(args.export_dir or tmp))
        if args.export_only:
            return {"model": name, "shape": list(shape), "exported": str(path)}
        session = ort_session(path, threads=args.threads, spinning=False)
        graph_bytes = path.stat().st_size
    feed = {session.get_inputs()[0].name: image.numpy()}
    module = target.module.eval()

    def run_torch():
        with torch.no_grad():
            return module(image)

    def run_ort():
        return session.run(None, feed)

    parity = compare_outputs(run_session(session, [image]), run_torch())
    for _ in range(args.warmup):
        run_torch()
        run_ort()
    rounds = args.rounds_small if shape[0] * shape[1] <= 224 * 224 else args.rounds_large
    times = {"pytorch": [], "onnxruntime": []}
    for index in range(rounds):
        order = [("pytorch", run_torch), ("onnxruntime", run_ort)]
        for side, fn in order if index % 2 == 0 else order[::-1]:
            fn()  # untimed: the first call after a switch meets the other side's threads/caches
            times[side].append(_timed(fn))
    med = {side: statistics.median(values) for side, values in times.items()}
    return {
        "model": name,
        "shape": list(shape),
        "rounds": rounds,
        "pytorch_ms": {"median": med["pytorch"], "min": min(times["pytorch"])},
        "onnxruntime_ms": {"median": med["onnxruntime"], "min": min(times["onnxruntime"])},
        "ratio_median": med["onnxruntime"] / med["pytorch"],
        "onnx_bytes": graph_bytes,
        "parity": parity.as_dict(),
    }


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from plgvit_mm.utils.cpu_allocator import set_cpu_allocator

    torch.set_num_threads(args.threads)
    args.cpu_allocator = set_cpu_allocator("retain")
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
    results = []
    for name in args.models:
        for shape in shapes:
            result = benchmark(name, shape, args)
            print(json.dumps(result), flush=True)
            if args.export_only:
                continue
            results.append(result)
            write_report(args, results, done=len(results) == len(args.models) * len(shapes))
    return 0


def write_report(args: argparse.Namespace, results: list[dict], done: bool) -> None:
    """The JSON report of the results so far (rewritten atomically after each model/shape)."""
    import onnxruntime
    import torch

    from plgvit_mm.utils.atomic_file import atomic_write_text

    report = {
        "command": "python tools/deployment/benchmark_onnx.py " + " ".join(sys.argv[1:]),
        "method": (
            "batch 1, fp32, random weights; PyTorch eager (torch.no_grad, torch.set_num_threads("
            f"{args.threads})) vs ONNX Runtime CPU EP (intra_op_num_threads={args.threads}); "
            "ONNX Runtime threads do not spin between runs; CPU allocator 'retain' (glibc keeps "
            "freed memory); sides alternate within each round (interleaved), each timed call "
            "after one untimed call of the same side; "
            "ratio = ONNX Runtime median / PyTorch median"
        ),
        "environment": {
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu": cpu_model(),
            "threads": args.threads,
            "cpu_allocator": args.cpu_allocator,
            "load_average_1min": os.getloadavg()[0],
        },
        "complete": done,
        "results": results,
    }
    atomic_write_text(json.dumps(report, indent=2) + "\n", args.out)


if __name__ == "__main__":
    sys.exit(main())
