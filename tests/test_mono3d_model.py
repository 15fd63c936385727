"""Mono 3D model parts: fusion neck, box coder, losses, head targets/loss/predict, configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmcv")

from mmdet.registry import MODELS, TASK_UTILS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import plgvit_mm  # noqa: E402,F401  (registers the mono 3D parts)
from plgvit_mm.datasets.kitti_files import read_calib_file, read_label_file  # noqa: E402
from plgvit_mm.models.mono3d import KITTI_DIMS_MEAN  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "kitti_mini"
CONFIGS = Path(__file__).parents[1] / "configs"
CLASSES = ("Car", "Pedestrian", "Cyclist")

init_default_scope("mmdet")


def fixture_objects(frame: str = "000008", scale: float = 0.25):
    """Frame's labelled objects of the 3 classes, resized by ``scale`` (boxes, cam2img)."""
    objects = read_label_file(FIXTURE / f"training/label_2/{frame}.txt")
    objects = objects.select(np.isin(objects.names, CLASSES))
    affine = np.diag([scale, scale, 1.0, 1.0])
    cam2img = affine @ read_calib_file(FIXTURE / f"training/calib/{frame}.txt").cam2img
    labels = torch.tensor([CLASSES.index(n) for n in objects.names])
    return (
        torch.tensor(objects.boxes3d, dtype=torch.float32),
        torch.tensor(objects.bbox * scale, dtype=torch.float32),
        labels,
        torch.tensor(cam2img, dtype=torch.float32),
        objects,
    )


def test_neck_fuses_to_stride_4():
    neck = MODELS.build(
        dict(type="Stride4FusionNeck", in_channels=[8, 16, 24, 32], out_channels=64)
    )
    for height, width in ((96, 320), (100, 330)):
        sizes = [(math.ceil(height / s), math.ceil(width / s)) for s in (4, 8, 16, 32)]
        feats = [torch.randn(2, c, *hw) for c, hw in zip((8, 16, 24, 32), sizes, strict=True)]
        (out,) = neck(feats)
        assert out.shape == (2, 64, *sizes[0])
    with pytest.raises(ValueError, match="expected 4 maps"):
        neck(feats[:3])


def test_neck_coordinate_channels():
    neck = MODELS.build(
        dict(
            type="Stride4FusionNeck",
            in_channels=[8, 16, 24, 32],
            out_channels=16,
            coord_channels=True,
        )
    )
    assert neck.merges[0].conv.in_channels == 18 and neck.merges[1].conv.in_channels == 16
    sizes = [(24, 80), (12, 40), (6, 20), (3, 10)]
    feats = [torch.zeros(1, c, *hw) for c, hw in zip((8, 16, 24, 32), sizes, strict=True)]
    neck.eval()
    (out,) = neck(feats)
    assert out.shape == (1, 16, 24, 80)
    # zero features: the output varies over the map only through the coordinates
    assert out[0, :, 0].std() > 0 and out[0, :, :, 0].std() > 0


def test_alpha_bins_round_trip():
    coder = TASK_UTILS.build(dict(type="Mono3DBoxCoder"))
    alpha = torch.linspace(-math.pi, math.pi - 1e-4, 1001, dtype=torch.float64)
    bins, residuals = coder.alpha_to_bin(alpha)
    assert bins.min() == 0 and bins.max() == 11
    assert residuals.abs().max() <= math.pi / 12 + 1e-9
    decoded = coder.bin_to_alpha(bins, residuals)
    assert decoded.min() >= -math.pi and decoded.max() < math.pi
    wrapped_error = torch.remainder(decoded - alpha + math.pi, 2 * math.pi) - math.pi
    assert wrapped_error.abs().max() < 1e-12
    bins, residuals = coder.alpha_to_bin(torch.tensor([0.0, math.pi / 2, -math.pi / 2]))
    assert bins.tolist() == [0, 3, 9] and residuals.abs().max() < 1e-6


def paint_maps(
    enc: dict, labels: torch.Tensor, height: int, width: int, dims_mean: torch.Tensor
) -> dict:
    """Head outputs (1, C, H, W) whose values at the objects' cells encode ``enc``."""
    maps = dict(
        heatmap=torch.full((1, 3, height, width), -20.0),
        size_2d=torch.zeros(1, 2, height, width),
        offset_2d=torch.zeros(1, 2, height, width),
        offset_3d=torch.zeros(1, 2, height, width),
        depth=torch.zeros(1, 2, height, width),
        dims=torch.zeros(1, 3, height, width),
        alpha=torch.zeros(1, 24, height, width),
    )
    for j, (x, y) in enumerate(enc["centers_int"].tolist()):
        maps["heatmap"][0, labels[j], y, x] = 20.0
        maps["size_2d"][0, :, y, x] = enc["sizes_2d"][j]
        maps["offset_2d"][0, :, y, x] = enc["offsets_2d"][j]
        maps["offset_3d"][0, :, y, x] = enc["offsets_3d"][j]
        maps["depth"][0, 0, y, x] = -torch.log(enc["depths"][j])  # 1/sigmoid(x) - 1 = d
        maps["depth"][0, 1, y, x] = 0.5  # log-variance
        maps["dims"][0, :, y, x] = enc["dims"][j] - dims_mean[labels[j]]
        maps["alpha"][0, enc["alpha_bins"][j], y, x] = 10.0
        maps["alpha"][0, 12 + enc["alpha_bins"][j], y, x] = enc["alpha_residuals"][j]
    return maps


@pytest.mark.parametrize("reference_focal", [None, 721.5377])
def test_decode_encode_is_identity(reference_focal):
    coder = TASK_UTILS.build(dict(type="Mono3DBoxCoder", reference_focal=reference_focal))
    boxes, bboxes, labels, cam2img, _ = fixture_objects("000007")
    # plus random boxes in front of the camera, all classes
    gen = torch.Generator().manual_seed(0)
    n = 12
    random_boxes = torch.stack(
        [
            torch.rand(n, generator=gen) * 16 - 8,
            torch.rand(n, generator=gen) + 1.0,
            torch.rand(n, generator=gen) * 40 + 5,
            torch.rand(n, generator=gen) + 1.2,
            torch.rand(n, generator=gen) + 0.5,
            torch.rand(n, generator=gen) * 3 + 0.8,
            torch.rand(n, generator=gen) * 2 * math.pi - math.pi,
        ],
        -1,
    )
    random_bboxes = torch.tensor([[20.0, 30.0, 50.0, 60.0]]).repeat(n, 1) + torch.arange(n)[:, None]
    boxes = torch.cat([boxes, random_boxes])
    bboxes = torch.cat([bboxes, random_bboxes])
    labels = torch.cat([labels, torch.arange(n) % 3])
    height, width = 94 // 4 + 1, 311 // 4 + 1
    # keep objects whose centre cell is on the map and not taken by an earlier object
    cells = coder.encode(boxes, bboxes, cam2img)["centers_int"]
    keep, taken = [], set()
    for j, (x, y) in enumerate(cells.tolist()):
        if 0 <= x < width and 0 <= y < height and (x, y) not in taken:
            keep.append(j)
            taken.add((x, y))
    assert len(keep) >= 12
    boxes, bboxes, labels = boxes[keep], bboxes[keep], labels[keep]
    enc = coder.encode(boxes, bboxes, cam2img)
    maps = paint_maps(enc, labels, height, width, coder.dims_mean)
    (det,) = coder.decode(maps, cam2img[None], topk=len(boxes))
    order = [((det["bboxes_2d"][:, :2] - b[:2]).abs().sum(1)).argmin().item() for b in bboxes]
    torch.testing.assert_close(det["labels"][order], labels)
    torch.testing.assert_close(det["bboxes_2d"][order], bboxes, atol=1e-4, rtol=0)
    torch.testing.assert_close(det["boxes_3d"][order][:, :6], boxes[:, :6], atol=2e-4, rtol=0)
    ry_error = (
        torch.remainder(det["boxes_3d"][order][:, 6] - boxes[:, 6] + math.pi, 2 * math.pi) - math.pi
    )
    assert ry_error.abs().max() < 1e-4
    torch.testing.assert_close(
        det["scores"], torch.sigmoid(torch.tensor(20.0)) * math.exp(-0.5) * torch.ones(len(boxes))
    )


def test_laplacian_depth_loss_value():
    loss = MODELS.build(dict(type="LaplacianAleatoricDepthLoss", loss_weight=2.0))
    pred, target, log_var = (
        torch.tensor([10.0, 20.0]),
        torch.tensor([11.0, 18.0]),
        torch.tensor([0.0, 1.0]),
    )
    expected = (math.sqrt(2) * 1 * 1 + 0 + math.sqrt(2) * math.exp(-1) * 2 + 1) / 2 * 2.0
    assert loss(pred, target, log_var).item() == pytest.approx(expected, rel=1e-6)


def test_dimension_aware_l1_loss_value_and_gradient():
    loss = MODELS.build(dict(type="DimensionAwareL1Loss"))
    pred = torch.tensor([[2.0, 1.0, 4.0], [1.0, 0.5, 1.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 2.0], [2.0, 1.0, 4.0]])
    value = loss(pred, target)
    error = (pred - target).abs().detach()
    compensation = error.mean() / (error / target).mean()
    assert value.item() == pytest.approx((compensation * (error / target).mean()).item(), rel=1e-6)
    value.backward()
    expected_grad = compensation * torch.sign(pred - target).detach() / target / 6
    torch.testing.assert_close(pred.grad, expected_grad)


def build_head(**kwargs):
    cfg = dict(type="Mono3DCenterHead", in_channels=16, feat_channels=32)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def gt_and_meta(frame: str, scale: float = 0.25):
    boxes, bboxes, labels, cam2img, objects = fixture_objects(frame, scale)
    gt = InstanceData(bboxes=bboxes, labels=labels, bboxes_3d=boxes)
    return gt, dict(
        cam2img=cam2img.numpy(),
        ori_shape=(375, 1242),
        homography_matrix=np.diag([scale, scale, 1.0]),
    )


def test_head_branches_and_auxiliary_heads_only_in_training():
    head = build_head()
    x = (torch.randn(1, 16, 24, 80),)
    head.train()
    outs = head(x)
    assert {k: v.shape[1] for k, v in outs.items()} == dict(
        heatmap=3,
        size_2d=2,
        offset_2d=2,
        offset_3d=2,
        depth=2,
        dims=3,
        alpha=24,
        keypoint_heatmap=9,
        keypoint_offset=18,
        keypoint_subpixel=2,
    )
    head.eval()
    assert set(head(x)) == {
        "heatmap",
        "size_2d",
        "offset_2d",
        "offset_3d",
        "depth",
        "dims",
        "alpha",
    }
    assert torch.allclose(head.branches["heatmap"][-1].bias, torch.tensor(-2.19))


def test_head_targets_peak_at_projected_centres():
    head = build_head()
    gt, meta = gt_and_meta("000007")
    t = head.get_targets([gt], [meta], (1, 3, 24, 80))
    enc = head.box_coder.encode(gt.bboxes_3d, gt.bboxes, torch.as_tensor(meta["cam2img"]))
    assert len(t["labels"]) == 4
    for j, (x, y) in enumerate(enc["centers_int"].tolist()):
        assert t["heatmap"][0, gt.labels[j], y, x] == 1.0
    assert int((t["heatmap"] == 1).sum()) == 4


def test_objects_nearer_than_min_depth_get_no_peak():
    head = build_head()
    gt, meta = gt_and_meta("000007")
    near = gt[:2]
    near.bboxes_3d = near.bboxes_3d.clone()
    near.bboxes_3d[0, :3] = torch.tensor([0.0, 1.0, 1.5])  # projects onto the map
    enc = head.box_coder.encode(near.bboxes_3d, near.bboxes, torch.as_tensor(meta["cam2img"]))
    x, y = enc["centers_int"][0].tolist()
    assert 0 <= x < 80 and 0 <= y < 24
    t = head.get_targets([near], [meta], (1, 3, 24, 80))
    assert len(t["labels"]) == 1 and int((t["heatmap"] == 1).sum()) == 1
    assert t["heatmap"][0, :, y, x].max() < 1 and t["keypoint_heatmap"].sum() > 0
    assert t["metric_depths"].min() >= 2.0


def test_keypoint_targets_only_for_corners_in_front_of_the_camera():
    head = build_head()
    gt, meta = gt_and_meta("000007")
    long_box = gt[:1]
    # 12 m long, pointing along z, centred 2.5 m ahead: its back corners lie 3.5 m behind
    long_box.bboxes_3d = torch.tensor([[0.0, 0.5, 2.5, 1.5, 1.6, 12.0, -math.pi / 2]])
    cam2img = torch.as_tensor(meta["cam2img"])
    enc = head.box_coder.encode(long_box.bboxes_3d, long_box.bboxes, cam2img)
    behind = enc["keypoint_depths"][0] <= 0
    cells = torch.floor(enc["keypoints"][0]).long()
    on_map = (cells[:, 0] >= 0) & (cells[:, 0] < 80) & (cells[:, 1] >= 0) & (cells[:, 1] < 24)
    # a corner behind the camera whose (meaningless) projection still lands on the map
    assert (behind & on_map).any()
    t = head.get_targets([long_box], [meta], (1, 3, 24, 80))
    assert t["keypoint_mask"][0].tolist() == (~behind & on_map).tolist()
    assert t["keypoint_mask"][0].any()


def test_depth_decoding_is_bounded_for_extreme_logits():
    coder = TASK_UTILS.build(dict(type="Mono3DBoxCoder"))
    raw = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4, float("-inf"), float("inf")])
    depth = coder.network_depth(raw)
    assert torch.isfinite(depth).all()
    assert depth.min() == pytest.approx(0.1) and depth.max() == pytest.approx(500.0)
    assert depth[2] == 1.0  # 1 / sigmoid(0) - 1
    confidence = coder.depth_confidence(torch.tensor([-1e4, 0.0, 1e4]))
    assert torch.isfinite(confidence).all() and confidence[1] == 1.0
    boxes, bboxes, labels, cam2img, _ = fixture_objects("000008")
    enc = coder.encode(boxes, bboxes, cam2img)
    maps = paint_maps(enc, labels, 24, 80, coder.dims_mean)
    maps["depth"][:, 0] = -1e4
    maps["depth"][:, 1] = -1e4
    (det,) = coder.decode(maps, cam2img[None], topk=10)
    assert all(torch.isfinite(v.float()).all() for v in det.values())
    assert det["depths"].max() == pytest.approx(500.0)


def test_score_threshold_applies_to_the_heatmap_then_depth_confidence_weights():
    """MonoDLE: a confident peak of an uncertain (far) object stays, scored peak x exp(-s)."""
    head = build_head()  # score_thr 0.2
    head.eval()
    gt, meta = gt_and_meta("000008")
    enc = head.box_coder.encode(gt.bboxes_3d, gt.bboxes, torch.as_tensor(meta["cam2img"]))
    maps = paint_maps(enc, gt.labels, 24, 80, head.box_coder.dims_mean)
    (x0, y0), (x1, y1) = enc["centers_int"][:2].tolist()
    maps["heatmap"][0, gt.labels[0], y0, x0] = 0.0  # peak 0.5
    maps["depth"][0, 1, y0, x0] = 3.0  # uncertain: confidence exp(-3) = 0.05
    maps["heatmap"][0, gt.labels[1], y1, x1] = math.log(0.1 / 0.9)  # peak 0.1 < 0.2
    maps["depth"][0, 1, y1, x1] = -1.0  # very confident
    (result,) = head.predict_by_feat(maps, [meta], rescale=False)
    assert len(result) == len(gt) - 1
    uncertain = (result.bboxes_3d[:, :3] - gt.bboxes_3d[0, :3]).abs().sum(1).argmin()
    assert (result.bboxes_3d[uncertain, :3] - gt.bboxes_3d[0, :3]).abs().max() < 1e-3
    assert result.scores[uncertain].item() == pytest.approx(0.5 * math.exp(-3.0), rel=1e-5)
    assert (result.bboxes_3d[:, :3] - gt.bboxes_3d[1, :3]).abs().sum(1).min() > 1e-2


def test_decode_batch_matches_per_image_decoding():
    """Batched decoding (tensor operations only) equals decoding each image on its own."""
    coder = TASK_UTILS.build(dict(type="Mono3DBoxCoder", reference_focal=721.5377))
    torch.manual_seed(0)
    maps = dict(
        heatmap=torch.randn(2, 3, 24, 80),
        size_2d=torch.rand(2, 2, 24, 80) * 10,
        offset_2d=torch.rand(2, 2, 24, 80),
        offset_3d=torch.rand(2, 2, 24, 80),
        depth=torch.randn(2, 2, 24, 80),
        dims=torch.randn(2, 3, 24, 80) * 0.1,
        alpha=torch.randn(2, 24, 24, 80),
    )
    cam2imgs = torch.stack([fixture_objects("000007")[3], fixture_objects("000008", 0.3)[3]])
    batch = coder.decode_batch(maps, cam2imgs, topk=20)
    assert batch["boxes_3d"].shape == (2, 20, 7) and batch["scores"].shape == (2, 20)
    for i in range(2):
        (single,) = coder.decode(
            {k: v[i : i + 1] for k, v in maps.items()}, cam2imgs[i : i + 1], topk=20
        )
        for key, value in single.items():
            torch.testing.assert_close(batch[key][i], value)


def test_zoom_without_reference_focal_warns_once():
    from mmdet.structures import DetDataSample

    gt, meta = gt_and_meta("000008")
    feats = (torch.randn(1, 16, 24, 80),)

    def sample(zoom):
        data = DetDataSample(metainfo=dict(meta, zoom=zoom))
        data.gt_instances = gt
        return data

    head = build_head()
    head.train()
    with pytest.warns(UserWarning, match="reference_focal"):
        head.loss(feats, [sample(1.3)])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head.loss(feats, [sample(0.8)])  # once
        build_head().loss(feats, [sample(1.0)])  # no zoom applied
        focal = build_head(box_coder=dict(type="Mono3DBoxCoder", reference_focal=721.5377))
        focal.loss(feats, [sample(1.3)])


def test_head_loss_is_finite_and_decreases():
    torch.manual_seed(0)
    head = build_head()
    head.train()
    samples = [gt_and_meta("000007"), gt_and_meta("000008")]
    feats = (torch.randn(2, 16, 24, 80),)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    totals = []
    for _ in range(15):
        losses = head.loss_by_feat(head(feats), [s[0] for s in samples], [s[1] for s in samples])
        assert all(torch.isfinite(v) for v in losses.values()), losses
        assert set(losses) >= {
            "loss_heatmap",
            "loss_depth",
            "loss_keypoint_heatmap",
            "loss_keypoint_offset",
            "loss_alpha_bin",
        }
        total = sum(losses.values())
        totals.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert totals[-1] < 0.75 * totals[0], totals
    # an image without objects still gives finite losses
    empty = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        bboxes_3d=torch.zeros(0, 7),
    )
    losses = head.loss_by_feat(head(feats[0][:1]), [empty], [samples[0][1]])
    assert all(torch.isfinite(v) for v in losses.values())


def test_head_predict_returns_original_image_boxes():
    """Maps painted from the resized targets decode to the label's original boxes."""
    head = build_head(test_cfg=dict(score_thr=0.1))
    head.eval()
    gt, meta = gt_and_meta("000008")
    enc = head.box_coder.encode(gt.bboxes_3d, gt.bboxes, torch.as_tensor(meta["cam2img"]))
    maps = paint_maps(enc, gt.labels, 24, 80, head.box_coder.dims_mean)
    (result,) = head.predict_by_feat(maps, [meta], rescale=True)
    assert len(result) == 6
    _, _, _, _, objects = fixture_objects("000008")
    order = [((result.bboxes_3d[:, :3] - b[:3]).abs().sum(1)).argmin().item() for b in gt.bboxes_3d]
    np.testing.assert_allclose(result.bboxes[order].numpy(), objects.bbox, atol=2e-3)
    np.testing.assert_allclose(
        result.bboxes_3d[order][:, :6].numpy(), objects.boxes3d[:, :6], atol=2e-4
    )
    assert set(result.keys()) >= {"bboxes", "scores", "labels", "bboxes_3d", "alphas"}


def test_dims_mean_are_the_kitti_class_means():
    assert KITTI_DIMS_MEAN == ((1.526, 1.629, 3.883), (1.763, 0.661, 0.844), (1.737, 0.597, 1.763))


@pytest.mark.parametrize(
    "name", ["mono3d_lwplgvit_a_kitti", "mono3d_lwplgvit_r_kitti", "mono3d_nat_tiny_kitti"]
)
def test_config_builds_model_and_pipelines(name):
    from mmengine.dataset import Compose

    cfg = Config.fromfile(str(CONFIGS / f"{name}.py"))
    assert cfg.train_dataloader.batch_size == 8 and cfg.train_cfg.max_epochs == 200
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    Compose(cfg.train_pipeline)
    Compose(cfg.test_pipeline)
    model = MODELS.build(cfg.model)
    assert model.neck.in_channels == list(model.backbone.out_channels)
    if name == "mono3d_lwplgvit_a_kitti":
        model.eval()
        with torch.no_grad():
            outs = model._forward(torch.randn(1, 3, 64, 192))
        assert outs["heatmap"].shape == (1, 3, 16, 48)


def test_demo_config_builds_and_runs_at_its_input_size():
    from mmengine.dataset import Compose

    cfg = Config.fromfile(str(CONFIGS / "demo" / "mono3d_lwplgvit_a_synthetic.py"))
    width, height = cfg.input_size
    assert cfg.train_cfg.type == "IterBasedTrainLoop" and cfg.val_cfg is None
    assert cfg.test_evaluator.type == "KittiMono3DMetric"
    Compose(cfg.train_pipeline)
    model = MODELS.build(cfg.model)
    assert model.neck.coord_channels and model.bbox_head.box_coder.reference_focal is None
    model.eval()
    with torch.no_grad():
        outs = model._forward(torch.randn(1, 3, height, width))
    assert outs["heatmap"].shape == (1, 3, height // 4, width // 4)
