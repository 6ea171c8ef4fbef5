"""What a label is: the idle ("no sign") labels and each label's category.

One home for both: the trainer writes them into the bundle, the evaluation protocols leave idle
clips out of the known/unknown sets, and the test fixtures build bundles with the same rule.
"""

from __future__ import annotations

import re

IDLE_LABELS = ("-",)  # traduttore-asl's "no sign": a reference like any other, never an answer
CATEGORIES = ("word", "letter", "phrase", "number", "other", "idle")


def category_of(label: str) -> str:
    """idle, letter (a single letter or `space`: fingerspelling) or word."""
    if label in IDLE_LABELS:
        return "idle"
    if re.fullmatch(r"[a-z]", label) or label == "space":
        return "letter"
    return "word"
