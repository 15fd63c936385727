"""Whole-model ONNX exports from configs: UperNet segmentor, Mask R-CNN features, mono 3D.

The repository configs are loaded and shrunk (small LW-PLG-ViT backbone, narrow heads) so the
exports stay small; the graphs must match PyTorch (fp32, 1e-4 of the output scale) under ONNX
Runtime and hold default-domain nodes only. ort_inference.py draws the demo pictures.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402

from plgvit_mm.deployment.export_targets import (  # noqa: E402
    DYNAMIC_EXAMPLE_BATCH,
    config_target,
)
from plgvit_mm.deployment.onnx_export import export_onnx, non_default_nodes  # noqa: E402
from plgvit_mm.deployment.onnx_runtime import (  # noqa: E402
    PARITY_TOLERANCE,
    compare_outputs,
    ort_session,
    run_session,
    torch_outputs,
)

pytestmark = pytest.mark.slow

SMALL_LW = dict(
    type="LWPLGViT",
    arch=None,
    embed_dims=(16, 32, 48, 64),
    depths=(1, 1, 1, 1),
    local_heads=(1, 1, 2, 2),
    global_heads=(1, 2, 2, 2),
    local_window=(7, 7, 7, 7),
    global_window=(7, 7, 7, 7),
    global_ratio=(0.5, 0.5, 0.5, 0.5),
    mlp_ratios=(2.0, 2.0, 2.0, 2.0),
    expansion_channels=None,
    stem_channels=8,
    init_cfg=None,
)
SMALL_CHANNELS = [16, 32, 48, 64]


def _small_config(repo_root, name: str, tmp_path, **model_overrides) -> str:
    cfg = Config.fromfile(str(repo_root / "configs" / name))
    cfg.model.backbone = dict(SMALL_LW)
    for key, value in model_overrides.items():
        cfg.model[key] = {**cfg.model.get(key, {}), **value}
    path = tmp_path / name
    cfg.dump(str(path))
    return str(path)


def _export_and_compare(target, tmp_path, shape, dynamic=False):
    """Export at ``shape`` (symbolic batch if ``dynamic``), compare batch 1 (and 3 if dynamic);
    returns the path and the batch-1 outputs of ONNX Runtime and PyTorch."""
    path = tmp_path / "model.onnx"
    inputs = target.example_inputs(*shape, batch=DYNAMIC_EXAMPLE_BATCH if dynamic else 1)
    model = export_onnx(
        target.module, inputs, path, input_names=target.input_names,
        output_names=target.output_names,
        dynamic_shapes=target.dynamic_shapes(hw=False) if dynamic else None,
    )  # fmt: skip
    assert non_default_nodes(model) == []
    session = ort_session(path, threads=2)
    runs = []
    for batch in (1, 3) if dynamic else (1,):
        inputs = target.example_inputs(*shape, batch=batch, seed=3)
        got, want = run_session(session, inputs), torch_outputs(target.module, inputs)
        parity = compare_outputs(got, want)
        assert parity.max_rel <= PARITY_TOLERANCE, (batch, parity)
        runs.append((got, want))
    return path, *runs[0]


def test_upernet_segmentor_export(repo_root, tmp_path):
    """Image -> per-pixel logits at the input size; SyncBN reverted to BN; checkpoint loaded;
    symbolic batch (1 and 3 run)."""
    config = _small_config(
        repo_root, "upernet_lwplgvit_a_cityscapes.py", tmp_path,
        decode_head=dict(in_channels=SMALL_CHANNELS, channels=32),
        auxiliary_head=dict(in_channels=SMALL_CHANNELS[2], channels=16),
    )  # fmt: skip
    torch.manual_seed(0)
    first = config_target(config)
    checkpoint = tmp_path / "upernet.pth"
    torch.save({"state_dict": first.module.segmentor.state_dict()}, checkpoint)
    target = config_target(config, checkpoint)
    assert not any("SyncBatchNorm" in type(m).__name__ for m in target.module.modules())
    torch.testing.assert_close(
        target.module.segmentor.decode_head.conv_seg.weight,
        first.module.segmentor.decode_head.conv_seg.weight,
    )
    _, got, _ = _export_and_compare(target, tmp_path, (96, 160), dynamic=True)
    num_classes = target.module.segmentor.decode_head.num_classes
    assert got[0].shape == (1, num_classes, 96, 160)


def test_maskrcnn_features_export(repo_root, tmp_path):
    config = _small_config(
        repo_root, "maskrcnn_lwplgvit_a_coco.py", tmp_path,
        neck=dict(in_channels=SMALL_CHANNELS, out_channels=32),
    )  # fmt: skip
    torch.manual_seed(0)
    target = config_target(config)
    _, got, _ = _export_and_compare(target, tmp_path, (128, 160))
    assert [g.shape[-2:] for g in got] == [(32, 40), (16, 20), (8, 10), (4, 5), (2, 3)]


@pytest.fixture(scope="module")
def ort_inference_tool(repo_root):
    path = repo_root / "tools/deployment/ort_inference.py"
    spec = importlib.util.spec_from_file_location("ort_inference_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mono3d_export_decodes_like_pytorch(repo_root, tmp_path, ort_inference_tool):
    """Image + cam2img -> top-k boxes decoded in the graph (the box coder's decode_batch), with a
    symbolic batch (1 and 3 run); the picture tool runs the exported graph on an image."""
    config = _small_config(
        repo_root, "mono3d_lwplgvit_a_kitti.py", tmp_path,
        neck=dict(out_channels=16), bbox_head=dict(in_channels=16, feat_channels=16),
    )  # fmt: skip
    torch.manual_seed(0)
    target = config_target(config)
    assert target.input_names == ("image", "cam2img")
    path, got, want = _export_and_compare(target, tmp_path, (96, 320), dynamic=True)
    topk = target.module.topk
    assert got[0].shape == (1, topk) and got[4].shape == (1, topk, 7)
    np.testing.assert_array_equal(got[0], want[0].numpy())  # labels

    import cv2

    cfg = Config.fromfile(config)  # the test pipeline resizes and pads to the exported size
    for step in cfg.test_dataloader.dataset.pipeline:
        if step["type"] in ("Mono3DResize", "Pad"):
            step["scale" if step["type"] == "Mono3DResize" else "size"] = (320, 96)
    cfg.dump(config)
    image = tmp_path / "000000.png"
    cv2.imwrite(str(image), np.full((120, 400, 3), 90, np.uint8))
    calib = "721.5 0 200 44.9 0 721.5 60 0.2 0 0 1 0.003"
    out = tmp_path / "boxes.png"
    code = ort_inference_tool.main(
        [str(path), str(image), "--config", config, "--calib", calib, "--out", str(out),
         "--score-thr", "0.0"]
    )  # fmt: skip
    assert code == 0 and cv2.imread(str(out)).shape[0] == 120
