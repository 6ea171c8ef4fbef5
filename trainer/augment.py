"""Augmentations on prepared (not yet normalised) feature sequences [L, F].

Working on features rather than landmarks keeps augmentation cheap (no re-featurising) and the
same for body and hands-only configs. Mirroring uses `signseek.features.mirror_features`, the
one implementation that the property tests check against `mirror_points` on landmarks. Every
transform keeps the shape [L, F] and the values finite; the motion column is recomputed from
the (transformed) wrist velocities so it stays consistent with the coordinates.
"""

from __future__ import annotations

import numpy as np

from signseek.features import FeatureConfig, flip_chirality, mirror_features

from .config import TrainConfig


def _xy_view(block: np.ndarray) -> np.ndarray:
    return block.reshape(*block.shape[:-1], -1, 2)


def affine(x: np.ndarray, cfg: FeatureConfig, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x2 matrix to every (x, y) in the positional blocks (about the body centre)."""
    out = x.copy()
    blocks = cfg.blocks
    for name in ("pose", "hands", "velocity", "face"):
        if name in blocks:
            part = _xy_view(out[:, blocks[name]])
            out[:, blocks[name]] = (part @ matrix.T).reshape(len(out), -1)
    if "shape" in blocks:
        # Hand shape is divided by hand size, so only the rotation/shear part applies.
        scale = np.sqrt(abs(np.linalg.det(matrix))) or 1.0
        shape = out[:, blocks["shape"]].reshape(len(out), -1, 3)
        shape[..., :2] = shape[..., :2] @ (matrix / scale).T
        out[:, blocks["shape"]] = shape.reshape(len(out), -1)
    return out


def resample_positions(x: np.ndarray, positions: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Linear interpolation of the sequence at fractional frame positions; flags stay flags."""
    positions = np.clip(positions, 0, len(x) - 1)
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (positions - lo)[:, None].astype(np.float32)
    out = (1 - w) * x[lo] + w * x[hi]
    presence = cfg.blocks["presence"]
    out[:, presence] = np.round(out[:, presence])
    return out.astype(np.float32)


def time_warp(x: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Speed change: trim up to `strength/2` of the clip at each end and warp time smoothly."""
    n = len(x)
    if n < 3:
        return x
    start = rng.uniform(0, strength / 2) * (n - 1)
    stop = (n - 1) - rng.uniform(0, strength / 2) * (n - 1)
    u = np.linspace(0.0, 1.0, n)
    bend = rng.uniform(-strength, strength) / np.pi  # |bend| < 1/pi keeps time monotone
    u = u + bend * np.sin(np.pi * u)
    return resample_positions(x, start + (stop - start) * u, cfg)


def frame_drop(x: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Drop a random `rate` of frames (as a flaky camera would) and stretch back to length."""
    n = len(x)
    keep = np.flatnonzero(rng.random(n) >= rate)
    if len(keep) < 2 or len(keep) == n:
        return x
    return resample_positions(x[keep], np.linspace(0, len(keep) - 1, n), cfg)


def hand_dropout(x: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """One hand goes undetected for a span of frames: zeros and presence 0, as featurised."""
    out = x.copy()
    n = len(out)
    hand = int(rng.integers(2))
    length = int(rng.integers(1, max(2, n // 3) + 1))
    start = int(rng.integers(0, n - length + 1))
    frames = slice(start, start + length)
    blocks = cfg.blocks
    for name, per_hand in (("hands", 42), ("shape", 63)):
        if name in blocks:
            cols = np.arange(blocks[name].start, blocks[name].stop)[hand * per_hand : (hand + 1) * per_hand]
            out[frames, cols] = 0.0
    out[frames, blocks["presence"].start + hand] = 0.0
    return out


def jitter(x: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian noise on detected coordinates (zeros = not detected stay zero)."""
    out = x.copy()
    for name in ("pose", "hands", "shape", "face"):
        if name in cfg.blocks:
            block = out[:, cfg.blocks[name]]
            noise = rng.normal(0.0, sigma, block.shape).astype(np.float32)
            out[:, cfg.blocks[name]] = np.where(block != 0, block + noise, block)
    return out


def recompute_motion(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    velocity = x[:, cfg.blocks["velocity"]].reshape(len(x), 2, 2)
    x[:, cfg.motion_column] = np.linalg.norm(velocity, axis=-1).mean(axis=1)
    return x


def random_affine(rng: np.random.Generator, rotate_deg: float, scale: float, shear: float) -> np.ndarray:
    angle = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    s = 1.0 + rng.uniform(-scale, scale)
    sh = rng.uniform(-shear, shear)
    return (rot @ np.array([[1.0, sh], [0.0, 1.0]]) * s).astype(np.float32)


def mirror_view(x: np.ndarray, fcfg: FeatureConfig) -> np.ndarray:
    """The clip as the other hand would sign it, in the form serving will see it.

    Without canonical_hand: the mirror image. With it, serving mirrors left-led clips back, so a
    mirrored one-handed clip would never arrive: hands-only clips get the other chirality in the
    same slot, and body clips are mirrored only when both hands are seen as often (two-handed)."""
    if not fcfg.canonical_hand:
        return mirror_features(x, fcfg)
    if fcfg.hands_only:
        return flip_chirality(x, fcfg)
    left, right = x[:, fcfg.blocks["presence"]].sum(axis=0)
    return mirror_features(x, fcfg) if left == right else x


def augment(x: np.ndarray, fcfg: FeatureConfig, tcfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """One random view of a prepared clip [L, F] -> [L, F], all transforms by the config's strengths."""
    out = np.asarray(x, dtype=np.float32)
    if tcfg.aug_mirror > 0 and rng.random() < tcfg.aug_mirror:
        out = mirror_view(out, fcfg)
    if tcfg.aug_speed > 0:
        out = time_warp(out, fcfg, rng, tcfg.aug_speed)
    if tcfg.aug_frame_drop > 0:
        out = frame_drop(out, fcfg, rng, tcfg.aug_frame_drop)
    if tcfg.aug_rotate_deg > 0 or tcfg.aug_scale > 0 or tcfg.aug_shear > 0:
        out = affine(out, fcfg, random_affine(rng, tcfg.aug_rotate_deg, tcfg.aug_scale, tcfg.aug_shear))
    if tcfg.aug_hand_dropout > 0 and rng.random() < tcfg.aug_hand_dropout:
        out = hand_dropout(out, fcfg, rng)
    if tcfg.aug_jitter > 0:
        out = jitter(out, fcfg, rng, tcfg.aug_jitter)
    out = recompute_motion(out.copy(), fcfg)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
