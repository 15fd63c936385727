"""Mixed-precision training on CPUs: mmengine's ``AmpOptimWrapper`` needs a GPU (it asserts
CUDA/NPU/MLU/MUSA), so ``tools/train.py --amp`` on a CPU-only machine uses this wrapper.

The forward pass and loss run under ``torch.autocast('cpu', dtype=torch.bfloat16)``; weights,
gradients and optimizer state stay float32. bfloat16 has float32's exponent range, so no loss
scaling is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` (the model's forward and loss) runs in bfloat16
    autocast on the CPU."""

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield
