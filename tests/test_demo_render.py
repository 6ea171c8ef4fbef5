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
