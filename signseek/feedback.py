"""The feedback store: "wrong answer?" flags from the demo, kept as a dataset an analyst can open.

Each flag keeps the clip's landmarks (body pose and hands only: no face mesh, no video), the
answer the engine gave and the user's correction. Flags live in their own folder, never in the
reference store, so a flag can never change what the demo answers; an analyst opens
``feedback.npz`` (the same `SignDataset` container as every dataset: the explorer reads it, and
its clips can be enrolled from there) and decides.

    store = FeedbackStore.from_env(default_dir="data/feedback")
    item = store.add(points, result, "hello", consent=True)   # points [T, 543, 3], result: the API dict
    store.items(); store.delete(item.id); store.purge()
    SignDataset.load(store.dataset_path)                      # labels = the corrections

It is the one write anonymous visitors may make, so it is bounded: at most FEEDBACK_MAX_ITEMS
flags (then new ones are refused, never old ones dropped), at most FEEDBACK_RATE_PER_MINUTE a
minute for all visitors together (counted from the stored flags' times, so several server
workers share the limit), at most FEEDBACK_MAX_FRAMES frames a clip, and flags older than
FEEDBACK_RETENTION_DAYS are deleted. Nothing is kept without consent.

Command line (for the operator): ``python -m signseek.feedback [--dir DIR] list | delete ID |
purge | clear``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .datasets.container import SignDataset
from .errors import SignSeekError
from .landmarks.schema import LEFT_HAND, N_DIMS, N_LANDMARKS, POSE, RIGHT_HAND

DATASET_NAME = "feedback.npz"
UNKNOWN_LABEL = "(unknown)"  # the user said "none of these" without naming the sign; never enrollable
MAX_CORRECTION_LENGTH = 64
# Kept points: the 33 body-pose points and both hands' 21. The face mesh is dropped (it is the
# most identifying part and the shipped model does not read it).
KEPT_POINTS = np.concatenate([np.arange(N_LANDMARKS)[part] for part in (POSE, LEFT_HAND, RIGHT_HAND)])
WHAT_IS_KEPT = ("the clip's body and hand landmark coordinates (no video, no face, no sound), the answer "
                "and its scores, your correction and the time")
_ID = re.compile(r"^\d{13}-[0-9a-f]{8}$")
EXTRA_COLUMNS = ("predicted", "accepted", "rejection_reason", "confidence", "similarity", "created",
                 "model_version", "clip")


class FeedbackError(SignSeekError, ValueError):
    """A flag that cannot be kept; the message says why."""

    code = "feedback_refused"


class FeedbackSettings(BaseSettings):
    """FEEDBACK_* environment variables (read from the environment and `.env`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    FEEDBACK_ENABLED: bool = True
    FEEDBACK_DIR: Path | None = None  # default: a "feedback" folder next to the reference store
    FEEDBACK_RETENTION_DAYS: float = Field(30.0, gt=0)
    FEEDBACK_MAX_ITEMS: int = Field(500, ge=1)
    FEEDBACK_RATE_PER_MINUTE: int = Field(20, ge=1)
    FEEDBACK_MAX_FRAMES: int = Field(600, ge=1)


@dataclass
class FeedbackItem:
    id: str
    created: str  # ISO 8601, UTC
    label: str  # the user's correction
    predicted: str  # what the engine answered ("" when it answered no sign)
    n_frames: int


def _created_of(item_id: str) -> float:
    return int(item_id.split("-", 1)[0]) / 1000.0


def _iso(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat(timespec="seconds")


def clean_correction(text: str | None) -> str:
    """The user's correction as a label: trimmed, one line, at most 64 characters."""
    text = " ".join(str(text or "").split())
    if not text:
        return UNKNOWN_LABEL
    if len(text) > MAX_CORRECTION_LENGTH:
        raise FeedbackError(f"the correction has {len(text)} characters; use at most {MAX_CORRECTION_LENGTH}")
    if not all(ch.isprintable() for ch in text):
        raise FeedbackError("the correction has characters that are not printable")
    return text


def _top(result: dict) -> dict:
    cands = result.get("results") or result.get("candidates") or result.get("top_k") or []
    return dict(cands[0]) if isinstance(cands, list) and cands and isinstance(cands[0], dict) else {}


class FeedbackStore:
    def __init__(self, directory: str | Path, retention_days: float = 30.0, max_items: int = 500,
                 rate_per_minute: int = 20, max_frames: int = 600,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.retention_s = float(retention_days) * 86400.0
        self.max_items = int(max_items)
        self.rate_per_minute = int(rate_per_minute)
        self.max_frames = int(max_frames)
        self.clock = clock

    @classmethod
    def from_env(cls, default_dir: str | Path, settings: FeedbackSettings | None = None) -> FeedbackStore | None:
        """The store the environment asks for; None when FEEDBACK_ENABLED is false."""
        s = settings or FeedbackSettings()
        if not s.FEEDBACK_ENABLED:
            return None
        return cls(s.FEEDBACK_DIR or default_dir, s.FEEDBACK_RETENTION_DAYS, s.FEEDBACK_MAX_ITEMS,
                   s.FEEDBACK_RATE_PER_MINUTE, s.FEEDBACK_MAX_FRAMES)

    # ------------------------------------------------------------------ paths and locking

    @property
    def items_dir(self) -> Path:
        return self.directory / "items"

    @property
    def dataset_path(self) -> Path:
        """The flags as one `SignDataset` file (rewritten after every change)."""
        return self.directory / DATASET_NAME

    @property
    def retention_days(self) -> float:
        return self.retention_s / 86400.0

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, across threads and server processes."""
        self.items_dir.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ids(self) -> list[str]:
        if not self.items_dir.is_dir():
            return []
        return sorted(p.stem for p in self.items_dir.glob("*.npz") if _ID.match(p.stem))

    # ------------------------------------------------------------------ writing

    def add(self, points: np.ndarray, result: dict, correction: str | None, *, consent: bool,
            clip: str = "") -> FeedbackItem:
        """Keep one flag. Refused (FeedbackError) without consent, over a bound, or for bad input."""
        if not consent:
            raise FeedbackError("nothing was kept: tick the box to agree that the landmarks and the "
                                "answer are kept", code="consent_required")
        label = clean_correction(correction)
        points = np.asarray(points, dtype=np.float32)
        if points.ndim != 3 or points.shape[1:] != (N_LANDMARKS, N_DIMS) or len(points) == 0:
            raise FeedbackError(f"landmarks must be [T, {N_LANDMARKS}, {N_DIMS}] with T >= 1, got {points.shape}")
        if len(points) > self.max_frames:
            raise FeedbackError(f"the clip has {len(points)} frames; feedback keeps at most {self.max_frames}",
                                kind="too_large")
        kept = points[:, KEPT_POINTS]
        if not np.isfinite(kept).any():
            raise FeedbackError("the clip has no body or hand landmarks to keep")
        top = _top(result)
        with self._locked():
            now = self.clock()
            self._purge_locked(now)
            ids = self._ids()
            recent = sum(1 for i in ids if now - _created_of(i) < 60.0)
            if recent >= self.rate_per_minute:
                raise FeedbackError("too many flags in the last minute; try again in a minute",
                                    code="rate_limited", kind="rate_limited")
            if len(ids) >= self.max_items:
                raise FeedbackError(f"the feedback store is full ({self.max_items} flags); it is reviewed "
                                    "and emptied by the operator", code="feedback_full", kind="conflict")
            item_id = f"{int(now * 1000):013d}-{secrets.token_hex(4)}"
            predicted = str(result.get("label") or "") if result.get("accepted") else ""
            extra = {
                "predicted": [predicted or str(top.get("label") or "")],
                "accepted": [str(bool(result.get("accepted"))).lower()],
                "rejection_reason": [str(result.get("rejection_reason") or "")],
                "confidence": [float(result.get("confidence") or 0.0)],
                "similarity": [float(top.get("similarity") or 0.0)],
                "created": [_iso(now)],
                "model_version": [str(result.get("model_version") or "")],
                "clip": [str(clip)[:200]],
            }
            full = np.full((len(points), N_LANDMARKS, N_DIMS), np.nan, np.float32)
            full[:, KEPT_POINTS] = kept
            one = SignDataset.from_sequences([full], [label], source="demo feedback", ids=[item_id],
                                             extra=extra, landmark_index=KEPT_POINTS)
            self._save_atomic(one, self.items_dir / f"{item_id}.npz")
            self._rebuild_locked()
        return FeedbackItem(item_id, _iso(now), label, extra["predicted"][0], len(points))

    @staticmethod
    def _save_atomic(dataset: SignDataset, path: Path) -> None:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(3)}.tmp.npz")
        dataset.save(tmp)
        os.replace(tmp, path)

    def _rebuild_locked(self) -> None:
        datasets = []
        for item_id in self._ids():
            try:
                datasets.append(SignDataset.load(self.items_dir / f"{item_id}.npz"))
            except Exception:  # a damaged item file: leave it out rather than lose every flag
                continue
        if datasets:
            self._save_atomic(SignDataset.concatenate(datasets), self.dataset_path)
        else:
            self.dataset_path.unlink(missing_ok=True)

    def delete(self, item_id: str) -> bool:
        """Delete one flag by its id (what the page shows after flagging). False: no such flag."""
        if not _ID.match(str(item_id or "")):
            return False
        with self._locked():
            path = self.items_dir / f"{item_id}.npz"
            if not path.is_file():
                return False
            path.unlink()
            self._rebuild_locked()
        return True

    def _purge_locked(self, now: float) -> int:
        expired = [i for i in self._ids() if now - _created_of(i) > self.retention_s]
        for item_id in expired:
            (self.items_dir / f"{item_id}.npz").unlink(missing_ok=True)
        if expired:
            self._rebuild_locked()
        return len(expired)

    def purge(self) -> int:
        """Delete the flags older than the retention period; returns how many."""
        with self._locked():
            return self._purge_locked(self.clock())

    def clear(self) -> int:
        """Delete every flag."""
        with self._locked():
            ids = self._ids()
            for item_id in ids:
                (self.items_dir / f"{item_id}.npz").unlink(missing_ok=True)
            self._rebuild_locked()
        return len(ids)

    # ------------------------------------------------------------------ reading

    def items(self) -> list[FeedbackItem]:
        if not self.dataset_path.is_file():
            return []
        ds = SignDataset.load(self.dataset_path)
        return [FeedbackItem(str(ds.ids[i]), str(ds.extra["created"][i]), str(ds.labels[i]),
                             str(ds.extra["predicted"][i]), int(ds.lengths[i])) for i in range(len(ds))]

    def __len__(self) -> int:
        return len(self._ids())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signseek.feedback",
                                     description="List or delete the demo's 'wrong answer?' flags.")
    parser.add_argument("--dir", type=Path, help="the feedback folder (default: FEEDBACK_DIR, else data/feedback)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line a flag: id, time, correction, what the engine said")
    delete = sub.add_parser("delete", help="delete flags by id")
    delete.add_argument("ids", nargs="+")
    sub.add_parser("purge", help="delete the flags older than FEEDBACK_RETENTION_DAYS")
    sub.add_parser("clear", help="delete every flag")
    args = parser.parse_args(argv)
    settings = FeedbackSettings()
    from .paths import PROJECT_ROOT

    directory = args.dir or settings.FEEDBACK_DIR or PROJECT_ROOT / "data" / "feedback"
    store = FeedbackStore(directory, settings.FEEDBACK_RETENTION_DAYS, settings.FEEDBACK_MAX_ITEMS,
                          settings.FEEDBACK_RATE_PER_MINUTE, settings.FEEDBACK_MAX_FRAMES)
    if args.command == "list":
        for item in store.items():
            print(f"{item.id}  {item.created}  correction={item.label!r}  answered={item.predicted or 'no sign'!r}  "
                  f"{item.n_frames} frames")
        print(f"{len(store)} flag(s) in {store.dataset_path}")
    elif args.command == "delete":
        missing = [i for i in args.ids if not store.delete(i)]
        print(f"deleted {len(args.ids) - len(missing)}" + (f"; not found: {', '.join(missing)}" if missing else ""))
        return 1 if missing else 0
    elif args.command == "purge":
        print(f"deleted {store.purge()} flag(s) older than {store.retention_days:g} days")
    else:
        print(f"deleted {store.clear()} flag(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
