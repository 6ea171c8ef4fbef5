"""Video, WLASL-manifest and still-image importers, through real MediaPipe on real footage.

The clips are the real videos in sample_dataset/videos/ (the MSL-150 and selfie clips), cut to
a few frames (tests/video_clips.py) so MediaPipe runs stay short. The Ray engine has its own
module (test_ray_import.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_clips import N_FRAMES, clip_folder, make_clips, read_frames

from signseek.datasets import DatasetError, import_images, import_videos, import_wlasl
from signseek.landmarks import LEFT_HAND, RIGHT_HAND
from signseek.landmarks.schema import FACE

FACE_IDS = set(range(FACE.start, FACE.stop))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short real clips: ``<label>.mp4`` of N_FRAMES * 2 frames from each sample video."""
    return make_clips(tmp_path_factory.mktemp("clips"))


def test_videos_folder_parallel_resumable_and_skips_bad(clips, tmp_path):
    root = clip_folder(tmp_path / "videos", clips, broken=True)
    cache = tmp_path / "cache"
    ds = import_videos(root, workers=2, cache_dir=cache, progress=False)
    assert sorted(ds.label_names) == sorted(clips) and len(ds) == len(clips)
    assert ds.report.extracted == len(clips) and ds.report.cached == 0
    assert [Path(p).name for p, _ in ds.report.skipped] == ["corrupt.mp4"]
    assert all(n == N_FRAMES * 2 for n in ds.lengths)
    assert ds.summary()["part_frames"]["pose"] > 0 and all(f > 0 for f in ds.fps)
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == len(clips)
    stamps = {e: e.stat().st_mtime_ns for e in entries}

    again = import_videos(root, workers=1, cache_dir=cache, progress=False)  # nothing re-extracted
    assert again.report.extracted == 0 and again.report.cached == len(clips)
    assert {e: e.stat().st_mtime_ns for e in entries} == stamps
    for i in range(len(ds)):
        np.testing.assert_array_equal(again.points(i), ds.points(i))

    # An interrupted run: one clip finished, one cut off mid-write (a partial file), one not started.
    entries[0].write_bytes(entries[0].read_bytes()[:100])
    entries[1].unlink()
    resumed = import_videos(root, workers=1, cache_dir=cache, progress=False)
    assert resumed.report.extracted == 2 and resumed.report.cached == len(clips) - 2
    assert len(resumed) == len(clips)


def test_import_follows_landmarks_mode_and_holistic_keeps_the_face(clips, tmp_path, monkeypatch):
    """The importer extracts as the app does (LANDMARKS_MODE, fast unless set: no face mesh);
    "holistic" keeps the face. Each mode has its own cache entries, and holistic ones keep the
    key they had before the mode was an option, so existing caches stay valid."""
    from signseek.datasets.videos import cache_key, video_jobs_from_folder

    selfie = next((k for k in clips if k.startswith("signer")), None)  # the MSL clips' faces are masked
    if selfie is None:
        pytest.skip("SKIPPED LOUDLY: needs sample_dataset/videos/signer_selfie.mp4 (a clip with a visible face)")
    root = clip_folder(tmp_path / "videos", {selfie: clips[selfie]}, broken=False)
    cache = tmp_path / "cache"
    monkeypatch.delenv("LANDMARKS_MODE", raising=False)
    fast = import_videos(root, workers=1, cache_dir=cache, progress=False)
    holistic = import_videos(root, workers=1, cache_dir=cache, progress=False, extract_kwargs={"mode": "holistic"})
    assert fast.report.extracted == holistic.report.extracted == 1  # not each other's cache entry
    assert not np.isfinite(fast.points(0)[:, FACE]).any() and not set(fast.landmark_index.tolist()) & FACE_IDS
    assert np.isfinite(holistic.points(0)[:, FACE]).all(axis=(1, 2)).sum() >= N_FRAMES
    # Hands and pose come from the same models in both graphs: the same frames have them.
    assert (np.isfinite(fast.points(0)[:, :33, 0]).all(1) == np.isfinite(holistic.points(0)[:, :33, 0]).all(1)).all()
    job = video_jobs_from_folder(root)[0]
    assert {p.stem for p in cache.glob("*.npz")} == {cache_key(job, {}), cache_key(job, {"mode": "fast"})}
    with pytest.raises(DatasetError, match="landmarks mode must be one of"):
        import_videos(root, workers=1, cache_dir=cache, progress=False, extract_kwargs={"mode": "face"})
    monkeypatch.setenv("LANDMARKS_MODE", "holistic")  # the setting picks the mode when none is given
    again = import_videos(root, workers=1, cache_dir=cache, progress=False)
    assert again.report.cached == 1
    np.testing.assert_array_equal(again.points(0), holistic.points(0))


def test_wlasl_manifest_trims_and_reports_missing(clips, tmp_path):
    videos_dir = tmp_path / "downloaded"
    videos_dir.mkdir()
    labels = list(clips)
    for i, label in enumerate(labels[:2]):
        os.link(clips[label], videos_dir / f"{i:05d}.mp4")
    manifest = [
        {"gloss": labels[0], "instances": [
            {"video_id": "00000", "url": "http://x/0.mp4", "frame_start": 2, "frame_end": 5, "signer_id": 7,
             "split": "train", "fps": 25},
            {"video_id": "99999", "url": "http://x/9.mp4", "frame_start": 1, "frame_end": -1, "signer_id": 8,
             "split": "test", "fps": 25},
        ]},
        {"gloss": labels[1], "instances": [
            {"video_id": "00001", "url": "http://x/1.mp4", "frame_start": 9, "frame_end": -1, "signer_id": 9,
             "split": "val", "fps": 25}]},
    ]
    path = tmp_path / "WLASL_v0.3.json"
    path.write_text(json.dumps(manifest))
    ds = import_wlasl(path, videos_dir, cache_dir=tmp_path / "cache", progress=False)
    assert ds.labels.tolist() == labels[:2] and ds.signers.tolist() == [7, 9]
    assert ds.lengths.tolist() == [4, N_FRAMES * 2 - 8]  # frames 2..5 (1-based, inclusive); 9..end
    assert ds.extra["split"].tolist() == ["train", "val"]
    assert ds.report.skipped[0][0] == "99999" and "not downloaded" in ds.report.skipped[0][1]
    with pytest.raises(DatasetError, match="download them first"):
        import_wlasl(path, tmp_path, progress=False)


def test_images_through_mediapipe_hands_match_holistic_slots(clips, tmp_path):
    import mediapipe as mp

    root = tmp_path / "asl_alphabet"
    frames = {}
    for label, clip in list(clips.items())[:2]:
        found, _ = read_frames(clip, 4)
        (root / label).mkdir(parents=True)
        for k in (1, 3):
            cv2.imwrite(str(root / label / f"{label}{k}.jpg"), found[k])
        frames[label] = found[3]
    (root / "blank").mkdir()
    cv2.imwrite(str(root / "blank" / "blank1.jpg"), np.full((240, 320, 3), 200, np.uint8))
    ds = import_images(root, progress=False)
    assert [Path(p).name for p, _ in ds.report.skipped] == ["blank1.jpg"]
    assert "no hand" in ds.report.skipped[0][1]
    assert ds.lengths.tolist() == [1] * len(ds) and len(ds) >= 2
    assert ds.landmark_index.tolist() == list(range(501, 543))
    # The hand Hands finds lands in the slot Holistic uses for it on the same frame.
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        compared = 0
        for label, frame in frames.items():
            result = holistic.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i = ds.ids.tolist().index(f"{label}/{label}3.jpg") if f"{label}/{label}3.jpg" in ds.ids else None
            if i is None:
                continue
            pts = ds.points(i)
            for slot, hand in ((LEFT_HAND, result.left_hand_landmarks), (RIGHT_HAND, result.right_hand_landmarks)):
                if hand is not None and np.isfinite(pts[0, slot]).all():
                    wrist = np.array([hand.landmark[0].x, hand.landmark[0].y])
                    assert np.abs(pts[0, slot.start, :2] - wrist).max() < 0.05
                    compared += 1
        assert compared >= 1
