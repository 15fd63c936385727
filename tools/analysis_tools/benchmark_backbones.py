"""Benchmark our backbones against timm peers: params, MACs, latency, throughput, peak memory.

All models are measured side by side in ONE process, interleaved (A B C ... A B C ...), and the
medians of fixed repeat counts after warm-up are reported, with a pinned thread count: the
machine is shared and noisy, so compare ratios measured in the same run, not absolute times.
224x224 runs the classifiers; every other size runs the ``features_only`` backbones (strides
4-32; swin_tiny only at 224, its timm model has a fixed input size). Latency at 0.5x/1x/2x/4x the
pixels of 384x1280 (aspect kept, sides rounded up to multiples of 32) shows how cost grows; the
fitted exponent of latency ~ pixels**e is reported. The targets of
docs/design/performance_targets.md are printed as MET / NOT MET with the measured ratios, and each
target not met gets a torch.profiler top-ops table of the slower model.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above the resident model during one
forward at the throughput batch; on CPU the growth of the process's resident set (Linux VmHWM,
reset through /proc/self/clear_refs after ``malloc_trim`` returned freed heap memory) during that
forward, i.e. activations and workspaces, weights excluded.

    python tools/analysis_tools/benchmark_backbones.py --json docs/benchmarks.json          # full CPU run
    python tools/analysis_tools/benchmark_backbones.py --models lw_plgvit_r edgenext_small --sizes 224x224 \\
        --repeats 2 --warmup 1                                               # quick look
    python tools/analysis_tools/benchmark_backbones.py --device cuda --json work_dirs/backbones_cuda.json
    python tools/analysis_tools/make_benchmark_docs.py docs/benchmarks.json                 # docs + figures
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
from timm.utils import reparameterize_model
from torch import nn

import plgvit_mm  # noqa: F401  (registers the timm models nat_*, dinat_*, *plgvit*)
from plgvit_mm.utils import flops
from plgvit_mm.utils.atomic_file import atomic_write_text
from plgvit_mm.utils.cpu_allocator import ALLOCATOR_MODES, set_cpu_allocator
from plgvit_mm.utils.peak_memory import peak_memory_mib

SCHEMA = "plgvit_mm.benchmark_backbones/1"
CLASSIFIER_SIZE = (224, 224)


@dataclass(frozen=True)
class ModelSpec:
    """A benchmarked timm model: display label, 'ours' or 'peer', and whether it has features."""

    label: str
    family: str
    dense: bool = True


MODELS: dict[str, ModelSpec] = {
    "lw_plgvit_a": ModelSpec("LW-PLG-ViT-A", "ours"),
    "lw_plgvit_r": ModelSpec("LW-PLG-ViT-R", "ours"),
    "plgvit_tiny": ModelSpec("PLG-ViT-T", "ours"),
    "nat_mini": ModelSpec("NAT-M", "ours"),
    "nat_tiny": ModelSpec("NAT-T", "ours"),
    "dinat_tiny": ModelSpec("DiNAT-T", "ours"),
    "mobilevit_s": ModelSpec("MobileViT-S", "peer"),
    "edgenext_small": ModelSpec("EdgeNeXt-S", "peer"),
    "fastvit_t8": ModelSpec("FastViT-T8", "peer"),
    "efficientvit_b1": ModelSpec("EfficientViT-B1", "peer"),
    "resnet18": ModelSpec("ResNet-18", "peer"),
    "convnext_tiny": ModelSpec("ConvNeXt-T", "peer"),
    "swin_tiny_patch4_window7_224": ModelSpec("Swin-T", "peer", dense=False),
}
DEFAULT_SIZES = ("224x224", "384x1280", "512x512", "800x1216")
SCALING_BASE = "384x1280"
SCALING_FACTORS = (0.5, 1.0, 2.0, 4.0)
LINEAR_EXPONENT_MAX = 1.10
"""Latency ~ pixels**e counts as linear growth up to this fitted exponent."""


@dataclass(frozen=True)
class Target:
    """``model`` latency <= ``max_ratio`` x ``reference`` latency at ``size``
    (docs/design/performance_targets.md)."""

    model: str
    reference: str
    size: str
    max_ratio: float


TARGETS = (
    Target("lw_plgvit_r", "edgenext_small", "224x224", 1.0),
    Target("lw_plgvit_r", "edgenext_small", "384x1280", 1.0),
    Target("lw_plgvit_a", "mobilevit_s", "224x224", 1.0),
    Target("lw_plgvit_a", "mobilevit_s", "384x1280", 0.5),
    Target("lw_plgvit_r", "lw_plgvit_a", "224x224", 0.85),
    Target("lw_plgvit_r", "lw_plgvit_a", "384x1280", 0.85),
    Target("nat_tiny", "swin_tiny_patch4_window7_224", "224x224", 1.0),
)
LINEAR_GROWTH_MODELS = ("lw_plgvit_a", "lw_plgvit_r")
"""Models whose cost must grow linearly with pixels (checked on the scaling sizes)."""
PROFILE_TOP_OPS = 10


def parse_size(text: str) -> tuple[int, int]:
    """'384x1280' -> (384, 1280): height, width in pixels; ValueError otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r}: expected HxW, e.g. 384x1280") from None
    if height < 32 or width < 32:
        raise ValueError(f"size {text!r}: height and width must be >= 32")
    return height, width


def size_name(height: int, width: int) -> str:
    return f"{height}x{width}"


def scaled_size(base: tuple[int, int], factor: float) -> tuple[int, int]:
    """``base`` with ``factor`` x its pixels, aspect kept, each side rounded up to a multiple of 32."""
    side = math.sqrt(factor)
    return tuple(32 * math.ceil(round(s * side, 6) / 32) for s in base)


def fit_exponent(pixels: Sequence[float], latency: Sequence[float]) -> float:
    """Least-squares slope of log(latency) vs log(pixels): latency ~ pixels**exponent."""
    return float(np.polyfit(np.log(pixels), np.log(latency), 1)[0])


def count_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """MACs of one image through ``model`` with the shared counter (SDPA included)."""
    return int(flops.count_macs(model, torch.randn(1, 3, *size)).total)


def build_model(name: str, features: bool) -> nn.Module:
    """The timm model in eval mode, reparameterized for inference (FastViT's deployed form)."""
    model = timm.create_model(name, pretrained=False, features_only=features)
    return reparameterize_model(model.eval())


class Runner:
    """Runs forwards on one device: fp32 on CPU; bf16 autocast + channels_last on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format

    def prepare(self, model: nn.Module) -> nn.Module:
        return model.to(self.device, memory_format=self.memory_format)

    def input(self, batch: int, size: tuple[int, int]) -> torch.Tensor:
        x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def forward(self, model: nn.Module, x: torch.Tensor) -> None:
        autocast = torch.autocast("cuda", torch.bfloat16) if self.cuda else nullcontext()
        with torch.inference_mode(), autocast:
            model(x)

    def seconds(self, model: nn.Module, x: torch.Tensor) -> float:
        self.sync()
        start = time.perf_counter()
        self.forward(model, x)
        self.sync()
        return time.perf_counter() - start

    def interleaved_ms(
        self,
        models: dict[str, nn.Module],
        x: torch.Tensor,
        warmup: int,
        repeats: int,
        errors: dict[str, str],
    ) -> dict[str, list[float]]:
        """Per-model forward times in ms: warm-up rounds, then ``repeats`` rounds A B C ....

        A model whose first warm-up forward raises (e.g. out of memory) is left out and its error
        recorded in ``errors``, so that one failing model does not cost the whole run.
        """
        runnable = {}
        for name, model in models.items():
            try:
                self.forward(model, x)
            except Exception as exc:  # reported; the other models go on
                errors[name] = f"batch {x.shape[0]}: {type(exc).__name__}: {exc}"[:500]
                if self.cuda:
                    torch.cuda.empty_cache()
            else:
                runnable[name] = model
        for _ in range(warmup - 1):
            for model in runnable.values():
                self.forward(model, x)
        samples: dict[str, list[float]] = {name: [] for name in runnable}
        for _ in range(repeats):
            for name, model in runnable.items():
                samples[name].append(1e3 * self.seconds(model, x))
        return samples

    def peak_memory_mib(self, model: nn.Module, x: torch.Tensor) -> float | None:
        """Peak memory of one forward above what was resident before it (see module doc)."""
        return peak_memory_mib(lambda: self.forward(model, x), self.device)

    def profile(self, model: nn.Module, x: torch.Tensor, iterations: int = 3) -> list[dict]:
        """Top ops by self CPU time over ``iterations`` forwards (after one warm-up)."""
        self.forward(model, x)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if self.cuda:
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(iterations):
                self.forward(model, x)
            self.sync()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        return [
            {
                "op": e.key,
                "calls": e.count // iterations,
                "self_cpu_ms": e.self_cpu_time_total / 1e3 / iterations,
                "self_cpu_pct": 100 * e.self_cpu_time_total / total,
                "cpu_total_ms": e.cpu_time_total / 1e3 / iterations,
            }
            for e in events[:PROFILE_TOP_OPS]
        ]


def machine_info(device: torch.device, threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def benchmark(args: argparse.Namespace) -> dict:
    """Run every measurement the arguments ask for; returns the JSON report (see SCHEMA)."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    allocator = set_cpu_allocator(args.allocator)
    runner = Runner(device)
    loadavg_start = list(os.getloadavg())
    started = time.perf_counter()
    cpu = device.type == "cpu"
    batch_224 = args.batch_224 or (8 if cpu else 256)
    batch_dense = args.batch_dense or (2 if cpu else 16)

    sizes = [parse_size(s) for s in args.sizes]
    scaling = []
    if args.scaling_base.lower() != "none":
        base = parse_size(args.scaling_base)
        scaling = [scaled_size(base, f) for f in args.scaling_factors]
    extra = [(s, "scaling") for s in scaling if s not in sizes]
    runs = [(s, "main") for s in sizes]  # the scaling sizes right after their base size
    at = next((i + 1 for i, (s, _) in enumerate(runs) if s in scaling), len(runs))
    runs[at:at] = extra

    report: dict = {
        "schema": SCHEMA,
        "machine": machine_info(device, args.threads),
        "loadavg_start": loadavg_start,
        "settings": {
            "models": args.models,
            "sizes": args.sizes,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "repeats_224": args.repeats_224,
            "throughput_repeats": args.throughput_repeats,
            "batch_224": batch_224,
            "batch_dense": batch_dense,
            "dtype": "float32" if cpu else "bfloat16 autocast",
            "memory_format": "contiguous" if cpu else "channels_last",
            "macs": not args.no_macs,
            "scaling_base": args.scaling_base,
            "scaling_factors": list(args.scaling_factors),
            "linear_exponent_max": LINEAR_EXPONENT_MAX,
            "cpu_allocator": allocator,
            "full_run": is_full_run(args),
        },
        "memory_method": (
            "torch.cuda.max_memory_allocated above the resident model, one forward at the "
            "throughput batch"
            if not cpu
            else "growth of the process resident set (VmHWM after /proc/self/clear_refs reset and "
            "malloc_trim) during one forward at the throughput batch; weights excluded"
        ),
        "models": {},
        "sizes": [],
    }
    for features in (False, True):
        batch_sizes = [(s, role) for s, role in runs if (s == CLASSIFIER_SIZE) != features]
        names = [n for n in args.models if features is False or MODELS[n].dense]
        if not batch_sizes or not names:
            continue
        models = {}
        for name in names:
            model = build_model(name, features)
            entry = report["models"].setdefault(
                name, {**asdict(MODELS[name]), "params": None, "backbone_params": None}
            )
            params = sum(p.numel() for p in model.parameters())
            entry["backbone_params" if features else "params"] = params
            models[name] = runner.prepare(model)
        for size, role in batch_sizes:
            print(
                f"[{time.perf_counter() - started:6.0f}s] {size_name(*size)} ({role}) ...",
                flush=True,
            )
            report["sizes"].append(
                measure_size(
                    runner, models, size, role, args, batch_dense if features else batch_224
                )
            )
            if args.json is not None:  # partial results survive a time limit
                write_json(summarize(report, scaling, None, started), args.json)
        del models
        gc.collect()

    return summarize(report, scaling, runner, started)


def summarize(
    report: dict, scaling: list[tuple[int, int]], runner: Runner | None, started: float
) -> dict:
    """Add ratios, growth fits, target verdicts and timing; profiles and ``complete`` only when
    ``runner`` is given (the end of the run)."""
    report["ratios"] = peer_ratios(report)
    report["scaling"] = scaling_fits(report, [size_name(*s) for s in scaling])
    report["targets"] = evaluate_targets(report)
    report["profiles"] = profile_unmet(runner, report) if runner is not None else {}
    report["complete"] = runner is not None
    report["loadavg_end"] = list(os.getloadavg())
    report["wall_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return report


def is_full_run(args: argparse.Namespace) -> bool:
    """Whether the run used every model, size and the default repeat counts."""
    defaults = build_parser().parse_args([])
    keys = (
        "models",
        "sizes",
        "warmup",
        "repeats",
        "repeats_224",
        "throughput_repeats",
        "scaling_base",
        "scaling_factors",
        "batch_224",
        "batch_dense",
    )
    return all(
        list(getattr(args, k)) == list(getattr(defaults, k))
        if isinstance(getattr(args, k), (list, tuple))
        else getattr(args, k) == getattr(defaults, k)
        for k in keys
    )


def measure_size(
    runner: Runner,
    models: dict[str, nn.Module],
    size: tuple[int, int],
    role: str,
    args: argparse.Namespace,
    batch: int,
) -> dict:
    """Latency (batch 1), and for 'main' sizes MACs, throughput and peak memory, per model."""
    if size != CLASSIFIER_SIZE:
        models = {n: m for n, m in models.items() if MODELS[n].dense}
    x = runner.input(1, size)
    errors: dict[str, str] = {}
    repeats = args.repeats_224 if size == CLASSIFIER_SIZE else args.repeats
    latency = runner.interleaved_ms(models, x, args.warmup, repeats, errors)
    results = {
        name: {"latency_ms": statistics.median(t), "latency_samples_ms": t}
        for name, t in latency.items()
    }
    if role == "main":
        xb = runner.input(batch, size)
        ran = {name: models[name] for name in latency}
        thr = runner.interleaved_ms(ran, xb, 1, args.throughput_repeats, errors)
        for name, model in ran.items():
            if name in thr:
                results[name].update(
                    throughput_batch=batch,
                    throughput_samples_ms=thr[name],
                    throughput_ips=1e3 * batch / statistics.median(thr[name]),
                    peak_memory_mib=runner.peak_memory_mib(model, xb),
                )
            results[name]["macs"] = None if args.no_macs else count_macs(model.cpu(), size)
            runner.prepare(model)
    return {
        "size": size_name(*size),
        "height": size[0],
        "width": size[1],
        "role": role,
        "mode": "classifier" if size == CLASSIFIER_SIZE else "features",
        "results": results,
        "errors": errors,
    }


def size_entry(report: dict, size: str) -> dict | None:
    return next((s for s in report["sizes"] if s["size"] == size), None)


def peer_ratios(report: dict) -> list[dict]:
    """Latency of each of our models / each peer's, per size (ratio of the batch-1 medians)."""
    out = []
    for entry in report["sizes"]:
        res = entry["results"]
        for model in (n for n in res if MODELS[n].family == "ours"):
            for peer in (n for n in res if MODELS[n].family == "peer"):
                out.append(
                    {
                        "size": entry["size"],
                        "model": model,
                        "peer": peer,
                        "latency_ratio": res[model]["latency_ms"] / res[peer]["latency_ms"],
                    }
                )
    return out


def scaling_fits(report: dict, scaling_sizes: list[str]) -> dict:
    """Per model: latency at the scaling sizes, fitted exponent and latency ratio per doubling."""
    entries = [size_entry(report, s) for s in scaling_sizes]
    if len(entries) < 2 or any(e is None for e in entries):
        return {}
    out = {}
    for name in (n for n in entries[0]["results"] if all(n in e["results"] for e in entries)):
        pixels = [e["height"] * e["width"] for e in entries]
        latency = [e["results"][name]["latency_ms"] for e in entries]
        exponent = fit_exponent(pixels, latency)
        out[name] = {
            "sizes": scaling_sizes,
            "pixels": pixels,
            "latency_ms": latency,
            "exponent": exponent,
            "ratio_per_doubling": 2.0**exponent,
        }
    return out


def evaluate_targets(report: dict) -> list[dict]:
    """The CPU latency targets that this run can decide (both models at the size measured)."""
    if report["machine"]["device"] != "cpu":
        return []
    out = []
    for t in TARGETS:
        entry = size_entry(report, t.size)
        if entry is None or not {t.model, t.reference} <= entry["results"].keys():
            continue
        ratio = (
            entry["results"][t.model]["latency_ms"] / entry["results"][t.reference]["latency_ms"]
        )
        out.append(
            {
                "kind": "latency_ratio",
                "model": t.model,
                "reference": t.reference,
                "size": t.size,
                "max_ratio": t.max_ratio,
                "ratio": ratio,
                "met": ratio <= t.max_ratio,
                "text": f"{MODELS[t.model].label} <= {t.max_ratio:g} x "
                f"{MODELS[t.reference].label} at {t.size}",
            }
        )
    for name in LINEAR_GROWTH_MODELS:
        if (fit := report["scaling"].get(name)) is not None:
            out.append(
                {
                    "kind": "linear_growth",
                    "model": name,
                    "reference": None,
                    "size": fit["sizes"][-1],
                    "max_ratio": LINEAR_EXPONENT_MAX,
                    "ratio": fit["exponent"],
                    "met": fit["exponent"] <= LINEAR_EXPONENT_MAX,
                    "text": f"{MODELS[name].label} latency ~ pixels^e with "
                    f"e <= {LINEAR_EXPONENT_MAX:g} ({', '.join(fit['sizes'])})",
                }
            )
    return out


def profile_unmet(runner: Runner, report: dict) -> dict:
    """torch.profiler top ops of the slower model of every target not met, at its size."""
    profiles = {}
    for target in report["targets"]:
        key = f"{target['model']}@{target['size']}"
        if target["met"] or key in profiles:
            continue
        size = parse_size(target["size"])
        model = runner.prepare(build_model(target["model"], size != CLASSIFIER_SIZE))
        profiles[key] = {
            "model": target["model"],
            "size": target["size"],
            "batch": 1,
            "rows": runner.profile(model, runner.input(1, size)),
        }
    return profiles


def print_report(report: dict) -> None:
    m = report["machine"]
    print(
        f"\n{m['gpu'] or m['cpu_model']}, {m['threads']} threads, torch {m['torch']}, "
        f"timm {m['timm']}, CPU allocator {report['settings'].get('cpu_allocator', 'system')}; "
        f"load average at start {report['loadavg_start'][0]:.2f}"
    )
    for entry in report["sizes"]:
        print(f"\n{entry['size']} ({entry['mode']}, {entry['role']})")
        print(
            f"{'model':<16} {'params M':>8} {'GMACs':>7} {'ms (b1)':>9} {'img/s':>8} "
            f"{'batch':>5} {'peak MiB':>9}"
        )
        for name, r in entry["results"].items():
            spec, info = MODELS[name], report["models"][name]
            params = info["params"] if entry["mode"] == "classifier" else info["backbone_params"]
            macs = f"{r['macs'] / 1e9:7.2f}" if r.get("macs") is not None else f"{'-':>7}"
            thr = f"{r['throughput_ips']:8.1f}" if "throughput_ips" in r else f"{'-':>8}"
            mem = r.get("peak_memory_mib")
            mem = f"{mem:9.1f}" if mem is not None else f"{'-':>9}"
            print(
                f"{spec.label:<16} {params / 1e6:8.2f} {macs} {r['latency_ms']:9.2f} {thr} "
                f"{r.get('throughput_batch', '-'):>5} {mem}"
            )
        for name, error in entry["errors"].items():
            print(f"FAILED {MODELS[name].label} at {entry['size']}: {error}")
    if report["scaling"]:
        print(
            "\nlatency growth with pixels ("
            + ", ".join(next(iter(report["scaling"].values()))["sizes"])
            + ")"
        )
        for name, fit in report["scaling"].items():
            times = " ".join(f"{t:9.1f}" for t in fit["latency_ms"])
            print(
                f"{MODELS[name].label:<16} {times}  exponent {fit['exponent']:.2f}  "
                f"x{fit['ratio_per_doubling']:.2f} per doubling"
            )
    if report["targets"]:
        print("\ntargets (docs/design/performance_targets.md)")
        for t in report["targets"]:
            print(f"  {'MET    ' if t['met'] else 'NOT MET'}  {t['text']}: {t['ratio']:.3f}")
    for key, prof in report["profiles"].items():
        print(f"\ntop ops of {key} (batch 1, self CPU time per forward)")
        for row in prof["rows"]:
            print(
                f"  {row['op'][:48]:<48} {row['self_cpu_ms']:9.2f} ms {row['self_cpu_pct']:5.1f}%"
                f" {row['calls']:>6}"
            )


def write_json(report: dict, path: Path) -> None:
    """Write the report atomically (the project's crash-safe temp-file-then-rename helper)."""
    atomic_write_text(json.dumps(report, indent=1), path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=list(MODELS),
        metavar="MODEL",
        help=f"subset of: {' '.join(MODELS)}",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="HxW; 224x224 runs the classifiers, others the features",
    )
    parser.add_argument(
        "--scaling-base",
        default=SCALING_BASE,
        help="size whose 0.5x..4x pixel counts are timed ('none' to skip)",
    )
    parser.add_argument("--scaling-factors", nargs="+", type=float, default=list(SCALING_FACTORS))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds per size (>= 1)")
    parser.add_argument("--repeats", type=int, default=4, help="timed batch-1 rounds per size")
    parser.add_argument(
        "--repeats-224",
        type=int,
        default=30,
        help="timed batch-1 rounds at 224x224 (tens of ms per model: the 224 "
        "targets need more rounds than the noise of 4)",
    )
    parser.add_argument(
        "--throughput-repeats",
        type=int,
        default=2,
        help="timed rounds at the throughput batch per size",
    )
    parser.add_argument(
        "--batch-224",
        type=int,
        default=None,
        help="throughput batch at 224x224 (default 8 cpu, 256 cuda)",
    )
    parser.add_argument(
        "--batch-dense",
        type=int,
        default=None,
        help="throughput batch at dense sizes (default 2 cpu, 16 cuda)",
    )
    parser.add_argument("--no-macs", action="store_true", help="skip MAC counting")
    parser.add_argument(
        "--allocator",
        default="retain",
        choices=ALLOCATOR_MODES,
        help="CPU malloc: 'retain' keeps freed memory for reuse (no page faults "
        "per pass; plgvit_mm/utils/cpu_allocator.py), 'system' the defaults",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    for value, flag in (
        (args.repeats, "--repeats"),
        (args.repeats_224, "--repeats-224"),
        (args.throughput_repeats, "--throughput-repeats"),
        (args.threads, "--threads"),
        (args.warmup, "--warmup"),
    ):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    report = benchmark(args)
    print_report(report)
    if args.json is not None:
        write_json(report, args.json)
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
