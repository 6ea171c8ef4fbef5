"""Folders of labelled still images (the Kaggle "ASL Alphabet" layout: ``<root>/<letter>/*.jpg``)
through MediaPipe Hands, for static handshapes: each image becomes a one-frame clip with only
the hand slots filled.

MediaPipe Hands labels handedness as if the image were mirrored (a selfie view); Holistic,
which made every other dataset here, does not. On the same unmirrored frame Hands' "Right"
hand is Holistic's ``left_hand`` (checked on the MSL clips: same wrist, opposite label), so
the labels are swapped to land in the canonical slots Holistic would use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..landmarks.schema import LEFT_HAND, N_LANDMARKS, RIGHT_HAND
from .container import UNKNOWN_SIGNER, ImportReport, SignDataset
from .errors import DatasetError

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Hands' label on an unmirrored image -> the canonical slot Holistic fills for that hand.
HANDEDNESS_SLOT = {"Right": LEFT_HAND, "Left": RIGHT_HAND}


def image_files(root: str | Path, limit_per_label: int | None = None) -> list[tuple[Path, str]]:
    """(image, label) for ``<root>/<label>/<image>``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no images folder at {root}")
    found = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in label_dir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        found += [(f, label_dir.name) for f in files[:limit_per_label]]
    if not found:
        raise DatasetError(f"{root} has no <label>/<image>{'|'.join(IMAGE_EXTENSIONS)} files")
    return found


def hands_to_points(results) -> np.ndarray:
    """MediaPipe Hands results -> canonical [1, 543, 3] with the hands in Holistic's slots."""
    points = np.full((1, N_LANDMARKS, 3), np.nan, np.float32)
    for landmarks, handedness in zip(
        results.multi_hand_landmarks or [], results.multi_handedness or [], strict=False
    ):
        slot = HANDEDNESS_SLOT[handedness.classification[0].label]
        if np.isfinite(points[0, slot]).all():
            continue  # two hands with one label: keep the more confident (listed first)
        points[0, slot] = [(p.x, p.y, p.z) for p in landmarks.landmark]
    return points


def import_images(
    root: str | Path, limit_per_label: int | None = None, progress: bool = True, source: str | None = None
) -> SignDataset:
    """Run MediaPipe Hands on every image; images without a hand are skipped and reported."""
    import cv2
    import mediapipe as mp

    files = image_files(root, limit_per_label)
    report = ImportReport()
    clips, labels, ids = [], [], []
    root = Path(root)
    with mp.solutions.hands.Hands(static_image_mode=True, model_complexity=1, max_num_hands=2) as hands:
        for path, label in tqdm(files, desc="images", unit="image", disable=not progress):
            image = cv2.imread(str(path))
            if image is None:
                report.skipped.append((str(path), "not a readable image"))
                continue
            points = hands_to_points(hands.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
            if not np.isfinite(points).any():
                report.skipped.append((str(path), "no hand detected"))
                continue
            clips.append(points)
            labels.append(label)
            ids.append(str(path.relative_to(root)))
    for name, reason in report.skipped:
        log.warning("skipped %s: %s", name, reason)
    report.imported = len(clips)
    if not clips:
        raise DatasetError(f"no hand found in any image under {root}")
    index = np.concatenate([np.arange(LEFT_HAND.start, LEFT_HAND.stop), np.arange(RIGHT_HAND.start, RIGHT_HAND.stop)])
    dataset = SignDataset.from_sequences(
        clips, labels, [UNKNOWN_SIGNER] * len(clips), source or f"images/{root.name}", ids=ids,
        landmark_index=index,
    )
    dataset.report = report
    return dataset
