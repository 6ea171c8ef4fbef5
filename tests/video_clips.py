"""Short real clips for the video importer tests (not a test module).

The clips are cut from the real videos in sample_dataset/videos/ (the MSL-150 and selfie clips)
to a few frames (cv2.VideoWriter, mp4) so MediaPipe runs stay short.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from signseek.paths import SAMPLE_DATASET, SHARED_DATASETS

N_FRAMES = 6


def real_videos() -> list[Path]:
    # The project's copies first; the shared originals when the copies are not there yet.
    for folder in (SAMPLE_DATASET / "videos", SHARED_DATASETS / "msl150-clips"):
        videos = sorted(folder.glob("*.mp4"))
        if len(videos) >= 2:
            return videos
    pytest.skip("SKIPPED LOUDLY: no real .mp4 clips in sample_dataset/videos/ or ../shared/datasets/"
                "msl150-clips; copy them there to run the video importer tests")


def read_frames(path: Path, n: int) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def write_clip(frames: list[np.ndarray], fps: float, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    scale = 480 / max(h, w)  # smaller frames: faster decode, same landmarks
    size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for frame in frames:
        writer.write(cv2.resize(frame, size))
    writer.release()
    return out


def make_clips(out: Path, n_videos: int = 3, n_frames: int = 2 * N_FRAMES) -> dict[str, Path]:
    """``<label>.mp4`` of the last ``n_frames`` of the first 30 frames of each sample video."""
    made = {}
    for video in real_videos()[:n_videos]:
        frames, fps = read_frames(video, 30)
        label = video.stem.rsplit("_", 1)[0]
        made[label] = write_clip(frames[-n_frames:], fps, out / f"{label}.mp4")
    return made


def clip_folder(root: Path, clips: dict[str, Path], broken: bool) -> Path:
    """``root/<label>/<clip>.mp4`` (hard links), plus a cut-short ``corrupt.mp4`` when ``broken``."""
    for label, clip in clips.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        os.link(clip, root / label / clip.name)
    if broken:
        first = next(iter(clips))
        data = clips[first].read_bytes()
        (root / first / "corrupt.mp4").write_bytes(data[: len(data) // 3])  # cut short: unreadable
    return root
