"""Regenerate docs/benchmarks.md and its figures from benchmark JSON files (nothing else).

Each positional JSON is a report of tools/analysis_tools/benchmark_backbones.py (a CPU run, a GPU run, ...) and
becomes one section with its machine named; ``--na-json`` adds tools/analysis_tools/benchmark_na.py's table and
``--train-json`` tools/analysis_tools/benchmark_train.py's detector/segmentor training-iteration tables,
``--onnx-json`` tools/deployment/benchmark_onnx.py's ONNX Runtime vs PyTorch eager table.
Figures (matplotlib PNGs, one set per report): latency vs pixels on log-log axes, and a
params / MACs / latency scatter.

    python tools/analysis_tools/make_benchmark_docs.py docs/benchmarks.json
    python tools/analysis_tools/make_benchmark_docs.py docs/benchmarks.json docs/benchmarks_cuda.json \\
        --na-json docs/na_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from benchmark_backbones import MODELS, SCHEMA  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from plgvit_mm.utils.atomic_file import atomic_write_text  # noqa: E402

TRAIN_SCHEMA = "plgvit_mm.benchmark_train/1"
"""Schema of benchmark_train.py's reports (read without importing mmdet/mmseg)."""
BUSY_LOADAVG = 1.0
"""A 1-minute load average above this at the start means the CPU was shared."""
RERUN = (
    "python tools/analysis_tools/benchmark_backbones.py --json docs/benchmarks.json && "
    "python tools/analysis_tools/make_benchmark_docs.py docs/benchmarks.json"
)


def load_report(path: Path) -> dict:
    """A benchmark_backbones JSON; ValueError naming the file if it is not one."""
    report = json.loads(path.read_text())
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ValueError(
            f"{path}: not a {SCHEMA} report (schema "
            f"{report.get('schema') if isinstance(report, dict) else None!r})"
        )
    return report


def label(name: str) -> str:
    return MODELS[name].label if name in MODELS else name


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


ALLOCATOR_TEXT = {
    "retain": "CPU allocator 'retain' (glibc keeps freed memory for reuse: no page faults per "
    "pass; `plgvit_mm/utils/cpu_allocator.py`)",
    "system": "CPU allocator 'system' (glibc defaults: tensors above the mmap threshold are "
    "page-faulted in on every pass)",
}


def allocator_of(report: dict) -> str:
    """The run's CPU allocator mode; reports written before the setting existed ran 'system'."""
    return report["settings"].get("cpu_allocator", "system")


def machine_line(report: dict) -> str:
    m = report["machine"]
    where = f"GPU {m['gpu']}" if m["gpu"] else f"CPU {m['cpu_model']} ({m['cpu_count']} cores)"
    return (
        f"{where}, {m['threads']} threads, torch {m['torch']}, timm {m['timm']}, "
        f"{report['settings']['dtype']}, {report['settings']['memory_format']}, "
        f"{ALLOCATOR_TEXT[allocator_of(report)]}"
    )


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def caveats(report: dict) -> list[str]:
    out = []
    load = report["loadavg_start"][0]
    if report["machine"]["device"] == "cpu" and load > BUSY_LOADAVG:
        out.append(
            f"> **Shared CPU**: the load average was {load:.2f} at the start (1-minute; "
            f"{report['loadavg_end'][0]:.2f} at the end), so other processes competed "
            "for the cores: absolute times are inflated and noisy; the side-by-side "
            "ratios are the meaningful numbers."
        )
    if report["machine"]["device"] == "cpu" and allocator_of(report) == "system":
        out.append(
            "> **glibc's default allocator**: every tensor above its mmap threshold (at "
            "most 32 MiB) is page-faulted in again on every forward, a cost that grows "
            "faster than the pixel count once a model's maps pass it (the super-linear "
            "growth of several models below); `--allocator retain` (the default) keeps "
            "freed memory for reuse, as PyTorch's CPU launcher does with jemalloc/tcmalloc."
        )
    if not report["complete"]:
        done = ", ".join(e["size"] for e in report["sizes"])
        out.append(f"> **Incomplete run** (stopped early; measured: {done}); no profiles.")
    if report["machine"]["device"] != "cpu":
        out.append(
            "> **GPU run** (`tools/analysis_tools/gpu_benchmarks.sh`): at batch 1 these models are bound "
            "by kernel launches (latency hardly changes from 224x224 to 768x2560), so the "
            "throughput columns are the numbers to compare."
        )
    elif not report["settings"]["full_run"]:
        s = report["settings"]
        out.append(
            f"> **Reduced run** (models {len(s['models'])}/{len(MODELS)}, sizes "
            f"{' '.join(s['sizes'])}, {s['warmup']} warm-up, {s['repeats']} repeats): "
            f"rerun on a quiet machine with `{RERUN}`."
        )
    return out


def size_tables(report: dict) -> list[str]:
    lines = []
    for entry in (e for e in report["sizes"] if e["role"] == "main"):
        key = "params" if entry["mode"] == "classifier" else "backbone_params"
        batch = report["settings"]["batch_224" if entry["mode"] == "classifier" else "batch_dense"]
        lines += ["", f"#### {entry['size']} ({entry['mode']})", ""]
        rows = []
        for name, r in entry["results"].items():
            macs = r.get("macs")
            rows.append(
                [
                    label(name),
                    fmt(report["models"][name][key] / 1e6, ".2f"),
                    fmt(macs / 1e9 if macs is not None else None, ".2f"),
                    fmt(r["latency_ms"]),
                    fmt(r.get("throughput_ips")),
                    fmt(r.get("peak_memory_mib")),
                ]
            )
        lines += table(
            [
                "model",
                "params (M)",
                "GMACs",
                "latency b1 (ms, median)",
                f"throughput b{batch} (img/s)",
                "peak mem (MiB)",
            ],
            rows,
        )
        lines += [
            f"\nFailed: {label(name)}: `{error}`" for name, error in entry.get("errors", {}).items()
        ]
    return lines


def ratio_tables(report: dict) -> list[str]:
    lines = []
    by_size: dict[str, dict[tuple[str, str], float]] = {}
    for r in report["ratios"]:
        by_size.setdefault(r["size"], {})[(r["model"], r["peer"])] = r["latency_ratio"]
    main_sizes = {e["size"] for e in report["sizes"] if e["role"] == "main"}
    for size, ratios in by_size.items():
        if size not in main_sizes:
            continue
        ours = list(dict.fromkeys(m for m, _ in ratios))
        peers = list(dict.fromkeys(p for _, p in ratios))
        lines += ["", f"#### {size}", ""]
        lines += table(
            ["ours / peer"] + [label(p) for p in peers],
            [[label(m)] + [fmt(ratios[(m, p)], ".2f") for p in peers] for m in ours],
        )
    return lines


def target_lines(report: dict) -> list[str]:
    if report["machine"]["device"] != "cpu":
        return ["", "The latency targets are CPU targets; see the CPU section."]
    rows = [
        [
            t["text"],
            fmt(t["ratio"], ".3f"),
            ("exponent" if t["kind"] == "linear_growth" else "ratio") + f" <= {t['max_ratio']:g}",
            "MET" if t["met"] else "**NOT MET**",
        ]
        for t in report["targets"]
    ]
    return ["", *table(["target", "measured", "limit", "verdict"], rows)]


def scaling_lines(report: dict) -> list[str]:
    if not report["scaling"]:
        return ["", "Not measured in this run."]
    sizes = next(iter(report["scaling"].values()))["sizes"]
    rows = [
        [
            label(n),
            *(fmt(t) for t in f["latency_ms"]),
            fmt(f["exponent"], ".2f"),
            fmt(f["ratio_per_doubling"], ".2f"),
        ]
        for n, f in report["scaling"].items()
    ]
    return [
        "",
        *table(["model", *(f"{s} (ms)" for s in sizes), "exponent e", "x per doubling"], rows),
    ]


def profile_lines(report: dict) -> list[str]:
    lines = []
    for key, prof in report["profiles"].items():
        lines += ["", f"#### {label(prof['model'])} at {prof['size']} (batch 1; `{key}`)", ""]
        lines += table(
            ["op", "self CPU ms / forward", "% of self CPU", "calls / forward"],
            [
                [
                    f"`{r['op']}`",
                    fmt(r["self_cpu_ms"], ".2f"),
                    fmt(r["self_cpu_pct"]),
                    str(r["calls"]),
                ]
                for r in prof["rows"]
            ],
        )
    return lines


def plain_log_axes(ax: plt.Axes) -> None:
    """Log-log axes with plain-number labels at 1, 2, 5 x powers of ten."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def plot_scaling(report: dict, path: Path) -> bool:
    if not report["scaling"]:
        return False
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, fit in report["scaling"].items():
        style = "-o" if MODELS[name].family == "ours" else "--s"
        ax.plot(
            [p / 1e6 for p in fit["pixels"]],
            fit["latency_ms"],
            style,
            markersize=4,
            label=f"{label(name)} (e={fit['exponent']:.2f})",
        )
    first = next(iter(report["scaling"].values()))
    x0, y0 = first["pixels"][0] / 1e6, min(f["latency_ms"][0] for f in report["scaling"].values())
    xs = [x0, first["pixels"][-1] / 1e6]
    ax.plot(xs, [y0 * 0.7, y0 * 0.7 * xs[1] / xs[0]], ":", color="gray", label="linear (e=1)")
    plain_log_axes(ax)
    ax.set_xlabel("megapixels per image")
    ax.set_ylabel("latency, batch 1 (ms)")
    ax.set_title(
        f"Latency vs pixels ({', '.join(first['sizes'])})\n{machine_line(report)}", fontsize=8
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_scatter(report: dict, path: Path) -> bool:
    entries = [e for e in report["sizes"] if e["role"] == "main"][:2]
    if not entries:
        return False
    fig, axes = plt.subplots(1, len(entries), figsize=(6 * len(entries), 5), squeeze=False)
    for ax, entry in zip(axes[0], entries, strict=True):
        key = "params" if entry["mode"] == "classifier" else "backbone_params"
        has_macs = all(r.get("macs") is not None for r in entry["results"].values())
        for name, r in entry["results"].items():
            params = report["models"][name][key] / 1e6
            x = r["macs"] / 1e9 if has_macs else params
            ours = MODELS[name].family == "ours"
            ax.scatter(
                x,
                r["latency_ms"],
                s=20 + 12 * params,
                alpha=0.6,
                color="tab:red" if ours else "tab:blue",
            )
            ax.annotate(
                label(name),
                (x, r["latency_ms"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        plain_log_axes(ax)
        ax.set_xlabel("GMACs per image" if has_macs else "params (M)")
        ax.set_ylabel("latency, batch 1 (ms)")
        ax.set_title(
            f"{entry['size']} ({entry['mode']}); marker area ~ params; red = ours", fontsize=8
        )
    fig.suptitle(machine_line(report), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def report_section(report: dict, tag: str, out: Path, figures: Path) -> list[str]:
    m = report["machine"]
    title = (
        f"GPU: {m['gpu']}"
        if m["gpu"]
        else f"CPU: {m['cpu_model']}, {m['threads']} threads, allocator {allocator_of(report)}"
    )
    s = report["settings"]
    lines = [
        "",
        f"## {title}",
        "",
        f"Machine: {machine_line(report)}. Load average at start "
        f"{report['loadavg_start'][0]:.2f}; run took {report['wall_s'] / 60:.1f} min. "
        f"{s['warmup']} warm-up + {s['repeats']} timed rounds (batch 1; "
        f"{s.get('repeats_224', s['repeats'])} at 224x224) and "
        f"{s['throughput_repeats']} throughput round(s) per size; peak memory: "
        f"{report['memory_method']}.",
        "",
    ]
    for caveat in caveats(report):
        lines += [caveat, ""]
    lines += ["", "### Targets (docs/design/performance_targets.md)", *target_lines(report)]
    lines += ["", "### Params, MACs, latency, throughput, memory", *size_tables(report)]
    lines += [
        "",
        "### Latency ratios against each peer (ours / peer, batch 1; < 1 = faster)",
        *ratio_tables(report),
    ]
    lines += [
        "",
        "### Latency growth with pixels (batch 1; latency ~ pixels^e)",
        *scaling_lines(report),
    ]
    rel = Path(os.path.relpath(figures, out.parent))
    for name, plot, caption in (
        (f"{tag}_latency_vs_pixels.png", plot_scaling, "latency vs pixels"),
        (f"{tag}_params_macs_latency.png", plot_scatter, "params / MACs / latency"),
    ):
        if plot(report, figures / name):
            lines += ["", f"![{caption}, {tag}]({(rel / name).as_posix()})"]
    if report["profiles"]:
        lines += [
            "",
            "### Where the time goes for targets not met (torch.profiler, top "
            "ops by self CPU time)",
            *profile_lines(report),
        ]
    return lines


def na_section(na: dict, source: Path) -> list[str]:
    rows = [
        [
            r["input"],
            str(r["stage"]),
            str(r["batch"]),
            str(r["heads"]),
            f"{r['height']}x{r['width']}",
            r["backend"],
            fmt(r["fwd_ms"], ".3f"),
            fmt(r["fwd_bwd_ms"], ".3f"),
            fmt(r.get("fwd_bwd_peak_mib")),
        ]
        for r in na["rows"]
    ]
    lines = [
        "",
        f"## Neighborhood attention op: {na['device']}",
        "",
        f"tools/analysis_tools/benchmark_na.py, {na['dtype']}, torch {na['torch']}, NAT-Tiny stage shapes "
        f"(head_dim 32, k=7); from `{source.as_posix()}`.",
        "",
        *table(
            ["input", "stage", "B", "heads", "HxW", "backend", "fwd ms", "fwd+bwd ms", "peak MiB"],
            rows,
        ),
    ]
    for error in na.get("errors", []):
        lines += [
            "",
            f"> **{error['backend']} failed** at {error['input']} stage "
            f"{error['stage']}: `{error['error'][:200]}`",
        ]
    if na.get("ratios"):
        lines += [
            "",
            *table(
                ["shape", "triton / flex fwd", "triton / flex fwd+bwd"],
                [
                    [k, fmt(v["fwd"], ".3f"), fmt(v["fwd_bwd"], ".3f")]
                    for k, v in na["ratios"].items()
                ],
            ),
        ]
    return lines


def train_section(report: dict, source: Path) -> list[str]:
    """Tables of tools/analysis_tools/benchmark_train.py: s/iter and peak memory per config, x the R-50 config."""
    if report.get("schema") != TRAIN_SCHEMA:
        raise ValueError(f"{source}: not a {TRAIN_SCHEMA} report (schema {report.get('schema')!r})")
    m = report["machine"]
    cuda = m["device"] == "cuda"
    where = f"GPU {m['gpu']}" if cuda else f"CPU {m['cpu_model']}, {m['threads']} threads"
    memory = "peak MiB (allocator, all)" if cuda else "peak growth MiB (RSS)"
    lines = [
        "",
        f"## Training iteration: detectors and segmentors ({where})",
        "",
        f"`tools/analysis_tools/benchmark_train.py` (from `{source.as_posix()}`): one `model.train_step` "
        "(data preprocessor, forward, losses, backward, optimizer step of the config's own "
        "optim wrapper) on the same generated synthetic-shapes batch for every config, "
        "random weights, configs interleaved, median of "
        f"{report['repeats']} rounds after {report['warmup']} warm-up round(s); torch "
        f"{m['torch']}, mmdet {m['mmdet']}, mmseg {m['mmseg']}"
        f"{', bf16 AMP' if report['amp'] else ', fp32'}"
        + ("" if cuda else f", {ALLOCATOR_TEXT[report.get('cpu_allocator', 'system')]}")
        + ". Peak memory: "
        + (
            "the allocator peak of one iteration, weights and optimizer state included."
            if cuda
            else "growth of the resident set during one iteration (gradients, "
            "activations, temporaries); `state MiB` = weights + optimizer state resident "
            "between iterations."
        ),
    ]
    for result in report["results"]:
        h, w = result["shape"]
        head = "Mask R-CNN + FPN (COCO heads)" if result["task"] == "det" else "UperNet (ADE20K)"
        rows = [
            [
                row["config"].replace("configs/", "").replace(".py", ""),
                fmt(row["params"] / 1e6, ".2f"),
                fmt(row["median_s"], ".3f"),
                fmt(row["time_vs_r50"], ".2f"),
                fmt(row["peak_mib"], ".0f"),
                fmt(row["peak_vs_r50"], ".2f"),
                fmt(row["state_mib"], ".0f"),
            ]
            for row in result["rows"]
        ]
        lines += [
            "",
            f"### {head}: batch {result['batch']} x {h}x{w}",
            "",
            *table(
                [
                    "config",
                    "params (M)",
                    "s / iter",
                    "time x R-50",
                    memory,
                    "memory x R-50",
                    "state MiB",
                ],
                rows,
            ),
        ]
    return lines


# ONNX Runtime / PyTorch eager latency goals per backbone (docs/deployment.md): LW-PLG-ViT at
# most 1.0 (stretch 0.7); NAT-T at most 1.5 (its eager path has a fused C++ kernel ONNX lacks)
ONNX_GOALS = {"lw_plgvit_a": 1.0, "lw_plgvit_r": 1.0, "nat_tiny": 1.5}
ONNX_STRETCH = {"lw_plgvit_a": 0.7, "lw_plgvit_r": 0.7}


def onnx_section(report: dict, source: Path) -> list[str]:
    """Table of tools/deployment/benchmark_onnx.py: eager vs ONNX Runtime, ratio, parity, goal."""
    env = report["environment"]
    rows = []
    for r in report["results"]:
        goal = ONNX_GOALS.get(r["model"])
        ratio = r["ratio_median"]
        verdict = "-" if goal is None else ("MET" if ratio <= goal else "NOT MET")
        if r["model"] in ONNX_STRETCH and ratio <= ONNX_STRETCH[r["model"]]:
            verdict += " (stretch met)"
        rows.append(
            [
                r["model"],
                "x".join(map(str, r["shape"])),
                f"{r['pytorch_ms']['median']:.1f} / {r['pytorch_ms']['min']:.1f}",
                f"{r['onnxruntime_ms']['median']:.1f} / {r['onnxruntime_ms']['min']:.1f}",
                f"{ratio:.2f}",
                "-" if goal is None else f"<= {goal}",
                verdict,
                f"{r['parity']['max_abs']:.1e}",
                f"{r['parity']['max_rel']:.1e}",
                f"{r['onnx_bytes'] / 1e6:.0f}" if "onnx_bytes" in r else "-",
            ]
        )
    return [
        "",
        f"## ONNX Runtime vs PyTorch eager (CPU {env['cpu']}, {env['threads']} threads)",
        "",
        f"`{report['command']}` (from `{source.as_posix()}`): {report['method']}; torch "
        f"{env['torch']}, onnxruntime {env['onnxruntime']}; load average "
        f"{env['load_average_1min']:.2f} when written"
        + ("" if report["complete"] else "; **incomplete run**")
        + ". Parity: max abs difference of all outputs and that difference relative to the "
        "largest output magnitude.",
        "",
        *table(
            [
                "backbone",
                "input",
                "eager ms (median / min)",
                "ONNX Runtime ms (median / min)",
                "ORT / eager",
                "goal",
                "verdict",
                "max abs diff",
                "rel. to scale",
                "graph MB",
            ],
            rows,
        ),
    ]


def make_docs(
    reports: list[Path],
    out: Path,
    figures: Path,
    na_jsons: Sequence[Path] = (),
    train_jsons: Sequence[Path] = (),
    onnx_jsons: Sequence[Path] = (),
) -> str:
    """Write ``out`` (markdown) and the PNGs under ``figures``; returns the markdown."""
    loaded = [load_report(p) for p in reports]
    figures.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        ["python tools/analysis_tools/make_benchmark_docs.py", *(str(p) for p in reports)]
        + (["--na-json", *(str(p) for p in na_jsons)] if na_jsons else [])
        + (["--train-json", *(str(p) for p in train_jsons)] if train_jsons else [])
        + (["--onnx-json", *(str(p) for p in onnx_jsons)] if onnx_jsons else [])
    )
    lines = [
        "# Backbone benchmarks",
        "",
        f"Generated by `{command}` from the JSON written by `tools/analysis_tools/benchmark_backbones.py` "
        "(and `benchmark_na.py` / `benchmark_train.py` / `tools/deployment/benchmark_onnx.py` "
        "for their sections); "
        "do not edit by hand. All models of a section ran in one process, interleaved "
        "(A B C ... A B C ...), random weights, medians after warm-up, pinned threads; "
        "compare ratios within a section. 224x224 runs the classifiers, other sizes the "
        "`features_only` backbones (strides 4-32); Swin-T only at 224 (fixed input size). "
        "FastViT runs reparameterized (timm `reparameterize_model`). MACs: "
        "`plgvit_mm.utils.flops.count_macs` plus scaled-dot-product attention, one image.",
    ]
    tags: list[str] = []
    for report in loaded:
        tag = report["machine"]["device"]
        tag = tag if tag not in tags else f"{tag}{len(tags)}"
        tags.append(tag)
        lines += report_section(report, tag, out, figures)
    for na_json in na_jsons:
        lines += na_section(json.loads(na_json.read_text()), na_json)
    for train_json in train_jsons:
        lines += train_section(json.loads(train_json.read_text()), train_json)
    for onnx_json in onnx_jsons:
        lines += onnx_section(json.loads(onnx_json.read_text()), onnx_json)
    text = "\n".join(lines) + "\n"
    atomic_write_text(text, out)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="benchmark_backbones JSON files")
    parser.add_argument(
        "--na-json",
        type=Path,
        nargs="+",
        default=[],
        help="benchmark_na JSON files (one section each)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--figures", type=Path, default=None, help="PNG folder (default: figures/ next to --out)"
    )
    parser.add_argument(
        "--train-json",
        type=Path,
        nargs="+",
        default=[],
        help="benchmark_train JSON files (detector/segmentor training iteration)",
    )
    parser.add_argument(
        "--onnx-json",
        type=Path,
        nargs="+",
        default=[],
        help="benchmark_onnx JSON files (ONNX Runtime vs PyTorch eager)",
    )
    args = parser.parse_args(argv)
    figures = args.figures or args.out.parent / "figures"
    make_docs(args.reports, args.out, figures, args.na_json, args.train_json, args.onnx_json)
    print(f"wrote {args.out} and figures in {figures}")


if __name__ == "__main__":
    main()
