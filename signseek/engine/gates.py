"""The input gates: reject a clip before any sign is compared (nothing was signed).

  no_hands     no hand detected in any frame of the clip (the main idle signal)
  low_motion   motion energy below MOTION_FLOOR (kept low: static letters barely move)
The decision after the search (idle, unknown_sign, ambiguous_margin, prototype_disagreement) is
`signseek.ranker.Ranker.decide`.
"""

from __future__ import annotations

import numpy as np

from ..landmarks.schema import LEFT_HAND, POSE, RIGHT_HAND
from ..ranker import Reason


def hand_frames(points: np.ndarray) -> int:
    """Frames in which at least one hand was detected."""
    left = np.isfinite(points[:, LEFT_HAND]).all(axis=(1, 2))
    right = np.isfinite(points[:, RIGHT_HAND]).all(axis=(1, 2))
    return int((left | right).sum())


def has_body(points: np.ndarray) -> bool:
    """True when the pose (torso) is seen in some frame; HandTalk clients send hands only."""
    return bool(np.isfinite(points[:, POSE][:, 11:13]).all(axis=(1, 2)).any())


def input_gate(n_hand_frames: int, motion: float, motion_floor: float) -> Reason:
    if n_hand_frames == 0:
        return Reason.NO_HANDS
    if motion < motion_floor:
        return Reason.LOW_MOTION
    return Reason.NONE
