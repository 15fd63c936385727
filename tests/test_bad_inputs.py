"""Bad input gives a clear error naming the file/key/value and what was expected, or a counted,
documented skip. Every case runs the real loader: mmdet's CocoDataset machinery (through
plgvit_mm's ValidatedCocoDataset / CheckedLoadImageFromFile), the backbones, the KITTI readers
and tools/train.py's --cfg-options check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mmdet")

from mmdet.registry import DATASETS  # noqa: E402
from mmengine.registry import MODELS  # noqa: E402

import plgvit_mm  # noqa: E402,F401
from plgvit_mm.datasets.checked_loading import CheckedLoadImageFromFile  # noqa: E402
from plgvit_mm.datasets.coco_checks import ValidatedCocoDataset  # noqa: E402,F401
from plgvit_mm.datasets.kitti_files import read_calib_file, read_label_file  # noqa: E402
from plgvit_mm.datasets.synthetic_shapes import SHAPE_CLASSES, write_synthetic_coco  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ANN = "annotations/instances_train2017.json"


@pytest.fixture
def coco_root(tmp_path) -> Path:
    """4 train images (64 x 64, 1-4 shapes each) in COCO format."""
    write_synthetic_coco(str(tmp_path), num_train=4, num_val=1, height=64, width=64, seed=5)
    return tmp_path


def load_json(root: Path) -> dict:
    return json.loads((root / ANN).read_text())


def save_json(root: Path, content: dict) -> None:
    (root / ANN).write_text(json.dumps(content))


def build_coco(
    root: Path, *, test_mode: bool = False, ignore_empty: bool = False, color_type: str = "color"
):
    return DATASETS.build(
        dict(
            type="ValidatedCocoDataset",
            data_root=str(root),
            ann_file=ANN,
            data_prefix=dict(img="train2017/"),
            metainfo=dict(classes=SHAPE_CLASSES),
            test_mode=test_mode,
            filter_cfg=dict(filter_empty_gt=True, min_size=0),
            pipeline=[
                dict(
                    type="CheckedLoadImageFromFile",
                    ignore_empty=ignore_empty,
                    color_type=color_type,
                ),
                dict(type="LoadAnnotations", with_bbox=True),
            ],
        )
    )


def first_image(root: Path) -> Path:
    return root / "train2017" / load_json(root)["images"][0]["file_name"]


def test_missing_image_file_names_the_path(coco_root):
    missing = first_image(coco_root)
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=f"image file '{missing}' does not exist"):
        build_coco(coco_root, test_mode=True)[0]


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_corrupt_image_file_names_the_path_and_size(coco_root, content):
    path = first_image(coco_root)
    data = path.read_bytes()[:60] if content == "truncated" else content
    path.write_bytes(data)
    with pytest.raises(
        ValueError,
        match=rf"image file '{path}' \({len(data)} bytes\) could not "
        r"be decoded .* expected a complete PNG/JPEG",
    ):
        build_coco(coco_root, test_mode=True)[0]


def test_unreadable_image_is_skipped_with_a_count_when_ignore_empty(coco_root):
    first_image(coco_root).write_bytes(b"garbage")
    dataset = build_coco(coco_root, ignore_empty=True)
    before = CheckedLoadImageFromFile.num_skipped
    sample = dataset[0]  # mmengine draws another sample in place of the unreadable one
    assert sample["img"].shape == (64, 64, 3)
    assert CheckedLoadImageFromFile.num_skipped > before  # >1 when the redraw hits it again


def test_invalid_coco_json_names_file_line_and_column(coco_root):
    (coco_root / ANN).write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(ValueError, match=rf"{ANN}: not valid JSON \(.* at line 2, column 12\)"):
        build_coco(coco_root)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.pop("annotations"),
            r"top-level key 'annotations' is missing; expected a list",
        ),
        (
            lambda c: c["annotations"][1].update(bbox=[1, 2, 3]),
            r"annotations\[1\] \(id 2\) has bbox=\[1, 2, 3\]; expected \[x, y, width, height\]",
        ),
        (
            lambda c: c["annotations"][0].update(image_id=999),
            r"annotations\[0\] \(id 1\) has image_id=999; expected the id of an entry in 'images'",
        ),
        (
            lambda c: c["annotations"][0].update(category_id=7),
            r"has category_id=7; expected one of the category ids \[1, 2, 3\]",
        ),
        (
            lambda c: c["images"][0].update(width="64"),
            r"images\[0\] has width='64'; expected a positive integer",
        ),
    ],
)
def test_malformed_coco_content_names_entry_key_and_value(coco_root, edit, message):
    content = load_json(coco_root)
    edit(content)
    save_json(coco_root, content)
    with pytest.raises(ValueError, match=message):
        build_coco(coco_root)


def test_zero_area_and_out_of_image_boxes_are_skipped_and_counted(coco_root):
    content = load_json(coco_root)
    anns = content["annotations"]
    kept = len(anns)
    image_id = content["images"][0]["id"]
    base = dict(image_id=image_id, category_id=1, iscrowd=0, segmentation=[[0, 0, 1, 0, 1, 1]])
    anns += [
        dict(base, id=100, bbox=[10, 10, 0.5, 5], area=0),  # zero area, w < 1
        dict(base, id=101, bbox=[70, 70, 5, 5], area=25),  # entirely outside 64 x 64
        dict(base, id=102, bbox=[60, 60, 10, 10], area=100),
    ]  # reaches beyond: kept
    save_json(coco_root, content)
    dataset = build_coco(coco_root)
    report = dataset.annotation_report
    assert (report.zero_area, report.outside_image, report.partly_outside_image) == (1, 1, 1)
    instances = sum(len(dataset.get_data_info(i)["instances"]) for i in range(len(dataset)))
    assert instances == kept + 1
    boxes = [
        inst["bbox"] for i in range(len(dataset)) for inst in dataset.get_data_info(i)["instances"]
    ]
    assert [60, 60, 70, 70] in boxes  # mmdet keeps the box unclipped (x1, y1, x2, y2)


def test_images_without_annotations_are_counted_and_dropped_in_training(coco_root):
    content = load_json(coco_root)
    empty_id = content["images"][0]["id"]
    content["annotations"] = [a for a in content["annotations"] if a["image_id"] != empty_id]
    save_json(coco_root, content)
    train_set, test_set = build_coco(coco_root), build_coco(coco_root, test_mode=True)
    assert train_set.annotation_report.images_without_annotations == 1
    assert (len(train_set), len(test_set)) == (3, 4)
    assert empty_id not in [train_set.get_data_info(i)["img_id"] for i in range(3)]


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_grayscale_and_rgba_images_load_as_three_channel_bgr(coco_root, mode):
    path = first_image(coco_root)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    Image.open(path).convert(mode).save(path)
    image = build_coco(coco_root, test_mode=True)[0]["img"]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    expected = np.asarray(Image.open(path).convert("RGB"))[..., ::-1]  # BGR
    if mode == "RGBA":
        np.testing.assert_array_equal(image, rgb[..., ::-1])
    else:
        assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1


def test_images_smaller_than_one_attention_window():
    """NAT pads inputs smaller than its 7 x 7 neighbourhood (28 px at stride 4) and keeps
    the output contract; PLG-ViT / LW-PLG-ViT (window partitions) refuse < 32 px clearly."""
    nat = MODELS.build(dict(type="NAT", arch="mini")).eval()
    with torch.no_grad():
        outs = nat(torch.randn(1, 3, 16, 24))
    assert [tuple(o.shape[-2:]) for o in outs] == [(4, 6), (2, 3), (1, 2), (1, 1)]
    assert all(torch.isfinite(o).all() for o in outs)
    for cfg in (dict(type="LWPLGViT", arch="a"), dict(type="PLGViT", arch="tiny")):
        with pytest.raises(ValueError, match=r"needs H, W >= 32, got \(1, 3, 16, 24\)"):
            MODELS.build(cfg)(torch.randn(1, 3, 16, 24))


@pytest.mark.parametrize(
    ("backbone", "valid"),
    [
        ("NAT", r"\['base', 'mini', 'small', 'tiny'\]"),
        ("PLGViT", r"\['base', 'small', 'tiny'\]"),
        ("LWPLGViT", r"\['a', 'r'\]"),
    ],
)
def test_unknown_backbone_arch_lists_the_valid_ones(backbone, valid):
    with pytest.raises(ValueError, match=rf"arch 'huge'; valid: {valid}"):
        MODELS.build(dict(type=backbone, arch="huge"))


@pytest.mark.parametrize(
    ("timm_name", "backbone"),
    [("nat_mini", dict(type="NAT", arch="mini")), ("lw_plgvit_a", dict(type="LWPLGViT", arch="a"))],
)
def test_checkpoint_shape_mismatch_lists_every_key_with_both_shapes(tmp_path, timm_name, backbone):
    import timm

    state = timm.create_model(timm_name).state_dict()
    wrong = [k for k in state if k.endswith("qkv.weight")][:2]
    shapes = {k: tuple(state[k].shape) for k in wrong}
    for key in wrong:
        state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    path = tmp_path / f"{timm_name}.pth"
    torch.save({"state_dict": state}, path)
    model = MODELS.build(dict(backbone, init_cfg=dict(type="Pretrained", checkpoint=str(path))))
    with pytest.raises((ValueError, RuntimeError)) as error:
        model.init_weights()
    message = str(error.value)
    for key, (rows, cols) in shapes.items():
        assert key.split(".", 1)[1] in message  # the dense key differs at most in its prefix
        assert f"{rows + 1}, {cols}" in message and f"{rows}, {cols}" in message


def test_kitti_label_line_with_wrong_field_count(tmp_path):
    label = tmp_path / "000001.txt"
    label.write_text("Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71\n")
    with pytest.raises(ValueError, match=rf"{label}:1: .*15"):
        read_label_file(label)


def test_kitti_calib_without_p2(tmp_path):
    calib = tmp_path / "000001.txt"
    calib.write_text("P0: " + " ".join(["1.0"] * 12) + "\nP1: " + " ".join(["1.0"] * 12) + "\n")
    with pytest.raises(ValueError, match=rf"{calib}: missing P2"):
        read_calib_file(calib)


def test_cfg_options_typo_in_tools_train_names_key_and_suggestion(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    sys.modules.pop("train", None)
    import train

    config = str(REPO / "configs" / "maskrcnn_lwplgvit_a_coco.py")
    with pytest.raises(
        ValueError,
        match=r"key 'train_dataloader.batch_sise' does not exist .* "
        r"Did you mean: batch_size",
    ):
        train.main(
            [config, "--work-dir", str(tmp_path), "--cfg-options", "train_dataloader.batch_sise=4"]
        )
