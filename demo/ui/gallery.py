"""The vocabulary gallery: every sign the deployment knows, drawn from its reference landmarks.

Each sign (shipped or enrolled) is shown by one of its reference clips, the one closest to the
sign's average (its medoid), drawn from the reference's stored features: upper body and hands
as the model sees them (`demo.render.features_to_points`). The bundle keeps no raw landmarks
of its references, but it keeps these, so the gallery works on any deployment and follows the
references in force (an enrolled sign appears as soon as it is added). Where a reference row
names a video (``video_file``) that VIDEOS_DIR holds, that video is offered too.

Thumbnails are small looping GIFs; a sign's page has a larger skeleton video. Both are cached
on disk by the reference's content, so they are drawn once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import render

log = logging.getLogger("signseek.demo")


@dataclass
class SignCard:
    label: str
    category: str
    references: int
    enrolled: bool
    reference_index: int  # the medoid reference (row in the engine's references)
    video: Path | None = None  # a recorded video of the sign, when VIDEOS_DIR has one

    @property
    def kind(self) -> str:
        return "added here" if self.enrolled else "shipped"

    @property
    def caption(self) -> str:
        return f"{self.label} · {self.references} refs" + (" · added here" if self.enrolled else "")


def _safe(label: str) -> str:
    return re.sub(r"[^\w.-]+", "_", label)[:40] or "sign"


class Gallery:
    def __init__(self, service, videos_dir: Path | None, cache_dir: Path | None = None) -> None:
        self.service = service
        self.videos_dir = videos_dir
        self.cache_dir = Path(cache_dir) if cache_dir else render.render_dir() / "gallery"
        self._lock = threading.Lock()

    @property
    def feature_config(self):
        return self.service.engine.feature_config

    def _idle(self) -> set[str]:
        return set(self.service.engine.idle_labels)

    def cards(self) -> list[SignCard]:
        """Every sign in the references in force (idle label excluded), shipped then enrolled, A-Z."""
        refs = self.service.engine.references
        listing = {}
        try:
            listing = {s["name"]: s for s in self.service.list_signs()["signs"]}
        except Exception:  # no store: the engine's references alone
            log.debug("list_signs failed; the gallery counts the engine's references", exc_info=True)
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(refs.labels):
            by_label.setdefault(label, []).append(i)
        cards = []
        for label, rows in by_label.items():
            if label in self._idle():
                continue
            emb = refs.embeddings[rows]
            mean = emb.mean(axis=0)
            medoid = rows[int(np.argmax(emb @ mean))]
            info = listing.get(label, {})
            cards.append(SignCard(label, str(info.get("category") or refs.categories[medoid] or ""),
                                  len(rows), bool(info.get("enrolled")), medoid, self._video_of(rows)))
        return sorted(cards, key=lambda c: (c.enrolled, c.category != "word", c.label))

    def _video_of(self, rows: list[int]) -> Path | None:
        if self.videos_dir is None:
            return None
        refs = self.service.engine.references
        for i in rows:
            name = str(refs.rows[i].get("video_file") or "")
            if name and "/" not in name and (self.videos_dir / name).is_file():
                return self.videos_dir / name
        return None

    def _points(self, card: SignCard) -> np.ndarray:
        features = self.service.engine.references.features
        if features is None:
            raise render.RenderError("the references keep no features to draw")
        return render.features_to_points(np.asarray(features[card.reference_index], np.float32), self.feature_config)

    def _key(self, card: SignCard) -> str:
        features = self.service.engine.references.features
        blob = np.asarray(features[card.reference_index]).tobytes() if features is not None else b""
        return f"{_safe(card.label)}-{hashlib.sha1(b'v2' + blob + card.label.encode()).hexdigest()[:12]}"

    def thumbnail(self, card: SignCard) -> Path | None:
        """A looping GIF of the sign's medoid reference (cached)."""
        path = self.cache_dir / f"{self._key(card)}.gif"
        if path.is_file():
            return path
        try:
            with self._lock:
                return render.render_gif(self._points(card), path, size=180, fps=12)
        except render.RenderError:
            log.warning("cannot draw sign %r", card.label, exc_info=True)
            return None

    def skeleton_video(self, card: SignCard) -> Path | None:
        """A larger skeleton video (mp4) of the sign's medoid reference (cached)."""
        path = self.cache_dir / f"{self._key(card)}.mp4"
        if path.is_file():
            return path
        try:
            with self._lock:
                made = render.render_skeleton_video(self._points(card), fps=12, out_dir=self.cache_dir,
                                                    caption=card.label, canvas_size=(360, 360))
                return made.replace(path.with_suffix(made.suffix))
        except render.RenderError:
            log.warning("cannot draw sign %r", card.label, exc_info=True)
            return None

    def items(self) -> list[tuple[str, str]]:
        """(thumbnail path, caption) of every sign, for gr.Gallery."""
        return [(str(thumb), card.caption) for card in self.cards()
                if (thumb := self.thumbnail(card)) is not None]

    def card(self, label: str) -> SignCard | None:
        return next((c for c in self.cards() if c.label == label), None)
