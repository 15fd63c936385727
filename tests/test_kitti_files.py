"""KITTI label, result, calibration and ImageSets files: round trips and malformed input."""

from pathlib import Path

import numpy as np
import pytest

from plgvit_mm.datasets.kitti_files import (
    KittiObjects,
    format_label_lines,
    parse_label_text,
    read_calib_file,
    read_image_set,
    read_label_file,
    write_calib_file,
    write_label_file,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "kitti_mini"
FRAMES = ("000000", "000007", "000008")


@pytest.mark.parametrize("frame", FRAMES)
def test_label_round_trip_is_exact(frame, tmp_path):
    path = FIXTURE / "training" / "label_2" / f"{frame}.txt"
    objects = read_label_file(path)
    write_label_file(tmp_path / "label.txt", objects)
    assert (tmp_path / "label.txt").read_text() == path.read_text()
    again = read_label_file(tmp_path / "label.txt")
    for field in ("truncated", "occluded", "alpha", "bbox", "dimensions", "location", "rotation_y"):
        np.testing.assert_array_equal(getattr(again, field), getattr(objects, field))
    assert list(again.names) == list(objects.names) and again.score is None
    assert [p.name for p in tmp_path.iterdir()] == ["label.txt"]  # no temporary file left


def test_fixture_contents():
    objects = read_label_file(FIXTURE / "training" / "label_2" / "000008.txt")
    assert list(objects.names) == ["Car"] * 6 + ["DontCare"] * 4
    np.testing.assert_allclose(objects.truncated[:6], [0.88, 0, 0.34, 0, 0, 0])
    np.testing.assert_array_equal(objects.occluded[:6], [3, 1, 3, 1, 0, 0])
    np.testing.assert_allclose(objects.boxes3d[0], [-2.70, 1.74, 3.68, 1.60, 1.57, 3.23, -1.29])
    np.testing.assert_allclose(objects.bbox[1], [334.85, 178.94, 624.50, 372.04])


def test_result_round_trip_with_scores(tmp_path):
    objects = read_label_file(FIXTURE / "training" / "label_2" / "000007.txt").select(slice(0, 4))
    objects.score = np.array([0.91234, 0.5, 0.25, 0.1])
    objects.location = objects.location + 0.00012
    write_label_file(tmp_path / "r.txt", objects, precision=4)
    lines = (tmp_path / "r.txt").read_text().splitlines()
    assert all(len(line.split()) == 16 for line in lines)
    assert lines[0].split()[-1] == "0.9123" and lines[0].split()[11] == "-0.6899"
    again = read_label_file(tmp_path / "r.txt")
    np.testing.assert_allclose(again.score, [0.9123, 0.5, 0.25, 0.1])
    np.testing.assert_allclose(again.location, objects.location, atol=5e-5)
    assert format_label_lines(again, 4) == (tmp_path / "r.txt").read_text()


def test_empty_files_and_empty_objects(tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    assert len(read_label_file(tmp_path / "empty.txt")) == 0
    write_label_file(tmp_path / "none.txt", KittiObjects.empty(with_score=True))
    assert (tmp_path / "none.txt").read_text() == ""
    assert KittiObjects.empty().boxes3d.shape == (0, 7)


@pytest.mark.parametrize(
    "line,message",
    [
        (
            "Car 0.00 0 -1.56 564.62 174.59 616.43 224.74 1.61 1.66 3.20 -0.69 1.69 25.01",
            "expected 15 fields",
        ),
        (
            "Car 0.00 0 -1.56 564.62 174.59 616.43 abc 1.61 1.66 3.20 -0.69 1.69 25.01 -1.59",
            "as numbers",
        ),
        (
            "Car 0.00 0.5 -1.56 564.62 174.59 616.43 224.74 1.61 1.66 3.20 -0.69 1.69 25.01 -1.59",
            "integer occlusion",
        ),
        (
            "Car 0.00 0 -1.56 564.62 174.59 616.43 224.74 1.61 1.66 3.20 -0.69 1.69 25.01 -1.59 0.5",
            "expected 15 fields like line 1",
        ),
    ],
)
def test_malformed_label_line_names_file_and_line(tmp_path, line, message):
    good = (FIXTURE / "training" / "label_2" / "000000.txt").read_text()
    path = tmp_path / "000042.txt"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(ValueError, match=rf"000042\.txt:3: .*{message}"):
        read_label_file(path)


@pytest.mark.parametrize("frame", FRAMES)
def test_calib_round_trip(frame, tmp_path):
    path = FIXTURE / "training" / "calib" / f"{frame}.txt"
    calib = read_calib_file(path)
    write_calib_file(tmp_path / "calib.txt", calib)
    assert (tmp_path / "calib.txt").read_text().split() == path.read_text().split()
    again = read_calib_file(tmp_path / "calib.txt")
    for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
        np.testing.assert_array_equal(getattr(again, key), getattr(calib, key))
    assert calib.cam2img.shape == (4, 4)
    np.testing.assert_array_equal(calib.cam2img[:3], calib.P2)
    np.testing.assert_array_equal(calib.cam2img[3], [0, 0, 0, 1])


def test_calib_values():
    calib = read_calib_file(FIXTURE / "training" / "calib" / "000007.txt")
    np.testing.assert_allclose(calib.P2[0], [721.5377, 0, 609.5593, 44.85728])
    assert calib.R0_rect.shape == (3, 3) and calib.Tr_velo_to_cam.shape == (3, 4)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda lines: [lines[0], lines[1], lines[3]], "missing P2"),
        (lambda lines: lines[:2] + ["P2: 1 2 3"] + lines[3:], r":3: expected 12 values for P2"),
        (
            lambda lines: lines[:4] + ["R0_rect: 1 0 0 0 1 0 0 0 x"] + lines[5:],
            r":5: expected R0_rect",
        ),
        (lambda lines: lines + ["P2: " + lines[2].split(":")[1]], r":8: P2 appears twice"),
    ],
)
def test_malformed_calib_names_file_and_line(tmp_path, edit, message):
    lines = (FIXTURE / "training" / "calib" / "000007.txt").read_text().splitlines()
    path = tmp_path / "calib_000007.txt"
    path.write_text("\n".join(edit([line for line in lines if line.strip()])) + "\n")
    with pytest.raises(ValueError, match=rf"calib_000007\.txt.*{message}"):
        read_calib_file(path)


# the start of KITTI-raw's 2011_09_26/calib_cam_to_cam.txt (drives of frames like 000007)
RAW_CAM_TO_CAM = """calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
K_00: 9.842439e+02 0.000000e+00 6.900000e+02 0.000000e+00 9.808141e+02 2.331966e+02 0 0 1
R_rect_00: 9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 \
7.402527e-03 4.351614e-03 9.999631e-01
P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 \
1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_rect_02: 1.242000e+03 3.750000e+02
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 \
1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
""".replace("\\\n", "")


def test_kitti_raw_calibration_and_unknown_keys(tmp_path):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(RAW_CAM_TO_CAM)
    calib = read_calib_file(path)
    np.testing.assert_allclose(calib.P2[0], [721.5377, 0, 609.5593, 44.85728])
    np.testing.assert_allclose(calib.P2[2], [0, 0, 1, 2.745884e-03])
    assert calib.P0[0, 3] == 0 and calib.R0_rect.shape == (3, 3) and calib.P3 is None
    # the object benchmark's file with keys of other tools added still reads
    lines = (FIXTURE / "training" / "calib" / "000007.txt").read_text()
    (tmp_path / "extra.txt").write_text(lines + "K: 1 2 3\nnote: made by hand\n")
    np.testing.assert_array_equal(
        read_calib_file(tmp_path / "extra.txt").P2,
        read_calib_file(FIXTURE / "training/calib/000007.txt").P2,
    )
    (tmp_path / "none.txt").write_text("calib_time: 09-Jan-2012 13:57:47\n")
    with pytest.raises(ValueError, match="none.txt: missing P2.*P_rect_02"):
        read_calib_file(tmp_path / "none.txt")


def test_image_sets(tmp_path):
    assert read_image_set(FIXTURE / "ImageSets" / "val.txt") == list(FRAMES)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_image_set(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("000001\n000002 000003\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected one frame id"):
        read_image_set(tmp_path / "bad.txt")


def test_parse_label_text_names_the_source():
    with pytest.raises(ValueError, match="prediction of 7:1"):
        parse_label_text("Car 1 2\n", "prediction of 7")
