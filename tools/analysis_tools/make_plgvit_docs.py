"""Regenerate the code-derived tables of docs/plgvit.md from the code (nothing is measured).

Each table sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``
in docs/plgvit.md and is rewritten in place; the text around it is left alone.

- ``lw-archs``: the LW-PLG-ViT presets (``LW_ARCHS`` in plgvit_mm/models/backbones/plgvit.py),
  one row per stage, and their parameter counts (classifier and features-only backbone).
  ``tests/test_docs.py`` regenerates it and fails when the committed page differs.
- ``plg-archs``: the PLG-ViT presets (``PLG_ARCHS``) and their parameter counts.
- ``macs``: multiply-accumulates of the presets and the timm peers at 224x224 (classifier) and
  384x1280 (features), counted by ``plgvit_mm.utils.flops.count_macs``.
- ``roadmap``: parameters and MACs of the cumulative steps PLG-ViT layout -> LW-PLG-ViT-A, one LW
  change per step, each a constructor argument.

    python tools/analysis_tools/make_plgvit_docs.py              # all tables
    python tools/analysis_tools/make_plgvit_docs.py --only lw-archs
    python tools/analysis_tools/make_plgvit_docs.py --check      # exit 1 if the page is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import timm
import torch

import plgvit_mm.models.backbones.plgvit as plgvit
from plgvit_mm.utils.atomic_file import atomic_write_text
from plgvit_mm.utils.flops import count_macs

DOC = Path(__file__).resolve().parents[2] / "docs/plgvit.md"
PRESETS = {"a": "lw_plgvit_a", "r": "lw_plgvit_r"}
PEERS = ("mobilevit_s", "edgenext_small")
STRIDES = (4, 8, 16, 32)


def _field(preset: object, key: str) -> object:
    """A preset value, whether presets are dicts or attribute objects."""
    return preset[key] if isinstance(preset, Mapping) else getattr(preset, key)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _fmt_ratio(value: float) -> str:
    return f"{value:g}"


def lw_archs_table() -> str:
    """Per-stage table of every LW-PLG-ViT preset, then the parameter counts."""
    header = [
        "preset",
        "stage",
        "stride",
        "channels",
        "depth",
        "local window / heads",
        "global grid / heads",
        "global ratio",
        "FFN expansion",
    ]
    lines = [_row(header), _row(["---"] * len(header))]
    for name, preset in plgvit.LW_ARCHS.items():
        label = f"{name.upper()} (`{PRESETS.get(name, name)}`)"
        stem = _field(preset, "stem_channels")
        lines.append(
            _row(
                [label, "stem", "2 -> 4", f"{stem} -> {_field(preset, 'embed_dims')[0]}"]
                + ["-"] * 5
            )
        )
        for i, stride in enumerate(STRIDES):
            lines.append(
                _row(
                    [
                        label,
                        i + 1,
                        stride,
                        _field(preset, "embed_dims")[i],
                        _field(preset, "depths")[i],
                        f"{_field(preset, 'local_window')[i]} / {_field(preset, 'local_heads')[i]}",
                        f"{_field(preset, 'global_window')[i]} / "
                        f"{_field(preset, 'global_heads')[i]}",
                        _fmt_ratio(_field(preset, "global_ratio")[i]),
                        _fmt_ratio(_field(preset, "mlp_ratios")[i]),
                    ]
                )
            )
        lines.append(
            _row(
                [label, "4 (end)", 32, f"{_field(preset, 'expansion_channels')} (3x3 conv)"]
                + ["-"] * 5
            )
        )
    lines += ["", _row(["model", "params (classifier, 1000 classes)", "params (features only)"])]
    lines.append(_row(["---"] * 3))
    for name, model_name in PRESETS.items():
        classifier = timm.create_model(model_name)
        features = timm.create_model(model_name, features_only=True)
        lines.append(
            _row(
                [f"LW-PLG-ViT-{name.upper()}", f"{_params(classifier):,}", f"{_params(features):,}"]
            )
        )
    return "\n".join(lines)


def _gmacs(model: torch.nn.Module, size: tuple[int, int]) -> str:
    with torch.inference_mode():
        return f"{count_macs(model.eval(), torch.randn(1, 3, *size)).total / 1e9:.2f}"


def macs_table() -> str:
    """GMACs of the presets and peers: 224x224 classifier, 384x1280 features-only backbone."""
    lines = [
        _row(["model", "params (classifier)", "GMACs 224 classify", "GMACs 384x1280 features"]),
        _row(["---"] * 4),
    ]
    for model_name in (*PRESETS.values(), *PEERS):
        classifier = timm.create_model(model_name)
        features = timm.create_model(model_name, features_only=True)
        lines.append(
            _row(
                [
                    f"`{model_name}`",
                    f"{_params(classifier) / 1e6:.2f}M",
                    _gmacs(classifier, (224, 224)),
                    _gmacs(features, (384, 1280)),
                ]
            )
        )
    return "\n".join(lines)


def roadmap_steps() -> dict[str, dict]:
    """Cumulative LW changes from a PLG-ViT layout at A's stage-1 width to LW-PLG-ViT-A."""
    a = plgvit.LW_ARCHS["a"]
    fields = {f.name for f in dataclasses.fields(plgvit.PLGViTArch)}
    pool_key = "patch_sampling" if "patch_sampling" in fields else "global_pool"
    dim = _field(a, "embed_dims")[0]
    dims = (dim, 2 * dim, 4 * dim, 8 * dim)
    base = {
        "embed_dims": dims,
        "depths": _field(a, "depths"),
        "local_heads": tuple(max(1, d // 2 // 24) for d in dims),
        "local_window": (7,) * 4,
        "downsampler": "fused_mbconv",
        "ffn": "ccf",
        pool_key: "max_avg",
        "decoupled": False,
        "mlp_ratios": (4.0,) * 4,
        "expansion_channels": 0,
        "stem_channels": dim,
    }
    changes = [
        ("1 + LW downsampler", {"downsampler": "lw", "stem_channels": _field(a, "stem_channels")}),
        ("2 + CCF-FFN+", {"ffn": "ccf_plus", "mlp_ratios": _field(a, "mlp_ratios")}),
        ("3 + max pooling only", {pool_key: "max"}),
        (
            "4 + decoupled heads and ratio",
            {
                "decoupled": True,
                **{k: _field(a, k) for k in ("local_heads", "global_heads", "global_window")},
                "global_ratio": _field(a, "global_ratio"),
            },
        ),
        ("5 + individual widths", {"embed_dims": _field(a, "embed_dims")}),
        (
            "6 + last-stage 3x3 expansion (= A)",
            {"expansion_channels": _field(a, "expansion_channels")},
        ),
    ]
    steps = {"0 PLG-ViT layout (head dim 24, widths doubling)": base}
    cfg = dict(base)
    for name, change in changes:
        cfg = {**cfg, **change}
        steps[name] = cfg
    return steps


def roadmap_table() -> str:
    lines = [_row(["step", "params (classifier)", "GMACs 224"]), _row(["---"] * 3)]
    for name, overrides in roadmap_steps().items():
        arch = plgvit.resolve_arch({}, plgvit.PLG_DEFAULTS, None, **overrides)
        model = plgvit.PLGViTClassifier(arch)
        lines.append(_row([name, f"{_params(model) / 1e6:.2f}M", _gmacs(model, (224, 224))]))
    return "\n".join(lines)


def plg_archs_table() -> str:
    """PLG-ViT presets (``PLG_ARCHS``): widths, depths, heads and classifier parameters."""
    header = ["preset", "channels", "depths", "heads per branch", "params (classifier)"]
    lines = [_row(header), _row(["---"] * len(header))]
    for name, preset in plgvit.PLG_ARCHS.items():
        model = timm.create_model(f"plgvit_{name}")
        lines.append(
            _row(
                [
                    f"{name} (`plgvit_{name}`)",
                    ", ".join(str(d) for d in _field(preset, "embed_dims")),
                    ", ".join(str(d) for d in _field(preset, "depths")),
                    ", ".join(str(h) for h in _field(preset, "local_heads")),
                    f"{_params(model):,}",
                ]
            )
        )
    return "\n".join(lines)


TABLES: dict[str, Callable[[], str]] = {
    "lw-archs": lw_archs_table,
    "plg-archs": plg_archs_table,
    "macs": macs_table,
    "roadmap": roadmap_table,
}


def block_pattern(name: str) -> re.Pattern:
    return re.compile(
        rf"(<!-- BEGIN generated: {re.escape(name)} -->\n)(.*?)(<!-- END generated: "
        rf"{re.escape(name)} -->)",
        re.DOTALL,
    )


def generated_block(text: str, name: str, path: Path = DOC) -> str:
    """The current content of block ``name`` in ``text``; ValueError naming the file if absent."""
    match = block_pattern(name).search(text)
    if match is None:
        raise ValueError(f"{path}: no '<!-- BEGIN generated: {name} -->' ... END block")
    return match.group(2)


def replace_block(text: str, name: str, content: str, path: Path = DOC) -> str:
    generated_block(text, name, path)
    return block_pattern(name).sub(lambda m: m.group(1) + content + "\n" + m.group(3), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=DOC, help="page holding the blocks")
    parser.add_argument("--only", nargs="+", choices=sorted(TABLES), help="tables to regenerate")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = args.doc.read_text()
    stale = []
    for name in args.only or TABLES:
        content = TABLES[name]()
        if generated_block(text, name, args.doc) != content + "\n":
            stale.append(name)
        text = replace_block(text, name, content, args.doc)
    if args.check:
        if stale:
            print(f"{args.doc}: stale generated tables {stale}; rerun without --check")
        return 1 if stale else 0
    atomic_write_text(text, args.doc)
    print(f"{args.doc}: regenerated {args.only or list(TABLES)} (changed: {stale})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
