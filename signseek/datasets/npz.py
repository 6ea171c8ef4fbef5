"""The shared NPZ layout: ``landmarks`` [N, T, V] flat frames, ``label`` [N], optional
``sequence`` and ``session`` [N] (the files in ../shared/datasets/traduttore-asl).

    ds = import_npz("../shared/datasets/traduttore-asl/signs.npz")   # -> SignDataset
    export_npz(ds, "signs_sample.npz", layout="pose_hands")            # back to the shared layout
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..landmarks.layouts import LAYOUTS, LayoutError, canonical_to_flat, flat_to_canonical, get_layout
from .container import UNKNOWN_SIGNER, SignDataset
from .errors import DatasetError

_CHUNK_FRAMES = 4096  # canonical arrays are 6.5 kB a frame: convert a chunk at a time


def layout_landmark_index(layout: str) -> np.ndarray:
    """The canonical points a flat layout carries, in canonical order."""
    spec = LAYOUTS[layout]
    return np.concatenate([np.arange(b.canonical.start, b.canonical.stop) for b in spec.blocks])


def flat_sequences_to_dataset(
    landmarks: np.ndarray,
    labels,
    signers=None,
    source: str = "",
    layout: str | None = None,
    ids=None,
    extra: dict | None = None,
    fps=None,
) -> SignDataset:
    """[N, T, V] flat frames (or a list of [T_i, V]) -> SignDataset storing only the layout's points."""
    clips = list(landmarks)
    if not clips:
        raise DatasetError("no sequences to import")
    n_values = np.asarray(clips[0]).shape[-1]
    try:
        spec = get_layout(layout, n_values)
    except LayoutError as exc:
        raise DatasetError(str(exc)) from None
    index = layout_landmark_index(spec.name)
    lengths = [len(c) for c in clips]
    flat = np.concatenate([np.asarray(c, dtype=np.float32).reshape(len(c), -1) for c in clips])
    if flat.shape[1] != n_values:
        raise DatasetError(f"clips have differing frame sizes ({n_values} and {flat.shape[1]} values)")
    frames = np.empty((len(flat), len(index), 3), np.float32)
    has_vis = any(b.values_per_point == 4 for b in spec.blocks)
    visibility = np.zeros((len(flat), 33), np.float32) if has_vis else None
    for start in range(0, len(flat), _CHUNK_FRAMES):
        points, vis = flat_to_canonical(flat[start : start + _CHUNK_FRAMES], spec.name)
        frames[start : start + len(points)] = points[:, index]
        if visibility is not None and vis is not None:
            visibility[start : start + len(points)] = vis
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SignDataset(frames, offsets, index, labels, signers, source, fps, ids, visibility, extra)


def import_npz(path: str | Path, source: str | None = None, layout: str | None = None) -> SignDataset:
    """Read a shared-layout .npz (landmarks [N, T, 258 | 126 | 1629 | ...], label, sequence, session)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no .npz file at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"could not read {path} as .npz: {exc}") from None
    with data:
        missing = {"landmarks", "label"} - set(data.files)
        if missing:
            raise DatasetError(
                f"{path} lacks {', '.join(sorted(missing))}; the shared layout has landmarks [N, T, V] and label [N]"
            )
        landmarks = data["landmarks"]
        if landmarks.ndim != 3:
            raise DatasetError(f"{path}: landmarks must be [N, T, values], got shape {landmarks.shape}")
        labels = data["label"].astype(str)
        n = len(landmarks)
        if len(labels) != n:
            raise DatasetError(f"{path}: {n} sequences but {len(labels)} labels")
        session = data["session"].tolist() if "session" in data.files else [UNKNOWN_SIGNER] * n
        sequence = data["sequence"] if "sequence" in data.files else np.arange(n)
    name = source or path.parent.name + "/" + path.stem
    ids = [f"{path.stem}:{i}" for i in range(n)]
    return flat_sequences_to_dataset(
        landmarks, labels, session, name, layout, ids, {"sequence": np.asarray(sequence, np.int64)}
    )


def export_npz(dataset: SignDataset, path: str | Path, layout: str = "pose_hands") -> Path:
    """Write ``dataset`` in the shared layout (clips must have one length: landmarks is [N, T, V])."""
    lengths = set(dataset.lengths.tolist())
    if len(lengths) > 1:
        raise DatasetError(f"the shared layout needs clips of one length; these have {sorted(lengths)} frames")
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    flat = np.stack([
        canonical_to_flat(seq.points, layout, seq.visibility) for seq in dataset
    ]) if len(dataset) else np.zeros((0, 0, LAYOUTS[layout].size), np.float32)
    signers = dataset.signers
    sequence = dataset.extra.get("sequence", np.arange(len(dataset)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, landmarks=flat.astype(np.float32), label=dataset.labels,
        sequence=np.asarray(sequence).astype(np.int32), session=signers,
    )
    return path
