"""Convert a NAT/DiNAT checkpoint (official classifier, mmdet/mmseg or HuggingFace) to plgvit_mm.

The converted keys are checked against the target model: a mismatch exits with status 1 and the
offending key names, nothing is written. The output (``{'state_dict', 'meta'}``) is written
atomically and loads through ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` (backbone) or
``timm.create_model('nat_tiny', pretrained=True, pretrained_cfg_overlay=dict(file=DST))``
(classifier).

Example:
    python tools/model_converters/nat2plgvitmm.py nat_tiny.pth work_dirs/nat_tiny_backbone.pth \
        --arch tiny
"""

from __future__ import annotations

import argparse
import sys

from mmengine.runner.checkpoint import CheckpointLoader

import plgvit_mm  # noqa: F401  (safe checkpoint loading)
from plgvit_mm.models.backbones.nat import (
    DENSE_NORM_PREFIXES,
    DINAT_ARCHS,
    NAT,
    NAT_ARCHS,
    DiNAT,
    NATClassifier,
    NATTrunk,
    convert_state_dict,
)
from plgvit_mm.utils.checkpoint_convert import load_state_dict_checked, save_atomic


def build_target(arch: str, dinat: bool, kernel_size: int, target: str) -> NATTrunk:
    """The model whose key layout and shapes the converted file must match."""
    if target == "backbone":
        return (DiNAT if dinat else NAT)(arch=arch, kernel_size=kernel_size, drop_path_rate=0.0)
    return NATClassifier(**(DINAT_ARCHS if dinat else NAT_ARCHS)[arch], kernel_size=kernel_size)


def convert(
    src: str,
    dst: str,
    arch: str,
    dinat: bool = False,
    kernel_size: int = 7,
    target: str = "backbone",
) -> list[str]:
    """Convert ``src`` into ``dst``; returns the problems found (nothing is written if any)."""
    model = build_target(arch, dinat, kernel_size, target)
    state = convert_state_dict(
        CheckpointLoader.load_checkpoint(src, map_location="cpu"), model, source=src
    )
    fresh = DENSE_NORM_PREFIXES if target == "backbone" else ()
    report = load_state_dict_checked(model, state, src, fresh=fresh, allow_partial=True)
    problems = [f"missing key {k}" for k in report.missing]
    problems += [f"unexpected key {k}" for k in report.unexpected]
    problems += [f"shape mismatch {m}" for m in report.mismatched]
    if not problems:
        meta = dict(source=src, arch=arch, dinat=dinat, kernel_size=kernel_size, target=target)
        save_atomic(dict(state_dict=state, meta=meta), dst)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="input checkpoint (.pth / .bin)")
    parser.add_argument("dst", help="output checkpoint")
    parser.add_argument("--arch", required=True, choices=sorted(NAT_ARCHS))
    parser.add_argument("--dinat", action="store_true", help="DiNAT variant table")
    parser.add_argument(
        "--kernel-size",
        type=int,
        default=7,
        help="target kernel size; rpb tables of another size are resized",
    )
    parser.add_argument("--target", choices=("backbone", "classifier"), default="backbone")
    args = parser.parse_args(argv)
    problems = convert(args.src, args.dst, args.arch, args.dinat, args.kernel_size, args.target)
    if problems:
        print(
            f"{args.src}: not converted, {len(problems)} problem(s):",
            *problems,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
