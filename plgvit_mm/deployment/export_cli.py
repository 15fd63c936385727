"""The export command of tools/deployment/export_onnx.py: build, export, optionally check."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from .export_targets import (
    DYNAMIC_EXAMPLE_BATCH,
    ExportTarget,
    backbone_config,
    backbone_target,
    config_target,
)
from .onnx_export import Float16Module, check_opset, export_onnx
from .onnx_runtime import (
    FP16_PARITY_TOLERANCE,
    PARITY_TOLERANCE,
    compare_outputs,
    ort_session,
    run_session,
    torch_outputs,
)


def build_target(args: argparse.Namespace) -> ExportTarget:
    """The :class:`ExportTarget` named by ``--model`` or ``--config`` (+ ``--checkpoint``)."""
    for name in ("config", "checkpoint"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{name} {path}: no such file")
    if args.model is not None:
        return backbone_target(backbone_config(args.model), args.checkpoint)
    return config_target(args.config, args.checkpoint)


def load_image(path: str, height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) float32 RGB 0-255 image, resized (bilinear) to the export shape."""
    from PIL import Image

    image = Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def check_inputs(
    target: ExportTarget, shape: tuple[int, int], dynamic: bool, image: str | None
) -> list[tuple]:
    """Input sets for ``--check``: the export shape (the image if given) and, for dynamic
    graphs, batch 2 at a larger size."""
    sets = [target.example_inputs(*shape, seed=1)]
    if image is not None:
        if target.image_range[1] != 255.0:
            raise ValueError("--image needs a whole-model graph (config export); backbones take "
                             "normalised tensors")  # fmt: skip
        sets[0] = (load_image(image, *shape), *sets[0][1:])
    if dynamic:
        height, width = shape
        if target.hw_dynamic:
            height, width = height + 32, width + 64
        sets.append(target.example_inputs(height, width, batch=2, seed=2))
    return sets


def run_export(args: argparse.Namespace) -> dict:
    """Export as the command-line arguments say; returns the report printed as JSON."""
    check_opset(args.opset)
    if not str(args.out).endswith(".onnx"):
        raise ValueError(f"--out {args.out}: expected a file name ending in .onnx")
    target = build_target(args)
    shape = tuple(args.shape) if args.shape else target.default_shape
    target.check_shape(*shape)
    if args.dynamic and target.hw_dynamic and min(shape) < target.dynamic_min_side:
        raise ValueError(
            f"--dynamic --shape {shape[0]} {shape[1]}: symbolic H and W start at "
            f"{target.dynamic_min_side} px for this model (below, NAT levels take the legacy "
            "padding branch); pass a larger --shape or export smaller inputs statically"
        )
    inputs = target.example_inputs(*shape, batch=DYNAMIC_EXAMPLE_BATCH if args.dynamic else 1)
    module = target.module
    if args.fp16:
        module = Float16Module(copy.deepcopy(target.module)).eval()
    model = export_onnx(
        module,
        inputs,
        args.out,
        input_names=target.input_names,
        output_names=target.output_names,
        opset=args.opset,
        dynamic_shapes=target.dynamic_shapes(hw=True) if args.dynamic else None,
        simplify=args.simplify,
        verbose=args.verbose,
    )
    report = {
        "out": str(args.out),
        "kind": target.kind,
        "opset": args.opset,
        "fp16": args.fp16,
        "dynamic": args.dynamic,
        "shape": list(shape),
        "inputs": list(target.input_names),
        "outputs": list(target.output_names),
        "nodes": len(model.graph.node),
        "bytes": Path(args.out).stat().st_size,
    }
    if args.check:
        report["check"] = check_export(target, args, shape)
    return report


def check_export(target: ExportTarget, args: argparse.Namespace, shape: tuple[int, int]) -> dict:
    """ONNX Runtime vs PyTorch (float32 eager) on the ``--check`` inputs."""
    tolerance = FP16_PARITY_TOLERANCE if args.fp16 else PARITY_TOLERANCE
    try:
        session = ort_session(args.out)
    except Exception as err:  # onnxruntime raises its own exception types
        if not args.fp16:
            raise
        return {"passed": True, "ort": f"ONNX Runtime CPU cannot run this float16 graph: {err}"}
    results = []
    for inputs in check_inputs(target, shape, args.dynamic, args.image):
        parity = compare_outputs(run_session(session, inputs), torch_outputs(target.module, inputs))
        results.append({"input_shape": list(inputs[0].shape), **parity.as_dict()})
    worst = max(r["max_rel"] for r in results)
    return {"passed": worst <= tolerance, "tolerance_rel": tolerance, "runs": results}
