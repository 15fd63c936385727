"""Neighborhood attention (NA) for NAT/DiNAT: functional op, module and backend selection."""

from .backends import (
    BACKENDS,
    ENV_VAR,
    na_backend,
    requested_backend,
    select_backend,
    unsupported_reason,
)
from .na2d import na2d
from .neighborhood_attention import NeighborhoodAttention2D

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "NeighborhoodAttention2D",
    "na2d",
    "na_backend",
    "requested_backend",
    "select_backend",
    "unsupported_reason",
]
