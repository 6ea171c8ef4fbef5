"""The decision: why a clip is, or is not, answered with a sign.

`Reason` is the one list of rejection reasons: the engine emits them, the API documents them,
the UI and the explorer explain them, all from here.

    from signseek.ranker import Reason
    Reason("unknown_sign").explain     # plain words for a user
    Reason.NONE == "none"             # a str enum: compares and serialises as its value
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """Why the top answer was not accepted ("none" when it was)."""

    NONE = "none"
    NO_HANDS = "no_hands"
    LOW_MOTION = "low_motion"
    IDLE = "idle"
    UNKNOWN_SIGN = "unknown_sign"
    AMBIGUOUS = "ambiguous_margin"
    PROTOTYPE_DISAGREEMENT = "prototype_disagreement"
    LOW_CONFIDENCE = "low_confidence"

    def __str__(self) -> str:
        return self.value

    @property
    def explain(self) -> str:
        return _EXPLAIN[self]

    @property
    def is_input_gate(self) -> bool:
        """Rejected before any sign was compared: nothing was signed (no ranking to show)."""
        return self in (Reason.NO_HANDS, Reason.LOW_MOTION)

    @property
    def no_sign(self) -> bool:
        """The signer was not signing (as opposed to signing something not recognised)."""
        return self in (Reason.NO_HANDS, Reason.LOW_MOTION, Reason.IDLE)


_EXPLAIN = {
    Reason.NONE: "recognised",
    Reason.NO_HANDS: "no hand was seen in any frame",
    Reason.LOW_MOTION: "the hands hardly moved",
    Reason.IDLE: "the clip looks most like resting (no sign)",
    Reason.UNKNOWN_SIGN: "not a sign this deployment knows: it is not close enough to any of them",
    Reason.AMBIGUOUS: "two known signs fit almost equally well",
    Reason.PROTOTYPE_DISAGREEMENT: "the nearest clips and the sign closest on average disagree",
    Reason.LOW_CONFIDENCE: "the hands-only classifier is not confident enough",
}

REASONS = tuple(r.value for r in Reason)
