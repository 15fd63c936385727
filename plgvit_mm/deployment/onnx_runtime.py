"""Run exported models with ONNX Runtime (CPU) and compare them with PyTorch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

PARITY_TOLERANCE = 1e-4
"""Largest fp32 difference accepted by ``--check``, relative to the output scale."""
FP16_PARITY_TOLERANCE = 2e-2
"""Largest float16-graph difference accepted by ``--check``, relative to the output scale."""


def ort_session(model: str | os.PathLike | bytes, threads: int = 0, spinning: bool = True):
    """CPU ``onnxruntime.InferenceSession`` on a file or serialized model.

    ``threads``: intra-op threads (0 = ONNX Runtime's default); one inter-op thread, sequential
    execution, all graph optimizations. ``spinning=False``: the intra-op threads sleep as soon
    as a run ends instead of spinning (for timing next to another thread pool).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_session(session, inputs: Sequence[Tensor | np.ndarray]) -> list[np.ndarray]:
    """Feed ``inputs`` to the session's inputs in order; returns all outputs."""
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"model takes inputs {names}, got {len(inputs)} arrays")
    feed = {
        name: (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x))
        for name, x in zip(names, inputs, strict=True)
    }
    return session.run(None, feed)


@dataclass(frozen=True)
class Parity:
    """Largest difference between ONNX Runtime and PyTorch outputs.

    ``max_abs``: max |ort - torch| over all outputs; ``scale``: max |torch| over all outputs;
    ``max_rel = max_abs / scale``.
    """

    max_abs: float
    scale: float

    @property
    def max_rel(self) -> float:
        return self.max_abs / self.scale if self.scale > 0 else self.max_abs

    def as_dict(self) -> dict[str, float]:
        return {"max_abs": self.max_abs, "scale": self.scale, "max_rel": self.max_rel}


def compare_outputs(
    onnx_outputs: Sequence[np.ndarray], torch_outputs: Sequence[Tensor | np.ndarray]
) -> Parity:
    """:class:`Parity` of matching output lists (same count, shapes and order)."""
    if len(onnx_outputs) != len(torch_outputs):
        raise ValueError(f"{len(onnx_outputs)} ONNX outputs vs {len(torch_outputs)} PyTorch ones")
    max_abs, scale = 0.0, 0.0
    for index, (got, want) in enumerate(zip(onnx_outputs, torch_outputs, strict=True)):
        want = want.detach().cpu().numpy() if isinstance(want, Tensor) else np.asarray(want)
        if got.shape != want.shape:
            raise ValueError(f"output {index}: ONNX shape {got.shape} != PyTorch {want.shape}")
        if want.size == 0:
            continue
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        max_abs = max(max_abs, float(diff.max()))
        scale = max(scale, float(np.abs(want.astype(np.float64)).max()))
    return Parity(max_abs, scale)


def torch_outputs(module: torch.nn.Module, inputs: Sequence[Tensor]) -> list[Tensor]:
    """``module(*inputs)`` in eval mode without gradients, as a flat list of tensors."""
    with torch.no_grad():
        out = module.eval()(*inputs)
    return [out] if isinstance(out, Tensor) else list(out)
