"""What the reference store keeps and says: its rows, its errors, name rules, array packing."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

from ..errors import SignSeekError

NAME_PATTERN = re.compile(r"^[\w][\w .'\-]*$", re.UNICODE)
MAX_NAME_LENGTH = 64
CATEGORIES = ("word", "letter", "phrase", "number", "other")
MODES = ("auto", "new", "add")  # enrol: new or more clips / a new sign only / more clips only


class EnrolmentError(SignSeekError, ValueError):
    """An enrolment request that cannot be accepted; the message says what to fix."""
    code = "enrolment_refused"


class StoreUnavailable(SignSeekError, RuntimeError):
    """The database behind the store could not be reached or written; nothing was changed."""
    code = "store_unavailable"
    kind = "unavailable"


@dataclass
class SignInfo:
    label: str
    category: str
    n_clips: int
    created: str  # first clip's time (ISO 8601, UTC); "" for bundle signs
    enrolled: bool = True  # False for signs that come only from the bundle
    sentence_id: int | None = None
    sentence: str = ""


@dataclass
class ClipInfo:
    id: int
    label: str
    category: str
    created: str
    n_frames: int
    source: str  # where the clip came from (an upload's file name, a dataset id); may be ""
    video_file: str = ""  # a recording of it under VIDEOS_DIR; "" when none is kept


@dataclass(frozen=True)
class SignStatus:
    """What a name is in this store: enrolled here, shipped in the bundle, both or neither."""

    name: str
    enrolled_clips: int
    bundle_clips: int

    @property
    def exists(self) -> bool:
        return bool(self.enrolled_clips or self.bundle_clips)

    @property
    def enrolled(self) -> bool:
        return self.enrolled_clips > 0

    @property
    def bundle(self) -> bool:
        return self.bundle_clips > 0


@dataclass
class NewSign:
    label: str
    sentence_id: int
    sentence: str
    category: str
    created: str


@dataclass
class ClipRecord:
    """One stored clip with its arrays packed (what backends read and write)."""

    id: int | None
    label: str
    category: str
    created: str
    n_frames: int
    source: str
    video_file: str
    model_id: str
    landmarks: bytes
    features: bytes
    embedding: bytes
    sentence_id: int | None = None  # the sign's, filled in when read
    sentence: str = ""


def pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=array)
    return buf.getvalue()


def unpack(blob: bytes) -> np.ndarray:
    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as data:
        return data["a"]


def validate_name(label: str) -> str:
    label = (label or "").strip()
    if not label:
        raise EnrolmentError("the sign name is empty; give the sign a name")
    if len(label) > MAX_NAME_LENGTH:
        raise EnrolmentError(f"the sign name has {len(label)} characters; use at most {MAX_NAME_LENGTH}")
    if not NAME_PATTERN.match(label):
        raise EnrolmentError(
            f"the sign name {label!r} has characters that are not allowed; use letters, digits, "
            "spaces, '-', '_', '.' or an apostrophe, starting with a letter or digit"
        )
    return label
