"""Uploaded clips: copied to a temporary file named after the upload (so a video error names the
user's file, not a temporary name), size-checked; the temporary folder is removed afterwards."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile
from starlette.datastructures import UploadFile as StarletteUpload

from .errors import Invalid, TooLarge

log = logging.getLogger("signseek.api")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_name(filename: str | None, default: str = "clip") -> str:
    """The upload's own name, reduced to a harmless file name (no folders, no odd characters)."""
    name = Path((filename or "").replace("\\", "/")).name
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = _UNSAFE.sub("_", stem).strip(" .")[:80] or default
    return stem + (suffix if suffix in VIDEO_SUFFIXES else ".bin")


def check_upload(file: UploadFile | None, max_mb: float, what: str = "file") -> None:
    if file is None or not isinstance(file, StarletteUpload) or not file.filename:
        raise Invalid(f"send the clip as a multipart form field named {what!r}, with a file name", code="no_file")
    size = file.size if file.size is not None else None
    if size == 0:
        raise Invalid(f"{file.filename!r} is empty: send a video clip", code="empty_file")
    if size is not None and size > max_mb * 1024 * 1024:
        raise TooLarge(f"{file.filename!r} is {size / 2**20:.1f} MB; MAX_UPLOAD_MB is {max_mb:g}", code="payload_too_large")


@contextmanager
def saved_upload(file: UploadFile, max_mb: float, what: str = "file") -> Iterator[Path]:
    """The upload as a temporary file with its own (sanitised) name and suffix (decoders sniff by both)."""
    check_upload(file, max_mb, what)
    with tempfile.TemporaryDirectory(prefix="signseek-upload-") as tmp:
        path = Path(tmp) / safe_name(file.filename)
        file.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, length=1 << 20)
        log.info("upload saved", extra={"fields": {"event": "upload", "file": path.name, "bytes": path.stat().st_size}})
        yield path
