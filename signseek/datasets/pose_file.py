"""pose-format ``.pose`` files (https://github.com/sign-language-processing/pose).

Components are matched by name: POSE_LANDMARKS (33), FACE_LANDMARKS (468, or 478 with the
irises: the first 468 are the canonical face), LEFT_HAND_LANDMARKS and RIGHT_HAND_LANDMARKS
(21 each); others (POSE_WORLD_LANDMARKS, ...) are ignored. pose-format's MediaPipe converter
stores x and y in pixels and z as MediaPipe gives it, so x / width and y / height of the
header give back MediaPipe's image-normalised coordinates. A masked point (confidence 0: not
detected) becomes NaN; a component with every point masked in a frame is a part not detected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..landmarks.schema import FACE, LEFT_HAND, N_POSE, POSE, RIGHT_HAND, LandmarkSequence, empty_points
from .container import UNKNOWN_SIGNER, SignDataset
from .errors import DatasetError

COMPONENT_SLOTS = {
    "POSE_LANDMARKS": POSE,
    "FACE_LANDMARKS": FACE,
    "LEFT_HAND_LANDMARKS": LEFT_HAND,
    "RIGHT_HAND_LANDMARKS": RIGHT_HAND,
}


def read_pose_file(path: str | Path, person: int = 0) -> LandmarkSequence:
    """One .pose file -> LandmarkSequence (canonical points, pose visibility, fps)."""
    from pose_format import Pose  # imported here: only this importer needs it

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no .pose file at {path}")
    try:
        pose = Pose.read(path.read_bytes())
    except Exception as exc:  # pose-format raises struct/Value/Index errors on bad bytes
        raise DatasetError(f"could not read {path} as a .pose file: {exc}") from None
    header, body = pose.header, pose.body
    data = np.ma.asarray(body.data)  # [T, people, points, dims]
    if data.shape[1] <= person:
        raise DatasetError(f"{path} has {data.shape[1]} people; person {person} asked for")
    width = float(header.dimensions.width or 1)
    height = float(header.dimensions.height or 1)
    conf = np.asarray(body.confidence)[:, person]
    values = np.asarray(data.data[:, person], np.float32)
    mask = np.ma.getmaskarray(data[:, person]).any(axis=-1) | (conf <= 0)
    points = empty_points(len(values))
    visibility = None
    found = False
    offset = 0
    for component in header.components:
        n_points = len(component.points)
        slot = COMPONENT_SLOTS.get(component.name)
        if slot is not None:
            want = slot.stop - slot.start
            if n_points < want:
                raise DatasetError(f"{path}: {component.name} has {n_points} points, expected {want}")
            xyz = values[:, offset : offset + want, :3].copy()
            if xyz.shape[-1] < 3:  # a 2-D pose file: no depth
                xyz = np.concatenate([xyz, np.zeros((*xyz.shape[:2], 3 - xyz.shape[-1]), np.float32)], -1)
            xyz[..., 0] /= width
            xyz[..., 1] /= height
            missing = mask[:, offset : offset + want]
            xyz[missing] = np.nan
            points[:, slot] = xyz
            if slot == POSE:
                visibility = np.where(missing, 0.0, conf[:, offset : offset + N_POSE]).astype(np.float32)
            found = True
        offset += n_points
    if not found:
        names = [c.name for c in header.components]
        raise DatasetError(f"{path}: no MediaPipe Holistic components (found {names})")
    fps = float(body.fps) if body.fps else None
    return LandmarkSequence(points, visibility=visibility, fps=fps, meta={"path": str(path)})


def import_pose(path: str | Path, label: str | None = None, source: str = "pose") -> SignDataset:
    """A .pose file, or a folder of them: ``<root>/<label>/*.pose`` or ``<root>/*.pose``.

    The label is ``label`` when given, else the file's folder name (labelled layout) or stem.
    """
    path = Path(path)
    if path.is_file():
        files = [(path, label or path.stem)]
    elif path.is_dir():
        files = [(f, label or f.parent.name) for f in sorted(path.glob("*/*.pose"))]
        files += [(f, label or f.stem) for f in sorted(path.glob("*.pose"))]
    else:
        raise DatasetError(f"no .pose file or folder at {path}")
    if not files:
        raise DatasetError(f"{path} holds no .pose files")
    sequences = [read_pose_file(f) for f, _ in files]
    return SignDataset.from_sequences(
        sequences,
        labels=[lab for _, lab in files],
        signers=[UNKNOWN_SIGNER] * len(files),
        source=source,
        ids=[str(f.relative_to(path) if path.is_dir() else f.name) for f, _ in files],
    )
