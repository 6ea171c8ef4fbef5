"""Open and decode a video clip into RGB frames, with a clear error for every bad input.

    from signseek.landmarks.video import VideoReader
    with VideoReader("clip.webm", max_duration_s=60) as reader:
        print(reader.info)              # fps, frame count, size, codec, backend
        for rgb in reader:              # uint8 [H, W, 3], decoded in a background thread
            ...

OpenCV decodes first (its FFmpeg build reads mp4/H.264, webm/VP8/VP9, mov and avi); PyAV is
the fallback when OpenCV cannot open or decode a file. PyAV also probes the container, because
it tells apart "the container says 58 frames" (mp4, mov, avi) from "unknown" (browser webm),
which is what lets a truncated file be caught instead of silently giving half a clip.

Work is bounded before any frame is decoded: ``probe_video`` refuses a clip whose container says
it is too long (seconds or frames), too large (pixels a frame) or empty; ``max_fps`` keeps at most
that many frames a second (a 240 fps clip is read as 30 fps: skipped frames are decoded, as the
codec needs them, but never converted or scaled), and ``max_frames`` caps what is yielded.
Rotation metadata (phone clips) is honoured: frames come out upright and ``info`` gives the
upright size. Every error message names the file as the user knows it (``display_name``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import SignSeekError

log = logging.getLogger(__name__)

DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_MAX_PIXELS = 1920 * 1080
SUPPORTED = "mp4, webm, mov or avi"
# A frame rate outside this range is a container's time base, not a real rate (webm says 1000).
_PLAUSIBLE_FPS = (1.0, 240.0)
_FALLBACK_FPS = 30.0


class VideoError(SignSeekError, ValueError):
    """A clip that cannot be used; the message says what is wrong and what to do."""
    code = "invalid_video"


class VideoNotFoundError(VideoError):
    code = "video_not_found"
    kind = "not_found"


class EmptyVideoError(VideoError):
    code = "empty_video"


class UnreadableVideoError(VideoError):
    """Not a video at all, or a format no decoder here reads."""
    code = "unreadable_video"


class CorruptVideoError(VideoError):
    """Looks like a video but its frames do not decode (damaged or cut short)."""
    code = "corrupt_video"


class TruncatedVideoError(CorruptVideoError):
    code = "truncated_video"


class VideoTooLongError(VideoError):
    code = "video_too_long"
    kind = "too_large"


class VideoTooLargeError(VideoError):
    code = "video_too_large"
    kind = "too_large"


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a clip before (and, for ``decoded_frames``, after) decoding."""

    path: str
    fps: float  # frames per second (container's rate, or 30 when it gives none)
    frame_count: int | None  # frames the container declares; None when it does not say
    width: int
    height: int
    duration_s: float | None
    codec: str | None
    backend: str  # "opencv" or "pyav": who decodes the frames
    rotation: int = 0  # degrees the stored frames are turned to show upright (0, 90, 180, 270)
    display_name: str = ""  # the file's name as the user knows it (an upload's original name)

    def to_dict(self) -> dict:
        return asdict(self)


def _plausible(fps: float | None) -> bool:
    return fps is not None and np.isfinite(fps) and _PLAUSIBLE_FPS[0] <= fps <= _PLAUSIBLE_FPS[1]


def _probe_pyav(path: Path) -> dict | None:
    """Container metadata from PyAV, or None when PyAV cannot open the file as a video."""
    import av  # imported here: only needed for probing and the fallback

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            if not _plausible(fps) and stream.guessed_rate:
                fps = float(stream.guessed_rate)
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            width, height = stream.codec_context.width, stream.codec_context.height
            rotation = _stream_rotation(container, stream)
            if rotation in (90, 270):
                width, height = height, width
            return {
                "fps": fps,
                "frame_count": int(stream.frames) or None,
                "width": width,
                "height": height,
                "duration_s": duration,
                "codec": stream.codec_context.name,
                "rotation": rotation,
            }
    except (av.FFmpegError, OSError, IndexError, ValueError, ZeroDivisionError):
        return None


def _stream_rotation(container, stream) -> int:
    """Degrees (0/90/180/270) a clip's frames must turn counter-clockwise to stand upright."""
    try:
        for frame in container.decode(stream):
            return _normal_rotation(getattr(frame, "rotation", 0))
    except Exception:  # noqa: BLE001 - a frame that does not decode says nothing about rotation
        return 0
    return 0


def _normal_rotation(degrees) -> int:
    try:
        return int(round(float(degrees or 0) / 90.0)) % 4 * 90
    except (TypeError, ValueError):
        return 0


def _probe_opencv(path: Path) -> dict | None:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS)
        return {
            "fps": fps,
            "frame_count": count if count > 0 else None,
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "duration_s": count / fps if count > 0 and _plausible(fps) else None,
            "codec": None,
            "rotation": 0,
        }
    finally:
        cap.release()


def _opencv_decodes(path: Path) -> bool:
    cap = cv2.VideoCapture(str(path))
    try:
        return cap.isOpened() and cap.read()[0]
    finally:
        cap.release()


def probe_video(
    path: str | Path,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    max_frames: int | None = None,
    max_fps: float | None = None,
    display_name: str | None = None,
    frame_stride: int = 1,
) -> VideoInfo:
    """Check that ``path`` is a decodable clip within the limits, before decoding it.

    Reads only the container's header (and one frame): resolution, frame rate, duration, frame
    count, codec, rotation. Raises a VideoError naming ``display_name`` (default: the file's name)
    when the clip is missing, empty, unreadable, over ``max_pixels`` a frame (VideoTooLargeError),
    or over ``max_duration_s`` or ``max_frames`` frames once read at ``max_fps`` (VideoTooLongError).
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise VideoNotFoundError(f"video file {name!r} does not exist; check the path or upload it again")
    if path.stat().st_size == 0:
        raise EmptyVideoError(f"video file {name!r} is empty (0 bytes); record or upload the clip again")

    meta = _probe_pyav(path) or _probe_opencv(path)
    if meta is None or not meta["width"] or not meta["height"]:
        raise UnreadableVideoError(
            f"{name!r} is not a video that can be read here; upload an {SUPPORTED} recording"
        )
    fps = meta["fps"] if _plausible(meta["fps"]) else _FALLBACK_FPS
    duration = meta["duration_s"]
    if duration is None and meta["frame_count"]:
        duration = meta["frame_count"] / fps
    info = VideoInfo(
        path=str(path),
        fps=float(fps),
        frame_count=meta["frame_count"],
        width=int(meta["width"]),
        height=int(meta["height"]),
        duration_s=duration,
        codec=meta["codec"],
        backend="pyav",
        rotation=meta.get("rotation", 0),
        display_name=name,
    )
    # Limits first: nothing is decoded for a clip that would be refused anyway.
    check_limits(info, max_duration_s, max_pixels, max_frames=max_frames, max_fps=max_fps,
                 frame_stride=frame_stride)
    backend = "opencv" if _opencv_decodes(path) else "pyav"
    return VideoInfo(**{**info.to_dict(), "backend": backend})


def fps_stride(fps: float, max_fps: float | None) -> int:
    """Keep every n-th frame so ``fps / n <= max_fps`` (1 when no cap or already slow enough)."""
    if not max_fps or max_fps <= 0 or fps <= max_fps * 1.01:
        return 1
    return int(np.ceil(fps / max_fps - 1e-6))


def expected_frames(info: VideoInfo, stride: int = 1) -> int | None:
    """Frames a reader with this stride will yield, from the container's header (None: unknown)."""
    total = info.frame_count
    if not total and info.duration_s:
        total = int(round(info.duration_s * info.fps))
    return -(-total // stride) if total else None


def check_limits(
    info: VideoInfo,
    max_duration_s: float | None,
    max_pixels: int | None,
    *,
    max_frames: int | None = None,
    max_fps: float | None = None,
    frame_stride: int = 1,
) -> None:
    name = info.display_name or Path(info.path).name
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise VideoTooLargeError(
            f"{name!r} is {info.width}x{info.height}, more than the {max_pixels:,} pixels a frame "
            "allowed; record or export it at a lower resolution (720p is plenty)"
        )
    if max_duration_s is not None and info.duration_s is not None and info.duration_s > max_duration_s + 0.5:
        raise VideoTooLongError(
            f"{name!r} lasts {info.duration_s:.1f} s, longer than the {max_duration_s:g} s allowed; "
            "trim it to the sign you want recognised"
        )
    stride = frame_stride * fps_stride(info.fps, max_fps)
    frames = expected_frames(info, stride)
    if max_frames is not None and frames is not None and frames > max_frames:
        raise VideoTooLongError(
            f"{name!r} has {frames} frames to read (at {info.fps / stride:.0f} fps), more than the "
            f"{max_frames} allowed; trim it to the sign you want recognised"
        )


def _too_long(n_frames: int, fps: float, max_duration_s: float | None) -> bool:
    # Half a second of slack: containers round durations.
    return max_duration_s is not None and n_frames > (max_duration_s + 0.5) * fps


_SKIP = None  # what the raw decoders yield for a frame decoded but not kept


def _frames_opencv(path: Path, keep) -> Iterator[np.ndarray | None]:
    """RGB frames, upright (OpenCV applies rotation metadata); ``None`` for frames not kept."""
    cap = cv2.VideoCapture(str(path))
    try:
        index = 0
        while True:
            if not keep(index):
                if not cap.grab():  # decoded (the codec needs it), never converted
                    return
                yield _SKIP
            else:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


def _frames_pyav(path: Path, keep, rotation: int = 0) -> Iterator[np.ndarray | None]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if not keep(index):
                    yield _SKIP
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                turn = _normal_rotation(getattr(frame, "rotation", rotation)) // 90
                yield np.ascontiguousarray(np.rot90(rgb, turn)) if turn else rgb
    except av.FFmpegError as exc:
        # Frames already yielded stand; the caller checks the count against the container's.
        log.warning("PyAV stopped decoding %s: %s", path.name, exc)


def downscale(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """``rgb`` shrunk so its long side is at most ``max_side`` (aspect kept), else unchanged."""
    if not max_side:
        return rgb
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


_DONE = object()


class VideoReader:
    """Decoded RGB frames of one clip, checked against the limits, decoded ahead in a thread.

    Limits are checked on the container's header before any frame is decoded (see
    ``probe_video``) and again while decoding, for files that do not state their length:
    ``max_duration_s`` seconds, ``max_pixels`` a frame, ``max_frames`` frames yielded.
    ``max_fps`` keeps at most that many frames a second (a 240 fps clip yields every 8th frame;
    ``fps`` then says the rate yielded); ``frame_stride`` keeps every n-th frame on top of that.
    ``max_side`` downscales frames in the decode thread (landmarks are normalised to the frame,
    so this changes no coordinate). ``prefetch`` bounds the frames held in memory.
    ``display_name`` is the name every error message gives the file (an upload's original name;
    default: the file's own name). Frames come out upright whatever the clip's rotation tag.
    """

    def __init__(
        self,
        path: str | Path,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        max_side: int | None = None,
        prefetch: int = 8,
        frame_stride: int = 1,
        *,
        max_frames: int | None = None,
        max_fps: float | None = None,
        display_name: str | None = None,
        info: VideoInfo | None = None,
    ) -> None:
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be at least 1, got {frame_stride}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self.path = Path(path)
        self.display_name = display_name or self.path.name
        self.max_duration_s = max_duration_s
        self.max_frames = max_frames
        self.max_side = max_side
        self.prefetch = prefetch
        # ``info``: what probe_video just gave for this file with these limits (the caller checked it): not probed again.
        self.info = info if info is not None else probe_video(
            self.path, max_duration_s, max_pixels, max_frames=max_frames, max_fps=max_fps,
            display_name=self.display_name, frame_stride=frame_stride,
        )
        self.frame_stride = frame_stride * fps_stride(self.info.fps, max_fps)
        self.decoded_frames = 0
        self.yielded_frames = 0
        self.frame_size: tuple[int, int] | None = None  # (width, height) as decoded, upright, before downscale
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fps(self) -> float:
        """Frames per second of what the reader yields."""
        return self.info.fps / self.frame_stride

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _keep(self, index: int) -> bool:
        return index % self.frame_stride == 0

    def _raw_frames(self) -> Iterator[np.ndarray | None]:
        if self.info.backend == "opencv":
            n = 0
            for n, frame in enumerate(_frames_opencv(self.path, self._keep), start=1):  # noqa: B007
                yield frame
            if n > 0:
                return
            # OpenCV opened it but gave nothing: let PyAV try before giving up.
        yield from _frames_pyav(self.path, self._keep, self.info.rotation)

    def _checked_frames(self) -> Iterator[np.ndarray]:
        name = self.display_name
        for rgb in self._raw_frames():
            if self._stop.is_set():
                return  # abandoned by the consumer: no completeness check
            self.decoded_frames += 1
            if _too_long(self.decoded_frames, self.info.fps, self.max_duration_s):
                raise VideoTooLongError(
                    f"{name!r} runs past the {self.max_duration_s:g} s allowed; trim it to the sign you "
                    "want recognised"
                )
            if rgb is _SKIP:
                continue
            if self.frame_size is None:
                self.frame_size = (rgb.shape[1], rgb.shape[0])
            self.yielded_frames += 1
            if self.max_frames is not None and self.yielded_frames > self.max_frames:
                raise VideoTooLongError(
                    f"{name!r} has more than the {self.max_frames} frames allowed (at {self.fps:.0f} fps); "
                    "trim it to the sign you want recognised"
                )
            yield downscale(rgb, self.max_side)
        self._check_complete()

    def _check_complete(self) -> None:
        name = self.display_name
        if self.decoded_frames == 0:
            raise CorruptVideoError(
                f"no frame of {name!r} could be decoded; the file is damaged or not a finished "
                f"recording. Record it again or export it as {SUPPORTED}"
            )
        declared = self.info.frame_count
        # Containers with an index (mp4, mov, avi) say how many frames they hold; a download or
        # upload cut short still opens but ends early. Browser webm declares nothing: no check.
        if declared and self.decoded_frames < 0.9 * declared - 1:
            raise TruncatedVideoError(
                f"{name!r} ends early: only {self.decoded_frames} of its {declared} frames decode, so the "
                "file was probably cut short while copying or uploading; upload the complete clip"
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.prefetch <= 0:
            yield from self._checked_frames()
            return
        frames: queue.Queue = queue.Queue(maxsize=self.prefetch)

        def put(item) -> None:
            # Never block for good: a consumer that stopped reading sets _stop and goes away.
            while not self._stop.is_set():
                try:
                    frames.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            try:
                for rgb in self._checked_frames():
                    put(rgb)
                put(_DONE)
            except BaseException as exc:  # handed to the consumer thread, raised there
                put(exc)

        self._stop.clear()
        self._thread = threading.Thread(target=produce, name=f"decode-{self.path.name}", daemon=True)
        self._thread.start()
        try:
            while True:
                item = frames.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()


def read_video(
    path: str | Path,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    **options,
) -> tuple[list[np.ndarray], VideoInfo]:
    """All frames of a clip (RGB uint8) and its info; raises a VideoError on bad input.

    ``options`` as VideoReader's: max_frames, max_fps, frame_stride, display_name.
    """
    reader = VideoReader(path, max_duration_s, max_pixels, max_side, **options)
    return list(reader), reader.info

