"""Labelled clips -> prepared feature arrays, session splits, and torch batches.

Reading goes through the datasets engineer's importer (`signseek.datasets.npz.import_npz`, or
`SignDataset.load` for SignSeek's own dataset files), then `signseek.features.prepare_sequence`
once per clip: 3958 clips x 20 frames take a couple of seconds, so everything downstream works on
the prepared [L, F] arrays held in memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from signseek.engine.encoder import pad_batch as engine_pad_batch
from signseek.features import FeatureConfig, FeatureStats, prepare_sequence
from signseek.paths import SHARED_DATASETS

IDLE_LABELS = ("-",)


class DataError(ValueError):
    """A data file or split that cannot be used; the message says what to fix."""


@dataclass
class ClipSet:
    """Prepared clips: features[i] is [L_i, F] (not normalised)."""

    features: list[np.ndarray]
    labels: np.ndarray  # [N] str
    sessions: np.ndarray  # [N] int
    ids: np.ndarray  # [N] str
    source: str
    motion: np.ndarray  # [N] mean motion of the kept frames

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> ClipSet:
        index = np.asarray(index, dtype=np.int64)
        return ClipSet(
            [self.features[i] for i in index], self.labels[index], self.sessions[index],
            self.ids[index], self.source, self.motion[index],
        )


def resolve_data_path(path: str | Path) -> Path:
    """A path as given, or relative to the shared datasets folder (../shared/datasets)."""
    path = Path(path)
    if path.exists():
        return path
    shared = SHARED_DATASETS / path
    if shared.exists():
        return shared
    raise DataError(f"data file {path} not found (also looked in {SHARED_DATASETS})")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_dataset(path: Path):
    from signseek.datasets.container import SignDataset, is_dataset_file
    from signseek.datasets.errors import DatasetError
    from signseek.datasets.npz import import_npz

    try:
        return SignDataset.load(path) if is_dataset_file(path) else import_npz(path)
    except DatasetError as exc:
        raise DataError(str(exc)) from None


def load_clips(path: str | Path, cfg: FeatureConfig, labels: list[str] | None = None) -> ClipSet:
    """Read a shared-layout .npz (or a SignSeek dataset file) and prepare every clip."""
    path = resolve_data_path(path)
    dataset = _read_dataset(path)
    keep = np.arange(len(dataset))
    if labels is not None:
        keep = np.flatnonzero(np.isin(dataset.labels, list(labels)))
    features, motion = [], []
    for i in keep:
        prepared = prepare_sequence(dataset.points(int(i)), cfg, return_info=True)
        features.append(prepared.features)
        motion.append(prepared.motion)
    return ClipSet(
        features,
        dataset.labels[keep].astype(str),
        np.asarray(dataset.signers)[keep].astype(np.int64),
        dataset.ids[keep].astype(str),
        str(path),
        np.asarray(motion, dtype=np.float32),
    )


# ---------------------------------------------------------------------------- splits


def session_split(labels: np.ndarray, sessions: np.ndarray, mode: str = "last_session") -> dict[str, np.ndarray]:
    """Index arrays {"train", "val", "test"} that hold whole recording sessions out, per label.

    "last_session": for a label recorded in >= 3 sessions, its last session is test and the one
    before it validation; with 2 sessions the last is test; a label recorded in one sitting stays
    in train (it has no unseen sitting to test on). "none": everything is train.
    """
    n = len(labels)
    role = np.zeros(n, dtype=np.int8)  # 0 train, 1 val, 2 test
    if mode == "last_session":
        for label in np.unique(labels):
            rows = labels == label
            held = sorted(set(sessions[rows].tolist()))
            if len(held) >= 2:
                role[rows & (sessions == held[-1])] = 2
            if len(held) >= 3:
                role[rows & (sessions == held[-2])] = 1
    elif mode != "none":
        raise DataError(f"unknown split {mode!r}; use last_session or none")
    return {name: np.flatnonzero(role == code) for code, name in enumerate(("train", "val", "test"))}


def category_of(label: str) -> str:
    """idle, letter (a single letter or `space`: fingerspelling) or word."""
    if label in IDLE_LABELS:
        return "idle"
    if re.fullmatch(r"[a-z]", label) or label == "space":
        return "letter"
    return "word"


def heldout_labels(labels: np.ndarray, fraction: float, seed: int, stratified: bool = False) -> list[str]:
    """A seeded `fraction` of the non-idle labels, kept out of training for few-shot tests.

    ``stratified``: the fraction is taken within each category (letters, words), at least one of
    each, so a small validation set holds both kinds of sign a team will enrol.
    """
    if fraction <= 0:
        return []
    names = sorted(set(labels.tolist()) - set(IDLE_LABELS))
    groups = [sorted(n for n in names if category_of(n) == c) for c in ("letter", "word")] if stratified else [names]
    rng = np.random.default_rng(seed)
    picked = []
    for group in groups:
        if group:
            count = max(1, int(round(fraction * len(group))))
            picked.extend(rng.choice(group, size=count, replace=False).tolist())
    return sorted(picked)


def fit_stats(clips: ClipSet) -> FeatureStats:
    return FeatureStats.fit(clips.features)


# ---------------------------------------------------------------------------- batches


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [L_i, F] arrays to [B, T, F] with a [B, T] mask (1 = real frame), as tensors:
    the engine's padding, so training batches look exactly like served ones."""
    features, mask = engine_pad_batch(sequences)
    return torch.from_numpy(features), torch.from_numpy(mask)
