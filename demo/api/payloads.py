"""Client landmark payloads -> the canonical [T, 543, 3] array, with a 4xx naming what to fix.

Every input door (REST, WebSocket, Socket.IO, enrolment) goes through these functions, so a
frame of the wrong length gets the same message wherever it came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from signseek.landmarks.layouts import LAYOUT_BY_SIZE, LayoutError, flat_to_canonical, get_layout
from signseek.landmarks.schema import LEFT_HAND, N_HAND, RIGHT_HAND, empty_points

from .errors import ApiError

KNOWN_SIZES = ", ".join(f"{size} ({name})" for size, name in sorted(LAYOUT_BY_SIZE.items()))


def invalid(message: str, code: str = "invalid_frames") -> ApiError:
    return ApiError(422, code, message)


def frames_to_points(
    frames: Sequence[Sequence[float | None] | None], layout: str | None, max_frames: int
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Flat frames (null = frame or value not detected) -> (points [T,543,3], visibility, layout)."""
    n_frames = len(frames)
    if n_frames == 0:
        raise invalid("frames is empty: send at least one frame of landmarks", "no_frames")
    if n_frames > max_frames:
        raise invalid(
            f"{n_frames} frames is more than MAX_FRAMES={max_frames}: send a shorter clip or split it",
            "too_many_frames",
        )
    lengths = {len(f) for f in frames if f is not None}
    if not lengths:
        raise invalid("every frame is null: send at least one frame with landmarks", "no_frames")
    if len(lengths) > 1:
        first = next(len(f) for f in frames if f is not None)
        bad = next(i for i, f in enumerate(frames) if f is not None and len(f) != first)
        raise invalid(
            f"frame {bad} has {len(frames[bad])} values but earlier frames have {first}: "
            f"every frame must have the same length, one of {KNOWN_SIZES}"
        )
    n_values = lengths.pop()
    try:
        spec = get_layout(layout, n_values)
    except LayoutError as exc:
        raise invalid(f"{exc}; set 'layout' or send frames of a known length") from None
    rows = [f if f is not None else [None] * n_values for f in frames]
    try:
        flat = np.array(rows, dtype=np.float32)  # None -> NaN
    except (TypeError, ValueError) as exc:
        raise invalid(f"frames must be lists of numbers or null: {exc}") from None
    if np.isinf(flat).any():  # finite doubles beyond float32's range
        raise invalid("a landmark value is too large to be a coordinate (overflows float32)")
    points, visibility = flat_to_canonical(flat, spec.name)
    return points, visibility, spec.name


def point_xyz(point, i: int) -> tuple[float, float, float]:
    if isinstance(point, dict):
        try:
            values = (point["x"], point["y"], point.get("z", 0.0))
        except KeyError:
            raise invalid(f"landmark {i} needs keys x and y (z optional), got {sorted(point)}") from None
    elif isinstance(point, (list, tuple)) and len(point) in (2, 3, 4):
        values = (point[0], point[1], point[2] if len(point) > 2 else 0.0)
    else:
        raise invalid(f"landmark {i} must be [x, y, z] or {{x, y, z}}, got {str(point)[:40]}")
    out = []
    for v in values:
        if v is None:
            v = math.nan
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise invalid(f"landmark {i} has a non-numeric coordinate {v!r}")
        if math.isinf(v):
            raise invalid(f"landmark {i} has an infinite coordinate; send finite numbers or null")
        out.append(float(v))
    return out[0], out[1], out[2]


def hand_points_frame(landmarks, handedness: str | None = None) -> np.ndarray:
    """HandTalk's 21 hand points ([[x,y,z]...] or [{x,y,z}...]) -> one canonical frame [543, 3].

    With no body to place it, the hand goes in the right-hand block unless ``handedness`` says
    "left" (MediaPipe's label); the hands-only features do not care which block it is in.
    """
    if not isinstance(landmarks, (list, tuple)) or len(landmarks) != N_HAND:
        got = len(landmarks) if isinstance(landmarks, (list, tuple)) else type(landmarks).__name__
        raise invalid(f"landmarks must be {N_HAND} hand points as [[x, y, z], ...] or [{{x, y, z}}, ...]; got {got}")
    xyz = np.array([point_xyz(p, i) for i, p in enumerate(landmarks)], dtype=np.float32)
    frame = empty_points(1)[0]
    if np.isnan(xyz).any():
        return frame  # a partly missing hand counts as not detected
    side = LEFT_HAND if str(handedness or "").lower() == "left" else RIGHT_HAND
    frame[side] = xyz
    return frame
