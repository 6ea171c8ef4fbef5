"""Kaggle "Isolated Sign Language Recognition" (Google ASL Signs) parquet files.

Layout: ``train.csv`` with columns path, participant_id, sequence_id, sign, and one parquet a
clip (the ``path``, relative to the csv's folder) with one row per frame and landmark:
frame, type (face | left_hand | pose | right_hand), landmark_index, x, y, z. NaN x/y/z marks
a point that was not detected. ISLR's face has the 468 mesh points of the canonical face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..landmarks.schema import FACE, LEFT_HAND, N_LANDMARKS, POSE, RIGHT_HAND
from .container import SignDataset
from .errors import DatasetError

# Where each ISLR landmark type starts in the canonical order, and how many points it has.
TYPE_OFFSET = {
    "pose": (POSE.start, POSE.stop - POSE.start),
    "face": (FACE.start, FACE.stop - FACE.start),
    "left_hand": (LEFT_HAND.start, LEFT_HAND.stop - LEFT_HAND.start),
    "right_hand": (RIGHT_HAND.start, RIGHT_HAND.stop - RIGHT_HAND.start),
}
COLUMNS = ["frame", "type", "landmark_index", "x", "y", "z"]


def read_islr_parquet(path: str | Path) -> np.ndarray:
    """One ISLR parquet -> canonical [T, 543, 3] (frames in order of their frame number)."""
    import pandas as pd  # only ISLR needs it; keep `import signseek.datasets` light

    try:
        df = pd.read_parquet(path, columns=COLUMNS)
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"could not read ISLR parquet {path}: {exc}") from None
    unknown = set(df["type"].unique()) - set(TYPE_OFFSET)
    if unknown:
        raise DatasetError(f"{path}: unknown landmark type(s) {sorted(unknown)}; expected {sorted(TYPE_OFFSET)}")
    frame_numbers, frame_pos = np.unique(df["frame"].to_numpy(), return_inverse=True)
    types = df["type"].to_numpy()
    index = df["landmark_index"].to_numpy().astype(np.int64)
    canonical = np.empty(len(df), np.int64)
    for name, (start, count) in TYPE_OFFSET.items():
        rows = types == name
        if np.any(index[rows] >= count) or np.any(index[rows] < 0):
            raise DatasetError(f"{path}: {name} landmark_index outside 0..{count - 1}")
        canonical[rows] = start + index[rows]
    points = np.full((len(frame_numbers), N_LANDMARKS, 3), np.nan, np.float32)
    points[frame_pos, canonical] = df[["x", "y", "z"]].to_numpy(np.float32)
    return points


def import_islr(csv_path: str | Path, limit: int | None = None, source: str = "islr") -> SignDataset:
    """Read the clips ``train.csv`` lists (participant_id becomes the signer).

    ``csv_path`` may also be the folder that holds train.csv.
    """
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "train.csv"
    if not csv_path.is_file():
        raise DatasetError(f"no ISLR train.csv at {csv_path}")
    import pandas as pd

    table = pd.read_csv(csv_path)
    missing = {"path", "participant_id", "sequence_id", "sign"} - set(table.columns)
    if missing:
        raise DatasetError(f"{csv_path} lacks column(s) {', '.join(sorted(missing))}")
    if limit is not None:
        table = table.head(limit)
    clips = [read_islr_parquet(csv_path.parent / p) for p in table["path"]]
    return SignDataset.from_sequences(
        clips,
        labels=table["sign"].astype(str).tolist(),
        signers=[int(p) for p in table["participant_id"]],
        source=source,
        ids=[str(s) for s in table["sequence_id"]],
        extra={"path": table["path"].astype(str).to_numpy()},
    )
