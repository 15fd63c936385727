"""Export a PyTorch module to an ONNX file of standard operators, written atomically.

:func:`export_onnx` runs torch's torch.export-based ONNX exporter with the translations of the
project's custom ops (:data:`ONNX_TRANSLATIONS`), checks that every node (also inside local
functions) is in the default ONNX domain, optionally converts the graph to float16 with float32
inputs and outputs and simplifies it with onnxslim, and writes the file through a temporary
file and a rename, so an interrupted or failed export never leaves a partial ``.onnx``.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from plgvit_mm.utils.atomic_file import atomic_write_bytes

MIN_OPSET = 18
"""Oldest default-domain opset the translations use (ReduceMax with axes as an input, ...)."""
DEFAULT_OPSET = 20

DEFAULT_DOMAINS = ("", "ai.onnx")


class ExportError(RuntimeError):
    """An export that cannot produce a valid standard-operator ONNX graph."""


def check_opset(opset: int) -> int:
    """``opset`` if it is at least :data:`MIN_OPSET`, else ValueError naming the minimum."""
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(
            f"--opset {opset}: the export needs ONNX opset >= {MIN_OPSET} (default-domain "
            f"operators with axes as inputs, as torch's exporter emits them); use {DEFAULT_OPSET}"
        )
    return opset


def onnx_translations() -> dict[Callable, Callable]:
    """Op -> ONNX Script translations passed to ``torch.onnx.export``: neighborhood attention
    and adaptive max pooling of any size (LW-PLG-ViT's global branch)."""
    from plgvit_mm.ops.na2d_onnx import onnx_translations as na2d_translations

    from .adaptive_pool_onnx import adaptive_max_pool2d_onnx

    return {
        **na2d_translations(),
        torch.ops.aten.adaptive_max_pool2d.default: adaptive_max_pool2d_onnx,
    }


def non_default_nodes(model) -> list[str]:
    """``'domain::op_type'`` of every node outside the default ONNX domain, in the main graph,
    its subgraphs and the model's local functions (an empty list for a standard graph)."""
    found: list[str] = []

    def visit(nodes) -> None:
        for node in nodes:
            if node.domain not in DEFAULT_DOMAINS:
                found.append(f"{node.domain}::{node.op_type}")
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g.node)
                for graph in attr.graphs:
                    visit(graph.node)

    visit(model.graph.node)
    for function in model.functions:
        visit(function.node)
    return found


class Float16Module(nn.Module):
    """Runs ``module`` in float16 between float32 inputs and outputs (casts inside the graph)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.half()

    def forward(self, *inputs: Tensor):
        outputs = self.module(*(x.half() if x.is_floating_point() else x for x in inputs))
        if isinstance(outputs, Tensor):
            return outputs.float() if outputs.is_floating_point() else outputs
        return tuple(o.float() if o.is_floating_point() else o for o in outputs)


def export_onnx(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    path: str | os.PathLike,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int = DEFAULT_OPSET,
    dynamic_shapes: Sequence[Mapping[int, object] | None] | None = None,
    simplify: bool = False,
    verbose: bool = False,
):
    """Export ``module(*inputs)`` (eval mode) to ``path``; returns the written ``onnx.ModelProto``.

    ``dynamic_shapes``: one ``{axis: torch.export.Dim}`` (or None) per input. Raises
    :class:`ExportError` when the exporter fails or the graph holds non-standard nodes;
    ``path`` is then left untouched.
    """
    check_opset(opset)
    module = module.eval()
    log = io.StringIO()
    redirect = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(log)
    try:
        with redirect, torch.no_grad():
            program = torch.onnx.export(
                module,
                tuple(inputs),
                dynamo=True,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=tuple(dynamic_shapes) if dynamic_shapes is not None else None,
                custom_translation_table=onnx_translations(),
                optimize=True,
                verbose=verbose,
            )
    except Exception as err:  # the exporter raises many types; all mean "no graph"
        raise ExportError(
            f"torch.onnx.export of {type(module).__name__} failed: {err}\n{log.getvalue()[-2000:]}"
        ) from err
    model = program.model_proto
    foreign = non_default_nodes(model)
    if foreign:
        raise ExportError(
            f"exported graph has nodes outside the default ONNX domain: {sorted(set(foreign))}"
        )
    if simplify:
        import onnxslim

        model = onnxslim.slim(model)
    import onnx

    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(model.SerializeToString(), Path(path))
    return model
