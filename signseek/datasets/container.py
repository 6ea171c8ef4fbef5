"""`SignDataset`: many variable-length landmark clips, stored compactly, saved as one .npz.

Sources rarely fill all 543 canonical points: the shared 258-value data has pose and hands but
no face, so storing each frame as [543, 3] would be mostly NaN. A dataset keeps only the
points its source can have (``landmark_index`` maps stored point j to canonical point
``landmark_index[j]``), all clips' frames concatenated into one ``frames[total_frames, P, 3]``
array with ``offsets`` marking where each clip starts, and builds the canonical array of one
clip when asked:

    ds = SignDataset.load("signs.npz")
    ds.points(0)        # [T, 543, 3] float32, NaN where not detected
    ds[0]               # LandmarkSequence with label, signer, source, id in .meta
    ds.subset([0, 5])   # a new dataset of those clips
    ds.save("out.npz")  # one file, with a format version
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..landmarks.schema import N_DIMS, N_LANDMARKS, N_POSE, PARTS, LandmarkSequence, empty_points
from .errors import DatasetError

FORMAT_NAME = "signseek-dataset"
FORMAT_VERSION = 1
UNKNOWN_SIGNER = -1  # signer/session when the source does not say


@dataclass
class ImportReport:
    """What an import did beyond the clips it returns: which inputs it skipped and why."""

    imported: int = 0
    extracted: int = 0  # videos run through MediaPipe in this call
    cached: int = 0  # videos whose landmarks came from the cache of an earlier run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)

    def lines(self) -> list[str]:
        out = [f"imported {self.imported} clips ({self.extracted} extracted, {self.cached} from cache)"]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)}:")
            out.extend(f"  {name}: {reason}" for name, reason in self.skipped)
        return out


def _as_signers(signers, n: int) -> np.ndarray:
    """Signer/session ids as an int64 array when all are integers, else as strings."""
    if signers is None:
        return np.full(n, UNKNOWN_SIGNER, dtype=np.int64)
    values = list(signers)
    if len(values) != n:
        raise DatasetError(f"{len(values)} signers for {n} clips")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in values], dtype=str)


def _broadcast_str(value, n: int, what: str) -> np.ndarray:
    if value is None or isinstance(value, str):
        return np.full(n, value or "", dtype=object).astype(str)
    values = [str(v) for v in value]
    if len(values) != n:
        raise DatasetError(f"{len(values)} {what} for {n} clips")
    return np.asarray(values, dtype=str) if values else np.zeros(0, dtype="<U1")


class SignDataset:
    """Labelled landmark clips in a compact store; see the module docstring."""

    def __init__(
        self,
        frames: np.ndarray,
        offsets: np.ndarray,
        landmark_index: np.ndarray,
        labels: Sequence[str],
        signers: Sequence | None = None,
        source: str | Sequence[str] = "",
        fps: float | Sequence[float] | None = None,
        ids: Sequence[str] | None = None,
        visibility: np.ndarray | None = None,
        extra: dict[str, Sequence] | None = None,
    ) -> None:
        self.frames = np.asarray(frames, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.landmark_index = np.asarray(landmark_index, dtype=np.int64)
        n = len(self.offsets) - 1
        if n < 0 or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise DatasetError("offsets must start at 0 and never decrease")
        if self.frames.ndim != 3 or self.frames.shape[1:] != (len(self.landmark_index), N_DIMS):
            raise DatasetError(
                f"frames must be [total_frames, {len(self.landmark_index)}, {N_DIMS}], "
                f"got {self.frames.shape}"
            )
        if self.offsets[-1] != len(self.frames):
            raise DatasetError(f"offsets end at {self.offsets[-1]} but there are {len(self.frames)} frames")
        if np.any(self.landmark_index < 0) or np.any(self.landmark_index >= N_LANDMARKS):
            raise DatasetError(f"landmark_index must lie in 0..{N_LANDMARKS - 1}")
        if len(np.unique(self.landmark_index)) != len(self.landmark_index):
            raise DatasetError("landmark_index has repeated points")
        if isinstance(labels, str):
            raise DatasetError("labels must be one per clip, not a single string")
        self.labels = _broadcast_str(labels, n, "labels")
        self.signers = _as_signers(signers, n)
        self.sources = _broadcast_str(source, n, "sources")
        if fps is None or np.isscalar(fps):
            self.fps = np.full(n, np.nan if fps is None else float(fps), dtype=np.float64)
        else:
            self.fps = np.asarray([np.nan if f is None else float(f) for f in fps], dtype=np.float64)
            if len(self.fps) != n:
                raise DatasetError(f"{len(self.fps)} fps values for {n} clips")
        self.ids = _broadcast_str(ids if ids is not None else [str(i) for i in range(n)], n, "ids")
        self.visibility = None if visibility is None else np.asarray(visibility, dtype=np.float32)
        if self.visibility is not None and self.visibility.shape != (len(self.frames), N_POSE):
            raise DatasetError(f"visibility must be [{len(self.frames)}, {N_POSE}], got {self.visibility.shape}")
        self.extra: dict[str, np.ndarray] = {}
        for name, column in (extra or {}).items():
            column = np.asarray(column)
            if len(column) != n:
                raise DatasetError(f"extra column {name!r} has {len(column)} values for {n} clips")
            if column.dtype == object:
                column = column.astype(str)
            self.extra[name] = column
        # Not saved: what the import that built this dataset skipped (videos, images).
        self.report: ImportReport | None = None

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[np.ndarray | LandmarkSequence],
        labels: Sequence[str],
        signers: Sequence | None = None,
        source: str | Sequence[str] = "",
        fps: float | Sequence[float] | None = None,
        ids: Sequence[str] | None = None,
        extra: dict[str, Sequence] | None = None,
        landmark_index: np.ndarray | None = None,
        visibility: Sequence[np.ndarray | None] | None = None,
    ) -> SignDataset:
        """Build from canonical [T, 543, 3] arrays (or LandmarkSequences).

        ``landmark_index`` defaults to every point that is finite somewhere in the clips.
        fps and visibility are taken from LandmarkSequences when not given.
        """
        arrays, vis = [], []
        fps_list = []
        for i, seq in enumerate(sequences):
            if isinstance(seq, LandmarkSequence):
                arrays.append(seq.points)
                vis.append(seq.visibility)
                fps_list.append(seq.fps)
            else:
                pts = np.asarray(seq, dtype=np.float32)
                if pts.ndim != 3 or pts.shape[1:] != (N_LANDMARKS, N_DIMS):
                    raise DatasetError(f"clip {i} has shape {pts.shape}, expected [T, {N_LANDMARKS}, {N_DIMS}]")
                arrays.append(pts)
                vis.append(None)
                fps_list.append(None)
        if visibility is not None:
            vis = list(visibility)
        if fps is None:
            fps = fps_list
        if landmark_index is None:
            present = np.zeros(N_LANDMARKS, dtype=bool)
            for pts in arrays:
                present |= np.isfinite(pts).any(axis=(0, 2))
            landmark_index = np.flatnonzero(present)
        landmark_index = np.asarray(landmark_index, dtype=np.int64)
        lengths = [len(a) for a in arrays]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        frames = (
            np.concatenate([a[:, landmark_index] for a in arrays])
            if arrays
            else np.zeros((0, len(landmark_index), N_DIMS), np.float32)
        )
        visibility_all = None
        if any(v is not None for v in vis):
            visibility_all = np.concatenate(
                [np.zeros((n, N_POSE), np.float32) if v is None else np.asarray(v, np.float32)
                 for v, n in zip(vis, lengths, strict=True)]
            )
        return cls(frames, offsets, landmark_index, labels, signers, source, fps, ids, visibility_all, extra)

    @classmethod
    def concatenate(cls, datasets: Sequence[SignDataset]) -> SignDataset:
        """One dataset holding the clips of all ``datasets`` in order (stored points: the union)."""
        if not datasets:
            raise DatasetError("nothing to concatenate")
        index = np.unique(np.concatenate([d.landmark_index for d in datasets]))
        frames, vis = [], []
        for d in datasets:
            block = np.full((len(d.frames), len(index), N_DIMS), np.nan, np.float32)
            block[:, np.searchsorted(index, d.landmark_index)] = d.frames
            frames.append(block)
            vis.append(d.visibility if d.visibility is not None else np.zeros((len(d.frames), N_POSE), np.float32))
        lengths = np.concatenate([d.lengths for d in datasets])
        signers = [s for d in datasets for s in d.signers.tolist()]
        names = set.intersection(*(set(d.extra) for d in datasets))
        return cls(
            np.concatenate(frames),
            np.concatenate([[0], np.cumsum(lengths)]),
            index,
            np.concatenate([d.labels for d in datasets]),
            signers,
            np.concatenate([d.sources for d in datasets]),
            np.concatenate([d.fps for d in datasets]),
            np.concatenate([d.ids for d in datasets]),
            np.concatenate(vis) if any(d.visibility is not None for d in datasets) else None,
            {name: np.concatenate([d.extra[name] for d in datasets]) for name in names},
        )

    # ---- access ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """[N] frames per clip."""
        return np.diff(self.offsets)

    @property
    def label_names(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels.tolist()))

    def label_ids(self, names: Sequence[str] | None = None) -> np.ndarray:
        """[N] int position of each clip's label in ``names`` (default ``label_names``)."""
        lookup = {name: i for i, name in enumerate(names or self.label_names)}
        try:
            return np.asarray([lookup[label] for label in self.labels], dtype=np.int64)
        except KeyError as exc:
            raise DatasetError(f"label {exc.args[0]!r} is not in the given names") from None

    def _check_index(self, i: int) -> int:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"clip {i} out of range for a dataset of {len(self)}")
        return i % len(self)

    def points(self, i: int) -> np.ndarray:
        """Clip ``i`` as the canonical [T, 543, 3] float32 array (NaN = not detected)."""
        i = self._check_index(i)
        stored = self.frames[self.offsets[i] : self.offsets[i + 1]]
        out = empty_points(len(stored))
        out[:, self.landmark_index] = stored
        return out

    def __getitem__(self, i: int) -> LandmarkSequence:
        i = self._check_index(i)
        vis = None
        if self.visibility is not None:
            vis = self.visibility[self.offsets[i] : self.offsets[i + 1]]
        meta = {
            "label": str(self.labels[i]),
            "signer": self.signers[i].item(),
            "source": str(self.sources[i]),
            "id": str(self.ids[i]),
            "index": i,
        }
        meta.update({name: column[i].item() for name, column in self.extra.items()})
        fps = None if np.isnan(self.fps[i]) else float(self.fps[i])
        return LandmarkSequence(self.points(i), visibility=vis, fps=fps, meta=meta)

    def __iter__(self) -> Iterator[LandmarkSequence]:
        for i in range(len(self)):
            yield self[i]

    def subset(self, indices: Sequence[int] | np.ndarray) -> SignDataset:
        """A new dataset of the clips at ``indices`` (in that order)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DatasetError(f"subset index out of range for a dataset of {len(self)}")
        idx %= max(len(self), 1)
        lengths = self.lengths[idx]
        rows = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
            if len(idx)
            else np.zeros(0, np.int64)
        )
        return SignDataset(
            self.frames[rows],
            np.concatenate([[0], np.cumsum(lengths)]),
            self.landmark_index,
            self.labels[idx],
            self.signers[idx].tolist(),
            self.sources[idx],
            self.fps[idx],
            self.ids[idx],
            None if self.visibility is None else self.visibility[rows],
            {name: column[idx] for name, column in self.extra.items()},
        )

    # ---- summary -----------------------------------------------------------------------------

    def part_frames(self) -> dict[str, int]:
        """Frames (over all clips) in which each part was detected; 0 for parts not stored."""
        counts = {}
        for part, sl in PARTS.items():
            cols = np.flatnonzero((self.landmark_index >= sl.start) & (self.landmark_index < sl.stop))
            if len(cols) < sl.stop - sl.start:
                counts[part] = 0  # the source never has this whole part
                continue
            counts[part] = int(np.isfinite(self.frames[:, cols]).all(axis=(1, 2)).sum())
        return counts

    def summary(self) -> dict:
        """Counts for `signseek-data inspect`: per label, per signer, frames, parts detected."""
        lengths = self.lengths
        stored_parts = [
            part for part, sl in PARTS.items()
            if np.any((self.landmark_index >= sl.start) & (self.landmark_index < sl.stop))
        ]
        fps = self.fps[~np.isnan(self.fps)]
        return {
            "clips": len(self),
            "labels": len(self.label_names),
            "signers": len(set(self.signers.tolist())),
            "frames": int(lengths.sum()),
            "frames_per_clip": {
                "min": int(lengths.min()) if len(lengths) else 0,
                "mean": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
                "max": int(lengths.max()) if len(lengths) else 0,
            },
            "fps": sorted({round(float(f), 3) for f in fps}),
            "stored_points": len(self.landmark_index),
            "stored_parts": stored_parts,
            "part_frames": self.part_frames(),
            "sources": dict(Counter(self.sources.tolist())),
            "per_label": dict(sorted(Counter(self.labels.tolist()).items())),
            "per_signer": {str(k): v for k, v in sorted(Counter(self.signers.tolist()).items())},
        }

    def __repr__(self) -> str:
        return (
            f"SignDataset({len(self)} clips, {len(self.label_names)} labels, "
            f"{len(self.frames)} frames, {len(self.landmark_index)} points stored)"
        )

    # ---- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path, compress: bool = True) -> Path:
        """Write the dataset to one .npz file (the suffix is added when missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "format": np.asarray(FORMAT_NAME),
            "format_version": np.asarray(FORMAT_VERSION),
            "frames": self.frames,
            "offsets": self.offsets,
            "landmark_index": self.landmark_index,
            "label": self.labels,
            "signer": self.signers,
            "source": self.sources,
            "fps": self.fps,
            "id": self.ids,
            "extra_names": np.asarray(json.dumps(sorted(self.extra))),
        }
        if self.visibility is not None:
            arrays["visibility"] = self.visibility
        for name, column in self.extra.items():
            arrays[f"extra__{name}"] = column
        (np.savez_compressed if compress else np.savez)(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SignDataset:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"no dataset file at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format" not in data.files or str(data["format"]) != FORMAT_NAME:
                    raise DatasetError(
                        f"{path} is not a SignSeek dataset file; import it first "
                        f"(signseek-data import {path} --format npz --out OUT.npz)"
                    )
                version = int(data["format_version"])
                if version > FORMAT_VERSION:
                    raise DatasetError(
                        f"{path} has dataset format version {version}; this SignSeek reads up to "
                        f"{FORMAT_VERSION}: upgrade SignSeek"
                    )
                names = json.loads(str(data["extra_names"]))
                return cls(
                    data["frames"],
                    data["offsets"],
                    data["landmark_index"],
                    data["label"],
                    data["signer"].tolist(),
                    data["source"],
                    data["fps"],
                    data["id"],
                    data["visibility"] if "visibility" in data.files else None,
                    {name: data[f"extra__{name}"] for name in names},
                )
        except (OSError, ValueError, KeyError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"could not read dataset {path}: {exc}") from None


def is_dataset_file(path: str | Path) -> bool:
    """True when ``path`` is an .npz written by :meth:`SignDataset.save`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "format" in data.files and str(data["format"]) == FORMAT_NAME
    except (OSError, ValueError):
        return False
