"""Benchmark neighborhood attention backends at the NAT-Tiny stage shapes.

For 224x224 and 800x1216 inputs (stages: heads 2/4/8/16, head_dim 32, maps ceil(input/4, /8,
/16, /32), k=7) it times forward and forward+backward (q, k, v and rpb gradients) of every
backend that runs on the device, the same-size full attention (torch SDPA) as a yardstick and,
on CUDA, compiled flex_attention with 8x16 token tiles (the 'flex' backend, the peer
of the GPU target in docs/design/performance_targets.md).
Prints a table and writes JSON (atomically). Needs torch and the installed plgvit_mm.

    python tools/analysis_tools/benchmark_na.py --device cuda --dtype bfloat16 --json work_dirs/na_bench.json
    python tools/analysis_tools/benchmark_na.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from plgvit_mm.ops import BACKENDS, na2d, unsupported_reason
from plgvit_mm.utils.atomic_file import atomic_write_text

NAT_TINY_HEADS = (2, 4, 8, 16)
HEAD_DIM = 32
KERNEL = 7
INPUTS = {"224x224": (224, 224), "800x1216": (800, 1216)}
FULL_ATTENTION_CPU_TOKENS = 4096
"""Full attention on CPU is skipped above this many tokens (it would take minutes)."""


def stage_shapes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(stage, heads, H, W) of NAT-Tiny's four levels for an input of height x width."""
    return [
        (i, heads, math.ceil(height / 4 / 2**i), math.ceil(width / 4 / 2**i))
        for i, heads in enumerate(NAT_TINY_HEADS)
    ]


def na_flops(batch: int, heads: int, height: int, width: int) -> int:
    """Forward FLOPs of neighborhood attention: 2 matmuls x 2 FLOPs per MAC x k^2 keys."""
    return 4 * batch * heads * height * width * KERNEL**2 * HEAD_DIM


class Timer:
    """Median wall time of a callable (CUDA-synchronised) and the peak memory it reached."""

    def __init__(self, device: torch.device, repeats: int) -> None:
        self.device, self.repeats = device, repeats

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn: Callable[[], object]) -> tuple[float, float]:
        """Returns (median milliseconds, peak memory MiB above the start)."""
        fn()  # warm-up (compilation, caches)
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
        else:
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            self.sync()
            times.append((time.perf_counter() - start) * 1e3)
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) - base
        else:  # RSS high-water growth: a lower bound once an earlier run set the mark higher
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
        return statistics.median(times), max(peak, 0) / 2**20


FORWARD_ONLY = {"cpu"}
"""Backends without a backward (calls that need gradients use the reference instead)."""


def run_case(
    fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], timer: Timer, backward: bool = True
) -> dict:
    """Forward (no autograd) and, if ``backward``, forward+backward timings of fn(*inputs)."""
    with torch.no_grad():
        fwd_ms, fwd_mib = timer(lambda: fn(*inputs))
    if not backward:
        return {
            "fwd_ms": fwd_ms,
            "fwd_bwd_ms": None,
            "fwd_peak_mib": fwd_mib,
            "fwd_bwd_peak_mib": None,
        }
    leaves = [t.detach().requires_grad_() for t in inputs]
    grad = torch.randn_like(leaves[0])

    def fwd_bwd() -> None:
        torch.autograd.grad(fn(*leaves), leaves, grad)

    both_ms, both_mib = timer(fwd_bwd)
    return {
        "fwd_ms": fwd_ms,
        "fwd_bwd_ms": both_ms,
        "fwd_peak_mib": fwd_mib,
        "fwd_bwd_peak_mib": both_mib,
    }


def full_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Yardstick: SDPA over all H*W keys, no bias; (B, H, W, heads, d) in and out."""
    flat = [t.flatten(1, 2).transpose(1, 2) for t in (q, k, v)]
    return F.scaled_dot_product_attention(*flat).transpose(1, 2).reshape(q.shape)


def benchmark(args: argparse.Namespace) -> dict:
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    timer = Timer(device, args.repeats)
    names = ["224x224"] if args.quick else args.inputs
    rows, skipped, errors = [], {}, []
    report = {
        "device": describe_device(device),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "skipped_backends": skipped,
        "errors": errors,
        "ratios": {},
    }
    for input_name in names:
        img_h, img_w = INPUTS[input_name]
        for stage, heads, height, width in stage_shapes(img_h, img_w):
            gen = torch.Generator().manual_seed(0)
            q, k, v = (
                torch.randn(args.batch, height, width, heads, HEAD_DIM, generator=gen).to(
                    device, dtype
                )
                for _ in range(3)
            )
            rpb = (0.02 * torch.randn(heads, 2 * KERNEL - 1, 2 * KERNEL - 1, generator=gen)).to(
                device
            )
            flops = na_flops(args.batch, heads, height, width)
            shape = {
                "input": input_name,
                "stage": stage,
                "batch": args.batch,
                "heads": heads,
                "height": height,
                "width": width,
                "head_dim": HEAD_DIM,
                "kernel": KERNEL,
            }
            for backend in args.backends:
                if (reason := unsupported_reason(backend, q, rpb, 0.0)) is not None:
                    skipped[backend] = reason
                    continue

                def call(q_, k_, v_, rpb_, backend=backend):
                    return na2d(q_, k_, v_, KERNEL, rpb=rpb_, backend=backend)

                try:
                    result = run_case(
                        call, [q, k, v, rpb], timer, backward=backend not in FORWARD_ONLY
                    )
                except Exception as err:  # noqa: BLE001 - one failing backend must not end the run
                    errors.append({**shape, "backend": backend, "error": repr(err)[:2000]})
                    print(f"{backend} failed at {shape}: {err!r}", file=sys.stderr)
                    continue
                both_ms = result["fwd_bwd_ms"]
                rows.append(
                    {
                        **shape,
                        "backend": backend,
                        **result,
                        "fwd_tflops": flops / result["fwd_ms"] / 1e9,
                        "fwd_bwd_tflops": 3 * flops / both_ms / 1e9 if both_ms else None,
                    }
                )
            if device.type != "cpu" or height * width <= FULL_ATTENTION_CPU_TOKENS:
                result = run_case(full_attention, [q, k, v], timer)
                full_flops = 4 * args.batch * heads * (height * width) ** 2 * HEAD_DIM
                rows.append(
                    {
                        **shape,
                        "backend": "full_attention_sdpa",
                        **result,
                        "fwd_tflops": full_flops / result["fwd_ms"] / 1e9,
                        "fwd_bwd_tflops": 3 * full_flops / result["fwd_bwd_ms"] / 1e9,
                    }
                )
            report["ratios"] = ratios(rows)
            if args.json:  # after every shape, so a run cut short keeps what it measured
                write_json(report, args.json)
    return report


def ratios(rows: list[dict]) -> dict:
    """Triton / flex time at every shape where both ran (target <= 0.25, see
    docs/design/performance_targets.md)."""
    out = {}
    for row in rows:
        if row["backend"] != "triton":
            continue
        key = (row["input"], row["stage"])
        peer = [r for r in rows if r["backend"] == "flex" and (r["input"], r["stage"]) == key]
        if peer:
            out[f"{row['input']}/stage{row['stage']}"] = {
                "fwd": row["fwd_ms"] / peer[0]["fwd_ms"],
                "fwd_bwd": row["fwd_bwd_ms"] / peer[0]["fwd_bwd_ms"],
            }
    return out


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def print_table(report: dict) -> None:
    print(f"device: {report['device']}  dtype: {report['dtype']}  torch {report['torch']}")
    header = (
        f"{'input':>9} {'st':>2} {'B':>2} {'heads':>5} {'HxW':>8} {'backend':>20} "
        f"{'fwd ms':>9} {'f+b ms':>9} {'fwd TF/s':>8} {'f+b TF/s':>8} {'peak MiB':>9}"
    )
    print(header)

    def cell(value: float | None, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    for r in report["rows"]:
        print(
            f"{r['input']:>9} {r['stage']:>2} {r['batch']:>2} {r['heads']:>5} "
            f"{r['height']:>3}x{r['width']:<4} {r['backend']:>20} {r['fwd_ms']:>9.3f} "
            f"{cell(r['fwd_bwd_ms'], 9, 3)} {r['fwd_tflops']:>8.3f} "
            f"{cell(r['fwd_bwd_tflops'], 8, 3)} "
            f"{cell(r['fwd_bwd_peak_mib'] or r['fwd_peak_mib'], 9, 1)}"
        )
    for error in report["errors"]:
        print(
            f"FAILED {error['backend']} at {error['input']} stage {error['stage']}: "
            f"{error['error'][:300]}"
        )
    for backend, reason in report["skipped_backends"].items():
        print(f"skipped backend {backend}: {reason}")
    for key, ratio in report["ratios"].items():
        print(f"triton / flex at {key}: fwd {ratio['fwd']:.3f}, fwd+bwd {ratio['fwd_bwd']:.3f}")


def write_json(report: dict, path: Path) -> None:
    """Write the report atomically (the project's crash-safe temp-file-then-rename helper)."""
    atomic_write_text(json.dumps(report, indent=2), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda")
    )
    parser.add_argument(
        "--dtype",
        default=None,
        choices=("float32", "bfloat16", "float16"),
        help="default: bfloat16 on cuda, float32 on cpu",
    )
    parser.add_argument("--batch", type=int, default=None, help="default: 4 on cuda, 1 on cpu")
    parser.add_argument("--repeats", type=int, default=None, help="default: 20 cuda, 10 cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--quick", action="store_true", help="224x224 shapes only")
    parser.add_argument(
        "--inputs",
        nargs="+",
        default=list(INPUTS),
        choices=list(INPUTS),
        help="input sizes whose NAT-Tiny stage shapes are measured, in order",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=list(BACKENDS),
        choices=BACKENDS,
        help="backends to time (full attention always runs as the yardstick)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    on_cuda = args.device == "cuda"
    if on_cuda and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    args.dtype = args.dtype or ("bfloat16" if on_cuda else "float32")
    args.batch = args.batch or (4 if on_cuda else 1)
    args.repeats = args.repeats or (20 if on_cuda else 10)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = benchmark(args)
    print_table(report)
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    if report["errors"]:
        sys.exit(f"{len(report['errors'])} backend run(s) failed (listed above)")


if __name__ == "__main__":
    main()
