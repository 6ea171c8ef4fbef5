"""Flat per-frame landmark vectors <-> the canonical [T, 543, 3] array.

Other tools store one vector a frame. The layouts SignSeek reads, told apart by length:

| name        | values | per frame                                                        |
| ----------- | ------ | ---------------------------------------------------------------- |
| canonical   | 1629   | 543 points x (x, y, z) in canonical order, NaN = not detected (a part that is all zeros counts as not detected too) |
| holistic    | 1662   | pose 33 x (x, y, z, visibility), face 468 x 3, left 21 x 3, right 21 x 3 (the MP_Data tutorials) |
| pose_hands  | 258    | pose 33 x 4, left hand 21 x 3, right hand 21 x 3 (the shared signs.npz) |
| upper_hands | 170    | pose points 0-10 (head and face of the pose model) x 4, left 21 x 3, right 21 x 3 |
| hands       | 126    | left hand 21 x 3, right hand 21 x 3 (the shared fingerspelling.npz, HandTalk) |

In the flat layouts a part that was not detected is all zeros (what the tutorials write);
it becomes NaN in the canonical array and zeros again on the way back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SignSeekError
from .schema import FACE, LEFT_HAND, N_DIMS, N_HAND, N_POSE, POSE, RIGHT_HAND, empty_points


@dataclass(frozen=True)
class Block:
    """A run of points in a flat vector: where they go in the canonical array."""

    canonical: slice  # destination slice of the 543 points
    values_per_point: int  # 3 (x, y, z) or 4 (x, y, z, visibility)


@dataclass(frozen=True)
class Layout:
    name: str
    blocks: tuple[Block, ...]
    keeps_nan: bool = False  # canonical vectors carry NaN (JSON null) for "not detected"

    @property
    def size(self) -> int:
        return sum((b.canonical.stop - b.canonical.start) * b.values_per_point for b in self.blocks)


_HANDS = (Block(LEFT_HAND, 3), Block(RIGHT_HAND, 3))
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("canonical", (Block(POSE, 3), Block(FACE, 3), *_HANDS), keeps_nan=True),
        Layout("holistic", (Block(POSE, 4), Block(FACE, 3), *_HANDS)),
        Layout("pose_hands", (Block(POSE, 4), *_HANDS)),
        Layout("upper_hands", (Block(slice(0, 11), 4), *_HANDS)),
        Layout("hands", _HANDS),
    )
}
LAYOUT_BY_SIZE: dict[int, str] = {layout.size: name for name, layout in LAYOUTS.items()}


class LayoutError(SignSeekError, ValueError):
    """A flat landmark vector of a length or layout SignSeek does not know."""
    code = "invalid_layout"


def detect_layout(n_values: int) -> str:
    """The layout name for a per-frame vector of ``n_values`` values."""
    try:
        return LAYOUT_BY_SIZE[n_values]
    except KeyError:
        known = ", ".join(f"{size} ({name})" for size, name in sorted(LAYOUT_BY_SIZE.items()))
        raise LayoutError(
            f"a frame has {n_values} values; expected one of {known}"
        ) from None


def get_layout(layout: str | None, n_values: int) -> Layout:
    """The named layout (checked against ``n_values``), or the one its length implies."""
    name = layout or detect_layout(n_values)
    if name not in LAYOUTS:
        raise LayoutError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
    found = LAYOUTS[name]
    if found.size != n_values:
        raise LayoutError(f"layout {name!r} has {found.size} values a frame, got {n_values}")
    return found


def flat_to_canonical(
    frames: np.ndarray, layout: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """[T, V] flat frames -> (points [T, 543, 3], visibility [T, 33] or None).

    A block whose values are all zero (or all NaN) in a frame is taken as not detected.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise LayoutError(f"flat frames must be 2-D [T, values], got shape {frames.shape}")
    spec = get_layout(layout, frames.shape[1])
    points = empty_points(len(frames))
    visibility = None
    offset = 0
    for block in spec.blocks:
        n_points = block.canonical.stop - block.canonical.start
        width = n_points * block.values_per_point
        values = frames[:, offset : offset + width].reshape(len(frames), n_points, block.values_per_point)
        offset += width
        missing = ~np.any(np.nan_to_num(values) != 0, axis=(1, 2))
        xyz = values[..., :N_DIMS].copy()
        xyz[missing] = np.nan
        points[:, block.canonical] = xyz
        if block.values_per_point == 4:
            visibility = np.zeros((len(frames), N_POSE), dtype=np.float32)
            visibility[:, block.canonical] = np.nan_to_num(values[..., 3])
    return points, visibility


def canonical_to_flat(
    points: np.ndarray, layout: str, visibility: np.ndarray | None = None
) -> np.ndarray:
    """points [T, 543, 3] -> [T, V] flat frames of ``layout``, zeros where not detected."""
    points = np.asarray(points, dtype=np.float32)
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    spec = LAYOUTS[layout]
    columns = []
    for block in spec.blocks:
        xyz = points[:, block.canonical]
        if not spec.keeps_nan:
            xyz = np.nan_to_num(xyz, nan=0.0)
        if block.values_per_point == 4:
            if visibility is None:
                # Unknown visibility: 1 where the point was detected, 0 where not.
                vis = np.isfinite(points[:, block.canonical]).all(axis=2).astype(np.float32)
            else:
                vis = np.asarray(visibility, dtype=np.float32)[:, block.canonical]
            xyz = np.concatenate([xyz, vis[..., None]], axis=2)
        columns.append(xyz.reshape(len(points), -1))
    return np.concatenate(columns, axis=1)


__all__ = [
    "LAYOUTS",
    "LAYOUT_BY_SIZE",
    "Layout",
    "LayoutError",
    "canonical_to_flat",
    "detect_layout",
    "flat_to_canonical",
    "get_layout",
    "N_HAND",
]
