"""The engine's accept / reject rules, as small pure functions (easy to test and to explain).

Rejection reasons, in the order they are checked:
  no_hands                no hand detected in any frame of the clip (the main idle signal)
  low_motion              motion energy below MOTION_FLOOR (kept low: static letters barely move)
  idle                    the best label is an idle label (e.g. "-"): the signer is not signing
  unknown_sign            the best sign's refined similarity is below SIM_THRESHOLD
  ambiguous_margin        the best and second-best labels are closer than SIM_MARGIN
  prototype_disagreement  the nearest label prototype is a different sign than the top-1
"""

from __future__ import annotations

import numpy as np

from ..landmarks.schema import LEFT_HAND, POSE, RIGHT_HAND
from ..ranker import REASONS  # noqa: F401  (the one list of reasons lives in signseek.ranker)


def hand_frames(points: np.ndarray) -> int:
    """Frames in which at least one hand was detected."""
    left = np.isfinite(points[:, LEFT_HAND]).all(axis=(1, 2))
    right = np.isfinite(points[:, RIGHT_HAND]).all(axis=(1, 2))
    return int((left | right).sum())


def has_body(points: np.ndarray) -> bool:
    """True when the pose (torso) is seen in some frame; HandTalk clients send hands only."""
    return bool(np.isfinite(points[:, POSE][:, 11:13]).all(axis=(1, 2)).any())


def input_gate(n_hand_frames: int, motion: float, motion_floor: float) -> str:
    if n_hand_frames == 0:
        return "no_hands"
    if motion < motion_floor:
        return "low_motion"
    return "none"


def decision_gate(
    top_label: str,
    top_similarity: float,
    margin: float,
    idle_labels: set[str],
    sim_threshold: float,
    sim_margin: float,
    prototype_label: str | None = None,
    prototype_check: bool = True,
) -> str:
    """Reason to reject the best label (``top_label`` may be idle), or "none"."""
    if top_label in idle_labels:
        return "idle"
    if top_similarity < sim_threshold:
        return "unknown_sign"
    if margin < sim_margin:
        return "ambiguous_margin"
    if prototype_check and prototype_label is not None and prototype_label != top_label:
        return "prototype_disagreement"
    return "none"


def softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(values, dtype=np.float64) / temperature
    z -= z.max()
    e = np.exp(z)
    return e / e.sum()
