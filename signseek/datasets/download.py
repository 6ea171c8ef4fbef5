"""The download stage of the ASL backend: fetch the videos a WLASL / MS-ASL manifest lists.

yt-dlp is used as a library (``yt_dlp.YoutubeDL``): it handles YouTube and the many sites
WLASL points to, and plain file URLs through its generic extractor. Each video lands in
``<out_dir>/<video_id>.<ext>``, the name import_wlasl looks for.

- concurrency: ``workers`` threads (downloads wait on the network, not the CPU);
- resume: a video whose file is already there is skipped, yt-dlp continues ``.part``
  files, and its download archive (``<out_dir>/download_archive.txt``) records finished ones;
- dry run: report what would be fetched, touch nothing.

Clips that share a URL (WLASL cuts many glosses from one YouTube video) are fetched once and
linked under each clip's video_id.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .errors import DatasetError
from .manifest import find_video, read_manifest

log = logging.getLogger(__name__)
ARCHIVE_NAME = "download_archive.txt"


@dataclass
class DownloadReport:
    planned: list[str] = field(default_factory=list)  # video_ids to fetch (dry run: would fetch)
    downloaded: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # already in out_dir: skipped
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video_id, reason)

    def lines(self) -> list[str]:
        out = [f"{len(self.downloaded)} downloaded, {len(self.existing)} already there, "
               f"{len(self.failed)} failed, {len(self.planned)} planned"]
        out += [f"  failed {vid}: {reason}" for vid, reason in self.failed]
        return out


class _QuietLogger:
    """yt-dlp's messages go to this module's logger instead of stdout."""

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info(msg)

    def error(self, msg: str) -> None:
        log.info(msg)


def _fetch(url: str, out_dir: Path, video_id: str, timeout: float, retries: int) -> Path:
    import yt_dlp

    options = {
        "outtmpl": {"default": str(out_dir / f"{video_id}.%(ext)s")},
        "download_archive": str(out_dir / ARCHIVE_NAME),
        "format": "best[ext=mp4]/best",  # one file with video; no merging (no ffmpeg needed)
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "continuedl": True,
        "socket_timeout": timeout,
        "retries": retries,
        "logger": _QuietLogger(),
    }
    with yt_dlp.YoutubeDL(options) as ydl:
        ydl.extract_info(url, download=True)
    found = find_video(out_dir, video_id)
    if found is None:
        # The archive says done but the file is gone (moved, deleted): nothing to link.
        raise DatasetError(f"yt-dlp finished but no {video_id}.* is in {out_dir}; delete {ARCHIVE_NAME} to refetch")
    return found


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def download_clips(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    workers: int = 4,
    dry_run: bool = False,
    limit: int | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = True,
) -> DownloadReport:
    """Download every video the manifest lists into ``out_dir``; failures are reported, not raised."""
    out_dir = Path(out_dir)
    entries = read_manifest(manifest)
    by_url: dict[str, list[str]] = defaultdict(list)
    report = DownloadReport()
    for entry in entries:
        if entry.video_id in by_url[entry.url]:
            continue
        if find_video(out_dir, entry.video_id) is not None:
            report.existing.append(entry.video_id)
        elif not entry.url:
            report.failed.append((entry.video_id, "the manifest gives no url"))
        else:
            by_url[entry.url].append(entry.video_id)
    todo = [(url, ids) for url, ids in by_url.items() if ids]
    if limit is not None:
        todo = todo[:limit]
    report.planned = [vid for _, ids in todo for vid in ids]
    if dry_run or not todo:
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(_fetch, url, out_dir, ids[0], timeout, retries): ids for url, ids in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="downloading", unit="video",
                           disable=not progress):
            ids = futures[future]
            try:
                first = future.result()
            except Exception as exc:  # yt-dlp's DownloadError and network errors: report, go on
                reason = str(exc).replace("ERROR: ", "").strip().splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("download of %s failed: %s", ids[0], reason)
                report.failed.extend((vid, reason) for vid in ids)
                continue
            report.downloaded.append(ids[0])
            for other in ids[1:]:
                _link(first, out_dir / f"{other}{first.suffix}")
                report.downloaded.append(other)
    return report
