"""Shared PLG-ViT building blocks (attention branches, conv FFNs, downsamplers)."""

from .ccf_ffn import CCFFFN, CCFFFNPlus
from .global_pooled_attention import PATCH_SAMPLINGS, GlobalPooledAttention
from .local_window_attention import LocalWindowAttention
from .lw_downsample import LWDownsample
from .plg_self_attention import PLGSelfAttention

__all__ = [
    "CCFFFN",
    "CCFFFNPlus",
    "GlobalPooledAttention",
    "LocalWindowAttention",
    "LWDownsample",
    "PATCH_SAMPLINGS",
    "PLGSelfAttention",
]
