"""Property tests of signseek.features on real ASL landmark sequences (sample_dataset/)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signseek.features import (
    FeatureConfig,
    FeatureStats,
    active_range,
    fit_length,
    flip_chirality,
    frame_features,
    hand_presence,
    mirror_features,
    prepare_sequence,
)
from signseek.landmarks import LEFT_HAND, RIGHT_HAND, flat_to_canonical, mirror_points
from signseek.paths import SAMPLE_DATASET

CONFIGS = {
    "body": FeatureConfig(),
    "body_crop": FeatureConfig(length_mode="crop", seq_len=16),
    "hands_only": FeatureConfig(hands_only=True),
}


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """A few real clips of different signs as canonical arrays (NaN where not detected)."""
    with np.load(SAMPLE_DATASET / "signs_sample.npz") as data:
        labels = data["label"]
        picks = [int(np.flatnonzero(labels == label)[0]) for label in np.unique(labels)[:12]]
        return [flat_to_canonical(data["landmarks"][i])[0] for i in picks]


def _clip(clips, index):
    return clips[index % len(clips)]


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=25, deadline=None)
@given(
    index=st.integers(0, 11),
    shift=st.tuples(*[st.floats(-0.5, 0.5)] * 3),
    scale=st.floats(0.3, 3.0),
)
def test_moving_or_scaling_the_whole_body_leaves_features_unchanged(clips, name, index, shift, scale):
    cfg = CONFIGS[name]
    points = _clip(clips, index)
    moved = points * np.float32(scale) + np.asarray(shift, dtype=np.float32)
    original = prepare_sequence(points, cfg)
    np.testing.assert_allclose(prepare_sequence(moved, cfg), original, atol=2e-3 * max(1, np.abs(original).max()))


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=15, deadline=None)
@given(index=st.integers(0, 11))
def test_mirroring_a_clip_mirrors_the_features_with_hands_swapped(clips, name, index):
    cfg = CONFIGS[name]
    points = _clip(clips, index)
    from_mirrored_clip = prepare_sequence(mirror_points(points), cfg)
    np.testing.assert_allclose(from_mirrored_clip, mirror_features(prepare_sequence(points, cfg), cfg), atol=1e-4)


def test_mirror_features_swaps_hand_blocks():
    cfg = FeatureConfig()
    x = np.random.default_rng(0).normal(size=(5, cfg.feature_dim)).astype(np.float32)
    twice = mirror_features(mirror_features(x, cfg), cfg)
    np.testing.assert_allclose(twice, x)
    presence = cfg.blocks["presence"]
    np.testing.assert_array_equal(mirror_features(x, cfg)[:, presence], x[:, presence][:, ::-1])


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, 11), data=st.data())
def test_nan_in_no_nan_out(clips, name, index, data):
    cfg = CONFIGS[name]
    points = _clip(clips, index).copy()
    n_frames = len(points)
    # Knock out random frames and parts, including whole parts for the whole clip.
    for _ in range(data.draw(st.integers(1, 12))):
        frame = data.draw(st.integers(0, n_frames - 1))
        stop = data.draw(st.integers(frame + 1, n_frames))
        points[frame:stop, data.draw(st.sampled_from([slice(0, 33), LEFT_HAND, RIGHT_HAND, slice(0, 543)]))] = np.nan
    features = prepare_sequence(points, cfg)
    assert np.isfinite(features).all()
    assert features.shape[1] == cfg.feature_dim


def test_a_clip_with_nothing_detected_still_gives_finite_features():
    cfg = FeatureConfig()
    points = np.full((12, 543, 3), np.nan, dtype=np.float32)
    info = prepare_sequence(points, cfg, return_info=True)
    assert np.isfinite(info.features).all()
    assert info.kept == (0, 12)  # no hand anywhere: nothing to trim to
    assert info.motion == 0.0


def test_idle_frames_at_both_ends_are_trimmed(clips):
    cfg = FeatureConfig(idle_margin=1)
    signing = clips[1]
    idle = np.repeat(signing[:1], 10, axis=0).copy()
    idle[:, LEFT_HAND] = np.nan
    idle[:, RIGHT_HAND] = np.nan
    recording = np.concatenate([idle, signing, idle])
    start, stop = active_range(recording, cfg)
    hands = np.isfinite(signing[:, LEFT_HAND]).all(axis=(1, 2)) | np.isfinite(signing[:, RIGHT_HAND]).all(axis=(1, 2))
    first, last = np.flatnonzero(hands)[[0, -1]]
    assert (start, stop) == (10 + first - 1, 10 + last + 2)


def test_short_gaps_in_hand_tracking_are_bridged(clips):
    cfg = FeatureConfig(max_gap=3)
    points = next(c for c in clips if np.isfinite(c[:, RIGHT_HAND]).all())
    gappy = points.copy()
    gappy[5:7, RIGHT_HAND] = np.nan
    presence = cfg.blocks["presence"]
    assert frame_features(gappy, cfg)[5:7, presence][:, 1].tolist() == [1.0, 1.0]
    long_gap = points.copy()
    long_gap[5:10, RIGHT_HAND] = np.nan
    assert frame_features(long_gap, cfg)[5:10, presence][:, 1].tolist() == [0.0] * 5


@pytest.mark.parametrize("n_frames", [1, 5, 8, 20, 100])
def test_length_is_fitted(n_frames):
    x = np.arange(n_frames, dtype=np.float32)[:, None].repeat(FeatureConfig().feature_dim, axis=1)
    resampled = fit_length(x, FeatureConfig(seq_len=32))
    assert resampled.shape[0] == 32
    assert resampled[0, 0] == 0 and resampled[-1, 0] == n_frames - 1  # ends kept
    cropped = fit_length(x, FeatureConfig(length_mode="crop", seq_len=16, min_len=8))
    assert len(cropped) == min(16, max(8, n_frames))
    if n_frames > 16:  # centre crop
        assert cropped[0, 0] == (n_frames - 16) // 2


def test_config_round_trips_through_json_dict():
    import json

    cfg = FeatureConfig(face_points=(1, 2), seq_len=40)
    again = FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.feature_dim == cfg.feature_dim


def test_pose_points_must_be_symmetric():
    with pytest.raises(ValueError, match="both sides"):
        FeatureConfig(pose_points=(0, 11))


def test_global_stats_normalise_and_round_trip(tmp_path, clips):
    cfg = FeatureConfig()
    sequences = [prepare_sequence(p, cfg) for p in clips]
    stats = FeatureStats.fit(sequences)
    normalised = np.concatenate([stats.apply(s) for s in sequences])
    assert np.abs(normalised.mean(axis=0)).max() < 1e-3
    stats.save(tmp_path / "global_stats.npz")
    loaded = FeatureStats.load(tmp_path / "global_stats.npz")
    np.testing.assert_array_equal(loaded.mean, stats.mean)


def test_hands_only_features_keep_the_hands_movement(clips):
    """A hand sweeping across the frame moves in hands-only features too (no body to centre on)."""
    cfg = FeatureConfig(hands_only=True)
    points = next(c for c in clips if np.isfinite(c[:, RIGHT_HAND]).all()).copy()
    points[:, :501] = np.nan
    points[:, LEFT_HAND] = np.nan
    still = np.repeat(points[:1], len(points), axis=0)
    sweeping = still.copy()
    sweeping[:, RIGHT_HAND, 0] += np.linspace(0, 0.3, len(points), dtype=np.float32)[:, None]
    assert prepare_sequence(still, cfg, return_info=True).motion == pytest.approx(0, abs=1e-6)
    assert prepare_sequence(sweeping, cfg, return_info=True).motion > 0.01


@pytest.mark.parametrize("hands_only", [False, True])
@settings(max_examples=12, deadline=None)
@given(index=st.integers(0, 11))
def test_canonical_hand_gives_a_left_handed_take_the_right_handed_features(clips, hands_only, index):
    """With canonical_hand a clip and its mirror image prepare to the same features, unless both
    hands are seen equally often (then the mirror is a different, two-handed, take)."""
    cfg = FeatureConfig(hands_only=hands_only, canonical_hand=True)
    points = _clip(clips, index)
    original = prepare_sequence(points, cfg, return_info=True)
    mirrored = prepare_sequence(mirror_points(points), cfg, return_info=True)
    left, right = hand_presence(points[original.kept[0]:original.kept[1]])
    if left == right:
        assert not original.mirrored and not mirrored.mirrored
    else:
        assert original.mirrored != mirrored.mirrored
        np.testing.assert_allclose(mirrored.features, original.features, atol=1e-4)


@settings(max_examples=12, deadline=None)
@given(index=st.integers(0, 11))
def test_flip_chirality_keeps_the_slots_and_undoes_itself(clips, index):
    cfg = FeatureConfig(hands_only=True, canonical_hand=True)
    features = prepare_sequence(_clip(clips, index), cfg)
    flipped = flip_chirality(features, cfg)
    presence = cfg.blocks["presence"]
    np.testing.assert_array_equal(flipped[:, presence], features[:, presence])
    np.testing.assert_allclose(flip_chirality(flipped, cfg), features, atol=1e-6)
