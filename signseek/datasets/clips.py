"""Labelled clips, prepared once: what training and evaluation iterate over.

    from signseek.datasets.clips import load_clips
    clips = load_clips("traduttore-asl/signs.npz", bundle.feature_config)   # or a SignDataset file
    clips.features[i]      # [L, F] prepared (not normalised) by signseek.features.prepare_sequence
    clips.labels, clips.sessions, clips.ids, clips.motion, clips.mirrored

Reading goes through the importers (`import_npz`, or `SignDataset.load` for SignSeek's own files),
then `prepare_sequence` once per clip: 3958 clips x 20 frames take a couple of seconds, so every
protocol works on the prepared arrays held in memory. numpy only: the explorer and the evaluation
protocols use it without torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features import FeatureConfig, prepare_sequence
from ..landmarks.schema import mirror_points
from ..paths import SHARED_DATASETS
from .errors import DatasetError


@dataclass
class ClipSet:
    """Prepared clips: features[i] is [L_i, F] (not normalised)."""

    features: list[np.ndarray]
    labels: np.ndarray  # [N] str
    sessions: np.ndarray  # [N] int: the recording session (or signer) of each clip
    ids: np.ndarray  # [N] str
    source: str
    motion: np.ndarray  # [N] mean motion of the kept frames
    mirrored: np.ndarray | None = None  # [N] bool: canonical_hand mirrored the clip

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> ClipSet:
        index = np.asarray(index, dtype=np.int64)
        return ClipSet(
            [self.features[i] for i in index], self.labels[index], self.sessions[index],
            self.ids[index], self.source, self.motion[index],
            None if self.mirrored is None else self.mirrored[index],
        )


def resolve_data_path(path: str | Path) -> Path:
    """A path as given, or relative to the shared datasets folder (../shared/datasets)."""
    path = Path(path)
    if path.exists():
        return path
    shared = SHARED_DATASETS / path
    if shared.exists():
        return shared
    raise DatasetError(f"data file {path} not found (also looked in {SHARED_DATASETS})")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_dataset(path: str | Path):
    """A SignDataset from SignSeek's own file or a shared-layout .npz."""
    from .container import SignDataset, is_dataset_file
    from .npz import import_npz

    path = resolve_data_path(path)
    return SignDataset.load(path) if is_dataset_file(path) else import_npz(path)


def prepare_dataset(dataset, cfg: FeatureConfig, labels: list[str] | None = None, source: str = "",
                    mirror: bool = False) -> ClipSet:
    """Prepare every clip of a SignDataset (or those of ``labels``); ``mirror``: of each clip's
    mirror image instead (the same signs made with the other hand)."""
    keep = np.arange(len(dataset))
    if labels is not None:
        keep = np.flatnonzero(np.isin(dataset.labels, list(labels)))
    features, motion, mirrored = [], [], []
    for i in keep:
        points = dataset.points(int(i))
        prepared = prepare_sequence(mirror_points(points) if mirror else points, cfg, return_info=True)
        features.append(prepared.features)
        motion.append(prepared.motion)
        mirrored.append(prepared.mirrored)
    signers = np.asarray(dataset.signers)[keep]
    try:
        sessions = signers.astype(np.int64)
    except ValueError:  # signers named by strings: number them
        sessions = np.unique(signers.astype(str), return_inverse=True)[1].astype(np.int64)
    return ClipSet(
        features,
        dataset.labels[keep].astype(str),
        sessions,
        dataset.ids[keep].astype(str),
        source,
        np.asarray(motion, dtype=np.float32),
        np.asarray(mirrored, dtype=bool),
    )


def load_clips(path: str | Path, cfg: FeatureConfig, labels: list[str] | None = None,
               mirror: bool = False) -> ClipSet:
    """Read a shared-layout .npz (or a SignSeek dataset file) and prepare every clip."""
    path = resolve_data_path(path)
    return prepare_dataset(read_dataset(path), cfg, labels, str(path), mirror)
