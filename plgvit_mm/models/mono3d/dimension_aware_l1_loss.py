"""Dimension-aware L1 loss for 3D box sizes (MonoDLE)."""

from __future__ import annotations

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class DimensionAwareL1Loss(nn.Module):
    """L1 on 3D dimensions, each error divided by the true size (MonoDLE, CVPR 2021).

    ``loss = mean(|p - t| / t) * w`` with the compensation weight
    ``w = mean(|p - t|) / mean(|p - t| / t)`` (no gradient), so the loss has the magnitude of a
    plain L1 while errors on small dimensions weigh more.

    ``forward(pred (N, 3), target (N, 3))``: h w l in metres (target > 0); returns a scalar.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if pred.numel() == 0:
            return pred.sum() * 0
        error = torch.abs(pred - target)
        relative = error / target.detach()
        with torch.no_grad():
            compensation = error.mean() / relative.mean().clamp(min=1e-12)
        return self.loss_weight * relative.mean() * compensation
