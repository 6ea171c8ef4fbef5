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

from .errors import Invalid
from .schemas import COORDINATE_LIMIT

KNOWN_SIZES = ", ".join(f"{size} ({name})" for size, name in sorted(LAYOUT_BY_SIZE.items()))
# The one coordinate rule, on every door (REST, WebSocket, Socket.IO, enrolment): a JSON number
# (not true / false, not a string) or null, finite and within +-COORDINATE_LIMIT (schemas.py).
COORDINATE_RULE = (f"a coordinate is a finite number between {-COORDINATE_LIMIT:g} and {COORDINATE_LIMIT:g} "
                   "(or null where the landmark was not detected)")


def invalid(message: str, code: str = "invalid_frames") -> Invalid:
    return Invalid(message, code=code)


def coordinate(value, where: str) -> float:
    """One coordinate by the rule above -> float (NaN for null); anything else -> Invalid."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{where} is non-numeric ({type(value).__name__} {str(value)[:40]!r}): {COORDINATE_RULE}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > COORDINATE_LIMIT:
        raise invalid(f"{where} is {value!r}: {COORDINATE_RULE}")
    return number


def frames_to_points(
    frames: Sequence[Sequence[float | None] | None], layout: str | None, max_frames: int
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Flat frames (null = frame or value not detected) -> (points [T,543,3], visibility, layout)."""
    n_frames = len(frames)
    if n_frames == 0:
        raise invalid("frames is empty: send at least one frame of landmarks", "no_frames")
    if n_frames > max_frames:
        raise invalid(f"{n_frames} frames is more than MAX_FRAMES={max_frames}: send a shorter clip or split it",
                      "too_many_frames")
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
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused below
            flat = np.array(rows, dtype=np.float32)  # None -> NaN
    except (TypeError, ValueError) as exc:
        raise invalid(f"frames must be lists of numbers or null: {exc}") from None
    with np.errstate(invalid="ignore"):
        out_of_range = np.abs(flat) > COORDINATE_LIMIT  # NaN (null) compares False; inf (float32 overflow) True
    if out_of_range.any():
        t, v = (int(i) for i in np.argwhere(out_of_range)[0])
        raise invalid(f"frames[{t}][{v}] is {frames[t][v]!r}: {COORDINATE_RULE}")
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
    out = [coordinate(v, f"landmark {i} {axis}") for v, axis in zip(values, "xyz", strict=True)]
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
