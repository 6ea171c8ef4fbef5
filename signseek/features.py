"""Canonical landmarks -> the feature sequence the encoder and DTW see.

One implementation for training and serving: the trainer, the engine, the explorer and the
evaluation all call `prepare_sequence`, and every constant lives in `FeatureConfig`, which is
saved in the bundle's model_config.json so serving can never disagree with training.

Per frame, in body mode (a torso is visible):
  pose      selected upper-body pose points, (x, y) centred on the mid-shoulder and divided
            by the shoulder width                                      2 x len(pose_points)
  hands     each hand's 21 points, centred and scaled like the pose    2 x 21 x 2
  shape     each hand's 21 points relative to its wrist, divided by the hand's size
            (wrist to middle-finger knuckle), (x, y, z)                 2 x 21 x 3
  face      optional face-mesh subset, centred and scaled like the pose 2 x len(face_points)
  velocity  frame-to-frame motion of each wrist (x, y)                  4
  presence  1 where each hand was detected (or bridged over a short gap) 2
  motion    motion energy: mean speed of wrists and hand centroids       1
In hands-only mode (HandTalk clients, the fingerspelling set: no body), "pose" and "face" are
absent and hand positions are centred on the clip's mean visible wrist and scaled by hand size.

Every block is invariant to moving or scaling the whole person in the frame, and mirroring a
clip gives the mirrored features (x negated, left and right swapped): see `mirror_features`.

Handedness (``canonical_hand``): a left-handed signer makes the mirror image of a right-handed
signer's sign. With it on, a clip whose left hand is seen in more frames than its right hand is
mirrored before featurising, so a one-handed sign reaches the encoder the same way whichever
hand made it (`PreparedSequence.mirrored` says when). Two-handed clips with both hands in view
as often are left as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .landmarks.schema import (
    FACE,
    LEFT_HAND,
    LEFT_SHOULDER,
    LEFT_WRIST,
    N_HAND,
    POSE,
    POSE_MIRROR,
    RIGHT_HAND,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    mirror_points,
)

WRIST, MIDDLE_MCP = 0, 9  # MediaPipe hand indices
# Nose, shoulders, elbows, wrists: what a webcam sees of a signer from the waist up.
UPPER_BODY = (0, 11, 12, 13, 14, 15, 16)
# Shoulder width is roughly this many hand sizes (wrist to middle knuckle); used only to put
# hands-only clips on a scale comparable to body clips.
SHOULDERS_PER_HAND = 3.5
_EPS = 1e-6


@dataclass
class FeatureConfig:
    pose_points: tuple[int, ...] = UPPER_BODY
    face_points: tuple[int, ...] = ()  # indices into the 468-point face mesh; empty = no face
    hand_shape: bool = True
    hands_only: bool = False
    max_gap: int = 3  # hand detection gaps up to this many frames are bridged by interpolation
    trim_idle: bool = True
    idle_margin: int = 1  # frames kept either side of the first / last frame with a hand
    length_mode: str = "resample"  # "resample" to seq_len, or "crop" (centre-crop, repeat-pad)
    seq_len: int = 32
    min_len: int = 8
    canonical_hand: bool = False  # mirror clips made mostly with the left hand (see the module doc)

    def __post_init__(self) -> None:
        self.pose_points = tuple(int(i) for i in self.pose_points)
        self.face_points = tuple(int(i) for i in self.face_points)
        if self.length_mode not in ("resample", "crop"):
            raise ValueError(f"length_mode must be 'resample' or 'crop', got {self.length_mode!r}")
        mirrored = {int(POSE_MIRROR[i]) for i in self.pose_points}
        if mirrored != set(self.pose_points):
            raise ValueError("pose_points must include both sides of every left/right pair")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def blocks(self) -> dict[str, slice]:
        """Column range of each feature block, in order."""
        sizes = {}
        if not self.hands_only:
            sizes["pose"] = 2 * len(self.pose_points)
        sizes["hands"] = 2 * N_HAND * 2
        if self.hand_shape:
            sizes["shape"] = 2 * N_HAND * 3
        if not self.hands_only and self.face_points:
            sizes["face"] = 2 * len(self.face_points)
        sizes.update(velocity=4, presence=2, motion=1)
        out, start = {}, 0
        for name, size in sizes.items():
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def feature_dim(self) -> int:
        return list(self.blocks.values())[-1].stop

    @property
    def motion_column(self) -> int:
        return self.blocks["motion"].start


# ---------------------------------------------------------------------------- per frame


def _fill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace rows where ``valid`` is False with the nearest valid row (forward, then back)."""
    if valid.all() or not valid.any():
        return values
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(valid))
    idx[idx < 0] = first
    return values[idx]


def _bridge_gaps(hand: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate a hand across detection gaps of at most ``max_gap`` frames.

    MediaPipe loses a moving hand for a frame or two; bridging keeps the trajectory smooth.
    Returns the filled hand [T, 21, 3] and its presence [T].
    """
    present = np.isfinite(hand).all(axis=(1, 2))
    if max_gap <= 0 or present.all() or present.sum() < 2:
        return hand, present
    hand = hand.copy()
    seen = np.flatnonzero(present)
    for before, after in zip(seen[:-1], seen[1:], strict=True):
        gap = after - before - 1
        if 0 < gap <= max_gap:
            w = (np.arange(1, gap + 1) / (gap + 1))[:, None, None]
            hand[before + 1 : after] = (1 - w) * hand[before] + w * hand[after]
            present[before + 1 : after] = True
    return hand, present


def frame_features(points: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """points [T, 543, 3] (NaN = not detected) -> features [T, cfg.feature_dim], all finite."""
    points = np.asarray(points, dtype=np.float32)
    n_frames = len(points)
    if n_frames == 0:
        return np.zeros((0, cfg.feature_dim), dtype=np.float32)
    pose = points[:, POSE]
    left, left_present = _bridge_gaps(points[:, LEFT_HAND], cfg.max_gap)
    right, right_present = _bridge_gaps(points[:, RIGHT_HAND], cfg.max_gap)
    hands = np.stack([left, right], axis=1)  # [T, 2, 21, 3]
    present = np.stack([left_present, right_present], axis=1)  # [T, 2]

    # Hand size, for hand shape; per hand and frame, falling back to the clip's median.
    hand_size = np.linalg.norm(hands[:, :, MIDDLE_MCP, :2] - hands[:, :, WRIST, :2], axis=-1)
    clip_hand_size = np.nanmedian(hand_size) if present.any() else np.nan
    if not np.isfinite(clip_hand_size) or clip_hand_size < _EPS:
        clip_hand_size = 0.1
    hand_size = np.where(np.isfinite(hand_size) & (hand_size > _EPS), hand_size, clip_hand_size)

    # Centre and scale of the body frame.
    shoulders = pose[:, [LEFT_SHOULDER, RIGHT_SHOULDER]]
    body_seen = np.isfinite(shoulders).all(axis=(1, 2))
    if cfg.hands_only or not body_seen.any():
        centre, scale = _hands_frame(hands, present, clip_hand_size)
    else:
        centre = _fill_nearest(shoulders.mean(axis=1), body_seen)  # [T, 3]
        width = np.linalg.norm(shoulders[:, 0, :2] - shoulders[:, 1, :2], axis=-1)
        scale = _fill_nearest(width, body_seen & (width > _EPS))
        scale = np.maximum(scale, _EPS)
    centre_xy = centre[:, None, :2]
    per_frame_scale = scale[:, None, None]

    blocks = []
    if not cfg.hands_only:
        selected = pose[:, list(cfg.pose_points)]
        pose_seen = np.isfinite(selected).all(axis=(1, 2))
        selected = _fill_nearest(selected, pose_seen)
        blocks.append(((selected[..., :2] - centre_xy) / per_frame_scale).reshape(n_frames, -1))

    hands_xy = (hands[..., :2] - centre_xy[:, None]) / per_frame_scale[:, None]  # [T, 2, 21, 2]
    blocks.append(hands_xy.reshape(n_frames, -1))
    if cfg.hand_shape:
        shape = (hands - hands[:, :, WRIST : WRIST + 1]) / hand_size[:, :, None, None]
        blocks.append(shape.reshape(n_frames, -1))
    if not cfg.hands_only and cfg.face_points:
        face = points[:, FACE][:, list(cfg.face_points), :2]
        blocks.append(((face - centre_xy) / per_frame_scale).reshape(n_frames, -1))

    # Where each hand is: its wrist when detected, else the pose model's wrist.
    wrists = hands_xy[:, :, WRIST]  # [T, 2, 2]
    if not cfg.hands_only:
        pose_wrists = (pose[:, [LEFT_WRIST, RIGHT_WRIST], :2] - centre_xy) / per_frame_scale
        wrists = np.where(present[..., None], wrists, pose_wrists)
    velocity = np.diff(wrists, axis=0, prepend=wrists[:1])
    velocity = np.where(np.isfinite(velocity), velocity, 0.0)
    blocks.append(velocity.reshape(n_frames, -1))
    blocks.append(present.astype(np.float32))
    speed = np.linalg.norm(velocity, axis=-1)  # [T, 2]
    blocks.append(speed.mean(axis=1, keepdims=True))

    features = np.concatenate(blocks, axis=1).astype(np.float32)
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)


def _hands_frame(
    hands: np.ndarray, present: np.ndarray, hand_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale for clips without a body: hand-size based, centred on the clip's
    mean visible wrist. One centre for the whole clip, so the hands' movement stays in the
    features (a per-frame centre on the wrists would erase it)."""
    wrists = np.nan_to_num(hands[:, :, WRIST])  # [T, 2, 3]
    weights = present[..., None].astype(np.float32)
    n_seen = weights.sum()
    clip_centre = (wrists * weights).sum(axis=(0, 1)) / n_seen if n_seen else np.full(3, 0.5)
    centre = np.broadcast_to(clip_centre.astype(np.float32), (len(hands), 3))
    scale = np.full(len(hands), hand_size * SHOULDERS_PER_HAND, dtype=np.float32)
    return centre, scale


# ---------------------------------------------------------------------------- sequences


def active_range(points: np.ndarray, cfg: FeatureConfig) -> tuple[int, int]:
    """[start, stop) of the frames worth keeping: from the first to the last frame with a hand.

    A user's recording starts and ends idle (hands down, out of view); those frames carry no
    sign. A clip with no hand anywhere is kept whole (the engine's motion gate rejects it).
    """
    n_frames = len(points)
    if not cfg.trim_idle:
        return 0, n_frames
    hand_seen = np.isfinite(points[:, LEFT_HAND]).all(axis=(1, 2)) | np.isfinite(
        points[:, RIGHT_HAND]
    ).all(axis=(1, 2))
    if not hand_seen.any():
        return 0, n_frames
    seen = np.flatnonzero(hand_seen)
    return max(0, int(seen[0]) - cfg.idle_margin), min(n_frames, int(seen[-1]) + 1 + cfg.idle_margin)


def fit_length(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Bring a [T, F] sequence to the configured length (see FeatureConfig.length_mode)."""
    n_frames = len(features)
    if n_frames == 0:
        raise ValueError("cannot prepare a sequence with no frames")
    if cfg.length_mode == "resample":
        if n_frames == cfg.seq_len:
            return features
        source = np.linspace(0.0, n_frames - 1, cfg.seq_len)
        lo = np.floor(source).astype(int)
        hi = np.minimum(lo + 1, n_frames - 1)
        w = (source - lo)[:, None].astype(np.float32)
        out = (1 - w) * features[lo] + w * features[hi]
        presence = cfg.blocks["presence"]
        out[:, presence] = np.round(out[:, presence])  # flags stay flags
        return out.astype(np.float32)
    if n_frames > cfg.seq_len:
        start = (n_frames - cfg.seq_len) // 2
        return features[start : start + cfg.seq_len]
    if n_frames < cfg.min_len:
        pad = np.repeat(features[-1:], cfg.min_len - n_frames, axis=0)
        return np.concatenate([features, pad], axis=0)
    return features


@dataclass
class PreparedSequence:
    """What `prepare_sequence` made of a clip, with what the engine reports about it."""

    features: np.ndarray  # [L, F], before global normalisation
    kept: tuple[int, int]  # [start, stop) of the source frames after idle trimming
    motion: float  # mean motion energy of the kept frames (shoulder widths a frame)
    n_source_frames: int = 0
    extra: dict = field(default_factory=dict)
    mirrored: bool = False  # canonical_hand mirrored the clip (its left hand led)


def hand_presence(points: np.ndarray) -> tuple[int, int]:
    """Frames in which the left and the right hand were detected."""
    left = np.isfinite(points[:, LEFT_HAND]).all(axis=(1, 2))
    right = np.isfinite(points[:, RIGHT_HAND]).all(axis=(1, 2))
    return int(left.sum()), int(right.sum())


def leads_with_left(points: np.ndarray) -> bool:
    """True when the left hand is seen in more frames than the right one (a left-handed sign)."""
    left, right = hand_presence(points)
    return left > right


def prepare_sequence(points: np.ndarray, cfg: FeatureConfig, *, return_info: bool = False):
    """points [T, 543, 3] -> features [L, F]: trim idle ends, featurise, fit the length.

    With ``return_info`` a `PreparedSequence` comes back instead of the bare array.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or len(points) == 0:
        raise ValueError(f"expected landmarks [T, 543, 3] with T >= 1, got shape {points.shape}")
    start, stop = active_range(points, cfg)
    kept = points[start:stop]
    mirrored = cfg.canonical_hand and leads_with_left(kept)
    per_frame = frame_features(mirror_points(kept) if mirrored else kept, cfg)
    fitted = fit_length(per_frame, cfg)
    if not return_info:
        return fitted
    motion = float(per_frame[:, cfg.motion_column].mean())
    return PreparedSequence(fitted, (start, stop), motion, n_source_frames=len(points), mirrored=mirrored)


def motion_energy(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """[L] motion energy of each frame of a feature sequence (before normalisation)."""
    return np.asarray(features)[..., cfg.motion_column]


# ---------------------------------------------------------------------------- mirroring


def mirror_features(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The features of the mirrored clip, computed from the features alone.

    Used by augmentation and checked by the property tests against features of
    `mirror_points(points)`. Not defined for face subsets (the mesh has no simple pairing).
    """
    if cfg.face_points and not cfg.hands_only:
        raise ValueError("mirror_features does not support face_points")
    out = np.array(features, dtype=np.float32, copy=True)
    blocks = cfg.blocks

    def swap_hands(block: slice, per_hand: int, dims: int) -> None:
        part = out[..., block].reshape(*out.shape[:-1], 2, per_hand, dims)
        part = part[..., ::-1, :, :].copy()
        part[..., 0] *= -1
        out[..., block] = part.reshape(*out.shape[:-1], -1)

    if "pose" in blocks:
        order = [cfg.pose_points.index(int(POSE_MIRROR[i])) for i in cfg.pose_points]
        pose = out[..., blocks["pose"]].reshape(*out.shape[:-1], len(cfg.pose_points), 2)
        pose = pose[..., order, :].copy()
        pose[..., 0] *= -1
        out[..., blocks["pose"]] = pose.reshape(*out.shape[:-1], -1)
    swap_hands(blocks["hands"], N_HAND, 2)
    if "shape" in blocks:
        swap_hands(blocks["shape"], N_HAND, 3)
    swap_hands(blocks["velocity"], 1, 2)
    out[..., blocks["presence"]] = out[..., blocks["presence"]][..., ::-1]
    return out


def swap_hand_slots(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The features with the left- and right-hand slots exchanged (coordinates untouched)."""
    out = np.array(features, dtype=np.float32, copy=True)
    for name in ("hands", "shape", "velocity", "presence"):
        if name not in cfg.blocks:
            continue
        block = cfg.blocks[name]
        width = block.stop - block.start
        part = out[..., block].reshape(*out.shape[:-1], 2, width // 2)
        out[..., block] = part[..., ::-1, :].reshape(*out.shape[:-1], width)
    return out


def flip_chirality(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The same hands as the other hand would make them, in the same slots (x negated, no swap).

    A hands-only classifier averages its answer over both chiralities, so a hand gives the same
    letter whichever hand made it and whichever slot it arrived in."""
    return swap_hand_slots(mirror_features(features, cfg), cfg)


# ---------------------------------------------------------------------------- normalisation


@dataclass
class FeatureStats:
    """Global per-column mean and std from the training set (global_stats.npz)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences: list[np.ndarray], min_std: float = 1e-3) -> FeatureStats:
        stacked = np.concatenate([np.asarray(s, dtype=np.float64) for s in sequences], axis=0)
        std = np.maximum(stacked.std(axis=0), min_std)
        return cls(stacked.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def apply(self, features: np.ndarray) -> np.ndarray:
        return ((np.asarray(features, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        with np.load(path) as data:
            return cls(data["mean"].astype(np.float32), data["std"].astype(np.float32))
