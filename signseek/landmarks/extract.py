"""MediaPipe Holistic landmarks from a clip, a list of frames, or a live stream of frames.

    from signseek.landmarks.extract import extract_video, StreamExtractor
    result = extract_video("clip.mp4")                 # ExtractionResult
    result.sequence.points                             # [T, 543, 3] float32, NaN = not detected
    result.detections                                  # [T, 4] bool: pose, face, left, right hand
    result = extract_video("clip.mp4", workers=2)      # the clip split across 2 processes

    with StreamExtractor() as stream:                  # live webcam, one frame at a time
        frame = stream.process(rgb)                    # FrameLandmarks: points [543, 3] + flags

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

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        max_side: int | None = DEFAULT_MAX_SIDE,
        smooth_landmarks: bool = True,
    ) -> None:
        import mediapipe as mp  # heavy import, paid only by code that extracts

        self.max_side = max_side
        self._holistic = mp.solutions.holistic.Holistic(
            static_image_mode=False,
            model_complexity=1,  # 0 and 2 try to download their model and fail offline
            smooth_landmarks=smooth_landmarks,
            refine_face_landmarks=False,  # 468 face points, the canonical layout's count
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
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
    """Frame-by-frame extraction for a live webcam: ``process(rgb) -> FrameLandmarks``.

    Tracking carries over from one frame to the next, exactly as in ``extract_frames``, so
    frames streamed one at a time give the same landmarks as the same frames as a list.
    Call ``reset()`` when a new recording starts.
    """


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
) -> ExtractionResult:
    """Wrap stacked arrays as an ExtractionResult; NoPersonDetected when nothing was found."""
    if len(points) == 0:
        raise ExtractionError("the clip has no frames; record or upload it again")
    if require_person and not detections.any():
        raise NoPersonDetected(NO_PERSON_MESSAGE)
    meta = {"source": source, "extractor": "mediapipe.holistic", "model_complexity": 1}
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
    extractor: HolisticExtractor | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
    require_person: bool = True,
) -> ExtractionResult:
    """Landmarks of RGB uint8 frames [H, W, 3] shot at ``fps``, tracked from first to last.

    With ``extractor`` given it is reset first (a fresh track) and left open; otherwise a
    new one is made and closed.
    """
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise ExtractionError(f"fps must be a positive number, got {fps!r}")
    start = time.perf_counter()
    owned = extractor is None
    extractor = extractor or HolisticExtractor(max_side=max_side)
    size = (0, 0)
    try:
        extractor.reset()
        out = []
        for rgb in frames:
            if not out:
                size = (np.shape(rgb)[1], np.shape(rgb)[0]) if np.ndim(rgb) == 3 else (0, 0)
            out.append(extractor.process(rgb))
    finally:
        if owned:
            extractor.close()
    elapsed = time.perf_counter() - start
    return build_result(
        *_stack(out), float(fps), size, {"total_s": elapsed, "landmarks_s": elapsed},
        require_person=require_person, source="frames",
    )


def extract_video(
    path: str | Path,
    *,
    workers: int = 1,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
    require_person: bool = True,
    extractor: HolisticExtractor | None = None,
    frame_stride: int = 1,
) -> ExtractionResult:
    """Landmarks of every frame (or every ``frame_stride``-th) of a clip file (mp4, webm, mov, avi).

    ``workers=1`` decodes in a background thread while MediaPipe runs here. ``workers>1``
    splits the clip into that many consecutive parts, each tracked by its own Holistic in a
    process of a shared pool (see parallel.py): worth it for long clips or idle cores.
    ``frame_stride=2`` runs MediaPipe on every other frame: a 30 fps clip becomes 15 fps
    landmarks, which the features resample anyway, at half the cost (see BENCHMARKS.md).
    Raises a ``VideoError`` for a bad file, ``NoPersonDetected`` when nobody is in view.
    """
    if workers > 1:
        from .parallel import shared_pool

        pool = shared_pool(workers, max_side=max_side)
        return pool.extract_video(
            path, max_duration_s=max_duration_s, max_pixels=max_pixels, require_person=require_person,
            frame_stride=frame_stride,
        )
    start = time.perf_counter()
    reader = VideoReader(path, max_duration_s, max_pixels, max_side=max_side, frame_stride=frame_stride)
    owned = extractor is None
    extractor = extractor or HolisticExtractor(max_side=max_side)
    try:
        extractor.reset()
        out = [extractor.process(rgb) for rgb in reader]
    finally:
        reader.close()
        if owned:
            extractor.close()
    size = reader.frame_size or (reader.info.width, reader.info.height)
    return build_result(
        *_stack(out), reader.fps, size, {"total_s": time.perf_counter() - start},
        video=reader.info, require_person=require_person, source=Path(path).name,
    )
