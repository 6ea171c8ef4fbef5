"""Flat layouts <-> canonical array, on the real shared-layout sample and written fixtures."""

import numpy as np
import pytest

from signseek.landmarks import (
    LAYOUTS,
    LandmarkSequence,
    LayoutError,
    canonical_to_flat,
    detect_layout,
    flat_to_canonical,
)
from signseek.landmarks.schema import POSE_MIRROR, mirror_points
from signseek.paths import SAMPLE_DATASET


@pytest.fixture(scope="module")
def sample_frames() -> np.ndarray:
    with np.load(SAMPLE_DATASET / "signs_sample.npz") as data:
        return data["landmarks"][:6].reshape(-1, 258)


def test_sizes_are_the_documented_ones():
    assert {name: layout.size for name, layout in LAYOUTS.items()} == {
        "canonical": 1629, "holistic": 1662, "pose_hands": 258, "upper_hands": 170, "hands": 126,
    }
    assert detect_layout(258) == "pose_hands"
    with pytest.raises(LayoutError, match="expected one of"):
        detect_layout(100)


def test_real_258_frames_round_trip_exactly(sample_frames):
    points, visibility = flat_to_canonical(sample_frames)
    assert points.shape == (len(sample_frames), 543, 3)
    np.testing.assert_array_equal(canonical_to_flat(points, "pose_hands", visibility), sample_frames)
    # Zeros in the flat file mean "not detected": NaN in the canonical array.
    left_missing = ~np.any(sample_frames[:, 132:195] != 0, axis=1)
    assert np.array_equal(~LandmarkSequence(points).detected("left_hand"), left_missing)


@pytest.mark.parametrize("layout", ["canonical", "holistic", "upper_hands", "hands"])
def test_every_layout_round_trips(sample_frames, layout):
    points, visibility = flat_to_canonical(sample_frames)
    flat = canonical_to_flat(points, layout, visibility)
    assert flat.shape[1] == LAYOUTS[layout].size
    again, _ = flat_to_canonical(flat)  # told apart by length
    hands = slice(501, 543)
    np.testing.assert_array_equal(np.isnan(again[:, hands]), np.isnan(points[:, hands]))
    np.testing.assert_allclose(np.nan_to_num(again[:, hands]), np.nan_to_num(points[:, hands]))


def test_explicit_layout_must_match_length():
    with pytest.raises(LayoutError, match="has 126 values"):
        flat_to_canonical(np.zeros((3, 258)), layout="hands")


def test_mirroring_twice_is_identity(sample_frames):
    points, _ = flat_to_canonical(sample_frames)
    np.testing.assert_allclose(mirror_points(mirror_points(points)), points, atol=1e-6)
    assert sorted(POSE_MIRROR) == list(range(33))
    assert all(POSE_MIRROR[POSE_MIRROR[i]] == i for i in range(33))


def test_sequence_validates_shape():
    with pytest.raises(ValueError, match="shape"):
        LandmarkSequence(np.zeros((4, 42, 3)))
