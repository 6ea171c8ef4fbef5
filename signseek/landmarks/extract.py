"""MediaPipe landmarks from a clip, a list of frames, or a live stream of frames.

    from signseek.landmarks.extract import extract_video, make_extractor
    result = extract_video("clip.mp4")                 # ExtractionResult (the fast path)
    result.sequence.points                             # [T, 543, 3] float32, NaN = not detected
    result.detections                                  # [T, 4] bool: pose, face, left, right hand
    result = extract_video("clip.mp4", mode="holistic")  # full Holistic, face mesh included

    with make_extractor() as stream:                   # live webcam, one frame at a time
        frame = stream.process(rgb)                    # FrameLandmarks: points [543, 3] + flags

Two extractors, one interface (``process``, ``process_frames``, ``reset``, ``close``):
``FastExtractor`` (fast.py: pose + hands, no face mesh, the lite pose model, frames pipelined over
two threads) and ``HolisticExtractor`` (legacy ``solutions.holistic``, every part).
``make_extractor(mode, feature_config)`` picks one: the fast path unless the mode is "holistic"
(the ``LANDMARKS_MODE`` setting) or the feature config reads face points.

Clip landmarks come back in one frame shape whatever the clip's aspect (``letterbox_points``):
MediaPipe normalises x by the width and y by the height, so the same signer in a portrait and a
landscape clip would otherwise give differently stretched skeletons and can give different signs.
``ExtractionResult.frame_points()`` maps them back onto the clip's own frame for drawing.

Every failure is a typed exception with a message for the user: ``VideoError`` subclasses for
bad files (see video.py), ``NoPersonDetected`` when nobody is in the clip, ``ExtractionError``
for frames that are not images.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SignSeekError
from .schema import FACE, LEFT_HAND, N_LANDMARKS, N_POSE, POSE, RIGHT_HAND, LandmarkSequence, empty_points
from .video import DEFAULT_MAX_DURATION_S, DEFAULT_MAX_PIXELS, VideoInfo, VideoReader, downscale

# Quiet MediaPipe's C++ logging (glog/absl INFO lines on every graph start) before it loads.
os.environ.setdefault("GLOG_minloglevel", "2")

DETECTION_PARTS = ("pose", "face", "left_hand", "right_hand")
MODES = ("fast", "holistic")
# The frame shape every clip's landmarks are expressed in: the training data (traduttore-asl)
# came from a 16:9 webcam (estimated from hand bone lengths, which only stay rotation-invariant
# when x is scaled by 16/9). A narrower frame (portrait, 4:3) is padded left and right to 16:9,
# a wider one top and bottom, in coordinates (no pixels are added, nothing is re-run).
CANONICAL_ASPECT = 16 / 9
# MediaPipe crops each part from the frame at its own model size (pose 256 px, hands 224,
# face 192), so frames larger than this carry no extra detail for it; shrinking them first
# saves resize work without moving any normalised coordinate.
DEFAULT_MAX_SIDE = 640
NO_PERSON_MESSAGE = (
    "no person was found in the clip; make sure the upper body and hands are in view and well lit"
)


class ExtractionError(SignSeekError, ValueError):
    """Landmarks could not be extracted; the message says why and what to do."""
    code = "extraction_failed"


class NoPersonDetected(ExtractionError):
    """Not one frame of the clip showed a person."""
    code = "no_person"


@dataclass
class FrameLandmarks:
    """One frame in the canonical layout, as the streaming API returns it."""

    points: np.ndarray  # [543, 3] float32, NaN = not detected
    visibility: np.ndarray  # [33] pose visibility, NaN when no pose
    detected: np.ndarray  # [4] bool, in DETECTION_PARTS order

    @property
    def flags(self) -> dict[str, bool]:
        return {part: bool(flag) for part, flag in zip(DETECTION_PARTS, self.detected, strict=True)}

    @property
    def person(self) -> bool:
        return bool(self.detected.any())


@dataclass
class ExtractionResult:
    """Landmarks of one clip plus what produced them."""

    sequence: LandmarkSequence  # points [T, 543, 3], visibility [T, 33], fps
    detections: np.ndarray  # [T, 4] bool, columns in DETECTION_PARTS order
    source_fps: float
    width: int  # source frame size in pixels
    height: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds: total_s, ...
    workers: int = 1
    video: VideoInfo | None = None

    @property
    def n_frames(self) -> int:
        return len(self.sequence)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.source_fps

    @property
    def frames_per_s(self) -> float:
        """Frames extracted per second of wall time (decoding included for extract_video)."""
        return self.n_frames / self.timings["total_s"]

    @property
    def realtime_factor(self) -> float:
        """Seconds of video extracted per second of wall time (>1 = faster than real time)."""
        return self.duration_s / self.timings["total_s"]

    def detection_counts(self) -> dict[str, int]:
        counts = {part: int(self.detections[:, i].sum()) for i, part in enumerate(DETECTION_PARTS)}
        counts["any_hand"] = int((self.detections[:, 2] | self.detections[:, 3]).sum())
        return counts

    def frame_points(self) -> np.ndarray:
        """The landmarks on the clip's own (upright) frame, for drawing over its pixels."""
        box = self.sequence.meta.get("letterbox")
        if not box:
            return self.sequence.points
        return unletterbox_points(self.sequence.points, self.width, self.height, box["aspect"])


def _letterbox_size(width: int, height: int, aspect: float) -> tuple[float, float]:
    return max(width, height * aspect), max(height, width / aspect)


def letterbox_points(points: np.ndarray, width: int, height: int, aspect: float = CANONICAL_ASPECT) -> np.ndarray:
    """Normalised landmarks of a ``width`` x ``height`` frame -> the same on that frame padded
    (centred) to ``aspect``, so x and y keep the pixel ratio of the canonical frame.

    z is scaled as x (MediaPipe gives z on roughly the scale of x). NaN stays NaN.
    """
    if not width or not height or abs(width / height - aspect) < 1e-3:
        return np.array(points, dtype=np.float32, copy=True)  # already the canonical shape
    out_w, out_h = _letterbox_size(width, height, aspect)
    out = np.array(points, dtype=np.float32, copy=True)
    out[..., 0] = (out[..., 0] * width + (out_w - width) / 2) / out_w
    out[..., 1] = (out[..., 1] * height + (out_h - height) / 2) / out_h
    out[..., 2] = out[..., 2] * width / out_w
    return out


def unletterbox_points(points: np.ndarray, width: int, height: int, aspect: float = CANONICAL_ASPECT) -> np.ndarray:
    """The inverse of ``letterbox_points``: canonical-frame landmarks -> the clip's own frame."""
    if not width or not height or abs(width / height - aspect) < 1e-3:
        return np.array(points, dtype=np.float32, copy=True)
    out_w, out_h = _letterbox_size(width, height, aspect)
    out = np.array(points, dtype=np.float32, copy=True)
    out[..., 0] = (out[..., 0] * out_w - (out_w - width) / 2) / width
    out[..., 1] = (out[..., 1] * out_h - (out_h - height) / 2) / height
    out[..., 2] = out[..., 2] * out_w / width
    return out


def _block(landmarks, n_points: int) -> np.ndarray | None:
    if landmarks is None:
        return None
    block = np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32)
    return block if block.shape == (n_points, 3) else None


def results_to_frame(results) -> FrameLandmarks:
    """MediaPipe Holistic's output for one frame -> canonical [543, 3] with flags."""
    points = empty_points(1)[0]
    visibility = np.full(N_POSE, np.nan, dtype=np.float32)
    detected = np.zeros(len(DETECTION_PARTS), dtype=bool)
    parts = (
        (results.pose_landmarks, POSE),
        (results.face_landmarks, FACE),
        (results.left_hand_landmarks, LEFT_HAND),
        (results.right_hand_landmarks, RIGHT_HAND),
    )
    for i, (landmarks, where) in enumerate(parts):
        block = _block(landmarks, where.stop - where.start)
        if block is not None:
            points[where] = block
            detected[i] = True
    if detected[0]:
        visibility[:] = [p.visibility for p in results.pose_landmarks.landmark]
    return FrameLandmarks(points, visibility, detected)


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 2:
        raise ExtractionError(
            f"a frame must be an RGB image, uint8 [height, width, 3]; got {rgb.dtype} {rgb.shape}"
        )
    return np.ascontiguousarray(rgb)


class HolisticExtractor:
    """One MediaPipe Holistic graph in video (tracking) mode.

    MediaPipe graphs are not thread-safe, so ``process`` holds a lock; use one extractor per
    worker process for parallel work. Close it (or use ``with``) to free the graph.
    """

    name = "mediapipe.holistic"

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        max_side: int | None = DEFAULT_MAX_SIDE,
        smooth_landmarks: bool = True,
    ) -> None:
        import mediapipe as mp  # heavy import, paid only by code that extracts

        from . import fast

        self.max_side = max_side
        # mp.solutions points MediaPipe's resource folder at the wheel; the fast path's folder
        # holds every file of the wheel too, so point it back once this graph is made.
        with fast.RESOURCE_LOCK:
            self._holistic = mp.solutions.holistic.Holistic(
                static_image_mode=False,
                model_complexity=1,  # 0 and 2 try to download their model and fail offline
                smooth_landmarks=smooth_landmarks,
                refine_face_landmarks=False,  # 468 face points, the canonical layout's count
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            fast.restore_after_solution()
        self._lock = threading.Lock()
        self.frames_processed = 0

    def process(self, rgb: np.ndarray) -> FrameLandmarks:
        rgb = downscale(_check_frame(rgb), self.max_side)
        with self._lock:
            if self._holistic is None:
                raise ExtractionError("this extractor was closed; create a new one")
            results = self._holistic.process(rgb)
            self.frames_processed += 1
        return results_to_frame(results)

    def process_frames(self, frames: Iterable[np.ndarray], fps: float = 30.0) -> list[FrameLandmarks]:
        """Landmarks of a clip's frames in order, tracked from the first (a fresh track)."""
        self.reset()
        return [self.process(rgb) for rgb in frames]

    def reset(self) -> None:
        """Forget the tracked person so the next frame starts a fresh detection.

        A blank frame makes MediaPipe lose the pose, and with it the hand and face regions and
        the smoothing state; that costs one cheap frame instead of rebuilding the graph.
        """
        with self._lock:
            if self._holistic is not None and self.frames_processed:
                self._holistic.process(np.zeros((64, 64, 3), dtype=np.uint8))

    def close(self) -> None:
        with self._lock:
            if self._holistic is not None:
                self._holistic.close()
                self._holistic = None

    def __enter__(self) -> HolisticExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamExtractor(HolisticExtractor):
    """Frame-by-frame extraction with full Holistic: ``process(rgb) -> FrameLandmarks``.

    Tracking carries over from one frame to the next, exactly as in ``extract_frames``, so
    frames streamed one at a time give the same landmarks as the same frames as a list.
    Call ``reset()`` when a new recording starts. ``make_extractor()`` gives the configured
    mode (the fast path by default) with the same interface.
    """


def _needs_face(feature_config) -> bool:
    if feature_config is None:
        return False
    points = (feature_config.get("face_points") if isinstance(feature_config, dict)
              else getattr(feature_config, "face_points", None))
    return bool(points)


def resolve_mode(mode: str | None = None, feature_config=None) -> str:
    """"fast" or "holistic": ``mode`` if given, else the LANDMARKS_MODE setting; "holistic"
    whenever the feature config reads face points (the fast path computes none)."""
    if mode is None:
        from ..settings import Settings

        mode = Settings().LANDMARKS_MODE
    if mode not in MODES:
        raise ValueError(f"landmarks mode must be one of {MODES}, got {mode!r}")
    return "holistic" if _needs_face(feature_config) else mode


def make_extractor(
    mode: str | None = None,
    feature_config=None,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    **options,
):
    """The extractor to use: FastExtractor (default) or HolisticExtractor, same interface.

    ``mode``: "fast", "holistic" or None (the LANDMARKS_MODE setting, default "fast").
    ``feature_config``: a bundle's feature config (dict or FeatureConfig); one that reads face
    points gets full Holistic. ``options`` go to the extractor (e.g. ``hand_model="lite"`` for
    FastExtractor, ``smooth_landmarks``). One per thread of work or per worker process; close it.
    """
    if resolve_mode(mode, feature_config) == "holistic":
        return HolisticExtractor(max_side=max_side, **options)
    from .fast import FastExtractor

    return FastExtractor(max_side=max_side, **options)


def _stack(frames: list[FrameLandmarks]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not frames:
        return empty_points(0), np.zeros((0, N_POSE), np.float32), np.zeros((0, 4), bool)
    return (
        np.stack([f.points for f in frames]),
        np.stack([f.visibility for f in frames]),
        np.stack([f.detected for f in frames]),
    )


def build_result(
    points: np.ndarray,
    visibility: np.ndarray,
    detections: np.ndarray,
    fps: float,
    size: tuple[int, int],
    timings: dict[str, float],
    *,
    workers: int = 1,
    video: VideoInfo | None = None,
    require_person: bool = True,
    source: str = "",
    extractor: str = "mediapipe.holistic",
    letterbox: bool = False,
) -> ExtractionResult:
    """Wrap stacked arrays as an ExtractionResult; NoPersonDetected when nothing was found.

    ``letterbox=True`` expresses the points on the canonical 16:9 frame (``letterbox_points``)
    and records that in ``sequence.meta["letterbox"]``.
    """
    if len(points) == 0:
        raise ExtractionError(f"{source or 'the clip'!r} has no frames; record or upload it again")
    if require_person and not detections.any():
        message = NO_PERSON_MESSAGE if not source else NO_PERSON_MESSAGE.replace("the clip", repr(source), 1)
        raise NoPersonDetected(message)
    meta = {"source": source, "extractor": extractor, "frame_size": [int(size[0]), int(size[1])]}
    if extractor == "mediapipe.holistic":
        meta["model_complexity"] = 1
    if letterbox and size[0] and size[1]:
        points = letterbox_points(points, size[0], size[1])
        meta["letterbox"] = {"aspect": CANONICAL_ASPECT}
    sequence = LandmarkSequence(points, visibility=visibility, fps=fps, meta=meta)
    assert sequence.points.shape[1] == N_LANDMARKS
    return ExtractionResult(
        sequence=sequence,
        detections=detections,
        source_fps=fps,
        width=size[0],
        height=size[1],
        timings=timings,
        workers=workers,
        video=video,
    )


def extract_frames(
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    extractor=None,
    max_side: int | None = DEFAULT_MAX_SIDE,
    require_person: bool = True,
    mode: str | None = None,
    letterbox: bool = True,
    display_name: str = "",
) -> ExtractionResult:
    """Landmarks of RGB uint8 frames [H, W, 3] shot at ``fps``, tracked from first to last.

    With ``extractor`` given it is reset first (a fresh track) and left open; otherwise one
    is made by ``make_extractor(mode)`` and closed. ``letterbox``: see ``letterbox_points``.
    """
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise ExtractionError(f"fps must be a positive number, got {fps!r}")
    start = time.perf_counter()
    owned = extractor is None
    extractor = extractor or make_extractor(mode, max_side=max_side)
    size = [0, 0]

    def sized(frames: Iterable[np.ndarray]):
        for rgb in frames:
            if not size[0] and np.ndim(rgb) == 3:
                size[:] = [np.shape(rgb)[1], np.shape(rgb)[0]]
            yield rgb

    try:
        out = extractor.process_frames(sized(frames), float(fps))
    finally:
        if owned:
            extractor.close()
    elapsed = time.perf_counter() - start
    return build_result(
        *_stack(out), float(fps), tuple(size), {"total_s": elapsed, "landmarks_s": elapsed},
        require_person=require_person, source=display_name or "frames",
        extractor=getattr(extractor, "name", "mediapipe.holistic"), letterbox=letterbox,
    )


def extract_video(
    path: str | Path,
    *,
    workers: int = 1,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
    require_person: bool = True,
    extractor=None,
    frame_stride: int = 1,
    max_frames: int | None = None,
    max_fps: float | None = None,
    display_name: str | None = None,
    mode: str | None = None,
    letterbox: bool = True,
) -> ExtractionResult:
    """Landmarks of every frame (or every ``frame_stride``-th) of a clip file (mp4, webm, mov, avi).

    The clip is probed first and refused before any decoding when it breaks a limit:
    ``max_duration_s`` seconds, ``max_pixels`` a frame (VideoTooLargeError), ``max_frames``
    frames read at ``max_fps`` (VideoTooLongError). ``max_fps`` subsamples fast clips (240 fps
    read as 30 fps); ``frame_stride=2`` keeps every other frame on top of that (15 fps landmarks
    from a 30 fps clip: the features resample anyway). ``display_name`` is the name error
    messages give the file (an upload's original name). Rotation tags are honoured.

    ``workers=1`` decodes in a background thread while the extractor (``extractor``, or
    ``make_extractor(mode)`` made and closed here) runs here; the fast extractor pipelines
    frames over two threads itself. ``workers>1`` splits the clip across worker processes
    (parallel.py, full Holistic). ``letterbox``: see ``letterbox_points``.
    Raises a ``VideoError`` for a bad file, ``NoPersonDetected`` when nobody is in view.
    """
    name = display_name or Path(path).name
    if workers > 1:
        from .parallel import shared_pool

        pool = shared_pool(workers, max_side=max_side)
        result = pool.extract_video(
            path, max_duration_s=max_duration_s, max_pixels=max_pixels, require_person=require_person,
            frame_stride=frame_stride,
        )
        if letterbox:
            result.sequence.points = letterbox_points(result.sequence.points, result.width, result.height)
            result.sequence.meta["letterbox"] = {"aspect": CANONICAL_ASPECT}
        return result
    start = time.perf_counter()
    reader = VideoReader(
        path, max_duration_s, max_pixels, max_side=max_side, frame_stride=frame_stride,
        max_frames=max_frames, max_fps=max_fps, display_name=name,
    )
    owned = extractor is None
    try:
        extractor = extractor or make_extractor(mode, max_side=max_side)
        out = extractor.process_frames(reader, reader.fps)
    finally:
        reader.close()
        if owned and extractor is not None:
            extractor.close()
    size = reader.frame_size or (reader.info.width, reader.info.height)
    return build_result(
        *_stack(out), reader.fps, size, {"total_s": time.perf_counter() - start},
        video=reader.info, require_person=require_person, source=name,
        extractor=getattr(extractor, "name", "mediapipe.holistic"), letterbox=letterbox,
    )
