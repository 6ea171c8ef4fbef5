"""A clip's source: its frames from the video the importer extracted it from, landmarks drawn on.

    frames = read_frames("sample_dataset/videos/hoy_001.mp4", start=0, count=64, max_side=480)
    rgb = overlay(frames[10], points[10])     # canonical [543, 3] image-normalised points

Decoding is SignSeek's own `signseek.landmarks.video.VideoReader` (OpenCV, PyAV fallback), the
same reader extraction used, so frame t of the clip is frame ``start + t`` of the video.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from signseek.errors import SignSeekError
from signseek.landmarks.schema import LEFT_HAND, POSE, RIGHT_HAND

from .plots import HAND_BONES, POSE_BONES

MAX_SIDE = 480


class MediaError(RuntimeError):
    """The source video cannot be shown; the message says why."""


def read_frames(path: str | Path, start: int, count: int, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """RGB frames ``start`` .. ``start + count - 1`` of the video (fewer when it ends first)."""
    from signseek.landmarks.video import VideoReader

    frames: list[np.ndarray] = []
    try:
        with VideoReader(path, max_side=max_side, max_duration_s=None, max_pixels=None) as reader:
            for i, rgb in enumerate(reader):
                if i >= start + count:
                    break
                if i >= start:
                    frames.append(rgb)
    except SignSeekError as exc:
        raise MediaError(f"cannot show {Path(path).name}: {exc}") from exc
    return frames


def overlay(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The frame with the pose's upper body and both hands drawn (points image-normalised, NaN = absent)."""
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    xy = np.asarray(points, dtype=np.float64)[:, :2] * [w, h]

    def draw(offset: int, bones, colour) -> None:
        for a, b in bones:
            p, q = xy[offset + a], xy[offset + b]
            if np.isfinite(p).all() and np.isfinite(q).all():
                cv2.line(out, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, 2, cv2.LINE_AA)

    draw(POSE.start, POSE_BONES, (255, 255, 255))
    draw(LEFT_HAND.start, HAND_BONES, (31, 119, 180))
    draw(RIGHT_HAND.start, HAND_BONES, (255, 127, 14))
    return out
