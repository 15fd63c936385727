"""Laplacian aleatoric uncertainty loss for depth (MonoDLE / MonoPair)."""

from __future__ import annotations

import math

import torch
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS
from torch import Tensor, nn


@weighted_loss
def laplacian_aleatoric_depth_loss(pred: Tensor, target: Tensor, log_variance: Tensor) -> Tensor:
    """Element-wise ``sqrt(2) * exp(-s) * |d - d*| + s`` (d, d* in metres, s = log-variance)."""
    return math.sqrt(2.0) * torch.exp(-log_variance) * torch.abs(pred - target) + log_variance


@MODELS.register_module()
class LaplacianAleatoricDepthLoss(nn.Module):
    """Depth loss with a learnt Laplacian uncertainty (MonoDLE, Ma et al., CVPR 2021).

    ``forward(pred (N,), target (N,), log_variance (N,))``: depths in metres; returns the
    weighted, reduced loss (``reduction`` and ``avg_factor`` as in mmdet's losses).
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        log_variance: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        reduction = reduction_override or self.reduction
        return self.loss_weight * laplacian_aleatoric_depth_loss(
            pred,
            target,
            weight,
            log_variance=log_variance,
            reduction=reduction,
            avg_factor=avg_factor,
        )
