"""Datasets in the three layouts the explorer opens, for its tests (real clips only).

- pose + hands: sample_dataset/signs_sample.npz (shared NPZ, 258 values a frame)
- hands only:   sample_dataset/fingerspelling_sample.npz (shared NPZ, 126 values a frame)
- canonical:    a SignDataset file made here from real clips: the sample videos run through
                MediaPipe Holistic by signseek.datasets (signs the bundle does not have, each with
                its source video recorded), plus a few signs_sample clips of signs it has.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from signseek.paths import SAMPLE_DATASET

SIGNS = SAMPLE_DATASET / "signs_sample.npz"
HANDS = SAMPLE_DATASET / "fingerspelling_sample.npz"
VIDEOS = SAMPLE_DATASET / "videos"
# 8 known signs x 2 clips from signs_sample (one from each of two sessions where there are two).
KNOWN_CLIPS = 16


def make_canonical_dataset(folder: Path) -> Path:
    """Write folder/canonical.npz (SignDataset.save) and return its path."""
    from signseek.datasets import SignDataset, extract_jobs, import_npz
    from signseek.datasets.videos import VideoJob

    folder.mkdir(parents=True, exist_ok=True)
    clips = folder / "videos"
    jobs = []
    for video in (VIDEOS / "hoy_001.mp4", VIDEOS / "signer_selfie.mp4"):
        target = clips / video.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(video, target)
        label = video.stem.split("_")[0].replace("signer", "selfie")
        jobs.append(VideoJob(str(target), label, signer="video", clip_id=video.name))
    # The importer's own cache (~/.cache/signseek/extract): extracted once per machine.
    extracted = extract_jobs(jobs, workers=1, progress=False, source="videos")
    signs = import_npz(SIGNS)
    picked = np.concatenate([np.flatnonzero(signs.labels == label)[:2] for label in signs.label_names[1:9]])
    known = signs.subset(picked[:KNOWN_CLIPS])
    sequences = [known.points(i) for i in range(len(known))] + [extracted.points(i) for i in range(len(extracted))]
    dataset = SignDataset.from_sequences(
        sequences,
        labels=[*known.labels.tolist(), *extracted.labels.tolist()],
        signers=[str(s) for s in known.signers.tolist()] + extracted.signers.tolist(),
        ids=[*known.ids.tolist(), *extracted.ids.tolist()],
        extra={"path": [""] * len(known) + extracted.extra["path"].tolist(),
               "frame_start": [0] * len(known) + extracted.extra["frame_start"].tolist()},
    )
    # Only the video clips (signs the bundle does not have): a negatives file for the open-set page.
    extracted.save(folder / "negatives.npz")
    return dataset.save(folder / "canonical.npz")


def negatives_of(canonical: Path) -> Path:
    """The negatives file make_canonical_dataset wrote beside ``canonical``."""
    return canonical.with_name("negatives.npz")
