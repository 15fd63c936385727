"""Calibrate LW-PLG-ViT-A/-R on CPU: params, MACs and latency ratios vs timm peers.

Models are run interleaved (A B peer A B peer ...) in one process with a pinned thread count, and
median latencies are reported, because the machine is shared and noisy; compare ratios, not
absolute times. 224x224 runs the classifiers, other sizes the ``features_only`` models.

    python tools/calibrate_plgvit.py --sizes 224x224 384x1280 --repeats 15 --json out.json
    python tools/calibrate_plgvit.py --roadmap      # PLG-ViT -> LW-PLG-ViT ablation steps
    python tools/calibrate_plgvit.py --profile lw_plgvit_r --sizes 384x1280   # top ops
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch

import plgvit_mm.models.backbones.plgvit as plgvit
from plgvit_mm.utils.flops import count_macs

PEERS = ("mobilevit_s", "edgenext_small")
TARGETS = (  # (numerator, denominator, max ratio)
    ("lw_plgvit_r", "lw_plgvit_a", 0.85),
    ("lw_plgvit_r", "edgenext_small", 1.0),
    ("lw_plgvit_a", "mobilevit_s", None),
)
A_VS_MOBILEVIT = {"224x224": 1.0}  # any other size: 0.5


def roadmap_steps() -> dict[str, dict]:
    """Cumulative LW changes from a PLG-ViT layout at A's stage-1 width to LW-PLG-ViT-A."""
    a = plgvit.LW_ARCHS["a"]
    dim = a["embed_dims"][0]
    base = dict(
        embed_dims=(dim, 2 * dim, 4 * dim, 8 * dim),
        depths=a["depths"],
        local_heads=tuple(max(1, d // 2 // 24) for d in (dim, 2 * dim, 4 * dim, 8 * dim)),
        local_window=(7,) * 4,
        downsampler="fused_mbconv",
        ffn="ccf",
        global_pool="max_avg",
        decoupled=False,
        mlp_ratios=(4.0,) * 4,
        expansion_channels=0,
        stem_channels=dim,
    )
    steps = {"0 PLG-ViT layout": base}
    changes = [
        ("1 + LW downsampler", dict(downsampler="lw", stem_channels=a["stem_channels"])),
        ("2 + CCF-FFN+", dict(ffn="ccf_plus", mlp_ratios=a["mlp_ratios"])),
        ("3 + max pooling only", dict(global_pool="max")),
        (
            "4 + decoupled heads/ratio",
            dict(
                decoupled=True,
                local_heads=a["local_heads"],
                global_heads=a["global_heads"],
                global_window=a["global_window"],
                global_ratio=a["global_ratio"],
            ),
        ),
        ("5 + individual widths", dict(embed_dims=a["embed_dims"])),
        ("6 + last-stage expansion (= A)", dict(expansion_channels=a["expansion_channels"])),
    ]
    cfg = dict(base)
    for name, change in changes:
        cfg = {**cfg, **change}
        steps[name] = cfg
    return steps


def build(name: str, features: bool, arch_overrides: dict | None = None) -> torch.nn.Module:
    if arch_overrides is not None:
        arch = plgvit.resolve_arch({}, plgvit.PLG_DEFAULTS, None, **arch_overrides)
        model = plgvit.PLGViTClassifier(arch)
    else:
        model = timm.create_model(name, features_only=features)
    return model.eval()


def interleaved_medians(
    models: dict[str, torch.nn.Module], size: tuple[int, int], repeats: int
) -> dict[str, float]:
    x = torch.randn(1, 3, *size)
    times = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model(x)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["224x224", "384x1280"])
    parser.add_argument("--models", nargs="+", default=["lw_plgvit_a", "lw_plgvit_r", *PEERS])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--roadmap", action="store_true", help="measure the ablation roadmap")
    parser.add_argument("--no-macs", action="store_true")
    parser.add_argument("--profile", help="print torch.profiler top ops of this model")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for size_str in args.sizes:
        size = tuple(int(v) for v in size_str.split("x"))
        features = size != (224, 224)
        if args.profile:
            model, x = build(args.profile, features), torch.randn(1, 3, *size)
            with torch.inference_mode():
                model(x)
                with torch.profiler.profile() as prof:
                    model(x)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
            continue
        if args.roadmap:
            models = {n: build(n, False, cfg) for n, cfg in roadmap_steps().items()}
        else:
            models = {n: build(n, features) for n in args.models}
        latency = interleaved_medians(models, size, args.repeats)
        rows = {}
        for name, model in models.items():
            rows[name] = dict(
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                gmacs=None
                if args.no_macs
                else count_macs(model, torch.randn(1, 3, *size)).total / 1e9,
                median_ms=latency[name],
            )
            gmacs = rows[name]["gmacs"]
            print(
                f"{size_str:>9} {name:34s} {rows[name]['params_m']:6.2f}M "
                f"{'-' if gmacs is None else f'{gmacs:6.2f}'} GMACs {latency[name]:8.1f} ms"
            )
        for num, den, limit in TARGETS:
            if num in latency and den in latency:
                limit = limit or A_VS_MOBILEVIT.get(size_str, 0.5)
                ratio = latency[num] / latency[den]
                print(
                    f"{size_str:>9} {num} / {den} = {ratio:.2f} (target <= {limit}: "
                    f"{'met' if ratio <= limit else 'MISSED'})"
                )
                rows[f"{num}/{den}"] = ratio
        results[size_str] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                dict(threads=args.threads, repeats=args.repeats, results=results), f, indent=1
            )


if __name__ == "__main__":
    main()
