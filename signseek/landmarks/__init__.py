"""Landmarks: the canonical array, flat layouts, and MediaPipe Holistic extraction."""

from .layouts import LAYOUTS, LayoutError, canonical_to_flat, detect_layout, flat_to_canonical
from .schema import (
    FACE,
    LEFT_HAND,
    N_LANDMARKS,
    PARTS,
    POSE,
    RIGHT_HAND,
    LandmarkSequence,
    empty_points,
    mirror_points,
    part_detected,
)

__all__ = [
    "FACE",
    "LAYOUTS",
    "LEFT_HAND",
    "N_LANDMARKS",
    "PARTS",
    "POSE",
    "RIGHT_HAND",
    "LandmarkSequence",
    "LayoutError",
    "canonical_to_flat",
    "detect_layout",
    "empty_points",
    "flat_to_canonical",
    "mirror_points",
    "part_detected",
]
