"""plgvit_mm.evaluation.kitti_localisation: errors of the nearest guesses on real KITTI labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from plgvit_mm.datasets.kitti_files import read_label_file
from plgvit_mm.evaluation.kitti_localisation import LOCALISATION_FIELDS, localisation_errors

LABELS = Path(__file__).parent / "data" / "kitti_mini" / "training" / "label_2"
FRAMES = ("000000", "000007", "000008")


@pytest.fixture
def labels():
    return [read_label_file(LABELS / f"{frame}.txt") for frame in FRAMES]


def as_results(objects, **changes):
    """The labels as detections (score 1), with fields replaced by ``changes``."""
    result = dataclasses.replace(objects, **changes)
    result.score = np.ones(len(result))
    return result


def test_labels_as_detections_have_no_error(labels):
    errors = localisation_errors(labels, [as_results(objects) for objects in labels])
    # the fixture's five moderate Cars (the official protocol counts the same five)
    assert errors["labelled"] == 5 and errors["found"] == 1.0
    for key in ("depth_error_m", "depth_error_relative", "lateral_error_m", "yaw_error_deg"):
        assert errors[key] == 0.0
    assert errors["bev_iou"] == pytest.approx(1.0) and errors["bev_iou_at_least_0.5"] == 1.0


def test_depth_and_yaw_errors_are_measured(labels):
    guesses = []
    for objects in labels:
        location = objects.location.copy()
        location[:, 2] *= 1.1  # 10 % too far
        location[:, 0] += 0.5
        guesses.append(as_results(objects, location=location, rotation_y=objects.rotation_y + 2))
    errors = localisation_errors(labels, guesses)
    cars = [o.select(o.names == "Car") for o in labels]
    depths = np.concatenate([o.location[:, 2] for o in cars])
    assert errors["depth_error_relative"] == pytest.approx(0.1)
    assert 0.1 * depths.min() <= errors["depth_error_m"] <= 0.1 * depths.max()
    assert errors["lateral_error_m"] == pytest.approx(0.5)
    assert errors["yaw_error_deg"] == pytest.approx(180 - np.degrees(2.0))  # modulo 180
    assert errors["bev_iou"] < 0.5


def test_a_half_turn_has_no_yaw_error(labels):
    guesses = [as_results(o, rotation_y=o.rotation_y + np.pi) for o in labels]
    errors = localisation_errors(labels, guesses)
    assert errors["yaw_error_deg"] == pytest.approx(0.0, abs=1e-6)
    assert errors["bev_iou"] == pytest.approx(1.0)


def test_guesses_of_other_classes_or_far_boxes_find_nothing(labels):
    renamed = [as_results(o, names=np.full(len(o), "Pedestrian")) for o in labels]
    shifted = [as_results(o, bbox=o.bbox + np.array([0, 400.0, 0, 400.0])) for o in labels]
    for guesses in (renamed, shifted):
        errors = localisation_errors(labels, guesses)
        assert errors["labelled"] == 5 and errors["found"] == 0.0
        assert all(errors[key] is None for key in LOCALISATION_FIELDS[2:])


def test_bad_input_is_named(labels):
    with pytest.raises(ValueError, match="3 label frames but 2 result frames"):
        localisation_errors(labels, labels[:2])
    with pytest.raises(ValueError, match="difficulty='medium'"):
        localisation_errors(labels, labels, difficulty="medium")
