"""tools/mono3d_demo.py and the bird's-eye view: inputs people give it and what it draws."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from plgvit_mm.datasets.kitti_files import (  # noqa: E402
    RESULT_PRECISION,
    read_label_file,
    write_label_file,
)
from plgvit_mm.visualization import bev  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "kitti_mini"
FRAME = FIXTURE / "training"
P_RECT_02 = "7.215377e+02 0 6.095593e+02 4.485728e+01 0 7.215377e+02 1.728540e+02 0 0 0 1 0"


def run_demo(capsys, *args):
    spec = importlib.util.spec_from_file_location("mono3d_demo", ROOT / "tools/mono3d_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    try:
        code = demo.main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def test_corrupt_image_could_not_be_decoded(tmp_path, capsys):
    image = tmp_path / "broken.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    label = str(FRAME / "label_2/000008.txt")
    calib = str(FRAME / "calib/000008.txt")
    out = str(tmp_path / "x.png")
    code, err = run_demo(capsys, str(image), "--calib", calib, "--label", label, "--out", out)
    assert code == 2 and "could not be decoded" in err and "broken.png" in err
    code, err = run_demo(
        capsys, str(tmp_path / "absent.png"), "--calib", calib, "--out", out, "--label", label
    )
    assert code == 2 and "image not found" in err


def test_demo_reads_kitti_raw_calibration(tmp_path, capsys):
    raw = tmp_path / "calib_cam_to_cam.txt"
    raw.write_text(f"calib_time: 09-Jan-2012 13:57:47\nS_02: 1392 512\nP_rect_02: {P_RECT_02}\n")
    out = tmp_path / "raw.png"
    code, err = run_demo(
        capsys,
        str(FRAME / "image_2/000007.png"),
        "--calib",
        str(raw),
        "--label",
        str(FRAME / "label_2/000007.txt"),
        "--out",
        str(out),
    )
    assert code == 0, err
    assert cv2.imread(str(out)).shape[0] == 375


def test_bev_fits_the_farthest_object_and_labels_its_axes():
    far = np.array([[4.0, 1.6, 77.0, 1.5, 1.6, 3.9, 0.3]])
    near = np.array([[-15.0, 1.6, 12.0, 1.5, 1.6, 3.9, 1.2]])
    x_range, z_range = bev.fit_bev_range([(far, (0, 0, 255)), (near, (0, 255, 0))])
    assert z_range == (0.0, 80.0) and x_range == (-20.0, 20.0)
    canvas = bev.draw_bev([(far, (0, 0, 255)), (near, (0, 255, 0))], pixels_per_metre=8.0)
    assert canvas.shape[0] == bev.MARGIN_TOP + 80 * 8 + bev.MARGIN_BOTTOM
    assert canvas.shape[1] == bev.MARGIN_LEFT + 40 * 8 + bev.MARGIN_RIGHT
    red = (canvas == (0, 0, 255)).all(-1)
    v, u = np.nonzero(red)
    # the far box is drawn where z = 77 m, x = 4 m lies
    assert abs(v.mean() - (bev.MARGIN_TOP + (80 - 77) * 8)) < 12
    assert abs(u.mean() - (bev.MARGIN_LEFT + (4 + 20) * 8)) < 12
    # tick labels and axis titles live in the margins
    drawn = (canvas != 255).any(-1)
    assert drawn[:, : bev.MARGIN_LEFT - 5].sum() > 500  # z ticks: 0, 10, ..., 80 and "z (m)"
    assert drawn[-bev.MARGIN_BOTTOM + 6 :].sum() > 300  # x ticks and "x (m)"
    assert not drawn[bev.MARGIN_TOP + 20 : -bev.MARGIN_BOTTOM - 20, : bev.MARGIN_LEFT - 30].any()
    # without boxes: the default 30 m x +-10 m
    assert bev.fit_bev_range([]) == ((-10.0, 10.0), (0.0, 30.0))


def test_grid_of_frames_with_result_files(tmp_path, capsys):
    results = tmp_path / "results"
    for frame in ("000007", "000008"):
        labels = read_label_file(FRAME / f"label_2/{frame}.txt")
        labels.score = np.linspace(0.9, 0.5, len(labels))
        labels.location[:, 2] += 1.0  # predictions 1 m too far
        write_label_file(results / f"{frame}.txt", labels, RESULT_PRECISION)
    out = tmp_path / "grid.png"
    code, err = run_demo(
        capsys,
        "--kitti",
        str(FIXTURE),
        "--ids",
        "000007",
        "000008",
        "--results",
        str(results),
        "--out",
        str(out),
    )
    assert code == 0, err
    picture = cv2.imread(str(out))
    assert picture.shape[0] == 2 * (375 + 6) and picture.shape[1] > 1242
    image = cv2.imread(str(FRAME / "image_2/000007.png"))
    changed = (picture[:375, :1242] != image).any(-1)
    assert changed.sum() > 500
    green = (picture[:375, :1242] == (60, 200, 60)).all(-1)  # ground truth colour
    car = (picture[:375, :1242] == (0, 140, 255)).all(-1)  # predicted Car colour
    assert green.sum() > 100 and car.sum() > 100


def test_colors_writes_a_palette_png_close_to_the_full_picture(tmp_path, capsys):
    full, palette = tmp_path / "full.png", tmp_path / "palette.png"
    for out, extra in ((full, []), (palette, ["--colors", "64"])):
        args = ["--kitti", str(FIXTURE), "--ids", "000007", "--out", str(out), *extra]
        code, err = run_demo(capsys, *args)
        assert code == 0, err
    from PIL import Image

    with Image.open(palette) as image:
        assert image.mode == "P" and len(image.getcolors(256)) <= 64
    reference = cv2.imread(str(full)).astype(np.int16)
    quantised = cv2.imread(str(palette)).astype(np.int16)
    assert quantised.shape == reference.shape
    assert np.abs(quantised - reference).mean() < 8  # same picture, fewer colours
    assert palette.stat().st_size < full.stat().st_size
    code, err = run_demo(capsys, "--kitti", str(FIXTURE), "--ids", "000007", "--out",
                         str(tmp_path / "bad.png"), "--colors", "1")  # fmt: skip
    assert code == 2 and "--colors 1: expected 2 to 256" in err
