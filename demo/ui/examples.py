"""Built-in examples that demonstrate: held-out clips of shipped signs, and clips it should reject.

A stored sample is offered as an example of a shipped sign only when it is provably not one of
the bundle's references: its source row (sample_dataset/metadata.csv: source file and row) is
compared with every reference's ``sample_id`` (embeddings_map.csv), so the check follows the
bundle in force, whatever it was exported from. Samples from a sitting (session) none of that
sign's references come from are preferred: a signer and a sitting the model never used.

The clip examples are real videos in VIDEOS_DIR: the MSL-150 clips (Mexican Sign Language, not
ASL: a sign it does not know, so it should answer "not a sign it knows") and the phone selfie.
Their landmarks are extracted once, in the background when the server starts, by the same path
an upload takes (`LandmarkCache` keeps them by file content), so clicking an example answers
at once and gives what uploading the same file gives.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("signseek.demo")

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
# Signs featured as one-click examples (the rest are one click away in the Signs tab).
FEATURED = ("hello", "thank-you", "coffee", "water", "please", "a", "j")
# Clips of other sign languages in VIDEOS_DIR: name stem prefix -> (language, what it means).
OTHER_LANGUAGE = {"hoy": ("Mexican Sign Language", "today"), "yo": ("Mexican Sign Language", "I / me"),
                  "ambulancia": ("Mexican Sign Language", "ambulance"), "doctor": ("Mexican Sign Language", "doctor"),
                  "dolor": ("Mexican Sign Language", "pain")}
REJECT = "reject"  # expected value: "not a sign it knows"
NO_SIGN = "-"  # expected value: resting, no sign


@dataclass
class Example:
    id: str  # "sample:45" or "clip:hoy_001.mp4"
    title: str  # what the button says
    expected: str  # a sign's label, REJECT or NO_SIGN
    description: str  # one line: what the clip is and why it should give that
    sample_index: int | None = None
    video: Path | None = None  # the clip itself (clip examples)
    playable: Path | None = None  # a browser-playable copy of it (H.264) for the page

    @property
    def slug(self) -> str:
        """A stable name for the page (element ids): the sign, "resting", or the clip's file stem."""
        if self.video is not None:
            return self.video.stem
        return "resting" if self.expected == NO_SIGN else self.title

    @property
    def should_give(self) -> str:
        if self.expected == REJECT:
            return "rejected: not a sign it knows"
        if self.expected == NO_SIGN:
            return "no sign (resting)"
        return f"'{self.expected}'"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- held-out samples


class HeldOut:
    """Which stored samples are never references of the engine in force, and from which sitting."""

    def __init__(self, sample_labels: list[str], sample_ids: list[str | None], sessions: list,
                 reference_rows: list[dict], reference_labels: list[str]) -> None:
        ref_ids = {str(r.get("sample_id")) for r in reference_rows if r.get("sample_id") not in (None, "")}
        ref_sessions: dict[str, set[str]] = {}
        for label, row in zip(reference_labels, reference_rows, strict=True):
            if str(row.get("session", "")) != "":
                ref_sessions.setdefault(label, set()).add(str(row["session"]))
        self.labels = sample_labels
        self.sample_ids = sample_ids
        self.sessions = [str(s) for s in sessions]
        self.indices = [i for i, sid in enumerate(sample_ids) if sid is not None and sid not in ref_ids]
        self.new_sitting = {i: self.sessions[i] not in ref_sessions.get(sample_labels[i], set()) for i in self.indices}

    @classmethod
    def for_samples(cls, samples, references) -> HeldOut:
        """``samples``: the service's SampleSet; ``references``: the engine's ReferenceSet."""
        n = len(samples.labels)
        ids: list[str | None] = [None] * n
        sessions: list = [""] * n
        meta = Path(samples.path).parent / "metadata.csv"
        if meta.is_file():
            with open(meta, newline="") as handle:
                for row in csv.DictReader(handle):
                    if row.get("file") != Path(samples.path).name:
                        continue
                    i = int(row["index"])
                    if 0 <= i < n and row.get("label") == samples.labels[i]:
                        ids[i] = f"{Path(row['source']).stem}:{row['source_index']}"
                        sessions[i] = row.get("session", "")
        else:
            log.warning("%s is missing: stored samples cannot be shown to be held out, so none is offered "
                        "as an example", meta)
        return cls(samples.labels, ids, sessions, references.rows, references.labels)

    def of(self, label: str | None = None, new_sitting_only: bool = False) -> list[int]:
        """Held-out samples (of ``label``), those from a sitting no reference comes from first.

        Takes recorded one after another in a sitting can be near repeats of each other, so a clip
        from a sitting its references come from may score almost 1.0: ``new_sitting_only`` keeps
        only the others."""
        chosen = [i for i in self.indices if (label is None or self.labels[i] == label)
                  and (self.new_sitting[i] or not new_sitting_only)]
        return sorted(chosen, key=lambda i: (not self.new_sitting[i], i))

    def random_pool(self, minimum: int = 5) -> list[int]:
        """What "a random held-out clip" draws from: clips from new sittings when there are enough."""
        fresh = self.of(new_sitting_only=True)
        return fresh if len(fresh) >= minimum else self.of()

    def describe(self, i: int) -> str:
        where = ("a sitting none of its references comes from" if self.new_sitting.get(i)
                 else "never a reference itself, but from a sitting some references come from, so it may be a "
                      "near repeat of one")
        return f"stored clip #{i}, session {self.sessions[i] or '?'}: {where}"


# ---------------------------------------------------------------------------- landmark cache


class LandmarkCache:
    """Landmarks of clips by file content (sha256), least recently used dropped past ``max_entries``.

    Only landmarks and what the overlay needs are kept (never frames), in memory.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha: str) -> dict | None:
        with self._lock:
            if sha in self._entries:
                self._entries.move_to_end(sha)
                return self._entries[sha]
            return None

    def put(self, sha: str, entry: dict) -> None:
        with self._lock:
            self._entries[sha] = entry
            self._entries.move_to_end(sha)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


# ---------------------------------------------------------------------------- the examples


def video_examples(videos_dir: Path | None) -> list[Example]:
    """The clips in VIDEOS_DIR as examples: other-language clips (should be rejected), the selfie."""
    if videos_dir is None or not videos_dir.is_dir():
        return []
    out = []
    for clip in sorted(p for p in videos_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        stem = clip.stem.removesuffix("_001")
        if stem in OTHER_LANGUAGE:
            language, meaning = OTHER_LANGUAGE[stem]
            out.append(Example(f"clip:{clip.name}", f"{stem} ({language.split()[0]})", REJECT,
                               f"'{stem}' ({meaning}) in {language}, not ASL: a sign it does not know",
                               video=clip))
        elif stem.startswith("signer_selfie"):
            out.append(Example(f"clip:{clip.name}", "phone selfie", REJECT,
                               "a phone selfie of a sign outside the 32 (what a webcam user records)", video=clip))
    # The selfie first (it is what a visitor records), then the other languages.
    return sorted(out, key=lambda e: (not e.title.startswith("phone"), e.title))


def sample_examples(held_out: HeldOut, vocabulary: list[str], idle_labels: list[str], n: int = 7) -> list[Example]:
    """Up to ``n`` held-out stored clips of shipped signs (the FEATURED ones first), then resting:
    clips from sittings no reference comes from when there are any, never a reference clip."""
    signs = [x for x in vocabulary if x not in idle_labels]
    preferred = [x for x in FEATURED if x in signs] + [x for x in signs if x not in FEATURED]
    strict = any(held_out.of(x, new_sitting_only=True) for x in preferred)
    out = []
    for label in preferred:
        picks = held_out.of(label, new_sitting_only=strict)
        if picks and len(out) < n:
            out.append(Example(f"sample:{picks[0]}", label, label,
                               f"a held-out clip of '{label}' ({held_out.describe(picks[0])})", sample_index=picks[0]))
    for label in idle_labels[:1]:
        picks = held_out.of(label)
        if picks:
            out.append(Example(f"sample:{picks[0]}", "resting (no sign)", NO_SIGN,
                               f"hands down, nobody signing ({held_out.describe(picks[0])})", sample_index=picks[0]))
    return out
