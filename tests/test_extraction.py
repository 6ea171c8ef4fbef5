"""Video decoding and MediaPipe Holistic extraction on real clips (sample_dataset/videos/)."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np
import pytest

from signseek.landmarks.extract import (
    DETECTION_PARTS,
    ExtractionError,
    NoPersonDetected,
    StreamExtractor,
    extract_frames,
    extract_video,
    make_extractor,
)
from signseek.landmarks.parallel import ExtractionPool
from signseek.landmarks.schema import N_LANDMARKS, N_POSE, part_detected
from signseek.landmarks.video import (
    CorruptVideoError,
    EmptyVideoError,
    TruncatedVideoError,
    UnreadableVideoError,
    VideoError,
    VideoNotFoundError,
    VideoReader,
    VideoTooLargeError,
    VideoTooLongError,
    probe_video,
    read_video,
)
from signseek.paths import SAMPLE_DATASET

# ---- helpers: write real video files in the formats users send ------------------------------


def _write_pyav(path, frames, fps, codec, pix_fmt="yuv420p"):
    """Encode RGB frames with FFmpeg through PyAV (webm/VP8 and VP9 are what browsers record)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write_cv2(path, frames, fps, fourcc):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def msl_frames():
    """The first 24 frames of hoy_001.mp4 at 640x360, the source of the converted clips."""
    frames, info = read_video(SAMPLE_DATASET / "videos" / "hoy_001.mp4", max_side=640)
    return frames[:24], info.fps


# ---- real clips: detection counts ----------------------------------------------------------


@pytest.mark.slow
def test_selfie_has_pose_in_every_frame_and_hands_in_many(selfie_extraction):
    result = selfie_extraction
    seq = result.sequence
    assert seq.points.shape == (58, N_LANDMARKS, 3) and seq.points.dtype == np.float32
    assert seq.visibility.shape == (58, N_POSE)
    assert (result.width, result.height) == (540, 720)
    assert result.source_fps == pytest.approx(29.9, abs=0.2) and seq.fps == result.source_fps
    counts = result.detection_counts()
    assert counts["pose"] == 58
    assert counts["any_hand"] >= 18, counts
    # The flags and the NaNs in the canonical array tell the same story, frame by frame.
    for column, part in enumerate(DETECTION_PARTS):
        np.testing.assert_array_equal(result.detections[:, column], part_detected(seq.points, part))
    head_and_shoulders = seq.pose[result.detections[:, 0], :13, :2]  # legs may lie outside the frame
    assert np.all((head_and_shoulders > 0) & (head_and_shoulders < 1)), "pose x, y are image-normalised"
    assert np.isfinite(seq.visibility).all()
    assert result.timings["total_s"] > 0 and result.realtime_factor > 0


@pytest.mark.slow
def test_msl_clip_has_pose_and_a_hand_in_nearly_every_frame(msl_extraction):
    result = msl_extraction
    counts = result.detection_counts()
    assert (result.width, result.height) == (1280, 720)
    assert counts["pose"] >= 0.9 * result.n_frames, counts
    assert counts["any_hand"] >= 0.9 * result.n_frames, counts


# ---- formats users send: webm (VP8/VP9), mov, avi ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "writer"),
    [
        ("clip.webm", lambda p, f, fps: _write_pyav(p, f, fps, "libvpx")),
        ("clip_vp9.webm", lambda p, f, fps: _write_pyav(p, f, fps, "libvpx-vp9")),
        ("clip.mov", lambda p, f, fps: _write_cv2(p, f, fps, "mp4v")),
        ("clip.avi", lambda p, f, fps: _write_cv2(p, f, fps, "MJPG")),
    ],
)
def test_converted_clip_decodes_and_gives_landmarks(tmp_path, msl_frames, name, writer):
    frames, fps = msl_frames
    path = writer(tmp_path / name, frames, round(fps))
    info = probe_video(path)
    assert (info.width, info.height) == (640, 360)
    assert info.fps == pytest.approx(30, abs=0.5)
    result = extract_video(path)
    assert result.n_frames == len(frames)
    counts = result.detection_counts()
    assert counts["pose"] >= 0.9 * len(frames), counts
    assert counts["any_hand"] >= 0.8 * len(frames), counts


# ---- bad input: a typed error with a message that says what to do ---------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="empty"):
        extract_video(path)


def test_missing_file(tmp_path):
    with pytest.raises(VideoNotFoundError, match="does not exist"):
        probe_video(tmp_path / "nowhere.mp4")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableVideoError, match="not a video.*mp4, webm, mov or avi"):
        extract_video(path)


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(UnreadableVideoError, match="not a video"):
        extract_video(path)


def test_truncated_mp4(tmp_path, selfie_clip):
    data = selfie_clip.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideoError, match="cut short") as caught:
        read_video(path)
    assert isinstance(caught.value, TruncatedVideoError)


def test_truncated_before_any_frame(tmp_path, selfie_clip):
    path = tmp_path / "head_only.mp4"
    path.write_bytes(selfie_clip.read_bytes()[:1600])  # header and index, no frame data
    with pytest.raises(VideoError):
        read_video(path)


def test_over_long_clip(selfie_clip):
    with pytest.raises(VideoTooLongError, match=r"1\.9 s, longer than the 1 s allowed; trim"):
        extract_video(selfie_clip, max_duration_s=1)


def test_over_long_checked_while_decoding_when_container_has_no_duration(tmp_path, msl_frames):
    # A browser's webm often declares no length; the limit must still hold while decoding.
    frames, fps = msl_frames
    path = _write_pyav(tmp_path / "long.webm", frames, round(fps), "libvpx")
    reader = VideoReader(path, max_duration_s=None)
    reader.max_duration_s = 0.2  # as if the header had said nothing (0.8 s of frames)
    with pytest.raises(VideoTooLongError, match="0.2 s allowed"):
        list(reader)


def test_over_size_clip(selfie_clip):
    with pytest.raises(VideoTooLargeError, match="540x720.*lower resolution"):
        extract_video(selfie_clip, max_pixels=640 * 480)


def test_errors_are_value_errors_for_callers_that_map_them_to_4xx():
    for cls in (EmptyVideoError, UnreadableVideoError, TruncatedVideoError, VideoTooLongError,
                VideoTooLargeError, NoPersonDetected, ExtractionError):
        assert issubclass(cls, ValueError)


@pytest.mark.slow
def test_clip_without_a_person(tmp_path):
    rng = np.random.default_rng(1)
    frames = [np.full((240, 320, 3), (40, 90, 160), np.uint8) for _ in range(10)]
    frames += [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(10)]
    path = _write_cv2(tmp_path / "wall.avi", frames, 30, "MJPG")
    with pytest.raises(NoPersonDetected, match="no person was found.*upper body and hands are in view"):
        extract_video(path)
    result = extract_video(path, require_person=False)  # importers may want the empty clip
    assert result.n_frames == 20 and not result.detections.any()


def test_frames_that_are_not_images():
    with pytest.raises(ExtractionError, match="RGB image"):
        extract_frames([np.zeros((10, 10), np.uint8)], fps=30)
    with pytest.raises(ExtractionError, match="fps"):
        extract_frames([np.zeros((10, 10, 3), np.uint8)], fps=0)
    with pytest.raises(ExtractionError, match="no frames"):
        extract_frames([], fps=30)


# ---- streaming and decoding pipeline ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["holistic", "fast"])
def test_streaming_matches_extract_frames(selfie_clip, mode):
    # Frames one at a time (live) and a whole clip (pipelined in the fast graph) agree exactly when
    # both are stamped at the clip's rate: the fast graph's landmark smoothing is time-based, so the
    # selfie (29.92 fps) streamed at the default 30 fps differs by up to 0.04 from frame 1 on.
    # (Legacy Holistic stamps frames itself, the same way in both.)
    frames, info = read_video(selfie_clip)
    frames = frames[:20]
    batch = extract_frames(frames, info.fps, mode=mode, letterbox=False)
    with (StreamExtractor() if mode == "holistic" else make_extractor("fast")) as stream:
        streamed = [stream.process(rgb) if mode == "holistic" else stream.process(rgb, info.fps) for rgb in frames]
    detected = np.stack([f.detected for f in streamed])
    np.testing.assert_array_equal(detected, batch.detections)
    points = np.stack([f.points for f in streamed])
    np.testing.assert_allclose(points, batch.sequence.points, atol=1e-6, equal_nan=True)
    assert streamed[0].flags["pose"] and streamed[0].person


def test_reader_stops_cleanly_when_abandoned(selfie_clip):
    reader = VideoReader(selfie_clip, prefetch=2)
    frames = iter(reader)
    for _ in range(4):
        frame = next(frames)
        assert frame.dtype == np.uint8 and frame.shape == (720, 540, 3)
    decode_thread = reader._thread
    start = time.perf_counter()
    frames.close()  # what a `break` out of the loop does
    assert not decode_thread.is_alive()
    assert time.perf_counter() - start < 2, "the decode thread must not hang on a full queue"
    assert reader.decoded_frames < 58


def test_reader_downscales_long_side(selfie_clip):
    frames, info = read_video(selfie_clip, max_side=360)
    assert len(frames) == info.frame_count == 58
    assert frames[0].shape == (360, 270, 3)


# ---- parallel extraction ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    with ExtractionPool(workers=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def selfie_holistic(selfie_clip):
    """The selfie through full Holistic in this process, on the clip's own frame (as the pool)."""
    return extract_video(selfie_clip, mode="holistic", letterbox=False)


@pytest.mark.slow
def test_split_clip_matches_single_process(pool, selfie_clip, selfie_holistic):
    split = pool.extract_video(selfie_clip)
    single = selfie_holistic
    assert split.n_frames == single.n_frames and split.workers == 2
    a, b = split.detection_counts(), single.detection_counts()
    assert a["pose"] == b["pose"]
    assert abs(a["any_hand"] - b["any_hand"]) <= 4, (a, b)
    # Where both runs found the pose its landmarks agree closely (only smoothing differs).
    both = split.detections[:, 0] & single.detections[:, 0]
    gap = np.abs(split.sequence.pose[both] - single.sequence.pose[both])[..., :2]
    assert np.median(gap) < 0.01


@pytest.mark.slow
def test_extract_many_keeps_order_and_returns_errors_in_place(pool, tmp_path, selfie_clip):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    results = pool.extract_many([selfie_clip, bad])
    assert results[0].n_frames == 58 and results[0].detection_counts()["pose"] == 58
    assert isinstance(results[1], UnreadableVideoError)
    with pytest.raises(UnreadableVideoError):
        pool.extract_many([bad], errors="raise")


@pytest.mark.slow
def test_frame_stride_keeps_every_other_frame(pool, selfie_clip, selfie_extraction):
    for result in (extract_video(selfie_clip, frame_stride=2), pool.extract_video(selfie_clip, frame_stride=2)):
        assert result.n_frames == (selfie_extraction.n_frames + 1) // 2
        assert result.source_fps == pytest.approx(selfie_extraction.source_fps / 2)
        assert result.duration_s == pytest.approx(selfie_extraction.duration_s, abs=0.05)
        counts = result.detection_counts()
        assert counts["pose"] == result.n_frames and counts["any_hand"] >= 8
