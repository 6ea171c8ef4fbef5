"""Rebuild sample_dataset/ from ../shared/datasets, reproducibly (seeded).

    .venv/bin/python scripts/make_sample_dataset.py [--seed 0] [--per-sign 4] [--per-letter 3]

Writes, in the shared NPZ layout (landmarks [N, 20, V], label, sequence, session) so that
`python -m trainer evaluate --data sample_dataset/signs_sample.npz` reads them:
- signs_sample.npz: ``--per-sign`` sequences of every label of traduttore-asl/signs.npz,
  taken round-robin over that label's sessions (so from 2+ sessions wherever it has them);
- fingerspelling_sample.npz: ``--per-letter`` sequences of every label of fingerspelling.npz,
  picked the same way;
- metadata.csv: one row per sample sequence (and per video in sample_dataset/videos/, which
  another step copies there), with its source and license;
- LICENSE-<source> (and CITATION-msl150-clips.cff): the licenses of the sources.
The rows are copied byte for byte from the source arrays; nothing is recomputed.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled
from signseek.paths import SAMPLE_DATASET, SHARED_DATASETS  # noqa: E402

SOURCES = {
    "traduttore-asl": "MIT (Copyright (c) 2022 traduttore)",
    "msl150-clips": "MIT (MSL-150, cite CITATION-msl150-clips.cff)",
    "webcam-clip": "MIT (Copyright (c) 2021 Amit Moryossef, pose-format test data)",
}
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi")


def pick_round_robin(labels: np.ndarray, sessions: np.ndarray, per_label: int, rng) -> np.ndarray:
    """``per_label`` indices of every label: one from each of its sessions in turn (shuffled)."""
    chosen = []
    for label in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == label)
        by_session = {s: list(rng.permutation(idx[sessions[idx] == s]))
                      for s in sorted(set(sessions[idx].tolist()))}
        order = [list(by_session)[i] for i in rng.permutation(len(by_session))]
        taken: list[int] = []
        while len(taken) < min(per_label, len(idx)):
            for s in order:
                if by_session[s] and len(taken) < per_label:
                    taken.append(int(by_session[s].pop()))
        chosen += sorted(taken)
    return np.asarray(sorted(chosen))


def write_subset(source: Path, out: Path, per_label: int, seed: int) -> list[dict]:
    with np.load(source) as data:
        arrays = {k: data[k] for k in ("landmarks", "label", "sequence", "session")}
    rng = np.random.default_rng(seed)
    idx = pick_round_robin(arrays["label"], arrays["session"], per_label, rng)
    np.savez_compressed(out, **{k: v[idx] for k, v in arrays.items()})
    return [
        {"file": out.name, "index": i, "label": str(arrays["label"][j]), "session": int(arrays["session"][j]),
         "sequence": int(arrays["sequence"][j]), "source": f"traduttore-asl/{source.name}",
         "source_index": int(j), "license": SOURCES["traduttore-asl"]}
        for i, j in enumerate(idx)
    ]


def video_rows(videos_dir: Path) -> list[dict]:
    """Rows for the videos already copied into sample_dataset/videos/ (matched to their source)."""
    rows = []
    if not videos_dir.is_dir():
        return rows
    for video in sorted(f for f in videos_dir.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS):
        origin = next((name for name in SOURCES if (SHARED_DATASETS / name / video.name).is_file()), "")
        label = video.stem.rsplit("_", 1)[0] if origin == "msl150-clips" else ""
        rows.append({"file": f"videos/{video.name}", "index": "", "label": label, "session": "",
                     "sequence": "", "source": f"{origin}/{video.name}" if origin else "unknown",
                     "source_index": "", "license": SOURCES.get(origin, "see the file's source")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-sign", type=int, default=4)
    parser.add_argument("--per-letter", type=int, default=3)
    args = parser.parse_args()
    if not SHARED_DATASETS.is_dir():
        sys.exit(f"error: no shared datasets at {SHARED_DATASETS}")
    SAMPLE_DATASET.mkdir(exist_ok=True)
    asl = SHARED_DATASETS / "traduttore-asl"
    rows = write_subset(asl / "signs.npz", SAMPLE_DATASET / "signs_sample.npz", args.per_sign, args.seed)
    rows += write_subset(asl / "fingerspelling.npz", SAMPLE_DATASET / "fingerspelling_sample.npz",
                         args.per_letter, args.seed)
    rows += video_rows(SAMPLE_DATASET / "videos")
    with open(SAMPLE_DATASET / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for name in SOURCES:
        shutil.copyfile(SHARED_DATASETS / name / "LICENSE", SAMPLE_DATASET / f"LICENSE-{name}")
    shutil.copyfile(SHARED_DATASETS / "msl150-clips" / "CITATION.cff", SAMPLE_DATASET / "CITATION-msl150-clips.cff")
    total = sum(f.stat().st_size for f in SAMPLE_DATASET.rglob("*") if f.is_file())
    print(f"wrote {len(rows)} metadata rows to {SAMPLE_DATASET}; folder size {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
