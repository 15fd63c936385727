"""CenterNet-style monocular 3D head (MonoDLE skeleton) with MonoCon's auxiliary keypoints."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from mmdet.models.utils import gaussian_radius, gen_gaussian_target
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .box_coder import NUM_KEYPOINTS

HEATMAP_BIAS = -2.19  # CenterNet: sigmoid(-2.19) ~= 0.1 prior at start
MAIN_BRANCHES = ("heatmap", "size_2d", "offset_2d", "offset_3d", "depth", "dims", "alpha")
AUX_BRANCHES = ("keypoint_heatmap", "keypoint_offset", "keypoint_subpixel")
# targets: no 3D targets nearer than min_depth (metres); CornerNet radius at this overlap
DEFAULT_TRAIN_CFG = dict(min_depth=2.0, gaussian_overlap=0.7)
# decoding: top-k peaks of a kernel x kernel max-pool; a peak is kept when its heatmap value
# exceeds score_thr (MonoDLE: 0.2), its score is then the heatmap value x the depth confidence
DEFAULT_TEST_CFG = dict(topk=50, local_maximum_kernel=3, score_thr=0.2)
ZOOM_WITHOUT_REFERENCE_FOCAL = (
    "training samples are zoomed (Mono3DRandomShiftScale) while the box coder learns metric "
    "depth: the apparent size at a given depth then varies with the zoom, which the network "
    "cannot see; set the box coder's reference_focal (e.g. 721.5377 for KITTI) to learn "
    "focal-normalised depth"
)
# MonoDLE / MonoCon weights: 2D size 0.1, everything else 1
DEFAULT_LOSSES = dict(
    loss_heatmap=dict(type="GaussianFocalLoss", loss_weight=1.0),
    loss_size_2d=dict(type="L1Loss", loss_weight=0.1),
    loss_offset_2d=dict(type="L1Loss", loss_weight=1.0),
    loss_offset_3d=dict(type="L1Loss", loss_weight=1.0),
    loss_depth=dict(type="LaplacianAleatoricDepthLoss", loss_weight=1.0),
    loss_dims=dict(type="DimensionAwareL1Loss", loss_weight=1.0),
    loss_alpha_bin=dict(type="CrossEntropyLoss", loss_weight=1.0),
    loss_alpha_residual=dict(type="L1Loss", loss_weight=1.0),
    loss_keypoint_heatmap=dict(type="GaussianFocalLoss", loss_weight=1.0),
    loss_keypoint_offset=dict(type="L1Loss", loss_weight=1.0),
    loss_keypoint_subpixel=dict(type="L1Loss", loss_weight=1.0),
)


def _branch(in_channels: int, feat_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv -> ReLU -> 1x1 conv."""
    return nn.Sequential(
        nn.Conv2d(in_channels, feat_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(feat_channels, out_channels, 1),
    )


@MODELS.register_module()
class Mono3DCenterHead(BaseModule):
    """Mono 3D head on one stride-``box_coder.stride`` map (MonoDLE, CVPR 2021; MonoCon, AAAI 2022).

    Branches (output channels): heatmap of the projected 3D centre (num_classes), 2D size
    (2), 2D centre offset (2), 3D centre offset (2), depth (2: raw value with depth =
    1/sigmoid(x) - 1, log-variance), dims (3, residual to the class mean), alpha
    (2 x num_alpha_bins: bin logits, in-bin residuals). Training only (MonoCon): keypoint
    heatmaps (9 = 8 corners + centre), centre-to-keypoint offsets (18), keypoint sub-pixel
    offset (2).

    ``forward(feats)`` takes a tuple whose first map is (B, in_channels, H, W) and returns a
    dict of (B, C, H, W) maps, the auxiliary ones only in training mode.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 3,
        feat_channels: int = 256,
        num_alpha_bins: int = 12,
        use_keypoint_heads: bool = True,
        box_coder: OptConfigType = None,
        loss_heatmap: OptConfigType = None,
        loss_size_2d: OptConfigType = None,
        loss_offset_2d: OptConfigType = None,
        loss_offset_3d: OptConfigType = None,
        loss_depth: OptConfigType = None,
        loss_dims: OptConfigType = None,
        loss_alpha_bin: OptConfigType = None,
        loss_alpha_residual: OptConfigType = None,
        loss_keypoint_heatmap: OptConfigType = None,
        loss_keypoint_offset: OptConfigType = None,
        loss_keypoint_subpixel: OptConfigType = None,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        """Loss configs default to DEFAULT_LOSSES, ``box_coder`` to Mono3DBoxCoder()."""
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.num_alpha_bins = num_alpha_bins
        self.use_keypoint_heads = use_keypoint_heads
        self.box_coder = TASK_UTILS.build(box_coder or dict(type="Mono3DBoxCoder"))
        if self.box_coder.num_alpha_bins != num_alpha_bins:
            raise ValueError(
                f"box_coder.num_alpha_bins={self.box_coder.num_alpha_bins} != "
                f"head num_alpha_bins={num_alpha_bins}"
            )
        if len(self.box_coder.dims_mean) != num_classes:
            raise ValueError(
                f"box_coder.dims_mean has {len(self.box_coder.dims_mean)} rows, "
                f"expected one per class ({num_classes})"
            )
        self._zoom_warned = False
        self.train_cfg = {**DEFAULT_TRAIN_CFG, **(train_cfg or {})}
        self.test_cfg = {**DEFAULT_TEST_CFG, **(test_cfg or {})}
        channels = dict(
            heatmap=num_classes,
            size_2d=2,
            offset_2d=2,
            offset_3d=2,
            depth=2,
            dims=3,
            alpha=2 * num_alpha_bins,
        )
        if use_keypoint_heads:
            channels.update(
                keypoint_heatmap=NUM_KEYPOINTS,
                keypoint_offset=2 * NUM_KEYPOINTS,
                keypoint_subpixel=2,
            )
        self.branches = nn.ModuleDict(
            {name: _branch(in_channels, feat_channels, c) for name, c in channels.items()}
        )
        for name, branch in self.branches.items():
            if name in ("heatmap", "keypoint_heatmap"):
                nn.init.constant_(branch[-1].bias, HEATMAP_BIAS)
            else:  # CenterNet's fill_fc_weights
                for conv in (branch[0], branch[-1]):
                    nn.init.normal_(conv.weight, std=0.001)
                    nn.init.zeros_(conv.bias)
        given = dict(
            loss_heatmap=loss_heatmap,
            loss_size_2d=loss_size_2d,
            loss_offset_2d=loss_offset_2d,
            loss_offset_3d=loss_offset_3d,
            loss_depth=loss_depth,
            loss_dims=loss_dims,
            loss_alpha_bin=loss_alpha_bin,
            loss_alpha_residual=loss_alpha_residual,
        )
        if use_keypoint_heads:
            given.update(
                loss_keypoint_heatmap=loss_keypoint_heatmap,
                loss_keypoint_offset=loss_keypoint_offset,
                loss_keypoint_subpixel=loss_keypoint_subpixel,
            )
        for name, cfg in given.items():
            setattr(self, name, MODELS.build(cfg or DEFAULT_LOSSES[name]))

    def forward(self, feats: tuple[Tensor, ...] | Tensor) -> dict[str, Tensor]:
        x = feats[0] if isinstance(feats, (tuple, list)) else feats
        names = MAIN_BRANCHES
        if self.training and self.use_keypoint_heads:
            names = MAIN_BRANCHES + AUX_BRANCHES
        return {name: self.branches[name](x) for name in names}

    # ---------------------------------------------------------------------------- targets
    @torch.no_grad()
    def get_targets(
        self,
        batch_gt_instances: list[InstanceData],
        batch_img_metas: list[dict],
        map_shape: tuple[int, int, int, int],
    ) -> dict[str, Tensor]:
        """Heatmaps (B, C, H, W) and per-object targets of the objects with a peak on the map.

        Objects whose projected centre falls outside the map, whose 2D box is empty or whose
        depth is below ``min_depth`` get no peak and no targets. Per-object fields:
        ``batch``, ``labels`` (M,), ``cells`` (M, 2) long x y, the box coder's targets,
        ``keypoint_mask`` (M, 9) keypoints in front of the camera and inside the map.
        """
        b_size, _, height, width = map_shape
        device = batch_gt_instances[0].bboxes.device if batch_gt_instances else "cpu"
        heatmap = torch.zeros((b_size, self.num_classes, height, width), device=device)
        keypoint_heatmap = torch.zeros((b_size, NUM_KEYPOINTS, height, width), device=device)
        per_image = []
        for b, (gt, meta) in enumerate(zip(batch_gt_instances, batch_img_metas, strict=True)):
            if len(gt) == 0:
                continue
            cam2img = torch.as_tensor(
                np.asarray(meta["cam2img"]), dtype=torch.float32, device=device
            )
            enc = self.box_coder.encode(gt.bboxes_3d.float(), gt.bboxes.float(), cam2img)
            cx, cy = enc["centers_int"].unbind(-1)
            w2d, h2d = enc["sizes_2d"].unbind(-1)
            inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
            keep = (
                inside
                & (w2d > 0)
                & (h2d > 0)
                & (enc["metric_depths"] >= self.train_cfg["min_depth"])
            )
            kp_int = torch.floor(enc["keypoints"]).long()
            enc["keypoint_mask"] = (
                (enc["keypoint_depths"] > 0)
                & (kp_int[..., 0] >= 0)
                & (kp_int[..., 0] < width)
                & (kp_int[..., 1] >= 0)
                & (kp_int[..., 1] < height)
                & keep[:, None]
            )
            labels = gt.labels.long()
            for j in torch.nonzero(keep)[:, 0].tolist():
                radius = gaussian_radius(
                    (h2d[j].item(), w2d[j].item()), self.train_cfg["gaussian_overlap"]
                )
                radius = max(0, int(radius))
                gen_gaussian_target(heatmap[b, labels[j]], [cx[j].item(), cy[j].item()], radius)
                for k in torch.nonzero(enc["keypoint_mask"][j])[:, 0].tolist():
                    gen_gaussian_target(keypoint_heatmap[b, k], kp_int[j, k].tolist(), radius)
            enc["labels"] = labels
            enc["batch"] = torch.full_like(labels, b)
            per_image.append({key: value[keep] for key, value in enc.items()})
        targets = (
            {key: torch.cat([t[key] for t in per_image]) for key in per_image[0]}
            if per_image
            else {}
        )
        targets.update(heatmap=heatmap, keypoint_heatmap=keypoint_heatmap)
        return targets

    # ------------------------------------------------------------------------------- loss
    def loss(self, feats: tuple[Tensor, ...], batch_data_samples: SampleList) -> dict:
        self._check_zoom([s.metainfo for s in batch_data_samples])
        outputs = self(feats)
        return self.loss_by_feat(
            outputs,
            [s.gt_instances for s in batch_data_samples],
            [s.metainfo for s in batch_data_samples],
        )

    def _check_zoom(self, batch_img_metas: list[dict]) -> None:
        """Warn (once) when zoomed samples meet metric depth learning."""
        if self.box_coder.reference_focal is not None or self._zoom_warned:
            return
        if any(float(meta.get("zoom", 1.0)) != 1.0 for meta in batch_img_metas):
            warnings.warn(ZOOM_WITHOUT_REFERENCE_FOCAL, stacklevel=2)
            self._zoom_warned = True

    def loss_by_feat(
        self,
        outputs: dict[str, Tensor],
        batch_gt_instances: list[InstanceData],
        batch_img_metas: list[dict],
    ) -> dict[str, Tensor]:
        """Losses of the head outputs (training mode, so with the auxiliary maps if used)."""
        heat = outputs["heatmap"]
        t = self.get_targets(batch_gt_instances, batch_img_metas, tuple(heat.shape))
        zero = heat.sum() * 0
        num_objects = len(t.get("labels", ()))
        losses = dict(
            loss_heatmap=self.loss_heatmap(
                heat.sigmoid().clamp(1e-4, 1 - 1e-4), t["heatmap"], avg_factor=max(1, num_objects)
            )
        )
        names = [
            "loss_size_2d",
            "loss_offset_2d",
            "loss_offset_3d",
            "loss_depth",
            "loss_dims",
            "loss_alpha_bin",
            "loss_alpha_residual",
        ]
        if self.use_keypoint_heads:
            names += ["loss_keypoint_heatmap", "loss_keypoint_offset", "loss_keypoint_subpixel"]
        losses.update({name: zero for name in names})
        if self.use_keypoint_heads:
            losses["loss_keypoint_heatmap"] = self.loss_keypoint_heatmap(
                outputs["keypoint_heatmap"].sigmoid().clamp(1e-4, 1 - 1e-4),
                t["keypoint_heatmap"],
                avg_factor=max(1, int(t["keypoint_heatmap"].eq(1).sum())),
            )
        if num_objects == 0:
            return losses

        def at(name: str, mask: Tensor | None = None) -> Tensor:
            """(M, C) head values at the objects' cells."""
            values = outputs[name][t["batch"], :, t["cells"][:, 1], t["cells"][:, 0]]
            return values if mask is None else values[mask]

        t["cells"] = t["centers_int"]
        losses["loss_size_2d"] = self.loss_size_2d(at("size_2d"), t["sizes_2d"])
        losses["loss_offset_2d"] = self.loss_offset_2d(at("offset_2d"), t["offsets_2d"])
        losses["loss_offset_3d"] = self.loss_offset_3d(at("offset_3d"), t["offsets_3d"])
        depth = at("depth")
        losses["loss_depth"] = self.loss_depth(
            self.box_coder.network_depth(depth[:, 0]), t["depths"], depth[:, 1]
        )
        labels = t["labels"]
        dims_mean = self.box_coder.dims_mean.to(depth)[labels]
        losses["loss_dims"] = self.loss_dims(dims_mean + at("dims"), t["dims"])
        alpha = at("alpha")
        bins = t["alpha_bins"]
        nb = self.num_alpha_bins
        losses["loss_alpha_bin"] = self.loss_alpha_bin(alpha[:, :nb], bins)
        losses["loss_alpha_residual"] = self.loss_alpha_residual(
            alpha[:, nb:].gather(1, bins[:, None])[:, 0], t["alpha_residuals"]
        )
        if self.use_keypoint_heads:
            losses.update(self._keypoint_losses(outputs, t, at))
        return losses

    def _keypoint_losses(self, outputs: dict[str, Tensor], t: dict[str, Tensor], at) -> dict:
        """MonoCon's centre-to-keypoint offsets and keypoint sub-pixel offsets."""
        mask = t["keypoint_mask"]  # (M, 9)
        if not mask.any():
            return {}
        offsets = at("keypoint_offset").view(-1, NUM_KEYPOINTS, 2)
        target = t["keypoints"] - t["centers_int"][:, None].to(t["keypoints"])
        weight = mask[..., None].expand_as(target).float()
        loss_offset = self.loss_keypoint_offset(
            offsets, target, weight=weight, avg_factor=weight.sum()
        )
        batch = t["batch"][:, None].expand_as(mask)[mask]
        points = t["keypoints"][mask]
        cells = torch.floor(points).long()
        subpixel = outputs["keypoint_subpixel"][batch, :, cells[:, 1], cells[:, 0]]
        loss_subpixel = self.loss_keypoint_subpixel(subpixel, points - cells)
        return dict(loss_keypoint_offset=loss_offset, loss_keypoint_subpixel=loss_subpixel)

    # ---------------------------------------------------------------------------- predict
    def predict(
        self, feats: tuple[Tensor, ...], batch_data_samples: SampleList, rescale: bool = True
    ) -> list[InstanceData]:
        outputs = self(feats)
        return self.predict_by_feat(outputs, [s.metainfo for s in batch_data_samples], rescale)

    def predict_by_feat(
        self, outputs: dict[str, Tensor], batch_img_metas: list[dict], rescale: bool = True
    ) -> list[InstanceData]:
        """Per-image detections whose heatmap peak exceeds ``score_thr`` (at most ``topk``).

        As in MonoDLE the threshold applies to the heatmap value and the reported score is
        that value times the depth confidence exp(-log-variance): thresholding the product
        would drop far objects (large depth uncertainty) before AP evaluation sees them.
        Fields: ``bboxes`` (N, 4) 2D boxes x1 y1 x2 y2 (in the original image with
        ``rescale``, else in the input image), ``scores``, ``labels``, ``bboxes_3d`` (N, 7)
        camera boxes x y z h w l ry (bottom centre, metres), ``alphas`` (N,) radians.
        """
        main = {name: outputs[name] for name in MAIN_BRANCHES}
        cam2imgs = torch.stack(
            [
                torch.as_tensor(np.asarray(m["cam2img"]), dtype=torch.float32)
                for m in batch_img_metas
            ]
        ).to(main["heatmap"].device)
        decoded = self.box_coder.decode(
            main, cam2imgs, topk=self.test_cfg["topk"], kernel=self.test_cfg["local_maximum_kernel"]
        )
        results = []
        for det, meta in zip(decoded, batch_img_metas, strict=True):
            keep = det["heatmap_scores"] > self.test_cfg["score_thr"]
            bboxes = det["bboxes_2d"][keep]
            if rescale:
                bboxes = _to_original_image(bboxes, meta)
            results.append(
                InstanceData(
                    bboxes=bboxes,
                    scores=det["scores"][keep],
                    labels=det["labels"][keep],
                    bboxes_3d=det["boxes_3d"][keep],
                    alphas=det["alphas"][keep],
                )
            )
        return results


def _to_original_image(bboxes: Tensor, meta: dict) -> Tensor:
    """Map input-image boxes (N, 4) through the inverse of ``homography_matrix`` and clip
    them to ``ori_shape`` (pixel-centre coordinates, like KITTI labels)."""
    if "homography_matrix" in meta:
        inverse = torch.as_tensor(
            np.linalg.inv(np.asarray(meta["homography_matrix"])),
            dtype=bboxes.dtype,
            device=bboxes.device,
        )
        x1, y1, x2, y2 = bboxes.unbind(-1)
        corners = torch.stack(
            [
                torch.stack([x1, y1], -1),
                torch.stack([x2, y1], -1),
                torch.stack([x1, y2], -1),
                torch.stack([x2, y2], -1),
            ],
            1,
        )
        mapped = corners @ inverse[:2, :2].T + inverse[:2, 2]
        bboxes = torch.cat([mapped.amin(1), mapped.amax(1)], -1)
    height, width = meta["ori_shape"][:2]
    limits = bboxes.new_tensor([width - 1, height - 1, width - 1, height - 1])
    return torch.minimum(bboxes.clamp(min=0), limits)


__all__ = ["AUX_BRANCHES", "DEFAULT_LOSSES", "HEATMAP_BIAS", "MAIN_BRANCHES", "Mono3DCenterHead"]
