"""Box coder of the CenterNet-style mono 3D head: KITTI camera boxes <-> per-object targets.

Coordinates: ``cam2img`` is the (4, 4) P2 of the NETWORK INPUT image (after every geometric
transform), pixel-centre convention; "map" coordinates are input pixels divided by the head
stride. A camera box is ``x y z h w l ry`` with (x, y, z) the bottom centre (KITTI labels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from mmdet.models.utils import get_local_maximum, get_topk_from_heatmap, transpose_and_gather_feat
from mmdet.registry import TASK_UTILS
from torch import Tensor

from plgvit_mm.structures import (
    box_corners,
    gravity_centers,
    limit_period,
    project_points,
    unproject_points,
)

# mean h w l in metres of KITTI Car, Pedestrian, Cyclist (MonoDLE / MonoCon)
KITTI_DIMS_MEAN = ((1.526, 1.629, 3.883), (1.763, 0.661, 0.844), (1.737, 0.597, 1.763))
NUM_KEYPOINTS = 9  # the 8 corners of box_corners, then the gravity centre
# learnt depth is kept in [0.1, 500] (units of the learnt depth, metres without
# reference_focal): extreme raw values decode to finite depths
NETWORK_DEPTH_RANGE = (0.1, 500.0)
# log-variance range used for the depth confidence exp(-s) (keeps scores finite)
LOG_VARIANCE_RANGE = (-10.0, 10.0)


@TASK_UTILS.register_module()
class Mono3DBoxCoder:
    """Encode/decode camera boxes for a stride-``stride`` CenterNet mono 3D head.

    Args:
        stride: output stride of the head's map (input pixels per map cell).
        num_alpha_bins: bins of the observation angle (classification + in-bin residual).
        dims_mean: (num_classes, 3) mean h w l per class; the head predicts residuals to it.
        reference_focal: if given, depth is learnt as ``z * reference_focal / f_u`` (the depth
            the object would have seen through a camera of that focal length, which is what
            its apparent size tells), so scale augmentation and other cameras stay
            consistent; None learns metric z as is (MonoDLE).
    """

    def __init__(
        self,
        stride: int = 4,
        num_alpha_bins: int = 12,
        dims_mean: Sequence[Sequence[float]] = KITTI_DIMS_MEAN,
        reference_focal: float | None = None,
    ) -> None:
        self.stride = stride
        self.num_alpha_bins = num_alpha_bins
        self.dims_mean = torch.as_tensor(dims_mean, dtype=torch.float32)
        if self.dims_mean.ndim != 2 or self.dims_mean.shape[1] != 3:
            raise ValueError(
                f"dims_mean must be (num_classes, 3) h w l, got {tuple(self.dims_mean.shape)}"
            )
        if reference_focal is not None and reference_focal <= 0:
            raise ValueError(f"reference_focal must be positive, got {reference_focal}")
        self.reference_focal = reference_focal

    # ----------------------------------------------------------------------------- angles
    @property
    def bin_size(self) -> float:
        return 2 * math.pi / self.num_alpha_bins

    def alpha_to_bin(self, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """Angles (N,) -> bin index (N,) long and residual to the bin centre (N,) in radians.

        Bin k is centred on ``k * 2 pi / num_bins`` (MonoDLE's angle2class).
        """
        shifted = torch.remainder(alpha + self.bin_size / 2, 2 * math.pi)
        bins = torch.div(shifted, self.bin_size, rounding_mode="floor").long()
        bins = bins.clamp(max=self.num_alpha_bins - 1)
        return bins, shifted - bins.to(shifted.dtype) * self.bin_size - self.bin_size / 2

    def bin_to_alpha(self, bins: Tensor, residuals: Tensor) -> Tensor:
        """Inverse of :meth:`alpha_to_bin`, wrapped to [-pi, pi)."""
        return limit_period(bins.to(residuals.dtype) * self.bin_size + residuals)

    @staticmethod
    def image_ray_angle(u: Tensor, cam2img: Tensor) -> Tensor:
        """Azimuth of the viewing ray through image column u: atan2(u - c_u, f_u).

        ``cam2img`` is (4, 4), or (B, 4, 4) with ``u`` (B, N).
        """
        c_u, f_u = cam2img[..., 0, 2], cam2img[..., 0, 0]
        if cam2img.ndim == 3:
            c_u, f_u = c_u[:, None], f_u[:, None]
        return torch.atan2(u - c_u, f_u)

    # ------------------------------------------------------------------------------ depth
    def depth_scale(self, cam2img: Tensor) -> Tensor:
        """Factor from metric depth to the learnt depth (1 without ``reference_focal``).

        () for a (4, 4) ``cam2img``, (B, 1) for (B, 4, 4).
        """
        f_u = cam2img[..., 0, 0]
        if cam2img.ndim == 3:
            f_u = f_u[:, None]
        if self.reference_focal is None:
            return torch.ones_like(f_u)
        return self.reference_focal / f_u

    @staticmethod
    def network_depth(raw: Tensor) -> Tensor:
        """Learnt depth from the raw depth channel: ``1 / sigmoid(x) - 1`` (= exp(-x)).

        Bounded to NETWORK_DEPTH_RANGE (the raw value is clamped), so no logit decodes to 0
        or inf.
        """
        low, high = NETWORK_DEPTH_RANGE
        return torch.exp(-raw.clamp(min=-math.log(high), max=-math.log(low)))

    @staticmethod
    def depth_confidence(log_variance: Tensor) -> Tensor:
        """MonoDLE's depth confidence ``exp(-s)`` of the log-variance channel s, with s
        clamped to LOG_VARIANCE_RANGE (finite for any logit)."""
        low, high = LOG_VARIANCE_RANGE
        return torch.exp(-log_variance.clamp(min=low, max=high))

    # ----------------------------------------------------------------------------- encode
    def encode(self, boxes_3d: Tensor, bboxes_2d: Tensor, cam2img: Tensor) -> dict[str, Tensor]:
        """Per-object targets of N objects of one image.

        Args:
            boxes_3d: (N, 7) camera boxes. bboxes_2d: (N, 4) x1 y1 x2 y2 input pixels.
            cam2img: (4, 4) P2 of the input image.
        Returns (map units unless stated):
            centers (N, 2) projected gravity centre; centers_int (N, 2) its cell (floor, long);
            offsets_3d (N, 2) centre - cell; offsets_2d (N, 2) 2D box centre - cell;
            sizes_2d (N, 2) 2D box w h; depths (N,) learnt depth (see reference_focal);
            metric_depths (N,) metres; dims (N, 3) h w l metres; alphas (N,) observation
            angle w.r.t. the image ray; alpha_bins (N,) long; alpha_residuals (N,) radians;
            keypoints (N, 9, 2) projected corners and centre; keypoint_depths (N, 9) their
            camera z in metres (a point behind the camera projects to a meaningless pixel).
        """
        cam2img = cam2img.to(boxes_3d)
        centers_img, depths = project_points(gravity_centers(boxes_3d), cam2img)
        centers = centers_img / self.stride
        centers_int = torch.floor(centers)
        points = torch.cat([box_corners(boxes_3d), gravity_centers(boxes_3d)[:, None]], 1)
        keypoints, keypoint_depths = project_points(points, cam2img)
        keypoints = keypoints / self.stride
        centers_2d = (bboxes_2d[:, :2] + bboxes_2d[:, 2:]) / 2 / self.stride
        alphas = limit_period(boxes_3d[:, 6] - self.image_ray_angle(centers_img[:, 0], cam2img))
        alpha_bins, alpha_residuals = self.alpha_to_bin(alphas)
        return dict(
            centers=centers,
            centers_int=centers_int.long(),
            offsets_3d=centers - centers_int,
            offsets_2d=centers_2d - centers_int,
            sizes_2d=(bboxes_2d[:, 2:] - bboxes_2d[:, :2]) / self.stride,
            depths=depths * self.depth_scale(cam2img),
            metric_depths=depths,
            dims=boxes_3d[:, 3:6],
            alphas=alphas,
            alpha_bins=alpha_bins,
            alpha_residuals=alpha_residuals,
            keypoints=keypoints,
            keypoint_depths=keypoint_depths,
        )

    # ----------------------------------------------------------------------------- decode
    def decode_objects(
        self,
        labels: Tensor,
        centers_int: Tensor,
        offsets_3d: Tensor,
        offsets_2d: Tensor,
        sizes_2d: Tensor,
        depth_raw: Tensor,
        dims_residual: Tensor,
        alpha_logits: Tensor,
        alpha_residuals: Tensor,
        cam2img: Tensor,
    ) -> dict[str, Tensor]:
        """Boxes of K objects per image from the head values at their cells (batched).

        Args: labels (B, K) long; centers_int (B, K, 2) cells x y (map units); offsets_3d,
            offsets_2d, sizes_2d (B, K, 2) map units; depth_raw (B, K) raw depth channel;
            dims_residual (B, K, 3); alpha_logits, alpha_residuals (B, K, num_alpha_bins);
            cam2img (B, 4, 4) of the input images.
        Returns: boxes_3d (B, K, 7) camera boxes (bottom centre), bboxes_2d (B, K, 4) input
            pixels, alphas (B, K) observation angles, depths (B, K) metres.
        """
        cam2img = cam2img.to(offsets_3d)
        centers_int = centers_int.to(offsets_3d)
        centers_img = (centers_int + offsets_3d) * self.stride
        depths = self.network_depth(depth_raw) / self.depth_scale(cam2img)
        gravity = unproject_points(centers_img, depths, cam2img)
        dims = self.dims_mean.to(dims_residual)[labels] + dims_residual
        bins = alpha_logits.argmax(-1, keepdim=True)
        residuals = alpha_residuals.gather(-1, bins)[..., 0]
        alphas = self.bin_to_alpha(bins[..., 0], residuals)
        rotation_y = limit_period(alphas + self.image_ray_angle(centers_img[..., 0], cam2img))
        bottom = torch.stack(
            [gravity[..., 0], gravity[..., 1] + dims[..., 0] / 2, gravity[..., 2]], -1
        )
        centers_2d = (centers_int + offsets_2d) * self.stride
        half_sizes = sizes_2d * self.stride / 2
        return dict(
            boxes_3d=torch.cat([bottom, dims, rotation_y[..., None]], -1),
            bboxes_2d=torch.cat([centers_2d - half_sizes, centers_2d + half_sizes], -1),
            alphas=alphas,
            depths=depths,
        )

    def decode_batch(
        self, outputs: dict[str, Tensor], cam2imgs: Tensor, topk: int = 50, kernel: int = 3
    ) -> dict[str, Tensor]:
        """The ``topk`` highest peaks of each image, decoded; tensor operations only.

        Args:
            outputs: maps (B, C, H, W): ``heatmap`` (num_classes, logits), ``size_2d`` (2),
                ``offset_2d`` (2), ``offset_3d`` (2), ``depth`` (2: raw depth, log-variance),
                ``dims`` (3), ``alpha`` (2 * num_alpha_bins: logits then residuals).
            cam2imgs: (B, 4, 4) P2 of each input image.
            topk: detections per image (peaks of a ``kernel`` x ``kernel`` max-pool).
        Returns: :meth:`decode_objects`' fields (B, K, ...) plus ``labels`` (B, K) long,
            ``heatmap_scores`` (B, K) the peak values, ``depth_confidences`` (B, K)
            exp(-log-variance) and ``scores`` (B, K) their product (MonoDLE's score: a
            threshold applies to ``heatmap_scores``, the product ranks the detections).
        """
        # contiguous: mmdet's helpers view() the maps (convs may return channels-last ones)
        heat = get_local_maximum(outputs["heatmap"].sigmoid().contiguous(), kernel=kernel)
        peak_scores, indices, labels, ys, xs = get_topk_from_heatmap(heat, k=topk)
        gathered = {
            key: transpose_and_gather_feat(value.contiguous(), indices)
            for key, value in outputs.items()
            if key != "heatmap"
        }
        nb = self.num_alpha_bins
        labels = labels.long()
        depth, alpha = gathered["depth"], gathered["alpha"]
        decoded = self.decode_objects(
            labels,
            torch.stack([xs, ys.to(xs.dtype)], -1),
            gathered["offset_3d"],
            gathered["offset_2d"],
            gathered["size_2d"],
            depth[..., 0],
            gathered["dims"],
            alpha[..., :nb],
            alpha[..., nb:],
            cam2imgs,
        )
        confidences = self.depth_confidence(depth[..., 1])
        decoded.update(
            labels=labels,
            heatmap_scores=peak_scores,
            depth_confidences=confidences,
            scores=peak_scores * confidences,
        )
        return decoded

    def decode(
        self, outputs: dict[str, Tensor], cam2imgs: Tensor, topk: int = 50, kernel: int = 3
    ) -> list[dict[str, Tensor]]:
        """:meth:`decode_batch` split per image: a list of B dicts of (K, ...) tensors."""
        decoded = self.decode_batch(outputs, cam2imgs, topk=topk, kernel=kernel)
        return [{key: value[i] for key, value in decoded.items()} for i in range(len(cam2imgs))]
