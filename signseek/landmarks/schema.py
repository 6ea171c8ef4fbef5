"""The canonical landmark array every part of SignSeek speaks.

A clip is ``points[T, 543, 3]`` float32 in MediaPipe's image-normalised coordinates (x, y in
[0, 1] of the frame, z MediaPipe's relative depth), in the order of pose-format's Holistic
header: pose 0-32, face 33-500, left hand 501-521, right hand 522-542. NaN marks a part that
was not detected in that frame. Pose visibility, when the source has it, rides along as
``visibility[T, 33]``.

"Left" and "right" are MediaPipe's labels, as the shared datasets store them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_POSE = 33
N_FACE = 468
N_HAND = 21
N_LANDMARKS = N_POSE + N_FACE + 2 * N_HAND  # 543
N_DIMS = 3

POSE = slice(0, N_POSE)
FACE = slice(N_POSE, N_POSE + N_FACE)
LEFT_HAND = slice(N_POSE + N_FACE, N_POSE + N_FACE + N_HAND)
RIGHT_HAND = slice(N_POSE + N_FACE + N_HAND, N_LANDMARKS)
PARTS: dict[str, slice] = {
    "pose": POSE,
    "face": FACE,
    "left_hand": LEFT_HAND,
    "right_hand": RIGHT_HAND,
}

# MediaPipe pose indices used by the features (and by mirroring, which swaps left and right).
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 11, 12
LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 13, 14, 15, 16
# Pose point i becomes POSE_MIRROR[i] when the image is flipped left-right.
POSE_MIRROR = np.array(
    [0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21,
     24, 23, 26, 25, 28, 27, 30, 29, 32, 31]
)


@dataclass
class LandmarkSequence:
    """One clip of landmarks in the canonical layout, with what is known about its source."""

    points: np.ndarray  # [T, 543, 3] float32, NaN = not detected
    visibility: np.ndarray | None = None  # [T, 33] pose visibility, when known
    fps: float | None = None  # frames per second of the source, when known
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32)
        if self.points.ndim != 3 or self.points.shape[1:] != (N_LANDMARKS, N_DIMS):
            raise ValueError(
                f"landmarks must have shape [T, {N_LANDMARKS}, {N_DIMS}], got {self.points.shape}"
            )
        if self.visibility is not None:
            self.visibility = np.asarray(self.visibility, dtype=np.float32)
            if self.visibility.shape != (len(self.points), N_POSE):
                raise ValueError(
                    f"visibility must have shape [{len(self.points)}, {N_POSE}], "
                    f"got {self.visibility.shape}"
                )

    def __len__(self) -> int:
        return len(self.points)

    @property
    def pose(self) -> np.ndarray:
        return self.points[:, POSE]

    @property
    def face(self) -> np.ndarray:
        return self.points[:, FACE]

    @property
    def left_hand(self) -> np.ndarray:
        return self.points[:, LEFT_HAND]

    @property
    def right_hand(self) -> np.ndarray:
        return self.points[:, RIGHT_HAND]

    def detected(self, part: str) -> np.ndarray:
        """[T] bool: was ``part`` (pose, face, left_hand, right_hand) found in each frame."""
        return part_detected(self.points, part)

    def detection_counts(self) -> dict[str, int]:
        """Frames in which each part was found, e.g. {"pose": 58, "left_hand": 12, ...}."""
        counts = {part: int(self.detected(part).sum()) for part in PARTS}
        counts["any_hand"] = int((self.detected("left_hand") | self.detected("right_hand")).sum())
        return counts

    @property
    def duration_s(self) -> float | None:
        return len(self) / self.fps if self.fps else None


def part_detected(points: np.ndarray, part: str) -> np.ndarray:
    """[T] bool for a canonical array: True where every coordinate of ``part`` is finite."""
    block = points[:, PARTS[part]]
    return np.isfinite(block).all(axis=(1, 2))


def empty_points(n_frames: int) -> np.ndarray:
    """A canonical array with nothing detected."""
    return np.full((n_frames, N_LANDMARKS, N_DIMS), np.nan, dtype=np.float32)


def mirror_points(points: np.ndarray) -> np.ndarray:
    """The clip as a mirror would show it: x -> 1 - x, MediaPipe's left and right swapped.

    Flipping the image makes the signer's left hand appear where the right one was, so the
    hand blocks trade places and the paired pose points (shoulders, elbows, ...) swap too.
    The face keeps its order (its mesh has no simple left/right pairing); only x flips.
    """
    mirrored = np.array(points, dtype=np.float32, copy=True)
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    mirrored[:, POSE] = mirrored[:, POSE][:, POSE_MIRROR]
    left = mirrored[:, LEFT_HAND].copy()
    mirrored[:, LEFT_HAND] = mirrored[:, RIGHT_HAND]
    mirrored[:, RIGHT_HAND] = left
    return mirrored
