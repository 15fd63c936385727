"""PLG-ViT and LW-PLG-ViT: MMEngine backbones and timm classifiers sharing one implementation.

PLG-ViT (Ebert et al., Sensors 2023) and LW-PLG-ViT (Ebert et al., ITSC 2023). No official code
is public; the layout follows docs/design/plgvit.md. Every design choice is an argument of
:class:`PLGViTArch`, so official values can be dropped in.

Layout: stem (conv3x3 s2 + reduce unit, stride 4) -> 4 stages; stages 2-4 start with a stride-2
downsampler; each stage is a stack of PLG blocks (pre-norm PLG-SA + conv FFN); stage 4 may end
with a 3x3 channel-expansion conv. Stages run channels-last internally and return NCHW.

Readings of the papers (our choices):
- PLG-ViT patch sampling *sums* the adaptive max- and average-pooled G x G grids.
- Each attention branch has its own qkv and its own output Linear before the concat + Linear
  projection (``branch_proj=True``); without the branch projections the T/S/B classifiers are
  ~4% below the published 27M/52M/91M, with them they are within 1.5% (see PLG_ARCHS).
- Local windows pad right/bottom and mask the padded keys (valid outputs are independent of the
  padding); the expansion conv is conv3x3 (bias) -> GELU.

LW-PLG-ViT-A/-R (``LW_ARCHS``) are THIS PROJECT'S CALIBRATION, not the paper's Table I (which is
not public here); the readings and the calibration are in docs/design/plgvit.md.
"""

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from mmengine.registry import MODELS
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (
    ClassifierHead,
    DropPath,
    LayerNorm2d,
    calculate_drop_path_rates,
    trunc_normal_,
)
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models.gcvit import Downsample2d
from torch import nn

from plgvit_mm.utils.checkpoint_convert import select_prefix, unwrap_state_dict

from ..layers import CCFFFN, PATCH_SAMPLINGS, CCFFFNPlus, LWDownsample, PLGSelfAttention
from .base import ConvertedCheckpoint, DenseBackbone, classifier_keys_to_dense

DOWNSAMPLERS = ("fused_mbconv", "lw")
FFNS = ("ccf", "ccf_plus")
STAGE_STRIDES = (4, 8, 16, 32)
PER_STAGE_KEYS = (
    "embed_dims",
    "depths",
    "local_heads",
    "global_heads",
    "local_window",
    "global_window",
    "global_ratio",
    "mlp_ratios",
)
GLOBAL_KEYS = ("global_heads", "global_window", "global_ratio")
OUTPUT_NORM = re.compile(r"^norm\d+\.")


@dataclass(frozen=True)
class PLGViTArch:
    """Full per-stage description of a PLG-ViT / LW-PLG-ViT network.

    Per-stage tuples (length 4): ``embed_dims`` (channels), ``depths`` (PLG blocks),
    ``local_heads``, ``global_heads``, ``local_window`` (window side), ``global_window``
    (pooled grid side G), ``global_ratio`` (fraction of channels in the global branch),
    ``mlp_ratios`` (FFN hidden expansion). Scalars: ``expansion_channels`` (width of the
    last-stage 3x3 expansion conv, None or 0 = no expansion), ``stem_channels`` (width of the
    stride-2 stem conv), and the ablation switches of the LW changes: ``downsampler`` ('fused_mbconv' |
    'lw'), ``ffn`` ('ccf' | 'ccf_plus'), ``patch_sampling`` ('max_avg' | 'max': the global
    branch's pooling of the map to G x G tokens), ``decoupled``
    (False: global heads/window copy the local ones and r = 0.5), ``branch_proj``.
    """

    embed_dims: tuple[int, ...]
    depths: tuple[int, ...]
    local_heads: tuple[int, ...]
    global_heads: tuple[int, ...]
    local_window: tuple[int, ...]
    global_window: tuple[int, ...]
    global_ratio: tuple[float, ...]
    mlp_ratios: tuple[float, ...]
    expansion_channels: int | None
    stem_channels: int
    downsampler: str
    ffn: str
    patch_sampling: str
    decoupled: bool
    branch_proj: bool = True

    def __post_init__(self) -> None:
        for key in PER_STAGE_KEYS:
            if len(getattr(self, key)) != 4:
                raise ValueError(
                    f"{key} must have 4 entries (one per stage), got {getattr(self, key)}"
                )
        for key, allowed in (
            ("downsampler", DOWNSAMPLERS),
            ("ffn", FFNS),
            ("patch_sampling", PATCH_SAMPLINGS),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}={getattr(self, key)!r} is not one of {allowed}")
        if min(self.depths) < 1:
            raise ValueError(f"every stage needs >= 1 PLG block (both branches), got {self.depths}")
        if not self.decoupled:
            coupled = (self.local_heads, self.local_window, (0.5,) * 4)
            if (self.global_heads, self.global_window, self.global_ratio) != coupled:
                raise ValueError(
                    "decoupled=False requires global_heads == local_heads, "
                    "global_window == local_window and global_ratio == 0.5"
                )

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of the four stage outputs (stage 4 = expanded width if expanding)."""
        return (*self.embed_dims[:3], self.expansion_channels or self.embed_dims[3])


def _plg_preset(dim: int, depths: tuple[int, ...], head_dim: int) -> dict:
    dims = (dim, 2 * dim, 4 * dim, 8 * dim)
    heads = tuple(d // 2 // head_dim for d in dims)
    return dict(embed_dims=dims, depths=depths, local_heads=heads, local_window=(7,) * 4)


# PLG-ViT (paper): C, depths, head dim; channels double; r = 0.5, equal heads; window/grid 7.
PLG_ARCHS: dict[str, dict] = {
    "tiny": _plg_preset(64, (3, 4, 16, 4), 32),
    "small": _plg_preset(96, (3, 3, 16, 3), 24),
    "base": _plg_preset(128, (3, 3, 16, 3), 32),
}
PLG_DEFAULTS = dict(
    downsampler="fused_mbconv",
    ffn="ccf",
    patch_sampling="max_avg",
    decoupled=False,
    mlp_ratios=(4.0,) * 4,
    expansion_channels=None,
)

# LW-PLG-ViT-A/-R: THIS PROJECT'S CALIBRATION (paper Table I not public), see docs/design/plgvit.md.
LW_ARCHS: dict[str, dict] = {
    "a": dict(
        stem_channels=24,
        embed_dims=(48, 96, 144, 256),
        depths=(2, 2, 8, 2),
        local_heads=(1, 2, 2, 4),
        global_heads=(2, 2, 4, 4),
        local_window=(7, 7, 7, 7),
        global_window=(7, 7, 7, 7),
        global_ratio=(0.5, 0.5, 0.5, 0.5),
        mlp_ratios=(3.0, 3.0, 3.0, 3.0),
        expansion_channels=384,
    ),
    "r": dict(
        stem_channels=16,
        embed_dims=(32, 64, 192, 256),
        depths=(1, 1, 4, 2),
        local_heads=(1, 2, 2, 4),
        global_heads=(2, 2, 4, 4),
        local_window=(7, 7, 7, 7),
        global_window=(7, 7, 7, 7),
        global_ratio=(0.5, 0.5, 0.5, 0.5),
        mlp_ratios=(2.0, 2.0, 3.0, 3.0),
        expansion_channels=384,
    ),
}
LW_DEFAULTS = dict(downsampler="lw", ffn="ccf_plus", patch_sampling="max", decoupled=True)


def resolve_arch(
    presets: dict[str, dict], defaults: dict, arch: str | None, **overrides
) -> PLGViTArch:
    """Merge ``defaults`` < ``presets[arch]`` < non-None ``overrides`` into a :class:`PLGViTArch`.

    With ``decoupled=False`` the global heads/window/ratio are derived from the local ones (preset
    global values are dropped; explicit conflicting ones raise in :class:`PLGViTArch`).
    """
    if arch is not None and arch not in presets:
        raise ValueError(
            f"unknown arch {arch!r}; valid: {sorted(presets)} "
            "(or arch=None with explicit per-stage lists)"
        )
    unknown = set(overrides) - {f.name for f in dataclasses.fields(PLGViTArch)}
    if unknown:
        raise ValueError(f"unknown architecture arguments {sorted(unknown)}")
    cfg = {**defaults, **(presets[arch] if arch is not None else {})}
    explicit = {k: v for k, v in overrides.items() if v is not None}
    if not explicit.get("decoupled", cfg.get("decoupled", True)):
        for key in GLOBAL_KEYS:
            cfg.pop(key, None)
    cfg.update(explicit)
    if "embed_dims" in cfg:
        cfg.setdefault("stem_channels", cfg["embed_dims"][0])
    if not cfg.get("decoupled", True):
        cfg.setdefault("global_heads", cfg.get("local_heads"))
        cfg.setdefault("global_window", cfg.get("local_window"))
        cfg.setdefault("global_ratio", (0.5,) * 4)
    cfg.setdefault("mlp_ratios", (3.0 if cfg.get("ffn") == "ccf_plus" else 4.0,) * 4)
    cfg.setdefault("expansion_channels", None)
    missing = [
        f.name
        for f in dataclasses.fields(PLGViTArch)
        if f.default is dataclasses.MISSING and f.name not in cfg
    ]
    if missing:
        raise ValueError(f"arch={arch!r}: missing architecture arguments {missing}")
    for key in PER_STAGE_KEYS:
        cfg[key] = tuple(cfg[key])
    return PLGViTArch(**cfg)


def make_downsampler(kind: str, dim: int, dim_out: int) -> nn.Module:
    """Stride-2 unit ``(B, dim, H, W) -> (B, dim_out, ceil(H/2), ceil(W/2))``.

    'fused_mbconv': timm's GC-ViT ``Downsample2d`` (LN -> residual [dw3x3, GELU, SE 1/4, pw1x1]
    -> conv3x3 s2 -> LN), the PLG-ViT CNN-Down. 'lw': :class:`LWDownsample`.
    """
    if kind == "fused_mbconv":
        return Downsample2d(dim, dim_out)
    return LWDownsample(dim, dim_out)


class PLGStem(nn.Module):
    """conv3x3 s2 (3 -> stem_channels) -> downsampler (-> out_channels): NCHW, stride 4.

    The image is converted to channels-last memory first, so every conv, LayerNorm2d and the
    blocks' channels-last view work on contiguous NHWC memory (no NCHW <-> NHWC copies of the
    full-resolution maps).
    """

    def __init__(self, in_chans: int, stem_channels: int, out_channels: int, downsampler: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, stem_channels, 3, stride=2, padding=1)
        self.down = make_downsampler(downsampler, stem_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.conv1(x.contiguous(memory_format=torch.channels_last)))


class PLGBlock(nn.Module):
    """Pre-norm residual block: ``x += PLG-SA(LN(x)); x += FFN(LN(x))``; ``(B, H, W, C)``."""

    def __init__(
        self,
        dim: int,
        local_heads: int,
        global_heads: int,
        local_window: int,
        global_window: int,
        global_ratio: float,
        mlp_ratio: float,
        arch: PLGViTArch,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = PLGSelfAttention(
            dim,
            local_heads,
            global_heads,
            local_window,
            global_window,
            global_ratio,
            patch_sampling=arch.patch_sampling,
            branch_proj=arch.branch_proj,
        )
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        ffn_cls = CCFFFNPlus if arch.ffn == "ccf_plus" else CCFFFN
        self.ffn = ffn_cls(dim, mlp_ratio)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.ffn(self.norm2(x)))


class ChannelExpansion(nn.Module):
    """LW change 6: conv3x3 (C -> E) -> GELU at the end of stage 4; NCHW."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class PLGStage(nn.Module):
    """[downsampler] -> PLG blocks -> [channel expansion]: ``(B, C_in, H, W) -> (B, C_out, h, w)``."""

    def __init__(
        self, index: int, dim_in: int, arch: PLGViTArch, drop_path: Sequence[float]
    ) -> None:
        super().__init__()
        dim = arch.embed_dims[index]
        self.downsample = (
            make_downsampler(arch.downsampler, dim_in, dim) if index > 0 else nn.Identity()
        )
        self.blocks = nn.Sequential(
            *[
                PLGBlock(
                    dim,
                    arch.local_heads[index],
                    arch.global_heads[index],
                    arch.local_window[index],
                    arch.global_window[index],
                    arch.global_ratio[index],
                    arch.mlp_ratios[index],
                    arch,
                    drop_path[i],
                )
                for i in range(arch.depths[index])
            ]
        )
        expand = index == 3 and arch.expansion_channels
        self.expansion = ChannelExpansion(dim, arch.expansion_channels) if expand else nn.Identity()
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x).permute(0, 2, 3, 1)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.expansion(x.permute(0, 3, 1, 2).contiguous())  # NCHW memory (see forward)


def build_stem_and_stages(
    arch: PLGViTArch, in_chans: int = 3, drop_path_rate: float = 0.0
) -> tuple[PLGStem, nn.Sequential]:
    """The shared body of the timm classifier and the MMEngine backbones (same state-dict keys)."""
    stem = PLGStem(in_chans, arch.stem_channels, arch.embed_dims[0], arch.downsampler)
    # per-block rates, linear from 0 to drop_path_rate over all blocks, split by stage
    rates = calculate_drop_path_rates(drop_path_rate, list(arch.depths), stagewise=True)
    dims_in = (arch.embed_dims[0], *arch.embed_dims[:3])
    return stem, nn.Sequential(*[PLGStage(i, dims_in[i], arch, rates[i]) for i in range(4)])


def init_plgvit_weights(module: nn.Module) -> None:
    """timm-style init: trunc-normal(0.02) Linear weights, zero biases (others keep defaults)."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class PLGViTClassifier(nn.Module):
    """timm ImageNet model: stem -> stages -> norm -> global average pool -> Linear.

    ``forward_features`` returns the last stage NCHW map (``output_fmt = 'NCHW'``); timm's
    feature API: ``forward_intermediates`` / ``prune_intermediate_layers``; ``global_pool``: the
    classifier pooling of timm's ``ClassifierHead`` ('avg', 'max', ..., '' for none).
    ``features_only=True`` (through :func:`timm.create_model`) builds the dense backbone.
    """

    output_fmt = "NCHW"

    def __init__(
        self,
        arch: PLGViTArch,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.stem, self.stages = build_stem_and_stages(arch, in_chans, drop_path_rate)
        self.num_features = self.head_hidden_size = arch.out_channels[3]
        self.feature_info = [
            dict(num_chs=c, reduction=s, module=f"stages.{i}")
            for i, (c, s) in enumerate(zip(arch.out_channels, STAGE_STRIDES, strict=True))
        ]
        self.norm = LayerNorm2d(self.num_features)
        self.head = ClassifierHead(self.num_features, num_classes, global_pool, drop_rate)
        self.apply(init_plgvit_weights)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's feature API: stage outputs of ``indices`` (default all four).

        ``norm``: the last stage's intermediate goes through ``norm``; ``stop_early``: stages
        after the last requested one are not run; ``output_fmt``: 'NCHW' or 'NHWC'. Returns the
        intermediates, or ``(forward_features output, intermediates)`` unless
        ``intermediates_only``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt {output_fmt!r} must be 'NCHW' or 'NHWC'")
        take, last = feature_take_indices(len(self.stages), indices)
        stages = self.stages[: last + 1] if stop_early or intermediates_only else self.stages
        x = self.stem(x)
        intermediates = []
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take:
                out = self.norm(x) if norm and i == len(self.stages) - 1 else x
                intermediates.append(out.permute(0, 2, 3, 1) if output_fmt == "NHWC" else out)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """timm's feature API: drop the stages after the last of ``indices`` (and norm / head)."""
        take, last = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: last + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@MODELS.register_module()
class PLGViT(DenseBackbone):
    """PLG-ViT backbone for dense prediction (arch 'tiny' | 'small' | 'base').

    Args:
        arch: preset name, or None to give every per-stage list explicitly.
        embed_dims, depths, local_heads, global_heads, local_window, global_window,
        global_ratio, mlp_ratios: per-stage lists overriding the preset (see :class:`PLGViTArch`).
        expansion_channels, stem_channels, downsampler, ffn, patch_sampling, decoupled,
            branch_proj: overrides of the preset / ablation switches.
        out_indices, frozen_stages, init_cfg: see :class:`~.base.DenseBackbone`
            (``frozen_stages``: 0 the stem, n the stem, stages < n and their norms).
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` loads timm classifier,
            mmpretrain, mmdet/mmseg or dense files of the same arch (:meth:`convert_checkpoint`).
        drop_path_rate: stochastic depth, linear over all blocks.
        with_cp: gradient checkpointing of every PLG block.

    Forward: ``(B, 3, H, W)`` with H, W >= 32 -> tuple of NCHW maps ``(B, out_channels[i],
    ceil(H / s_i), ceil(W / s_i))``, ``s_i = 4, 8, 16, 32``, each through its own LayerNorm.
    """

    presets: dict[str, dict] = PLG_ARCHS
    preset_defaults: dict = PLG_DEFAULTS

    def __init__(
        self,
        arch: str | None = "tiny",
        *,
        embed_dims=None,
        depths=None,
        local_heads=None,
        global_heads=None,
        local_window=None,
        global_window=None,
        global_ratio=None,
        mlp_ratios=None,
        expansion_channels=None,
        stem_channels=None,
        downsampler=None,
        ffn=None,
        patch_sampling=None,
        decoupled=None,
        branch_proj=None,
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        drop_path_rate: float = 0.1,
        with_cp: bool = False,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(
            self.presets,
            self.preset_defaults,
            arch,
            embed_dims=embed_dims,
            depths=depths,
            local_heads=local_heads,
            global_heads=global_heads,
            local_window=local_window,
            global_window=global_window,
            global_ratio=global_ratio,
            mlp_ratios=mlp_ratios,
            expansion_channels=expansion_channels,
            stem_channels=stem_channels,
            downsampler=downsampler,
            ffn=ffn,
            patch_sampling=patch_sampling,
            decoupled=decoupled,
            branch_proj=branch_proj,
        )
        self.stem, self.stages = build_stem_and_stages(self.arch, in_channels, drop_path_rate)
        for stage in self.stages:
            stage.grad_checkpointing = with_cp
        self.apply(init_plgvit_weights)
        self.setup_outputs(
            self.arch.out_channels, STAGE_STRIDES, out_indices, frozen_stages, LayerNorm2d
        )

    def forward_stages(self, x: torch.Tensor, count: int) -> Iterator[torch.Tensor]:
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"{type(self).__name__} needs H, W >= 32, got {tuple(x.shape)}")
        x = self.stem(x)
        for stage in self.stages[:count]:
            x = stage(x)
            yield x

    def output_map(self, index: int, feature: torch.Tensor) -> torch.Tensor:
        # contiguous NCHW: timm's LayerNorm2d returns a channels-last view, and mmcv's CPU
        # RoIAlign reads raw NCHW memory (FPN convs keep the strides)
        return getattr(self, f"norm{index}")(feature).contiguous()

    def convert_checkpoint(self, checkpoint: Mapping, source: str) -> ConvertedCheckpoint:
        """timm classifier state dicts, mmpretrain/mmdet/mmseg files (``backbone.`` prefix) and
        dense state dicts; see :func:`~.base.classifier_keys_to_dense`. Output norms the file
        lacks start at their initialisation."""
        state = select_prefix(unwrap_state_dict(checkpoint, source), "backbone.")
        state = classifier_keys_to_dense(state, self.state_dict(), len(self.stage_channels))
        fresh = tuple(
            f"norm{i}."
            for i in self.out_indices
            if not any(k.startswith(f"norm{i}.") for k in state)
        )
        return ConvertedCheckpoint(state, fresh)


def checkpoint_filter_fn(state_dict: Mapping, model: nn.Module) -> dict[str, torch.Tensor]:
    """timm ``pretrained_filter_fn``: a checkpoint in ``model``'s layout (classifier or dense).

    For the dense backbone (``features_only``) this is :meth:`PLGViT.convert_checkpoint`, with
    the output norms the file lacks taken from ``model``.
    """
    if isinstance(model, PLGViT):
        state = model.convert_checkpoint(state_dict, "pretrained")
        own = model.state_dict()
        return {**{k: own[k] for k in own if k.startswith(state.fresh)}, **state.state_dict}
    state = select_prefix(unwrap_state_dict(state_dict, "pretrained"), "backbone.")
    return {k: v for k, v in state.items() if not OUTPUT_NORM.match(k)}


@MODELS.register_module()
class LWPLGViT(PLGViT):
    """LW-PLG-ViT backbone (arch 'a' | 'r', the project's calibration); see :class:`PLGViT`.

    Presets (OUR calibration: the paper's Table I is not public). Per stage i = 1..4 at stride
    4/8/16/32: channels, depth, local window/heads, global grid/heads, global ratio r, CCF-FFN+
    expansion; stem conv width; stage-4 3x3 expansion width. ImageNet classifier params, MACs:

    ====  ==================  ============  =========  ==========  ====  ============  =====  ===
    arch  channels            depths        local      global      r     FFN a         stem   exp
    ====  ==================  ============  =========  ==========  ====  ============  =====  ===
    a     48, 96, 144, 256    2, 2, 8, 2    7/1,2,2,4  7/2,2,4,4   0.5   3, 3, 3, 3    24     384
    r     32, 64, 192, 256    1, 1, 4, 2    7/1,2,2,4  7/2,2,4,4   0.5   2, 2, 3, 3    16     384
    ====  ==================  ============  =========  ==========  ====  ============  =====  ===

    A: 5,327,294 params, 0.86 GMACs at 224; R: 4,859,999 params, 0.53 GMACs at 224.

    Defaults to all six LW changes: LW downsampler, CCF-FFN+, max pooling, decoupled heads/ratio,
    individual widths, last-stage expansion; each can be switched back for ablations.
    """

    presets = LW_ARCHS
    preset_defaults = LW_DEFAULTS

    def __init__(self, arch: str | None = "a", **kwargs) -> None:
        super().__init__(arch, **kwargs)


def _create_plgvit(
    variant: str, dense_cls: type[PLGViT], arch: str, pretrained: bool, **kwargs
) -> nn.Module:
    """Build a timm PLG-ViT / LW-PLG-ViT; ``features_only=True`` builds the dense backbone."""
    arch_keys = {f.name for f in dataclasses.fields(PLGViTArch)}
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in arch_keys}
    if kwargs.get("features_only", False):
        kwargs["in_channels"] = kwargs.pop("in_chans", 3)
        return build_model_with_cfg(
            dense_cls,
            variant,
            pretrained,
            pretrained_filter_fn=checkpoint_filter_fn,
            feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3)),
            kwargs_filter=("num_classes", "global_pool", "in_chans", "drop_rate"),
            arch=arch,
            **overrides,
            **kwargs,
        )
    return build_model_with_cfg(
        PLGViTClassifier,
        variant,
        pretrained,
        arch=resolve_arch(dense_cls.presets, dense_cls.preset_defaults, arch, **overrides),
        pretrained_filter_fn=checkpoint_filter_fn,
        **kwargs,
    )


def _cfg(**kwargs) -> dict:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1",
        "classifier": "head.fc",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "plgvit_tiny": _cfg(),
        "plgvit_small": _cfg(),
        "plgvit_base": _cfg(),
        "lw_plgvit_a": _cfg(),
        "lw_plgvit_r": _cfg(),
    }
)


@register_model
def plgvit_tiny(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_plgvit("plgvit_tiny", PLGViT, "tiny", pretrained, **kwargs)


@register_model
def plgvit_small(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_plgvit("plgvit_small", PLGViT, "small", pretrained, **kwargs)


@register_model
def plgvit_base(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_plgvit("plgvit_base", PLGViT, "base", pretrained, **kwargs)


@register_model
def lw_plgvit_a(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_plgvit("lw_plgvit_a", LWPLGViT, "a", pretrained, **kwargs)


@register_model
def lw_plgvit_r(pretrained: bool = False, **kwargs) -> nn.Module:
    return _create_plgvit("lw_plgvit_r", LWPLGViT, "r", pretrained, **kwargs)
