"""Clip manifests in the WLASL and MS-ASL JSON layouts, read into one list of `ClipEntry`.

WLASL (``WLASL_v0.3.json``): a list of ``{"gloss": ..., "instances": [{"video_id", "url",
"frame_start", "frame_end", "signer_id", "split", "fps", ...}]}``; frame_start is 1-based,
frame_end inclusive and -1 means "to the end of the video".
MS-ASL (``MSASL_train.json``): a list of ``{"clean_text", "url", "start", "end",
"signer_id", "fps", ...}``; start/end are 0-based frame numbers in the full YouTube video.
Either way a clip becomes a 0-based, end-exclusive frame range ``[frame_start, frame_end)``
(``frame_end`` None = to the end) of the video file ``<videos_dir>/<video_id>.<ext>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")


@dataclass(frozen=True)
class ClipEntry:
    video_id: str  # the downloaded file's stem
    url: str
    label: str
    signer: int | str
    frame_start: int = 0  # 0-based, inclusive
    frame_end: int | None = None  # 0-based, exclusive; None = to the end
    split: str = ""
    fps: float | None = None


def _youtube_id(url: str) -> str:
    found = re.search(r"(?:v=|youtu\.be/|/embed/|/shorts/)([\w-]{11})", url)
    return found.group(1) if found else hashlib.sha1(url.encode()).hexdigest()[:16]


def read_manifest(path: str | Path) -> list[ClipEntry]:
    """Parse a WLASL or MS-ASL JSON manifest."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no manifest at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"could not read {path} as JSON: {exc}") from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise DatasetError(f"{path}: a manifest is a non-empty JSON list of objects (WLASL or MS-ASL)")
    entries: list[ClipEntry] = []
    try:
        if "instances" in data[0]:
            for gloss in data:
                for inst in gloss["instances"]:
                    end = int(inst.get("frame_end", -1))
                    entries.append(ClipEntry(
                        video_id=str(inst["video_id"]),
                        url=str(inst.get("url", "")),
                        label=str(gloss["gloss"]),
                        signer=inst.get("signer_id", -1),
                        frame_start=max(int(inst.get("frame_start", 1)) - 1, 0),
                        frame_end=None if end < 0 else end,
                        split=str(inst.get("split", "")),
                        fps=float(inst["fps"]) if inst.get("fps") else None,
                    ))
        elif "url" in data[0] and ("clean_text" in data[0] or "text" in data[0]):
            for clip in data:
                end = clip.get("end")
                entries.append(ClipEntry(
                    video_id=str(clip.get("video_id") or _youtube_id(clip["url"])),
                    url=str(clip["url"]),
                    label=str(clip.get("clean_text") or clip["text"]),
                    signer=clip.get("signer_id", -1),
                    frame_start=int(clip.get("start", 0)),
                    frame_end=None if end is None or int(end) < 0 else int(end),
                    split=str(clip.get("split", "")),
                    fps=float(clip["fps"]) if clip.get("fps") else None,
                ))
        else:
            raise DatasetError(
                f"{path}: unknown manifest layout (keys {sorted(data[0])}); expected WLASL "
                "(gloss, instances) or MS-ASL (clean_text, url, start, end)"
            )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path}: malformed manifest entry ({type(exc).__name__}: {exc})") from None
    return entries


def find_video(videos_dir: str | Path, video_id: str) -> Path | None:
    """The downloaded file for ``video_id`` in ``videos_dir``, whatever its container."""
    for ext in VIDEO_EXTENSIONS:
        candidate = Path(videos_dir) / f"{video_id}{ext}"
        if candidate.is_file():
            return candidate
    return None
