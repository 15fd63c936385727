"""tools/deployment/export_onnx.py: backbone exports, ONNX Runtime parity, options, bad input.

Export tests use small variants of each family (same code paths as the published archs) and
small images; they are marked slow. Argument and input errors are checked without exporting.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402

from plgvit_mm.deployment.export_targets import (  # noqa: E402
    DYNAMIC_EXAMPLE_BATCH,
    backbone_target,
)
from plgvit_mm.deployment.onnx_export import export_onnx, non_default_nodes  # noqa: E402
from plgvit_mm.deployment.onnx_runtime import (  # noqa: E402
    PARITY_TOLERANCE,
    compare_outputs,
    ort_session,
    run_session,
    torch_outputs,
)

TOOL = "tools/deployment/export_onnx.py"

SMALL_BACKBONES = {
    "lw_plgvit": dict(
        type="LWPLGViT",
        arch=None,
        embed_dims=(16, 32, 48, 64),
        depths=(1, 1, 2, 1),
        local_heads=(1, 1, 2, 2),
        global_heads=(1, 2, 2, 2),
        local_window=(7, 7, 7, 7),
        global_window=(7, 7, 7, 7),
        global_ratio=(0.5, 0.5, 0.5, 0.5),
        mlp_ratios=(2.0, 2.0, 2.0, 2.0),
        expansion_channels=96,
        stem_channels=8,
    ),
    "plgvit": dict(
        type="PLGViT",
        arch=None,
        embed_dims=(32, 64, 128, 256),
        depths=(1, 1, 1, 1),
        local_heads=(1, 2, 4, 8),
        local_window=(7, 7, 7, 7),
    ),
    "nat": dict(
        type="NAT",
        arch=dict(
            embed_dim=32,
            depths=(1, 1, 2, 1),
            num_heads=(1, 2, 4, 8),
            mlp_ratio=2.0,
            layer_scale=None,
        ),
    ),  # fmt: skip
    "dinat": dict(
        type="DiNAT",
        arch=dict(
            embed_dim=32,
            depths=(2, 2, 2, 1),
            num_heads=(1, 2, 4, 8),
            mlp_ratio=2.0,
            layer_scale=1e-5,
        ),
        dilations=((1, 4), (1, 2), (1, 2), (1,)),
    ),  # fmt: skip
}


def _export_and_compare(target, shapes, tmp_path, dynamic=False):
    path = tmp_path / "model.onnx"
    inputs = target.example_inputs(*shapes[0], batch=DYNAMIC_EXAMPLE_BATCH if dynamic else 1)
    model = export_onnx(
        target.module,
        inputs,
        path,
        input_names=target.input_names,
        output_names=target.output_names,
        dynamic_shapes=target.dynamic_shapes(hw=True) if dynamic else None,
    )
    assert non_default_nodes(model) == []
    assert all(n.domain in ("", "ai.onnx") for n in onnx.load(path).graph.node)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left
    session = ort_session(path, threads=2)
    results = []
    for batch, (height, width) in zip((1, 2), shapes, strict=False):
        inputs = target.example_inputs(height, width, batch=batch, seed=height)
        got = run_session(session, inputs)
        want = torch_outputs(target.module, inputs)
        assert [g.shape for g in got] == [tuple(w.shape) for w in want]
        parity = compare_outputs(got, want)
        assert parity.max_rel <= PARITY_TOLERANCE, parity
        results.append(parity)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(SMALL_BACKBONES))
@pytest.mark.parametrize("shape", [(64, 64), (96, 160)])
def test_backbone_export_matches_pytorch(family, shape, tmp_path):
    """Four NCHW maps at strides 4-32 from ONNX Runtime equal PyTorch's (fp32, 1e-4 of scale);
    (64, 64) pads DiNAT's and NAT's small maps (legacy zero padding), (96, 160) does not fit
    the windows evenly."""
    torch.manual_seed(0)
    target = backbone_target(SMALL_BACKBONES[family])
    (parity,) = _export_and_compare(target, [shape], tmp_path)
    assert parity.scale > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("family", ["nat", "lw_plgvit"])
def test_dynamic_export_runs_other_batch_and_size(family, tmp_path):
    """NAT: symbolic batch, H and W (from the smallest unpadded size); LW-PLG-ViT: batch."""
    torch.manual_seed(0)
    target = backbone_target(SMALL_BACKBONES[family])
    side = target.dynamic_min_side
    second = (side + 32, side + 64) if target.hw_dynamic else (side, side)
    _export_and_compare(target, [(side, side), second], tmp_path, dynamic=True)


@pytest.fixture(scope="module")
def export_tool(repo_root):
    """tools/deployment/export_onnx.py as a module (its ``main`` runs in this process)."""
    spec = importlib.util.spec_from_file_location("export_onnx_tool", repo_root / TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_tool(tool, capsys, *args) -> tuple[int, str]:
    code = tool.main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_cli_fp16_simplify_and_check(export_tool, capsys, tmp_path):
    """--fp16 graphs take and return float32 and pass the checker; --simplify keeps parity."""
    out = tmp_path / "lw_r.onnx"
    code, err = _run_tool(
        export_tool, capsys, "--model", "lw_plgvit_r", "--shape", "64", "96", "--fp16",
        "--simplify", "--check", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err[-3000:]
    model = onnx.load(out)
    float_type = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == float_type
    assert all(o.type.tensor_type.elem_type == float_type for o in model.graph.output)
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    session = ort_session(out)
    image = np.random.default_rng(0).standard_normal((1, 3, 64, 96)).astype(np.float32)
    outputs = run_session(session, [image])
    assert [o.dtype for o in outputs] == [np.float32] * 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "lw_plgvit_a", "--opset", "17"], "opset >= 18"),
        (["--model", "resnet50"], "expected <family>_<arch>"),
        (["--model", "lw_plgvit_a", "--shape", "16", "224"], "H and W >= 32"),
        (["--model", "nat_tiny", "--checkpoint", "missing.pth"], "no such file"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, export_tool, capsys, tmp_path):
    out = tmp_path / "model.onnx"
    code, err = _run_tool(export_tool, capsys, *args, "--out", str(out))
    assert code == 2
    assert message in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_rejects_mismatched_checkpoint_and_keeps_old_file(export_tool, capsys, tmp_path):
    torch.manual_seed(0)
    other = backbone_target(dict(type="LWPLGViT", arch="r")).module.backbone
    checkpoint = tmp_path / "lw_r.pth"
    torch.save({"state_dict": other.state_dict()}, checkpoint)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    code, err = _run_tool(
        export_tool, capsys, "--model", "lw_plgvit_a", "--checkpoint", str(checkpoint),
        "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert "does not match LWPLGViT" in err and "shape mismatches" in err
    assert out.read_bytes() == b"previous"


def test_cli_rejects_unsupported_config_type(export_tool, capsys, tmp_path):
    config = tmp_path / "classifier.py"
    config.write_text("model = dict(type='ImageClassifier', backbone=dict(type='ResNet'))\n")
    code, err = _run_tool(export_tool, capsys, "--config", str(config), "--out",
                          str(tmp_path / "m.onnx"))  # fmt: skip
    assert code == 2
    assert "model.type 'ImageClassifier' cannot be exported" in err


class AdaptiveMaxPool(torch.nn.Module):
    def __init__(self, size) -> None:
        super().__init__()
        self.size = size

    def forward(self, x):
        return torch.nn.functional.adaptive_max_pool2d(x, self.size, return_indices=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape, size", [((2, 3, 96, 320), 7), ((1, 5, 13, 9), (4, 3)), ((4, 14, 14), 7)]
)
def test_adaptive_max_pool_translation_is_exact(shape, size, tmp_path):
    """Grids that do not divide the map (LW-PLG-ViT's 7 x 7 pooling at driving sizes):
    values and flat indices equal PyTorch's."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    module = AdaptiveMaxPool(size)
    path = tmp_path / "pool.onnx"
    export_onnx(module, (x,), path, input_names=["x"], output_names=["values", "indices"])
    values, indices = run_session(ort_session(path), [x])
    want_values, want_indices = module(x)
    np.testing.assert_array_equal(values, want_values.numpy())
    np.testing.assert_array_equal(indices, want_indices.numpy())
