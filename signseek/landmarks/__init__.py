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

# Extraction (OpenCV, PyAV, MediaPipe) loads on first use, so importing the schema stays light.
_LAZY_EXPORTS = {
    "ExtractionError": ".extract",
    "ExtractionResult": ".extract",
    "FrameLandmarks": ".extract",
    "HolisticExtractor": ".extract",
    "NoPersonDetected": ".extract",
    "StreamExtractor": ".extract",
    "extract_frames": ".extract",
    "extract_video": ".extract",
    "ExtractionPool": ".parallel",
    "extract_many": ".parallel",
    "VideoError": ".video",
    "VideoInfo": ".video",
    "VideoReader": ".video",
    "probe_video": ".video",
    "read_video": ".video",
}
__all__ += sorted(_LAZY_EXPORTS)


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
