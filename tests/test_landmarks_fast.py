"""The fast landmark path (pose + hands, no face mesh) and the decode limits, rotation, aspect, HEVC.

Real MediaPipe on real clips; the phone-style clips (rotation tag, portrait crop, portrait padded,
HEVC, 240 fps) are made here from the shared MSL clip with Debian's ffmpeg.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from signseek.landmarks.extract import (
    CANONICAL_ASPECT,
    HolisticExtractor,
    NoPersonDetected,
    extract_video,
    letterbox_points,
    make_extractor,
    resolve_mode,
    unletterbox_points,
)
from signseek.landmarks.fast import LITE_POSE_MODEL, MODELS_DIR, FastExtractor, graph_config_text
from signseek.landmarks.video import (
    EmptyVideoError,
    UnreadableVideoError,
    VideoReader,
    VideoTooLargeError,
    VideoTooLongError,
    _frames_pyav,
    probe_video,
    read_video,
)
from signseek.paths import SAMPLE_DATASET

HOY = SAMPLE_DATASET / "videos" / "hoy_001.mp4"
UPPER = [0, 11, 12, 13, 14, 15, 16]
RIGHT = list(range(522, 543))
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (make system-deps installs it)")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def skeleton(points: np.ndarray) -> np.ndarray:
    """Points centred on the mid-shoulder and divided by the shoulder width (what features see)."""
    mid = (points[:, 11, :2] + points[:, 12, :2]) / 2
    width = np.linalg.norm(points[:, 11, :2] - points[:, 12, :2], axis=-1)
    return (points[..., :2] - mid[:, None]) / width[:, None, None]


@pytest.fixture(scope="module")
def fast():
    with FastExtractor() as extractor:
        yield extractor


@pytest.fixture(scope="module")
def hoy_fast(fast):
    return extract_video(HOY, extractor=fast)


# ---- the vendored model and the graph ----------------------------------------------------------


def test_vendored_lite_pose_model_is_the_one_its_notice_names():
    notice = (MODELS_DIR / "NOTICE").read_text()
    digest = hashlib.sha256(LITE_POSE_MODEL.read_bytes()).hexdigest()
    assert digest in notice and "Apache License 2.0" in notice and "@mediapipe/holistic" in notice
    assert "Apache License" in (MODELS_DIR / "LICENSE-mediapipe").read_text()


def test_graph_has_no_face_branch_and_picks_models_by_side_packet():
    text = graph_config_text()
    assert "Face" not in text and "face" not in text
    assert text.count('calculator: "HandLandmarkCpu"') == 2
    assert "MODEL_COMPLEXITY:hand_model_complexity" in text


def test_make_extractor_modes(monkeypatch):
    assert resolve_mode("fast") == "fast" and resolve_mode("holistic") == "holistic"
    assert resolve_mode("fast", {"face_points": [1, 2]}) == "holistic"  # the fast graph has no face
    assert resolve_mode("fast", {"face_points": []}) == "fast"
    monkeypatch.setenv("LANDMARKS_MODE", "holistic")
    assert resolve_mode() == "holistic"
    monkeypatch.setenv("LANDMARKS_MODE", "fast")
    assert resolve_mode() == "fast"
    with pytest.raises(ValueError, match="fast.*holistic"):
        resolve_mode("quick")
    with pytest.raises(ValueError, match="hand_model"):
        FastExtractor(hand_model="heavy")


@pytest.mark.slow
def test_make_extractor_builds_the_configured_kind(monkeypatch):
    with make_extractor() as extractor:
        assert isinstance(extractor, FastExtractor)
    monkeypatch.setenv("LANDMARKS_MODE", "holistic")
    with make_extractor() as extractor:
        assert isinstance(extractor, HolisticExtractor)
    # A Holistic graph made after a fast one must not break the next fast graph (resource folder).
    with make_extractor("fast") as extractor:
        assert extractor.process(np.zeros((32, 32, 3), np.uint8)).points.shape == (543, 3)


# ---- accuracy against full Holistic on a real clip ---------------------------------------------


@pytest.mark.slow
def test_fast_path_agrees_with_full_holistic(hoy_fast):
    holistic = extract_video(HOY, mode="holistic")
    fast = hoy_fast
    assert fast.sequence.meta["extractor"] == "mediapipe.fast"
    assert not fast.detections[:, 1].any() and np.isnan(fast.sequence.face).all()  # no face mesh
    a, b = fast.detection_counts(), holistic.detection_counts()
    assert a["pose"] == b["pose"] == fast.n_frames
    assert abs(a["right_hand"] - b["right_hand"]) <= 2, (a, b)
    # Where both found them: the skeleton the features see differs by a few % of a shoulder width.
    both = fast.detections[:, 3] & holistic.detections[:, 3]
    gap = np.linalg.norm(skeleton(fast.sequence.points) - skeleton(holistic.sequence.points), axis=-1)
    assert np.median(gap[:, UPPER]) < 0.15
    assert np.median(gap[both][:, RIGHT]) < 0.15


@pytest.mark.slow
def test_fast_path_finds_nobody_in_a_wall(tmp_path, fast):
    path = tmp_path / "wall.mp4"
    frames = [np.full((240, 320, 3), (40, 90, 160), np.uint8)] * 12
    _write(path, frames)
    with pytest.raises(NoPersonDetected, match="no person was found in 'wall.mp4'"):
        extract_video(path, extractor=fast)


def _write(path, frames, fps=30):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


# ---- aspect: one frame shape for every clip ----------------------------------------------------


def test_letterbox_round_trip_and_known_values():
    points = np.random.default_rng(0).random((3, 543, 3)).astype(np.float32)
    points[0, 5] = np.nan
    for width, height in ((540, 720), (1280, 720), (720, 1280), (2000, 500)):
        boxed = letterbox_points(points, width, height)
        np.testing.assert_allclose(unletterbox_points(boxed, width, height), points, atol=1e-5)
        assert np.isnan(boxed[0, 5]).all()
    np.testing.assert_array_equal(letterbox_points(points, 1280, 720), points)  # already 16:9
    # A 720x1280 portrait frame sits in the middle of a 2276x1280 canonical frame.
    centre = letterbox_points(np.array([[0.5, 0.5, 0.1]]), 720, 1280)[0]
    assert centre[0] == pytest.approx(0.5) and centre[1] == pytest.approx(0.5)
    left = letterbox_points(np.array([[0.0, 0.0, 0.0]]), 720, 1280)[0]
    assert left[0] == pytest.approx((1280 * CANONICAL_ASPECT - 720) / 2 / (1280 * CANONICAL_ASPECT))


@pytest.mark.slow
@needs_ffmpeg
@pytest.mark.parametrize("framing", ["portrait_crop", "portrait_padded"])
def test_portrait_clip_gives_the_landscape_skeleton(tmp_path, fast, hoy_fast, framing):
    # A 9:16 phone framing of the same signing: cropped around the signer, or the landscape clip
    # padded with bars (the repro). In the canonical frame the skeleton the features see
    # matches the landscape clip's; on the clip's own frame it is stretched about 3x.
    path = tmp_path / f"{framing}.mp4"
    vf = "crop=406:720:437:0" if framing == "portrait_crop" else "scale=720:406,pad=720:1280:0:437"
    ffmpeg("-i", str(HOY), "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    info = probe_video(path)
    assert info.height > info.width
    landscape = skeleton(hoy_fast.sequence.points)
    result = extract_video(path, extractor=fast)
    assert result.detection_counts()["any_hand"] >= 0.9 * result.n_frames
    gap = np.linalg.norm(skeleton(result.sequence.points) - landscape, axis=-1)[:, UPPER + RIGHT]
    raw = np.linalg.norm(skeleton(result.frame_points()) - landscape, axis=-1)[:, UPPER + RIGHT]
    assert np.nanmedian(gap) < 0.1, np.nanmedian(gap)
    assert np.nanmedian(raw) > 2 * np.nanmedian(gap) + 0.1
    np.testing.assert_allclose(  # frame_points() undoes the letterbox for drawing on the clip
        result.frame_points(), extract_video(path, extractor=fast, letterbox=False).sequence.points, atol=1e-5)


# ---- rotation, HEVC, high frame rates ----------------------------------------------------------


@pytest.fixture(scope="module")
def rotated_clip(tmp_path_factory):
    """hoy_001 stored sideways (pixels turned 90 degrees clockwise) with a tag that turns it back."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed (make system-deps installs it)")
    folder = tmp_path_factory.mktemp("rotated")
    sideways = folder / "sideways.mp4"
    ffmpeg("-i", str(HOY), "-vf", "transpose=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(sideways))
    tagged = folder / "phone.mp4"
    ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tagged))
    return tagged


def test_rotation_tag_is_honoured_by_both_decoders(rotated_clip):
    info = probe_video(rotated_clip)
    assert info.rotation == 90 and (info.width, info.height) == (1280, 720)  # upright size
    upright, _ = read_video(HOY, max_side=None)
    frames, _ = read_video(rotated_clip)
    assert frames[0].shape == upright[0].shape == (720, 1280, 3)
    first = frames[0].astype(int)
    assert np.abs(first - upright[0]).mean() < 8  # the same picture, up to encoding noise
    pyav_first = next(iter(_frames_pyav(rotated_clip, lambda i: True, info.rotation)))
    assert pyav_first.shape == (720, 1280, 3) and np.abs(pyav_first.astype(int) - upright[0]).mean() < 8


@pytest.mark.slow
def test_rotated_phone_clip_gives_the_upright_landmarks(rotated_clip, fast, hoy_fast):
    result = extract_video(rotated_clip, extractor=fast)
    assert (result.width, result.height) == (1280, 720)
    assert result.detection_counts()["right_hand"] >= 0.9 * result.n_frames
    gap = np.linalg.norm(skeleton(result.sequence.points) - skeleton(hoy_fast.sequence.points), axis=-1)
    assert np.nanmedian(gap[:, UPPER + RIGHT]) < 0.05


@needs_ffmpeg
@pytest.mark.slow
def test_hevc_clip_decodes_and_gives_landmarks(tmp_path, fast):
    path = tmp_path / "phone_hevc.mp4"
    try:
        ffmpeg("-i", str(HOY), "-t", "1", "-c:v", "libx265", "-x265-params", "log-level=error",
               "-pix_fmt", "yuv420p", "-tag:v", "hvc1", str(path))
    except subprocess.CalledProcessError:
        pytest.skip("this ffmpeg has no libx265 encoder to make an HEVC clip")
    info = probe_video(path)
    assert info.codec == "hevc" and (info.width, info.height) == (1280, 720)
    result = extract_video(path, extractor=fast)
    assert result.n_frames >= 29 and result.detection_counts()["right_hand"] >= 0.9 * result.n_frames


@pytest.fixture(scope="module")
def fast_clip(tmp_path_factory):
    """2 s at 240 fps (480 frames, 320x240): a slow-motion phone clip."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed (make system-deps installs it)")
    path = tmp_path_factory.mktemp("fps") / "slowmo.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=240:duration=2", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def test_high_fps_clip_is_read_at_max_fps(fast_clip):
    reader = VideoReader(fast_clip, max_fps=30)
    frames = list(reader)
    assert reader.info.fps == pytest.approx(240) and reader.fps == pytest.approx(30)
    assert len(frames) == 60 and reader.decoded_frames == 480  # every frame decoded, 1 in 8 kept
    assert len(list(VideoReader(fast_clip, max_fps=30, frame_stride=2))) == 30


def test_limits_refuse_before_decoding(fast_clip, monkeypatch):
    import signseek.landmarks.video as video

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a clip that the limits refuse")

    monkeypatch.setattr(video, "_frames_opencv", no_decoding)
    monkeypatch.setattr(video, "_frames_pyav", no_decoding)
    with pytest.raises(VideoTooLongError, match=r"'my slowmo.MOV' has 480 frames to read \(at 240 fps\), more than the 300"):
        VideoReader(fast_clip, max_frames=300, display_name="my slowmo.MOV")
    with pytest.raises(VideoTooLongError, match="has 60 frames to read.*more than the 50"):
        VideoReader(fast_clip, max_frames=50, max_fps=30)
    with pytest.raises(VideoTooLargeError, match="'upload.mp4' is 320x240, more than") as caught:
        VideoReader(fast_clip, max_pixels=320 * 200, display_name="upload.mp4")
    assert caught.value.code == "video_too_large"
    with pytest.raises(VideoTooLongError, match="'upload.mp4' lasts 2.0 s"):
        extract_video(fast_clip, max_duration_s=1, display_name="upload.mp4")


def test_max_frames_holds_while_decoding_when_the_header_says_nothing(fast_clip):
    reader = VideoReader(fast_clip, max_fps=30, max_frames=100)
    reader.max_frames = 20  # as if the container had stated no length
    with pytest.raises(VideoTooLongError, match="more than the 20 frames allowed"):
        list(reader)


def test_error_messages_name_the_users_file(tmp_path):
    empty = tmp_path / "tmp8f3k2.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="'Holiday clip.mov' is empty"):
        probe_video(empty, display_name="Holiday clip.mov")
    junk = tmp_path / "tmpx.mp4"
    junk.write_text("not a video")
    with pytest.raises(UnreadableVideoError, match="'notes.mp4' is not a video"):
        extract_video(junk, display_name="notes.mp4")
