"""KITTI 3D object detection, left colour camera, as an mmengine dataset (loading only)."""

from __future__ import annotations

import os.path as osp

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

from .kitti_files import read_calib_file, read_image_set, read_label_file


@DATASETS.register_module()
class KittiMono3DDataset(BaseDataset):
    """KITTI frames listed in an ImageSets file (official layout, see docs/design/driving_data.md).

    Args (besides mmengine's BaseDataset): ``data_root`` (e.g. ``data/kitti``),
    ``ann_file`` the ImageSets file (``ImageSets/val.txt``), ``data_prefix`` with ``img``
    and ``calib`` folders and, for labelled splits, ``label`` (omit it for ``testing/``).
    ``calib`` may also name one calibration file used for every frame, e.g. a KITTI-raw
    drive's ``calib_cam_to_cam.txt`` (its ``P_rect_02``; see kitti_files.read_calib_file).

    Each sample: ``img_path``, ``img_id`` (frame id string), ``sample_idx``, ``label_path``
    (None without labels), ``cam2img`` (4x4 P2, nested lists), ``instances`` (objects of the
    classes in ``METAINFO``: ``bbox`` x1 y1 x2 y2, ``bbox_label``, ``bbox_3d`` x y z h w l ry
    (bottom centre, camera frame), ``alpha``, ``truncated``, ``occluded``,
    ``ignore_flag`` 0) and ``ignored_instances`` (every other object, DontCare, Van,
    Person_sitting, ..., with the same fields and ``name`` instead of ``bbox_label``;
    kept for evaluation, never trained on).
    """

    METAINFO = dict(
        classes=("Car", "Pedestrian", "Cyclist"),
        palette=[(0, 160, 255), (255, 80, 80), (80, 220, 80)],
    )

    def __init__(
        self,
        *args,
        ann_file: str = "ImageSets/train.txt",
        data_prefix: dict | None = None,
        **kwargs,
    ) -> None:
        if data_prefix is None:
            data_prefix = dict(
                img="training/image_2", calib="training/calib", label="training/label_2"
            )
        for key in ("img", "calib"):
            if key not in data_prefix:
                raise ValueError(f"data_prefix needs an {key!r} folder, got {data_prefix}")
        super().__init__(*args, ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = list(self.metainfo["classes"])
        label_dir = self.data_prefix.get("label")
        data_list = []
        shared_calib = None
        if osp.isfile(self.data_prefix["calib"]):
            shared_calib = read_calib_file(self.data_prefix["calib"])
        for idx, frame_id in enumerate(read_image_set(self.ann_file)):
            img_path = osp.join(self.data_prefix["img"], f"{frame_id}.png")
            if not osp.isfile(img_path):
                raise FileNotFoundError(
                    f"image of frame {frame_id} (listed in {self.ann_file}) not found: {img_path}"
                )
            calib = shared_calib or read_calib_file(
                osp.join(self.data_prefix["calib"], f"{frame_id}.txt")
            )
            info = dict(
                img_path=img_path,
                img_id=frame_id,
                sample_idx=idx,
                cam2img=calib.cam2img.tolist(),
                label_path=None,
                instances=[],
                ignored_instances=[],
            )
            if label_dir:
                info["label_path"] = osp.join(label_dir, f"{frame_id}.txt")
                objects = read_label_file(info["label_path"])
                for i in range(len(objects)):
                    obj = dict(
                        bbox=objects.bbox[i].tolist(),
                        bbox_3d=objects.boxes3d[i].tolist(),
                        alpha=float(objects.alpha[i]),
                        truncated=float(objects.truncated[i]),
                        occluded=int(objects.occluded[i]),
                    )
                    name = str(objects.names[i])
                    if name in classes:
                        info["instances"].append(
                            dict(obj, bbox_label=classes.index(name), ignore_flag=0)
                        )
                    else:
                        info["ignored_instances"].append(dict(obj, name=name))
            data_list.append(info)
        return data_list

    def get_cat_ids(self, idx: int) -> list[int]:
        """Class indices of the objects of sample ``idx`` (for class-aware samplers)."""
        return [int(i["bbox_label"]) for i in self.get_data_info(idx)["instances"]]
