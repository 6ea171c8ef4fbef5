"""Skeleton rendering: canonical landmarks drawn on video frames or on a blank canvas.

The demo shows users "what the model saw": every landmark MediaPipe found, drawn over the clip
(or over a dark canvas when only landmarks exist, e.g. a stored reference sample), written to
an mp4 the browser can play.

    from demo.render import render_skeleton_video, draw_skeleton
    path = render_skeleton_video(points, frames=None, fps=30)        # blank canvas
    path = render_skeleton_video(points, frames=rgb_frames, fps=30)  # overlay on the clip
    image = draw_skeleton(rgb_frame, points[t])                      # one frame (live tab)
    points = features_to_points(reference_features, feature_config)  # a reference as the model sees it
    gif = render_gif(points, "hello.gif")                            # a small looping thumbnail

Encoding: H.264 (yuv420p) in mp4 through PyAV's libx264 — what Chromium, Firefox and Safari all
play in a <video> tag. If PyAV or libx264 is missing we fall back to VP8 in webm through
OpenCV (Chromium and Firefox play it); mp4v mp4 is never written because browsers do not play it.
"""

from __future__ import annotations

import itertools
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from signseek.landmarks.schema import FACE, LEFT_HAND, POSE, RIGHT_HAND

# MediaPipe's connection lists (mp.solutions.pose.POSE_CONNECTIONS / hands.HAND_CONNECTIONS),
# copied so rendering does not import mediapipe.
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (11, 23), (12, 14), (12, 24), (13, 15), (14, 16), (15, 17), (15, 19), (15, 21), (16, 18),
    (16, 20), (16, 22), (17, 19), (18, 20), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10),
    (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19),
    (19, 20),
)

# RGB colours: pose white-ish, face grey dots, MediaPipe-left hand orange, right hand cyan.
POSE_COLOUR = (235, 235, 235)
FACE_COLOUR = (150, 150, 150)
LEFT_HAND_COLOUR = (255, 140, 0)
RIGHT_HAND_COLOUR = (0, 200, 255)
CANVAS_COLOUR = (24, 26, 33)
DEFAULT_CANVAS = (480, 480)  # (height, width) for landmark-only renders


class RenderError(RuntimeError):
    """The skeleton video could not be written (no usable encoder, bad input shape)."""


def _pixels(part: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] normalised points -> ([N, 2] int pixel coords, [N] bool finite)."""
    finite = np.isfinite(part[:, :2]).all(axis=1)
    xy = np.nan_to_num(part[:, :2], nan=-1.0)
    pixels = np.stack([xy[:, 0] * width, xy[:, 1] * height], axis=1)
    return np.clip(pixels, -10_000, 10_000).astype(np.int32), finite


def _draw_graph(
    image: np.ndarray,
    part: np.ndarray,
    connections: Iterable[tuple[int, int]],
    colour: tuple[int, int, int],
    thickness: int,
    radius: int,
) -> None:
    height, width = image.shape[:2]
    pixels, finite = _pixels(part, width, height)
    for a, b in connections:
        if finite[a] and finite[b]:
            cv2.line(image, tuple(pixels[a]), tuple(pixels[b]), colour, thickness, cv2.LINE_AA)
    for i in np.flatnonzero(finite):
        cv2.circle(image, tuple(pixels[i]), radius, colour, -1, cv2.LINE_AA)


def draw_skeleton(image: np.ndarray | None, frame_points: np.ndarray,
                  canvas_size: tuple[int, int] = DEFAULT_CANVAS, draw_face: bool = True) -> np.ndarray:
    """Draw one frame's landmarks ([543, 3], NaN = missing) on a copy of an RGB image.

    ``image=None`` draws on a dark canvas of ``canvas_size`` (height, width).
    """
    if image is None:
        canvas = np.empty((*canvas_size, 3), dtype=np.uint8)
        canvas[:] = CANVAS_COLOUR
    else:
        canvas = np.ascontiguousarray(image[..., :3], dtype=np.uint8).copy()
    scale = max(1, round(min(canvas.shape[:2]) / 360))
    frame_points = np.asarray(frame_points, dtype=np.float32)
    if draw_face:
        height, width = canvas.shape[:2]
        pixels, finite = _pixels(frame_points[FACE], width, height)
        for i in np.flatnonzero(finite)[::3]:  # every third mesh point: a face, not a smear
            cv2.circle(canvas, tuple(pixels[i]), 1, FACE_COLOUR, -1)
    # Only the upper body: legs (23+) are off-screen in webcam clips and MediaPipe guesses them.
    upper = tuple((a, b) for a, b in POSE_CONNECTIONS if a < 23 and b < 23)
    pose = frame_points[POSE].copy()
    pose[23:] = np.nan
    _draw_graph(canvas, pose, upper, POSE_COLOUR, 2 * scale, 2 * scale)
    _draw_graph(canvas, frame_points[LEFT_HAND], HAND_CONNECTIONS, LEFT_HAND_COLOUR, 2 * scale, 2 * scale)
    _draw_graph(canvas, frame_points[RIGHT_HAND], HAND_CONNECTIONS, RIGHT_HAND_COLOUR, 2 * scale, 2 * scale)
    return canvas


def fit_to_view(points: np.ndarray, padding: float = 0.15) -> np.ndarray:
    """Landmarks zoomed so the signer fills a square canvas (for renders without the video).

    Stored sequences keep the recording's framing, where the signer may be small and off-centre;
    one zoom for the whole clip (upper body and hands) keeps the movement true.
    """
    upper_pose = np.zeros(points.shape[1], dtype=bool)
    upper_pose[:23] = True
    upper_pose[LEFT_HAND] = True
    upper_pose[RIGHT_HAND] = True
    xy = points[:, upper_pose, :2].reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return points
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = float((high - low).max()) * (1 + 2 * padding)
    if not np.isfinite(span) or span < 1e-3:
        return points
    centre = (low + high) / 2
    out = points.copy()
    out[..., :2] = (out[..., :2] - centre) / span + 0.5
    return out


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _label(image: np.ndarray, text: str) -> None:
    """A caption at the bottom left (players put their own controls and labels at the top)."""
    if text:
        y = image.shape[0] - 12
        cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)


def render_dir() -> Path:
    """Where rendered videos go by default (the Gradio mount is allowed to serve this folder)."""
    return Path(tempfile.gettempdir()) / "signseek-render"


RENDER_KEEP_S = 2 * 3600  # rendered clips older than this are deleted (bounded disk on a long-running server)
_writes = itertools.count()


def prune_renders(folder: str | Path, max_age_s: float = RENDER_KEEP_S, now: float | None = None) -> int:
    """Delete the rendered clips (``skeleton-*``) in ``folder`` older than ``max_age_s``; returns how many.

    Named caches (the gallery's, the browser-playable copies) are left alone: they are reused."""
    now = time.time() if now is None else now
    removed = 0
    for path in Path(folder).glob("skeleton-*"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed += 1
        except OSError:  # another process removed it first
            continue
    return removed


def _output_path(out_dir: str | Path | None, suffix: str) -> Path:
    folder = Path(out_dir) if out_dir else render_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if next(_writes) % 50 == 0:
        prune_renders(folder)
    return folder / f"skeleton-{uuid.uuid4().hex[:12]}{suffix}"


def _write_h264(images: Sequence[np.ndarray], fps: float, path: Path) -> None:
    import av  # optional at import time: the fallback below needs only OpenCV

    height, width = images[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # faststart: the moov atom first, so the browser starts playing before the end arrives.
        # ultrafast: half the encode time of veryfast for these small clips, about the same size.
        stream.options = {"preset": "ultrafast", "crf": "23", "movflags": "+faststart"}
        for image in images:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_vp8(images: Sequence[np.ndarray], fps: float, path: Path) -> None:
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))
    if not writer.isOpened():
        raise RenderError("neither PyAV's libx264 nor OpenCV's VP8 encoder is available")
    try:
        for image in images:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def encode_video(images: Sequence[np.ndarray], fps: float, out_dir: str | Path | None = None) -> Path:
    """Write RGB frames to a browser-playable file: H.264 mp4, else VP8 webm."""
    if not len(images):
        raise RenderError("there are no frames to write")
    height, width = images[0].shape[:2]
    h, w = _even(height), _even(width)  # yuv420p needs even sides
    images = [np.ascontiguousarray(im[:h, :w, :3], dtype=np.uint8) for im in images]
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
    path = _output_path(out_dir, ".mp4")
    try:
        _write_h264(images, fps, path)
        return path
    except Exception:  # no PyAV / no libx264: fall back to the webm that OpenCV can write
        path.unlink(missing_ok=True)
    path = path.with_suffix(".webm")
    _write_vp8(images, fps, path)
    return path


def render_skeleton_video(
    points: np.ndarray,
    frames: Sequence[np.ndarray] | None = None,
    fps: float | None = 30.0,
    out_dir: str | Path | None = None,
    caption: str = "",
    max_side: int = 640,
    canvas_size: tuple[int, int] = DEFAULT_CANVAS,
    highlight: tuple[int, int] | None = None,
    indices: Sequence[int] | None = None,
) -> Path:
    """Landmarks ``[T, 543, 3]`` as a playable video; drawn over ``frames`` (RGB) when given.

    ``highlight=(start, stop)`` marks the frames the engine kept after idle trimming: frames
    outside it are dimmed so users see which part of the clip was recognised.
    ``indices``: the clip frame each of ``frames`` is (when only some frames were kept, see
    `FrameKeeper`); the video then shows those frames with their landmarks, at ``fps``.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or points.shape[1:] != (543, 3):
        raise RenderError(f"landmarks must have shape [T, 543, 3], got {points.shape}")
    if len(points) == 0:
        raise RenderError("the clip has no frames")
    if indices is not None:
        if frames is None or len(indices) != len(frames):
            raise RenderError("indices need one entry per frame")
        order = [i for i in indices if 0 <= i < len(points)]
        frames = [f for i, f in zip(indices, frames, strict=True) if 0 <= i < len(points)]
        if not order:
            raise RenderError("none of the kept frames has landmarks")
        points = points[order]
        source_index = order
    else:
        source_index = list(range(len(points)))
    if frames is None:
        points = fit_to_view(points)
    images = []
    for t, frame_points in enumerate(points):
        base = None
        if frames is not None and t < len(frames):
            base = np.asarray(frames[t])
            longest = max(base.shape[:2])
            if longest > max_side:  # small video: quicker to encode and to send
                factor = max_side / longest
                base = cv2.resize(base, (round(base.shape[1] * factor), round(base.shape[0] * factor)),
                                  interpolation=cv2.INTER_AREA)
        image = draw_skeleton(base, frame_points, canvas_size=canvas_size)
        if highlight is not None and not (highlight[0] <= source_index[t] < highlight[1]):
            image = (image * 0.45).astype(np.uint8)
        _label(image, caption)
        images.append(image)
    return encode_video(images, fps or 30.0, out_dir)


def probe_codec(path: str | Path) -> str:
    """The video codec name of a file (e.g. 'h264'), read with PyAV; '' if it cannot be read."""
    try:
        import av

        with av.open(str(path)) as container:
            return container.streams.video[0].codec_context.name
    except Exception:
        return ""


PLAYABLE = {(".mp4", "h264"), (".mp4", "av1"), (".webm", "vp8"), (".webm", "vp9"), (".webm", "av1")}


def is_browser_playable(path: str | Path) -> bool:
    path = Path(path)
    return (path.suffix.lower(), probe_codec(path)) in PLAYABLE


def preview_reason(path: str | Path) -> str:
    """Why a browser cannot show ``path`` as it is ("codec", "no duration"), or "" when it can.

    Chromium plays neither HEVC nor mp4v; a MediaRecorder webm (the webcam recording) plays but
    declares no duration, so the player shows "0:00 / Infinity:NaN:NaN".
    """
    path = Path(path)
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if (path.suffix.lower(), stream.codec_context.name) not in PLAYABLE:
                return "codec"
            if container.duration is None and not stream.duration:
                return "no duration"
    except Exception:
        return "codec"
    return ""


def browser_playable_copy(path: str | Path, cache_dir: str | Path | None = None, max_side: int = 640) -> Path:
    """``path`` itself when browsers play it, else an H.264 mp4 copy (cached by name, size and time).

    The MSL-150 clips are HEVC, which Chromium does not play; left alone, Gradio would convert
    them with the ffmpeg command at every start. Frames come from the project's `VideoReader`
    (what landmark extraction decodes, rotation included), downscaled to ``max_side``.
    """
    path = Path(path)
    if is_browser_playable(path):
        return path
    stat = path.stat()
    folder = Path(cache_dir) if cache_dir else render_dir() / "playable"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{path.stem}-{stat.st_size:x}-{int(stat.st_mtime):x}.mp4"
    for done in (out, out.with_suffix(".webm")):
        if done.is_file() and done.stat().st_size > 0:
            return done
    from signseek.landmarks.video import VideoReader

    reader = VideoReader(path, max_duration_s=None, max_side=max_side)
    images = list(reader)
    tmp = encode_video(images, reader.info.fps, folder)
    tmp.replace(out.with_suffix(tmp.suffix))
    return out.with_suffix(tmp.suffix)


class FrameKeeper:
    """At most ``max_frames`` frames of a clip, spread evenly over it, for the overlay video.

    Memory stays bounded whatever the clip: when more would be kept, every other kept frame is
    dropped and the stride doubles. ``offer`` takes a function, so frames that are not kept are
    never downscaled.
    """

    def __init__(self, max_frames: int = 120, expected: int | None = None) -> None:
        self.max_frames = max(2, int(max_frames))
        self.stride = max(1, -(-int(expected) // self.max_frames)) if expected else 1
        self._frames: dict[int, np.ndarray] = {}

    def offer(self, index: int, make) -> None:
        if index % self.stride:
            return
        self._frames[index] = make()
        while len(self._frames) > self.max_frames:
            self.stride *= 2
            self._frames = {i: f for i, f in self._frames.items() if i % self.stride == 0}

    @property
    def indices(self) -> list[int]:
        return sorted(self._frames)

    @property
    def frames(self) -> list[np.ndarray]:
        return [self._frames[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self._frames)


# Where a reference drawn from its features sits on the canvas: shoulders centred a little
# above the middle, one shoulder width = this fraction of the canvas (fit_to_view zooms after).
_TORSO_CENTRE = (0.5, 0.38)
_TORSO_SCALE = 0.22


def features_to_points(features: np.ndarray, feature_config) -> np.ndarray:
    """A prepared feature sequence ``[L, F]`` back to drawable landmarks ``[L, 543, 3]``.

    The features hold the upper-body pose points and both hands' positions, centred on the
    shoulders and scaled by their width (see signseek.features), plus each hand's presence:
    enough to draw how a reference sign is made, as the model sees it. Face, depth and the
    absolute position in the frame are not in the features, so they are not drawn.
    """
    from signseek.features import FeatureConfig

    cfg = feature_config if isinstance(feature_config, FeatureConfig) else FeatureConfig.from_dict(feature_config)
    features = np.asarray(features, dtype=np.float32)
    blocks = cfg.blocks
    if features.ndim != 2 or features.shape[1] != cfg.feature_dim:
        raise RenderError(f"features must be [L, {cfg.feature_dim}], got {features.shape}")
    n = len(features)
    points = np.full((n, 543, 3), np.nan, dtype=np.float32)
    if "pose" in blocks:
        pose = features[:, blocks["pose"]].reshape(n, -1, 2)
        for j, index in enumerate(cfg.pose_points):
            points[:, index, :2] = pose[:, j]
            points[:, index, 2] = 0.0
    hands = features[:, blocks["hands"]].reshape(n, 2, 21, 2)
    present = features[:, blocks["presence"]] > 0.5
    for side, part in enumerate((LEFT_HAND, RIGHT_HAND)):
        seen = present[:, side]
        points[seen, part, :2] = hands[seen, side]
        points[seen, part, 2] = 0.0
    points[..., 0] = _TORSO_CENTRE[0] + points[..., 0] * _TORSO_SCALE
    points[..., 1] = _TORSO_CENTRE[1] + points[..., 1] * _TORSO_SCALE
    return points


def render_gif(points: np.ndarray, path: str | Path, size: int = 200, fps: float = 12.0, caption: str = "") -> Path:
    """Landmarks ``[T, 543, 3]`` as a small looping animated GIF on a dark canvas (gallery thumbnails)."""
    from PIL import Image

    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or points.shape[1:] != (543, 3) or len(points) == 0:
        raise RenderError(f"landmarks must have shape [T, 543, 3] with T >= 1, got {points.shape}")
    points = fit_to_view(points)
    images = []
    for frame_points in points:
        image = draw_skeleton(None, frame_points, canvas_size=(size, size), draw_face=False)
        _label(image, caption)
        images.append(Image.fromarray(image).convert("P", palette=Image.Palette.ADAPTIVE, colors=32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:6]}.gif")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=False, disposal=1)
    tmp.replace(path)
    return path
