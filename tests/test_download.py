"""The download stage: yt-dlp (as a library) fetching a WLASL manifest's clips from a real HTTP
server this test runs on 127.0.0.1, serving real video files."""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from signseek.datasets import download_clips
from signseek.datasets.download import ARCHIVE_NAME
from signseek.paths import SAMPLE_DATASET, SHARED_DATASETS


def _real_videos() -> list[Path]:
    for folder in (SAMPLE_DATASET / "videos", SHARED_DATASETS / "msl150-clips"):
        videos = sorted(folder.glob("*.mp4"))
        if len(videos) >= 2:
            return videos[:2]
    pytest.skip("SKIPPED LOUDLY: no real .mp4 clips in sample_dataset/videos/ or ../shared/datasets/msl150-clips")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    videos = _real_videos()
    for i, video in enumerate(videos):
        (served / f"clip{i}.mp4").write_bytes(video.read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _manifest(tmp_path: Path, base: str) -> Path:
    data = [
        {"gloss": "doctor", "instances": [
            {"video_id": "10001", "url": f"{base}/clip0.mp4", "frame_start": 1, "frame_end": -1, "signer_id": 1},
            # same source video as 10001: fetched once, linked under both names
            {"video_id": "10002", "url": f"{base}/clip0.mp4", "frame_start": 5, "frame_end": 20, "signer_id": 1},
        ]},
        {"gloss": "yo", "instances": [
            {"video_id": "20001", "url": f"{base}/clip1.mp4", "frame_start": 1, "frame_end": -1, "signer_id": 2},
            {"video_id": "20002", "url": f"{base}/gone.mp4", "frame_start": 1, "frame_end": -1, "signer_id": 2},
        ]},
    ]
    path = tmp_path / "WLASL_v0.3.json"
    path.write_text(json.dumps(data))
    return path


def test_download_dry_run_then_real_then_resume(server, tmp_path):
    base, served = server
    manifest = _manifest(tmp_path, base)
    out = tmp_path / "videos"

    dry = download_clips(manifest, out, dry_run=True, progress=False)
    assert sorted(dry.planned) == ["10001", "10002", "20001", "20002"]
    assert not out.exists() and not dry.downloaded

    report = download_clips(manifest, out, workers=2, progress=False)
    assert sorted(report.downloaded) == ["10001", "10002", "20001"]
    assert [vid for vid, _ in report.failed] == ["20002"]  # a 404: reported, the rest went on
    assert (out / "10001.mp4").read_bytes() == (served / "clip0.mp4").read_bytes()
    assert (out / "10002.mp4").read_bytes() == (served / "clip0.mp4").read_bytes()
    assert (out / "20001.mp4").read_bytes() == (served / "clip1.mp4").read_bytes()
    assert (out / ARCHIVE_NAME).read_text().count("\n") == 2  # yt-dlp's archive: one line per source

    again = download_clips(manifest, out, workers=2, progress=False)  # resume: nothing refetched
    assert sorted(again.existing) == ["10001", "10002", "20001"] and not again.downloaded
    assert [vid for vid, _ in again.failed] == ["20002"]
