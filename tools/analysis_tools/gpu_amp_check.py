"""Mixed-precision check of the backbones and the neighborhood-attention op on a GPU.

    python tools/analysis_tools/gpu_amp_check.py [--out amp_check.json] [--size 224] [--batch 2]

For every backbone (NAT-Mini/Tiny, DiNAT-Mini, PLG-ViT-T, LW-PLG-ViT-A/R) and each autocast dtype
(float16, bfloat16): forward + backward under ``torch.autocast('cuda', dtype)``; records whether
outputs and gradients are finite and each output level's relative error
``||amp - fp32|| / ||fp32||`` against the float32 forward. For ``na2d`` with every backend that
serves the call (reference, triton, flex): float16/bfloat16 inputs with large logits (|q.k| up
to ~1e4), forward + backward, error against float64 on the same rounded inputs. Writes one JSON
file; exit status 1 when anything is non-finite or above the tolerances (``--tol-backbone``,
``--tol-op FP16 BF16``). Needs torch, timm, mmengine and plgvit_mm only (no mmcv/mmdet/mmseg).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback

import torch
from mmengine.registry import MODELS

import plgvit_mm
from plgvit_mm.ops import na2d

BACKBONES = {
    "nat_mini": dict(type="NAT", arch="mini"),
    "nat_tiny": dict(type="NAT", arch="tiny"),
    "dinat_mini": dict(type="DiNAT", arch="mini", dilations="coco"),
    "plgvit_tiny": dict(type="PLGViT", arch="tiny"),
    "lwplgvit_a": dict(type="LWPLGViT", arch="a"),
    "lwplgvit_r": dict(type="LWPLGViT", arch="r"),
}
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
OP_BACKENDS = ("reference", "triton", "flex")
OP_CASES = [dict(kernel=7, dilation=1), dict(kernel=7, dilation=3), dict(kernel=13, dilation=1)]


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return ((approx.double() - exact.double()).norm() / exact.double().norm()).item()


def check_backbone(name: str, device: str, size: int, batch: int) -> dict:
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES[name], drop_path_rate=0.0)).to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)
    with torch.no_grad():
        reference = model(x)
    result: dict = {}
    for dtype_name, dtype in DTYPES.items():
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autocast(device, dtype=dtype):
            outs = model(x)
        sum(o.float().square().mean() for o in outs).backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        result[dtype_name] = dict(
            outputs_finite=all(bool(torch.isfinite(o).all()) for o in outs),
            grads_finite=all(g is not None and bool(torch.isfinite(g).all()) for g in grads),
            relative_error=[relative_error(o, r) for o, r in zip(outs, reference, strict=True)],
            seconds=time.perf_counter() - start,
        )
    return result


def check_op(backend: str, dtype: torch.dtype, kernel: int, dilation: int, device: str) -> dict:
    torch.manual_seed(0)
    shape = (2, 32, 32, 4, 32)
    q, k = [(torch.randn(shape, device=device) * 25).to(dtype) for _ in range(2)]
    v = torch.randn(shape, device=device).to(dtype)
    rpb = torch.randn(4, 2 * kernel - 1, 2 * kernel - 1, device=device).to(dtype)
    exact = na2d(
        q.double(), k.double(), v.double(), kernel, dilation, rpb=rpb.double(), backend="reference"
    )
    leaves = [t.clone().requires_grad_() for t in (q, k, v, rpb)]
    out = na2d(*leaves[:3], kernel, dilation, rpb=leaves[3], backend=backend)
    out.float().square().mean().backward()
    return dict(
        dtype=str(dtype).removeprefix("torch."),
        kernel=kernel,
        dilation=dilation,
        output_dtype=str(out.dtype).removeprefix("torch."),
        max_abs_logit=float((q.double() * k.double()).sum(-1).abs().max() / 32**0.5),
        outputs_finite=bool(torch.isfinite(out).all()),
        grads_finite=all(bool(torch.isfinite(t.grad).all()) for t in leaves),
        relative_error=relative_error(out, exact),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="amp_check.json")
    parser.add_argument("--size", type=int, default=224, help="input H = W (pixels)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tol-backbone", type=float, default=0.05)
    parser.add_argument(
        "--tol-op",
        type=float,
        nargs=2,
        default=(0.05, 0.15),
        metavar=("FP16", "BF16"),
        help="na2d error bounds; q.k is rounded to the input dtype before the "
        "float32 softmax, which at |logit| ~ 2.5e3 alone gives ~1%% (fp16) "
        "/ ~7%% (bf16) on the CPU",
    )
    args = parser.parse_args(argv)
    report: dict = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        plgvit_mm=plgvit_mm.__version__,
        device=args.device,
        device_name=(
            torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
        ),
        size=args.size,
        batch=args.batch,
        backbones={},
        na2d={},
        failures=[],
    )
    for name in BACKBONES:
        try:
            report["backbones"][name] = res = check_backbone(
                name, args.device, args.size, args.batch
            )
        except Exception:  # noqa: BLE001  (recorded in the JSON, the check goes on)
            report["failures"].append(f"{name}: {traceback.format_exc(limit=3)}")
            continue
        for dtype_name, entry in res.items():
            if not (
                entry["outputs_finite"]
                and entry["grads_finite"]
                and max(entry["relative_error"]) < args.tol_backbone
            ):
                report["failures"].append(f"{name} {dtype_name}: {entry}")
    for backend in OP_BACKENDS:
        entries = report["na2d"][backend] = []
        for dtype, tolerance in zip(DTYPES.values(), args.tol_op, strict=True):
            for case in OP_CASES:
                try:
                    entry = check_op(backend, dtype, device=args.device, **case)
                except Exception:  # noqa: BLE001
                    report["failures"].append(
                        f"na2d {backend} {dtype} {case}: {traceback.format_exc(limit=3)}"
                    )
                    continue
                entries.append(entry)
                if not (
                    entry["outputs_finite"]
                    and entry["grads_finite"]
                    and entry["relative_error"] < tolerance
                ):
                    report["failures"].append(f"na2d {backend}: {entry}")
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(json.dumps(dict(out=args.out, failures=len(report["failures"]))))
    for failure in report["failures"]:
        print("FAIL", failure)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
