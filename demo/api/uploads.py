"""Uploaded clips: copied to a temporary file (the video reader needs a path), size-checked."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from .errors import ApiError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")


def check_upload(file: UploadFile | None, max_mb: float, what: str = "file") -> None:
    if file is None or not file.filename:
        raise ApiError(422, "no_file", f"send the clip as a multipart form field named {what!r}")
    size = file.size if file.size is not None else None
    if size == 0:
        raise ApiError(422, "empty_file", f"{file.filename!r} is empty: send a video clip")
    if size is not None and size > max_mb * 1024 * 1024:
        raise ApiError(413, "payload_too_large", f"{file.filename!r} is {size / 2**20:.1f} MB; MAX_UPLOAD_MB is {max_mb:g}")


@contextmanager
def saved_upload(file: UploadFile, max_mb: float, what: str = "file") -> Iterator[Path]:
    """The upload as a temporary file with its original suffix (decoders sniff by both)."""
    check_upload(file, max_mb, what)
    suffix = Path(file.filename or "").suffix.lower()
    suffix = suffix if suffix in VIDEO_SUFFIXES else ".bin"
    with tempfile.TemporaryDirectory(prefix="signseek-upload-") as tmp:
        path = Path(tmp) / f"clip{suffix}"
        file.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, length=1 << 20)
        yield path
