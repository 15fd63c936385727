"""Export a backbone, a UperNet segmentor, detector features or the mono 3D detector to ONNX.

The graph holds standard (default-domain) ONNX operators only; neighborhood attention is
lowered by plgvit_mm.ops.na2d_onnx. See docs/deployment.md.

Examples::

    python tools/deployment/export_onnx.py --model lw_plgvit_a --out lw_a.onnx --check
    python tools/deployment/export_onnx.py --model nat_tiny --shape 384 1280 --out nat_t.onnx
    python tools/deployment/export_onnx.py --config configs/upernet_lwplgvit_a_ade20k.py \\
        --checkpoint work_dirs/upernet/iter_160000.pth --shape 512 512 --out upernet.onnx --check

Exit status: 0 on success, 1 when ``--check`` finds a difference above the tolerance, 2 on a
bad argument or a failed export (nothing is written then).
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="backbone name: lw_plgvit_a, nat_tiny, dinat_tiny, ...")
    source.add_argument("--config", help="backbone, UperNet, Mask/Faster R-CNN or mono 3D config")
    parser.add_argument("--checkpoint", help="weights to load (strict: every key must match)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None)
    parser.add_argument(
        "--dynamic", action="store_true", help="symbolic batch and, where supported, H and W"
    )
    parser.add_argument("--opset", type=int, default=20, help="ONNX opset (>= 18, default 20)")
    parser.add_argument(
        "--fp16", action="store_true", help="float16 graph with float32 inputs and outputs"
    )
    parser.add_argument("--simplify", action="store_true", help="simplify with onnxslim")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare ONNX Runtime with PyTorch on a random input (or --image); exit 1 above "
        "the tolerance",
    )
    parser.add_argument("--image", help="image file for --check of whole-model graphs")
    parser.add_argument("--verbose", action="store_true", help="show the exporter's log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from plgvit_mm.deployment.export_cli import run_export

    try:
        report = run_export(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"export_onnx: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report.get("check", {}).get("passed", True) else 1


if __name__ == "__main__":
    sys.exit(main())
