"""Skeleton rendering: real landmark sequences -> a video file a browser plays."""

from __future__ import annotations

import numpy as np
import pytest

from demo.render import RenderError, draw_skeleton, encode_video, probe_codec, render_skeleton_video
from signseek.datasets import import_npz
from signseek.paths import SAMPLE_DATASET


@pytest.fixture(scope="module")
def sample_points() -> np.ndarray:
    """A real 'hello' sequence from the sample dataset (canonical [20, 543, 3])."""
    dataset = import_npz(SAMPLE_DATASET / "signs_sample.npz")
    hello = [i for i, label in enumerate(dataset.labels) if label == "hello"]
    assert hello, "sample_dataset/signs_sample.npz has no 'hello' sequence"
    return dataset.points(hello[0])


def test_skeleton_video_is_h264_mp4_with_every_frame(sample_points, tmp_path):
    import av

    path = render_skeleton_video(sample_points, fps=20, out_dir=tmp_path)
    assert path.suffix == ".mp4" and path.parent == tmp_path
    assert probe_codec(path) == "h264"  # what Chromium, Firefox and Safari play
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(sample_points)
    # The skeleton is drawn: bright pixels over the dark canvas in the middle frame.
    assert (frames[len(frames) // 2].max(axis=2) > 200).sum() > 200


def test_overlay_draws_on_the_frames_and_dims_frames_outside_the_kept_range(sample_points, tmp_path):
    frames = [np.full((240, 180, 3), 128, dtype=np.uint8) for _ in sample_points]
    image = draw_skeleton(frames[0], sample_points[5])
    assert image.shape == frames[0].shape
    assert not np.array_equal(image, frames[0])  # landmarks were drawn
    assert np.array_equal(frames[0], np.full_like(frames[0], 128))  # on a copy
    path = render_skeleton_video(sample_points, frames=frames, fps=20, out_dir=tmp_path, highlight=(5, 15))
    assert probe_codec(path) == "h264"


def test_missing_parts_are_skipped_not_drawn_at_the_origin():
    points = np.full((543, 3), np.nan, dtype=np.float32)
    image = draw_skeleton(None, points, canvas_size=(120, 160))
    assert image.shape == (120, 160, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) == 1  # only the canvas colour


def test_bad_input_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match=r"\[T, 543, 3\]"):
        render_skeleton_video(np.zeros((4, 10, 3)), out_dir=tmp_path)
    with pytest.raises(RenderError, match="no frames"):
        encode_video([], 30, tmp_path)


def test_features_draw_back_to_the_landmarks_they_came_from(sample_points):
    """A reference's stored features (all the bundle keeps of it) give back its pose and hands."""
    from demo.render import features_to_points
    from signseek.features import FeatureConfig, prepare_sequence
    from signseek.landmarks.schema import LEFT_SHOULDER, RIGHT_HAND, RIGHT_SHOULDER

    cfg = FeatureConfig(trim_idle=False, length_mode="crop", seq_len=len(sample_points))
    drawn = features_to_points(prepare_sequence(sample_points, cfg), cfg)
    assert drawn.shape == sample_points.shape

    def relative(points, t, index):  # a point relative to the shoulders, in shoulder widths
        left, right = points[t, LEFT_SHOULDER, :2], points[t, RIGHT_SHOULDER, :2]
        return (points[t, index, :2] - (left + right) / 2) / np.linalg.norm(left - right)

    seen = [t for t in range(len(sample_points)) if np.isfinite(sample_points[t, RIGHT_HAND]).all()]
    assert seen, "the sample has no frame with the right hand"
    for t in seen:
        for index in (RIGHT_HAND.start, RIGHT_HAND.start + 8, 15):  # wrist, index fingertip, pose wrist
            np.testing.assert_allclose(relative(drawn, t, index), relative(sample_points, t, index), atol=1e-4)
    missing = [t for t in range(len(sample_points)) if not np.isfinite(sample_points[t, RIGHT_HAND]).any()]
    for t in missing:  # a hand not seen is not drawn (not put at the shoulders' centre)
        assert np.isnan(drawn[t, RIGHT_HAND]).all()
    assert np.isnan(drawn[:, 33:501]).all()  # the features hold no face


def test_gif_thumbnail_loops_every_frame(sample_points, tmp_path):
    from PIL import Image

    from demo.render import render_gif

    path = render_gif(sample_points, tmp_path / "hello.gif", size=120)
    with Image.open(path) as gif:
        assert gif.size == (120, 120) and gif.n_frames == len(sample_points) and gif.info.get("loop") == 0


def test_frame_keeper_stays_bounded_and_spread_over_any_clip():
    from demo.render import FrameKeeper

    made = []
    keeper = FrameKeeper(max_frames=10)  # the length is not known up front
    for i in range(1000):
        keeper.offer(i, lambda i=i: made.append(i) or np.full((4, 4, 3), i % 256, np.uint8))
    assert 5 <= len(keeper) <= 10 and keeper.indices[0] == 0 and keeper.indices[-1] > 1000 - keeper.stride
    assert len(set(np.diff(keeper.indices))) == 1  # evenly spread
    assert len(made) < 200  # frames that could not be kept were never made
    known = FrameKeeper(max_frames=10, expected=1000)
    for i in range(1000):
        known.offer(i, lambda: np.zeros((2, 2, 3), np.uint8))
    assert len(known) == 10 and known.stride == 100


def test_overlay_from_kept_frames_uses_each_frames_own_landmarks(sample_points, tmp_path):
    import av

    indices = list(range(0, len(sample_points), 4))
    frames = [np.full((120, 90, 3), 40, dtype=np.uint8) for _ in indices]
    path = render_skeleton_video(sample_points, frames=frames, indices=indices, fps=5, out_dir=tmp_path)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(indices)
    with pytest.raises(RenderError, match="one entry per frame"):
        render_skeleton_video(sample_points, frames=frames, indices=indices[:-1], out_dir=tmp_path)


def test_preview_is_needed_for_hevc_and_for_a_recording_without_duration(tmp_path):
    import shutil
    import subprocess

    from demo_support import SAMPLE_VIDEOS

    from demo.render import preview_reason

    assert preview_reason(SAMPLE_VIDEOS / "signer_selfie.mp4") == ""  # H.264 mp4 with a duration
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is missing (apt-get install ffmpeg): the HEVC and webm cases are not checked")
    hevc, webm = tmp_path / "phone.mp4", tmp_path / "recording.webm"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(SAMPLE_VIDEOS / "signer_selfie.mp4"),
                    "-frames:v", "10", "-c:v", "libx265", "-x265-params", "log-level=error", str(hevc)], check=True)
    with open(webm, "wb") as out:  # to a pipe, as MediaRecorder writes: no duration, no cues
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(SAMPLE_VIDEOS / "signer_selfie.mp4"),
                        "-frames:v", "10", "-c:v", "libvpx", "-f", "webm", "pipe:1"], check=True, stdout=out)
    assert preview_reason(hevc) == "codec"
    assert preview_reason(webm) == "no duration"


def test_old_renders_are_pruned_and_named_caches_kept(tmp_path):
    import os

    from demo.render import prune_renders

    old, new, cache = tmp_path / "skeleton-old.mp4", tmp_path / "skeleton-new.mp4", tmp_path / "hello-abc.gif"
    for path in (old, new, cache):
        path.write_bytes(b"x")
    os.utime(old, (1_000, 1_000))
    os.utime(cache, (1_000, 1_000))
    assert prune_renders(tmp_path, max_age_s=3600) == 1
    assert not old.exists() and new.exists() and cache.exists()
