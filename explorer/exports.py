"""Exports: a selection of clips (table, SignSeek dataset file) and embeddings for TensorBoard's projector.

    projector_zip(vectors, records)       # bytes of a zip: tensors.tsv, metadata.tsv, projector_config.pbtxt
    dataset_bytes(dataset, [3, 7, 9])     # bytes of a SignSeek dataset .npz holding those clips
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

SELECTION_COLUMNS = ["query", "label", "pred", "answer", "accepted", "rejection_reason", "score", "margin",
                     "session", "model", "sample_id"]
METADATA_COLUMNS = ["label", "pred", "outcome", "session", "model", "query", "sample_id"]
PROJECTOR_CONFIG = """embeddings {
  tensor_name: "signseek"
  tensor_path: "tensors.tsv"
  metadata_path: "metadata.tsv"
}
"""


def selection_table(records: pd.DataFrame, queries) -> pd.DataFrame:
    """The chosen clips, every one, with what the engine said about each."""
    return records.loc[list(queries), SELECTION_COLUMNS].reset_index(drop=True).round(4)


def _tsv_cell(value) -> str:
    return str(value).replace("\t", " ").replace("\n", " ") or "(none)"


def projector_files(vectors: np.ndarray, records: pd.DataFrame) -> dict[str, str]:
    """TensorBoard projector's three files: one vector per line, a metadata row per vector (with a
    header, since there is more than one column), and the config tying them together."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) != len(records):
        raise ValueError(f"{len(vectors)} vectors for {len(records)} records")
    tensors = "".join("\t".join(f"{v:.6g}" for v in row) + "\n" for row in vectors)
    meta = records[METADATA_COLUMNS]
    lines = ["\t".join(METADATA_COLUMNS)] + ["\t".join(_tsv_cell(v) for v in row) for row in meta.itertuples(index=False)]
    return {"tensors.tsv": tensors, "metadata.tsv": "\n".join(lines) + "\n", "projector_config.pbtxt": PROJECTOR_CONFIG}


def projector_zip(vectors: np.ndarray, records: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in projector_files(vectors, records).items():
            archive.writestr(name, text)
    return buffer.getvalue()


def dataset_bytes(dataset, queries) -> bytes:
    """The chosen clips as a SignSeek dataset file (SignDataset.save), which the explorer, the
    trainer and `python -m signseek.datasets` all open."""
    subset = dataset.subset(np.asarray(list(queries), dtype=np.int64))
    with tempfile.TemporaryDirectory(prefix="signseek-explorer-") as tmp:
        path = subset.save(Path(tmp) / "selection.npz")
        return path.read_bytes()
