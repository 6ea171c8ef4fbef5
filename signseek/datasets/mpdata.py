""""MP_Data" folders, the layout of the MediaPipe action-recognition tutorials:
``MP_Data/<label>/<sequence>/<frame>.npy``, one flat vector a frame (1662, 258, 170 or 126
values, told apart by length), or ``MP_Data/<label>/<sequence>.npy`` holding [T, V].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..landmarks.layouts import LayoutError, detect_layout
from .container import UNKNOWN_SIGNER, SignDataset
from .errors import DatasetError
from .npz import flat_sequences_to_dataset


def _natural_key(path: Path):
    # "10" after "9": the tutorials name frames and sequences 0..N without padding.
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def _read_frames(seq: Path) -> np.ndarray:
    if seq.is_file():
        arr = np.load(seq, allow_pickle=False)
        return arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(len(arr), -1)
    files = sorted(seq.glob("*.npy"), key=_natural_key)
    if not files:
        raise DatasetError(f"sequence folder {seq} holds no .npy frames")
    return np.stack([np.load(f, allow_pickle=False).reshape(-1) for f in files])


def import_mpdata(root: str | Path, source: str | None = None, layout: str | None = None) -> SignDataset:
    """Read an MP_Data tree; each label's sequences become clips (signer unknown)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no MP_Data folder at {root}")
    clips, labels, ids = [], [], []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for seq in sorted(label_dir.iterdir(), key=_natural_key):
            if seq.name.startswith(".") or not (seq.is_dir() or seq.suffix == ".npy"):
                continue
            frames = _read_frames(seq)
            clips.append(frames.astype(np.float32))
            labels.append(label_dir.name)
            ids.append(f"{label_dir.name}/{seq.stem}")
    if not clips:
        raise DatasetError(f"{root} has no <label>/<sequence>/<frame>.npy files")
    sizes = {c.shape[1] for c in clips}
    if len(sizes) > 1:
        raise DatasetError(f"{root}: frames have differing lengths {sorted(sizes)}; one layout a folder")
    try:
        detect_layout(sizes.pop()) if layout is None else None
    except LayoutError as exc:
        raise DatasetError(f"{root}: {exc}") from None
    return flat_sequences_to_dataset(
        clips, labels, [UNKNOWN_SIGNER] * len(clips), source or f"mpdata/{root.name}", layout, ids
    )
