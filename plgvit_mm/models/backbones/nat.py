"""NAT and DiNAT: hierarchical transformers with (dilated) neighborhood attention.

NAT: Hassani et al., "Neighborhood Attention Transformer", CVPR 2023. DiNAT: Hassani & Shi,
"Dilated Neighborhood Attention Transformer", 2022. Layout and key conventions:
docs/design/nat.md.

One implementation (:class:`NATTrunk`: tokenizer + four levels) serves
- :class:`NATClassifier`, the timm models ``nat_*`` / ``dinat_*``, whose state dict keys equal the
  official classifier files (``patch_embed``, ``levels``, ``norm``, ``head``);
- :class:`NAT` / :class:`DiNAT`, dense backbones (:class:`~.base.DenseBackbone`) in MMEngine's root
  ``MODELS`` registry whose keys equal the official detection/segmentation backbones (``norm{i}``
  per output, no ``norm``/``head``).
Tensors are channels-last (B, H, W, C) inside; dense outputs are NCHW at strides 4, 8, 16, 32.
Official, mmdet/mmseg and HuggingFace checkpoints convert through :func:`convert_state_dict`.
"""

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.utils.checkpoint
from mmengine.registry import MODELS
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (
    DropPath,
    Mlp,
    resize_rel_pos_bias_table_simple,
    trunc_normal_,
)
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from plgvit_mm.ops import NeighborhoodAttention2D
from plgvit_mm.utils.checkpoint_convert import select_prefix, unwrap_state_dict

from .base import ConvertedCheckpoint, DenseBackbone, classifier_keys_to_dense

__all__ = [
    "DINAT_ARCHS",
    "DILATION_SCHEDULES",
    "DiNAT",
    "NAT",
    "NATClassifier",
    "NAT_ARCHS",
    "NATTrunk",
    "checkpoint_filter_fn",
    "convert_hf_state_dict",
    "convert_state_dict",
    "dinat_dilations",
]

ARCH_KEYS = ("embed_dim", "depths", "num_heads", "mlp_ratio", "layer_scale")
NAT_ARCHS: dict[str, dict] = {
    "mini": dict(
        embed_dim=64, depths=(3, 4, 6, 5), num_heads=(2, 4, 8, 16), mlp_ratio=3.0, layer_scale=None
    ),
    "tiny": dict(
        embed_dim=64, depths=(3, 4, 18, 5), num_heads=(2, 4, 8, 16), mlp_ratio=3.0, layer_scale=None
    ),
    "small": dict(
        embed_dim=96,
        depths=(3, 4, 18, 5),
        num_heads=(3, 6, 12, 24),
        mlp_ratio=2.0,
        layer_scale=1e-5,
    ),
    "base": dict(
        embed_dim=128,
        depths=(3, 4, 18, 5),
        num_heads=(4, 8, 16, 32),
        mlp_ratio=2.0,
        layer_scale=1e-5,
    ),
}
"""Published NAT variants (docs/design/nat.md, variants); head_dim is 32 everywhere."""
DINAT_ARCHS: dict[str, dict] = {**NAT_ARCHS, "small": {**NAT_ARCHS["small"], "layer_scale": None}}
"""DiNAT variants: as NAT, except that DiNAT-S has no layer scale."""

DILATION_SCHEDULES: dict[str, tuple[tuple[int, ...], ...]] = {
    "imagenet": ((1, 8), (1, 4), (1, 2), (1,)),
    "coco": ((1, 28), (1, 7, 1, 14), (1, 3, 1, 5, 1, 7), (1, 3)),
    "ade20k": ((1, 16), (1, 4, 1, 8), (1, 2, 1, 3, 1, 4), (1, 2)),
}
"""Published DiNAT dilations (kernel 7) per level as a pattern tiled over the level's blocks,
e.g. COCO level 0 (1, 28) -> [1, 28, 1], level 3 (1, 3) -> [1, 3, 1, 3, 1]."""

DENSE_NORM_PREFIXES = ("norm0.", "norm1.", "norm2.", "norm3.")
_DENSE_ONLY = re.compile(r"^norm\d+\.")
GLOBAL_POOLS = ("avg", "")
"""Classifier pooling: 'avg' (global mean) or '' (none: the head sees the NHWC map)."""


def dinat_dilations(schedule: str, depths: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Per-level, per-block dilations of a published DiNAT schedule for the given depths."""
    if schedule not in DILATION_SCHEDULES:
        raise ValueError(
            f"unknown DiNAT dilation schedule {schedule!r}; valid: {sorted(DILATION_SCHEDULES)}"
        )
    patterns = DILATION_SCHEDULES[schedule]
    if len(depths) != len(patterns):
        raise ValueError(f"schedule {schedule!r} has {len(patterns)} levels, depths {depths}")
    return tuple(
        tuple(p[j % len(p)] for j in range(d)) for p, d in zip(patterns, depths, strict=True)
    )


def _resolve_dilations(
    dilations: str | Sequence[Sequence[int]] | None, depths: Sequence[int]
) -> tuple[tuple[int, ...], ...]:
    """None -> all 1; a schedule name; or explicit per-level lists of one int per block."""
    if dilations is None:
        return tuple((1,) * d for d in depths)
    if isinstance(dilations, str):
        return dinat_dilations(dilations, depths)
    levels = tuple(tuple(int(d) for d in level) for level in dilations)
    if [len(level) for level in levels] != list(depths) or min(min(lv) for lv in levels) < 1:
        raise ValueError(
            f"dilations {dilations} must give one int >= 1 per block of depths {tuple(depths)}"
        )
    return levels


def _resolve_arch(arch: str | Mapping, table: Mapping[str, dict]) -> dict:
    """An arch name from ``table`` or a dict with exactly the keys of ARCH_KEYS."""
    if isinstance(arch, str):
        if arch not in table:
            raise ValueError(
                f"unknown NAT arch {arch!r}; valid: {sorted(table)} or a dict with keys {ARCH_KEYS}"
            )
        return dict(table[arch])
    if set(arch) != set(ARCH_KEYS):
        raise ValueError(f"arch dict keys {sorted(arch)} must be exactly {sorted(ARCH_KEYS)}")
    return dict(arch)


def channels_last_weight(conv: nn.Conv2d) -> None:
    """Store ``conv.weight`` channels-last (oneDNN's CPU layout); values and state-dict keys are
    unchanged, and ``load_state_dict``/``.to()`` keep the layout."""
    conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)


class ConvTokenizer(nn.Module):
    """Two 3x3 stride-2 convs (no norm/activation between) then LayerNorm: (B,3,H,W) -> (B,H/4,W/4,C).

    Halving is ceil (padding 1), so any input size works.
    """

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, embed_dim // 2, 3, stride=2, padding=1),
            nn.Conv2d(embed_dim // 2, embed_dim, 3, stride=2, padding=1),
        )
        for conv in self.proj:  # channels-last weights, see ConvDownsampler
            channels_last_weight(conv)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class ConvDownsampler(nn.Module):
    """3x3 stride-2 conv without bias, C -> 2C, then LayerNorm: (B,H,W,C) -> (B,ceil H/2,ceil W/2,2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Conv2d(dim, 2 * dim, 3, stride=2, padding=1, bias=False)
        # The input is a (B, H, W, C) map seen as NCHW, i.e. channels-last: a channels-last weight
        # spares oneDNN a weight reorder on every CPU call.
        channels_last_weight(self.reduction)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.reduction(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


class NATMlp(Mlp):
    """timm's ``Mlp`` (keys ``fc1``, ``fc2``; no hidden norm); in eval its dropouts are the identity,
    so their module calls are skipped."""

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.fc1(x))
        if self.training:
            return self.drop2(self.fc2(self.norm(self.drop1(x))))
        return self.fc2(x)


class NATBlock(nn.Module):
    """Pre-norm block: x += DropPath(g1 * NA(LN(x))); x += DropPath(g2 * MLP(LN(x))), on (B,H,W,C).

    ``gamma1``/``gamma2`` (layer scale) exist only when ``layer_scale`` is given.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int,
        dilation: int,
        mlp_ratio: float,
        layer_scale: float | None,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: float,
        pad_small_inputs: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NeighborhoodAttention2D(
            dim,
            num_heads,
            kernel_size,
            dilation=dilation,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop=attn_drop,
            proj_drop=drop,
            pad_small_inputs=pad_small_inputs,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = NATMlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        if layer_scale is None:
            self.gamma1 = self.gamma2 = None
        else:
            self.gamma1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._branch(self.attn(self.norm1(x)), self.gamma1)
        return x + self._branch(self.mlp(self.norm2(x)), self.gamma2)

    def _branch(self, y: Tensor, gamma: Tensor | None) -> Tensor:
        """Layer scale, then stochastic depth (the identity in eval: its module call is skipped)."""
        if gamma is not None:
            y = gamma * y
        return self.drop_path(y) if self.training else y


class NATLevel(nn.Module):
    """Blocks of one resolution, then the optional downsampler.

    ``forward`` returns ``(level_output, next_input)``: the map before and after downsampling.
    """

    def __init__(
        self,
        dim: int,
        dilations: Sequence[int],
        drop_paths: Sequence[float],
        downsample: bool,
        **block_kwargs,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            NATBlock(dim, dilation=d, drop_path=p, **block_kwargs)
            for d, p in zip(dilations, drop_paths, strict=True)
        )
        self.downsample = ConvDownsampler(dim) if downsample else None
        self.grad_checkpointing = False

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x, (x if self.downsample is None else self.downsample(x))


def _init_nat_weights(module: nn.Module) -> None:
    """Official init: Linear trunc-normal(0.02) / bias 0, LayerNorm (1, 0); convs keep torch's."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class NATTrunk(nn.Module):
    """Tokenizer (``patch_embed``) and levels (``levels.{i}``) shared by classifier and backbone.

    Args:
        embed_dim, depths, num_heads, mlp_ratio, layer_scale: the variant (see NAT_ARCHS).
        kernel_size: neighborhood size, one odd int or one per level.
        dilations: None (NAT), a DILATION_SCHEDULES name, or per-level lists of per-block ints.
        drop_path_rate: stochastic depth, linear in the block index from 0 to this value.
        pad_small_inputs: legacy NATTEN padding of maps smaller than kernel * dilation
            (docs/design/neighborhood_attention.md, legacy padding).
        **kwargs: passed on to the next class in the MRO (``init_cfg`` for BaseModule).
    """

    def __init__(
        self,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        mlp_ratio: float,
        layer_scale: float | None = None,
        kernel_size: int | Sequence[int] = 7,
        dilations: str | Sequence[Sequence[int]] | None = None,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        pad_small_inputs: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        num_levels = len(depths)
        if len(num_heads) != num_levels:
            raise ValueError(f"depths {depths} and num_heads {num_heads} differ in length")
        kernels = [kernel_size] * num_levels if isinstance(kernel_size, int) else list(kernel_size)
        if len(kernels) != num_levels:
            raise ValueError(f"kernel_size {kernel_size} must be an int or one per level")
        self.dilations = _resolve_dilations(dilations, depths)
        self.level_channels = [embed_dim * 2**i for i in range(num_levels)]
        self.patch_embed = ConvTokenizer(in_chans, embed_dim)
        self.pos_drop = nn.Dropout(drop_rate)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        starts = [sum(depths[:i]) for i in range(num_levels)]
        self.levels = nn.ModuleList(
            NATLevel(
                self.level_channels[i],
                self.dilations[i],
                rates[starts[i] : starts[i] + depths[i]],
                downsample=i < num_levels - 1,
                num_heads=num_heads[i],
                kernel_size=kernels[i],
                mlp_ratio=mlp_ratio,
                layer_scale=layer_scale,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                pad_small_inputs=pad_small_inputs,
            )
            for i in range(num_levels)
        )

    def forward_levels(self, x: Tensor, num_levels: int | None = None) -> Iterator[Tensor]:
        """Yield each level's (B, H_i, W_i, C_i) output before its downsampler; x is (B,3,H,W)."""
        x = self.pos_drop(self.patch_embed(x))
        for level in self.levels[:num_levels]:
            out, x = level(x)
            yield out

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for level in self.levels:
            level.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names of the relative position bias tables (excluded from weight decay, as official)."""
        return {name for name, _ in self.named_parameters() if name.endswith(".rpb")}


class NATClassifier(NATTrunk):
    """ImageNet classifier: trunk -> LayerNorm ``norm`` -> global mean -> Linear ``head``.

    State dict keys equal the official classifier files. timm API: ``forward_features``
    (B, H/32, W/32, C) (``output_fmt = 'NHWC'``), ``forward_head``, ``reset_classifier``,
    ``forward_intermediates``, ``prune_intermediate_layers``, ``no_weight_decay``.
    ``global_pool``: 'avg' or '' (no pooling).
    """

    output_fmt = "NHWC"

    def __init__(self, num_classes: int = 1000, global_pool: str = "avg", **trunk_kwargs) -> None:
        super().__init__(**trunk_kwargs)
        self.num_classes = num_classes
        self.global_pool = _check_global_pool(global_pool)
        self.num_features = self.head_hidden_size = self.level_channels[-1]
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self.feature_info = [
            dict(num_chs=c, reduction=4 * 2**i, module=f"levels.{i}")
            for i, c in enumerate(self.level_channels)
        ]
        self.apply(_init_nat_weights)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm convention)."""
        return dict(
            stem=r"^patch_embed",
            blocks=r"^levels\.(\d+)"
            if coarse
            else [
                (r"^levels\.(\d+)\.downsample", (0,)),
                (r"^levels\.(\d+)\.blocks\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            self.global_pool = _check_global_pool(global_pool)
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """timm's feature API: level outputs (before downsampling) of ``indices`` (default all).

        ``norm``: the last level's intermediate goes through ``norm``; ``stop_early``: levels
        after the last requested one are not run; ``output_fmt``: 'NCHW' or 'NHWC' for the
        intermediates. Returns the intermediates, or ``(forward_features output, intermediates)``
        unless ``intermediates_only``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt {output_fmt!r} must be 'NCHW' or 'NHWC'")
        num_levels = len(self.levels)
        take, last = feature_take_indices(num_levels, indices)
        count = last + 1 if stop_early or intermediates_only else num_levels
        intermediates = []
        feature = x
        for i, feature in enumerate(self.forward_levels(x, count)):
            if i in take:
                out = self.norm(feature) if norm and i == num_levels - 1 else feature
                intermediates.append(out.permute(0, 3, 1, 2) if output_fmt == "NCHW" else out)
        if intermediates_only:
            return intermediates
        return self.norm(feature), intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """timm's feature API: drop the levels after the last of ``indices`` (and norm / head)."""
        take, last = feature_take_indices(len(self.levels), indices)
        self.levels = self.levels[: last + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> normalised last-level map (B, H/32, W/32, C)."""
        x = self.pos_drop(self.patch_embed(x))
        for level in self.levels:
            x = level(x)[1]  # the last level has no downsampler: its output
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=(1, 2))
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _check_global_pool(global_pool: str) -> str:
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"NAT global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
    return global_pool


@MODELS.register_module()
class NAT(NATTrunk, DenseBackbone):
    """NAT dense backbone: (B, 3, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)), s_i = 4*2^i.

    Each requested level output gets its own LayerNorm ``norm{i}`` (before the downsampler).
    Keys equal the official detection/segmentation backbone.

    Args:
        arch: 'mini' | 'tiny' | 'small' | 'base' or a dict with the keys of ARCH_KEYS.
        kernel_size, dilations, drop_path_rate, drop_rate, attn_drop_rate, qkv_bias, qk_scale,
            pad_small_inputs: see :class:`NATTrunk`.
        in_channels: input image channels.
        out_indices, frozen_stages, init_cfg: see :class:`~.base.DenseBackbone`
            (``frozen_stages``: 0 the tokenizer, n the tokenizer, levels < n and their norms).
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` loads official classifier,
            mmdet/mmseg, HuggingFace, timm and mmpretrain files (see :meth:`convert_checkpoint`).
        with_cp: activation checkpointing of every block while training.
    """

    arch_settings = NAT_ARCHS
    stem_name = "patch_embed"
    stages_name = "levels"

    def __init__(
        self,
        arch: str | Mapping = "tiny",
        kernel_size: int | Sequence[int] = 7,
        dilations: str | Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        drop_path_rate: float = 0.2,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        pad_small_inputs: bool = True,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        with_cp: bool = False,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(
            **_resolve_arch(arch, self.arch_settings),
            kernel_size=kernel_size,
            dilations=dilations,
            in_chans=in_channels,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            pad_small_inputs=pad_small_inputs,
            init_cfg=init_cfg,
        )
        self.apply(_init_nat_weights)
        self.set_grad_checkpointing(with_cp)
        reductions = [4 * 2**i for i in range(len(self.levels))]
        self.setup_outputs(
            self.level_channels, reductions, out_indices, frozen_stages, nn.LayerNorm
        )

    def forward_stages(self, x: Tensor, count: int) -> Iterator[Tensor]:
        return self.forward_levels(x, count)

    def output_map(self, index: int, feature: Tensor) -> Tensor:
        return getattr(self, f"norm{index}")(feature).permute(0, 3, 1, 2).contiguous()

    def convert_checkpoint(self, checkpoint: Mapping, source: str) -> ConvertedCheckpoint:
        """Official, mmdet/mmseg, HuggingFace, timm or mmpretrain NAT/DiNAT files, see
        :func:`convert_state_dict`; output norms the file lacks start at their initialisation."""
        state = convert_state_dict(checkpoint, self, source)
        fresh = tuple(
            f"norm{i}."
            for i in self.out_indices
            if not any(k.startswith(f"norm{i}.") for k in state)
        )
        return ConvertedCheckpoint(state, fresh)


@MODELS.register_module()
class DiNAT(NAT):
    """DiNAT dense backbone: :class:`NAT` with DiNAT variants and a dilation schedule.

    ``dilations``: 'imagenet' (224 px, default), 'coco' (detection), 'ade20k' (512 px
    segmentation) or explicit per-level, per-block lists.
    """

    arch_settings = DINAT_ARCHS

    def __init__(
        self,
        arch: str | Mapping = "tiny",
        dilations: str | Sequence[Sequence[int]] = "imagenet",
        **kwargs,
    ) -> None:
        super().__init__(arch=arch, dilations=dilations, **kwargs)


# ---------------------------------------------------------------- checkpoint conversion

_HF_PREFIXES = ("nat.", "dinat.", "embeddings.", "encoder.", "hidden_states_norms.")
_HF_BLOCK_RENAMES = (
    ("layernorm_before.", "norm1."),
    ("attention.self.rpb", "attn.rpb"),
    ("attention.output.dense.", "attn.proj."),
    ("layernorm_after.", "norm2."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
)
_HF_QKV = re.compile(r"^attention\.self\.(query|key|value)\.(weight|bias)$")


def _convert_hf_key(key: str) -> str | None:
    """Official name of a HuggingFace NAT/DiNAT key (q/k/v and layer scale excluded)."""
    key = re.sub(r"^(di)?nat\.", "", key)
    simple = (
        (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
        (r"^embeddings\.norm\.", "patch_embed.norm."),
        (r"^encoder\.levels\.(\d+)\.downsample\.", r"levels.\1.downsample."),
        (r"^layernorm\.", "norm."),
        (r"^classifier\.", "head."),
    )
    for pattern, repl in simple:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    if m := re.match(r"^hidden_states_norms\.stage(\d+)\.(.*)$", key):
        return f"norm{int(m[1]) - 1}.{m[2]}"
    if m := re.match(r"^encoder\.levels\.(\d+)\.layers\.(\d+)\.(.*)$", key):
        for old, new in _HF_BLOCK_RENAMES:
            if m[3].startswith(old):
                return f"levels.{m[1]}.blocks.{m[2]}.{new}{m[3][len(old) :]}"
    return None


def convert_hf_state_dict(
    state_dict: Mapping[str, Tensor], source: str = "checkpoint"
) -> dict[str, Tensor]:
    """HuggingFace (transformers Nat*/Dinat*) keys -> official NAT keys (docs/design/nat.md,
    checkpoint formats).

    Separate query/key/value Linear layers are stacked into ``attn.qkv`` (rows q, k, v) and
    ``layer_scale_parameters`` (2, C) is split into ``gamma1``/``gamma2``. Unknown keys raise
    ValueError naming them.
    """
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    unknown = []
    for key, value in state_dict.items():
        bare = re.sub(r"^(di)?nat\.", "", key)
        m = re.match(r"^encoder\.levels\.(\d+)\.layers\.(\d+)\.(.*)$", bare)
        block = f"levels.{m[1]}.blocks.{m[2]}." if m else ""
        if m and (p := _HF_QKV.match(m[3])):
            qkv.setdefault((block, p[2]), {})[p[1]] = value
        elif m and m[3] == "layer_scale_parameters":
            out[block + "gamma1"], out[block + "gamma2"] = value[0], value[1]
        elif (name := _convert_hf_key(key)) is not None:
            out[name] = value
        else:
            unknown.append(key)
    for (block, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            unknown.append(f"{block}attn.qkv.{kind} (has only {sorted(parts)})")
            continue
        out[f"{block}attn.qkv.{kind}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0
        )
    if unknown:
        raise ValueError(f"{source}: unrecognised HuggingFace NAT/DiNAT keys {unknown}")
    return out


def convert_state_dict(
    checkpoint: Mapping, model: NATTrunk, source: str = "checkpoint"
) -> dict[str, Tensor]:
    """Any NAT/DiNAT checkpoint -> the key layout of ``model`` (classifier or dense backbone).

    Accepts official classifier files and timm state dicts (bare), mmdet/mmseg/mmpretrain files
    (``state_dict`` with ``backbone.`` prefix; necks/heads dropped) and HuggingFace layouts.
    For a dense backbone the classifier's ``norm`` becomes the last output norm and ``head`` is
    dropped (:func:`~.base.classifier_keys_to_dense`); for a classifier the dense ``norm{i}`` are
    dropped. ``attn.rpb`` tables of another kernel size are resized bicubically with a warning.
    Missing keys are left for the caller to report.
    """
    state = select_prefix(unwrap_state_dict(checkpoint, source), "backbone.")
    if any(k.startswith(_HF_PREFIXES) for k in state):
        state = convert_hf_state_dict(state, source)
    own = model.state_dict()
    if isinstance(model, NATClassifier):
        state = {k: v for k, v in state.items() if k in own or not _DENSE_ONLY.match(k)}
    else:
        state = classifier_keys_to_dense(state, own, len(model.level_channels))
    for key, value in state.items():
        if (
            key.endswith(".attn.rpb")
            and key in own
            and value.shape != own[key].shape
            and value.ndim == 3
            and value.shape[0] == own[key].shape[0]
        ):
            target = own[key].shape
            warnings.warn(
                f"{source}: {key} resized bicubically from {tuple(value.shape)} to "
                f"{tuple(target)} (kernel {(value.shape[1] + 1) // 2} -> "
                f"{(target[1] + 1) // 2})",
                stacklevel=2,
            )
            new_window = ((target[1] + 1) // 2, (target[2] + 1) // 2)
            state[key] = resize_rel_pos_bias_table_simple(value.float(), new_window, target).to(
                value.dtype
            )
    return state


def checkpoint_filter_fn(state_dict: Mapping, model: NATTrunk) -> dict[str, Tensor]:
    """timm ``pretrained_filter_fn``: :func:`convert_state_dict`, then dense ``norm{i}`` that
    the file lacks are taken from ``model`` (they start at their initialisation, see
    docs/design/nat.md, checkpoint formats)."""
    state = convert_state_dict(state_dict, model)
    for key, value in model.state_dict().items():
        if key.startswith(DENSE_NORM_PREFIXES) and key not in state:
            state[key] = value
    return state


# ---------------------------------------------------------------- timm models


def _cfg(url: str = "", **kwargs) -> dict:
    return {
        "url": url,
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj.0",
        "classifier": "head",
        "license": "mit",
        **kwargs,
    }


_NAT_URL = "https://shi-labs.com/projects/nat/checkpoints/CLS/{}.pth"
_DINAT_URL = "https://shi-labs.com/projects/dinat/checkpoints/imagenet1k/{}_in1k_224.pth"
default_cfgs = generate_default_cfgs(
    {
        **{f"nat_{a}.in1k": _cfg(_NAT_URL.format(f"nat_{a}")) for a in NAT_ARCHS},
        **{f"dinat_{a}.in1k": _cfg(_DINAT_URL.format(f"dinat_{a}")) for a in DINAT_ARCHS},
    }
)

_IMAGENET_DROP_PATH = {"mini": 0.2, "tiny": 0.2, "small": 0.3, "base": 0.5}


def _create_nat(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a timm NAT/DiNAT; ``features_only=True`` builds the dense backbone instead."""
    features_only = kwargs.get("features_only", False)
    if not features_only:
        return build_model_with_cfg(
            NATClassifier, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs
        )
    arch = {k: kwargs.pop(k) for k in ARCH_KEYS}
    kwargs["in_channels"] = kwargs.pop("in_chans", 3)
    return build_model_with_cfg(
        NAT,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3)),
        kwargs_filter=("num_classes", "global_pool", "in_chans"),
        arch=arch,
        **kwargs,
    )


def _nat_kwargs(arch: str, table: Mapping[str, dict], dilations: str | None, kwargs: dict) -> dict:
    """Variant table < caller's kwargs; a DiNAT schedule is tiled over the final depths."""
    args = {**dict(table[arch], drop_path_rate=_IMAGENET_DROP_PATH[arch]), **kwargs}
    if dilations is not None and "dilations" not in kwargs:
        args["dilations"] = dinat_dilations(dilations, args["depths"])
    return args


@register_model
def nat_mini(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat("nat_mini", pretrained, **_nat_kwargs("mini", NAT_ARCHS, None, kwargs))


@register_model
def nat_tiny(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat("nat_tiny", pretrained, **_nat_kwargs("tiny", NAT_ARCHS, None, kwargs))


@register_model
def nat_small(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat("nat_small", pretrained, **_nat_kwargs("small", NAT_ARCHS, None, kwargs))


@register_model
def nat_base(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat("nat_base", pretrained, **_nat_kwargs("base", NAT_ARCHS, None, kwargs))


@register_model
def dinat_mini(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat(
        "dinat_mini", pretrained, **_nat_kwargs("mini", DINAT_ARCHS, "imagenet", kwargs)
    )


@register_model
def dinat_tiny(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat(
        "dinat_tiny", pretrained, **_nat_kwargs("tiny", DINAT_ARCHS, "imagenet", kwargs)
    )


@register_model
def dinat_small(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat(
        "dinat_small", pretrained, **_nat_kwargs("small", DINAT_ARCHS, "imagenet", kwargs)
    )


@register_model
def dinat_base(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_nat(
        "dinat_base", pretrained, **_nat_kwargs("base", DINAT_ARCHS, "imagenet", kwargs)
    )
