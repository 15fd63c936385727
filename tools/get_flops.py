"""Parameters and multiply-accumulates (MACs, the papers' "FLOPs") of a config's model.

    python tools/get_flops.py CONFIG [--shape H W] [--json-out result.json] [--cfg-options ...]

One forward pass of a (1, 3, H, W) input (default 800 x 1280, the NAT papers' detection size;
use 512 512 for ADE20K UperNet) in tensor mode: detectors run backbone, neck, RPN and the RoI
heads on the RPN's proposals; segmentors backbone and decode heads (the auxiliary head is
training-only and not counted). MACs come from the shared counter
:func:`plgvit_mm.utils.flops.count_macs` (convolutions, linear layers, matmuls, exact
neighborhood attention; no norms/activations), so numbers compare with the published ones.
Weights are random (the count does not depend on them).
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from plgvit_mm.cli.config import add_config_arguments, load_config
from plgvit_mm.cli.inference import build_inference_model, task_of
from plgvit_mm.utils.flops import count_macs


class TensorModeForward(nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` as a one-argument module for tracing."""

    def __init__(self, model: nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode="tensor")


def data_samples_for(task: str, height: int, width: int) -> list:
    """One data sample with the image metadata an mmdet detector needs in tensor mode."""
    if task == "seg":
        from mmseg.structures import SegDataSample

        return [SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))]
    from mmdet.structures import DetDataSample

    return [
        DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                pad_shape=(height, width),
                batch_input_shape=(height, width),
                scale_factor=(1.0, 1.0),
            )
        )
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=(800, 1280),
        metavar=("H", "W"),
        help="input height and width",
    )
    parser.add_argument("--json-out", help="write the result as JSON here")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    height, width = args.shape
    if min(height, width) < 32:
        parser.error(f"--shape must be at least 32 x 32, got {args.shape}")

    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    model = build_inference_model(cfg, None, "cpu")
    wrapped = TensorModeForward(model, data_samples_for(task, height, width))
    counted = count_macs(wrapped, torch.randn(1, 3, height, width))
    result = dict(
        config=args.config,
        task=task,
        input_hw=[height, width],
        params=sum(p.numel() for p in model.parameters()),
        backbone_params=sum(p.numel() for p in model.backbone.parameters()),
        macs=counted.total,
        backbone_macs=counted.by_module.get("model.backbone", 0),
        attention_macs=counted.attention,
        uncounted_ops=dict(sorted(counted.unsupported_ops.items())),
    )
    print(
        f"{args.config} at {height} x {width}: params {result['params'] / 1e6:.2f} M "
        f"(backbone {result['backbone_params'] / 1e6:.2f} M), MACs {result['macs'] / 1e9:.2f} G "
        f"(backbone {result['backbone_macs'] / 1e9:.2f} G)"
    )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
