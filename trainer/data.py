"""Labelled clips -> torch batches; everything else comes from signseek.

The clips, splits and labels live in signseek (`signseek.datasets.clips`, `signseek.datasets.splits`,
`signseek.labels`) so the evaluation protocols and the explorer use the same ones without torch;
this module adds what only training needs (tensors) and keeps the trainer's names for them.
"""

from __future__ import annotations

import numpy as np
import torch

from signseek.datasets.clips import ClipSet, file_sha256, load_clips, resolve_data_path  # noqa: F401
from signseek.datasets.errors import DatasetError as DataError  # noqa: F401
from signseek.datasets.splits import held_out_labels, split_by_mode
from signseek.engine.encoder import pad_batch as engine_pad_batch
from signseek.features import FeatureStats
from signseek.labels import IDLE_LABELS, category_of  # noqa: F401


def session_split(labels: np.ndarray, sessions: np.ndarray, mode: str = "last_session") -> dict[str, np.ndarray]:
    """Index arrays {"train", "val", "test"}: `signseek.datasets.splits.split_by_mode`."""
    return split_by_mode(labels, sessions, mode)


def heldout_labels(labels: np.ndarray, fraction: float, seed: int, stratified: bool = False) -> list[str]:
    """`signseek.datasets.splits.held_out_labels` (``stratified`` = by category)."""
    return held_out_labels(labels, fraction, seed, by_category=stratified)


def fit_stats(clips: ClipSet) -> FeatureStats:
    return FeatureStats.fit(clips.features)


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [L_i, F] arrays to [B, T, F] with a [B, T] mask (1 = real frame), as tensors:
    the engine's padding, so training batches look exactly like served ones."""
    features, mask = engine_pad_batch(sequences)
    return torch.from_numpy(features), torch.from_numpy(mask)
