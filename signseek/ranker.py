"""The decision: which sign a clip is, whether to say so, and how sure to be.

`Ranker` is the one home of the rule (cosine search, DTW re-rank, unknown-score, calibrated
confidence, gates): the engine serves it, the trainer calibrates it, the evaluation protocols and
the explorer score it. It holds references and settings, never an encoder, and does no I/O.
`Reason` is the one list of rejection reasons: the engine emits them, the API documents them,
the UI and the explorer explain them, all from here.

    from signseek.ranker import Reason
    Reason("unknown_sign").explain     # plain words for a user
    Reason.NONE == "none"             # a str enum: compares and serialises as its value
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .labels import category_of


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


# ---------------------------------------------------------------------------- ranking


@dataclass
class Ranking:
    """Every searched label's scores for one query, best first (after the DTW re-rank)."""

    labels: list[str]
    cosine: np.ndarray  # each label's best reference cosine
    refined: np.ndarray  # cosine blended with the DTW score (top DTW_TOP_N), minus the density offset
    dtw_distance: np.ndarray  # normalised DTW distance to that reference; NaN where not re-ranked
    dtw_score: np.ndarray  # exp(-dtw_distance / DTW_SCALE); NaN where not re-ranked
    reference_index: np.ndarray  # each label's best reference (an index into the ReferenceSet)
    prototype_similarity: dict[str, float] = field(default_factory=dict)
    prototype_label: str | None = None
    density_offset: np.ndarray | None = None  # subtracted: the density discount less the few-references bonus
    timings_ms: dict[str, float] = field(default_factory=dict)  # search (the batch's share), dtw


@dataclass
class Decision:
    """The answer for one Ranking: accept the top label or say why not, with a calibrated confidence."""

    label: str | None  # the accepted sign; None when rejected
    accepted: bool
    reason: Reason
    confidence: float  # calibrated P(the top answer is right); shown for rejected answers too
    p_known: float  # P(the clip is one of the known signs), from the unknown-score
    unknown_score: float  # what p_known is computed from: the answer's cosine (+ MARGIN_WEIGHT x margin)
    margin: float  # the answer's refined similarity minus the next label's
    cosine_margin: float  # the answer's cosine minus the best cosine of any other label
    probabilities: np.ndarray  # per label in ranking order: p_known x softmax(refined / T)


def label_density(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[dict[str, float], float]:
    """Each label's density: the median, over its references, of the cosine to the nearest other
    reference of the same label (labels with one reference have none), and the median of those."""
    labels = np.asarray(labels).astype(str)
    density = {}
    for label in np.unique(labels):
        members = np.asarray(embeddings[labels == label], dtype=np.float32)
        if len(members) < 2:
            continue
        if len(members) > 512:  # a median needs no more, and 512^2 cosines stay cheap
            members = members[np.linspace(0, len(members) - 1, 512).astype(int)]
        sims = members @ members.T
        np.fill_diagonal(sims, -np.inf)
        density[str(label)] = float(np.median(sims.max(axis=1)))
    median = float(np.median(list(density.values()))) if density else 1.0
    return density, median


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0))))


def sim_threshold(category: str | None, settings) -> float:
    """The unknown-score at which an answer of this category is as likely known as not."""
    return settings.SIM_THRESHOLD + settings.CATEGORY_SIM_OFFSET.get(category or "", 0.0)


def unknown_score(cosine: float, best_other_cosine: float | None, settings) -> tuple[float, float]:
    """(score, cosine margin) of an answer: its cosine plus MARGIN_WEIGHT x how far it stands above
    the best cosine of any other label (margin 1 when there is no other label)."""
    margin = 1.0 if best_other_cosine is None else float(cosine - best_other_cosine)
    return float(cosine + settings.MARGIN_WEIGHT * margin), margin


def known_probability(score: float, category: str | None, settings) -> float:
    """p_known: how likely an answer with this unknown-score (of that category) is a known sign."""
    return sigmoid((score - sim_threshold(category, settings)) / settings.UNKNOWN_SCALE)


def softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(values, dtype=np.float64) / temperature
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


class Ranker:
    """Pure decision over a reference set: no encoder, no I/O; the engine, the trainer's
    calibration, the evaluation protocols and the explorer all call this one class.

        ranker = Ranker(references, settings, stats, idle_labels=("-",))
        ranking = ranker.rank(embedding, normalised)       # normalised [L, F]: DTW re-rank; None: cosine only
        decision = ranker.decide(ranking)                  # label / reason / calibrated confidence
        ranker.rank_many(embeddings, normalised_list)      # batch (evaluation), optional DTW matrix

    The rule (settings, calibrated into the bundle by `signseek.evaluation.fit_decision_rule`):
      order       refined = (1 - DTW_WEIGHT) x cosine + DTW_WEIGHT x exp(-dtw / DTW_SCALE), top DTW_TOP_N,
                  minus DENSITY_WEIGHT x (the sign's density - the median sign's, when positive). A
                  sign's density is how close its references sit to each other (median cosine of each
                  to its nearest sibling): 32 near-identical clips of a shipped sign would otherwise
                  out-vote the 3 clips of a new one by sheer number, so the best of many is discounted
                  by how tight they are. A looser sign than the median gets no bonus: 3 loose clips
                  enrolled under one name would otherwise steal the shipped signs' queries. Opt-in
                  (FEW_REFS_WEIGHT, default 0): plus FEW_REFS_WEIGHT x ln(median count / its count)
                  for a sign with fewer references than the median sign
      unknown     score = cosine of the answer + MARGIN_WEIGHT x (its cosine minus the next label's);
                  p_known = sigmoid((score - SIM_THRESHOLD - CATEGORY_SIM_OFFSET[the answer's
                  category]) / UNKNOWN_SCALE): a letter (a static handshape) needs a higher score
                  than a word, because letters sit closer to each other. DTW is left out of it on
                  purpose: DTW distance tracks the recording sitting more than the sign.
      confidence  p_known x softmax(refined / CONFIDENCE_TEMPERATURE)[answer]
      accept      the answer is not idle, confidence >= MIN_CONFIDENCE, refined margin >= SIM_MARGIN,
                  and (PROTOTYPE_CHECK) the nearest prototype agrees
    A sign enrolled from 1-3 clips follows the same rule: its score is the cosine to its nearest
    enrolled clip; its density is measured from 2 or 3 clips, and a sign with one clip gets the
    median sign's density (no offset). Nothing else per sign is estimated.
    """

    def __init__(self, references, settings, stats=None, idle_labels: Sequence[str] = ("-",),
                 categories: dict[str, str] | None = None) -> None:
        from .engine.search import build_index

        if len(references) == 0:
            raise ValueError("a ranker needs at least one reference")
        self.references = references
        self.settings = settings
        self.stats = stats
        self.idle_labels = frozenset(str(x) for x in idle_labels)
        self.index = build_index(references, settings.ANN_THRESHOLD)
        self.prototype_labels, self.prototypes = references.label_prototypes()
        self.categories = {**{lab: cat for lab, cat in zip(references.labels, references.categories, strict=True)
                              if cat}, **(categories or {})}
        self.n_labels = len(set(references.labels))
        self.density, self.median_density = label_density(references.embeddings, references.labels)
        names, counts = np.unique(np.asarray(references.labels).astype(str), return_counts=True)
        median_count = float(np.median(counts))
        # ln(median count / count) for signs with fewer references than the median sign, else 0
        self.few_refs = {str(n): float(np.log(median_count / c)) for n, c in zip(names, counts, strict=True)
                         if c < median_count}
        self._normalised_refs: dict[int, np.ndarray] = {}

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.references.labels))

    def category(self, label: str) -> str:
        """The label's category: as enrolled or shipped, else by `signseek.labels.category_of`."""
        return self.categories.get(label) or category_of(label)

    def sim_threshold(self, label: str) -> float:
        """SIM_THRESHOLD for an answer ``label`` (its category's offset included)."""
        return sim_threshold(self.category(label), self.settings)

    # ------------------------------------------------------------------ ranking

    def _pool(self, top_k: int = 0) -> int:
        """Labels to fetch from the index: all of them for exact search, a bounded pool for ANN."""
        if self.index.kind == "exact":
            return self.n_labels
        return min(self.n_labels, max(top_k, self.settings.DTW_TOP_N, 32))

    def _reference(self, j: int) -> np.ndarray:
        ref = self._normalised_refs.get(j)
        if ref is None:
            feats = self.references.features[j]
            ref = self.stats.apply(feats) if self.stats is not None else np.asarray(feats, np.float32)
            if len(self._normalised_refs) < 4096:
                self._normalised_refs[j] = ref
        return ref

    def rank(self, embedding: np.ndarray, normalised: np.ndarray | None = None, top_k: int = 0,
             dtw_distances: np.ndarray | None = None) -> Ranking:
        return self.rank_many(np.asarray(embedding, np.float32)[None], None if normalised is None else [normalised],
                              top_k, None if dtw_distances is None else np.asarray(dtw_distances)[None])[0]

    def rank_many(self, embeddings: np.ndarray, normalised: Sequence[np.ndarray] | None = None, top_k: int = 0,
                  dtw_distances: np.ndarray | None = None) -> list[Ranking]:
        """Rankings of many queries. ``normalised``: each query's normalised features, for the DTW
        re-rank (None: cosine order). ``dtw_distances`` [Q, R]: precomputed DTW distances from each
        query to every reference (calibration grids reuse one matrix)."""
        from .engine import dtw as dtw_mod

        s = self.settings
        t0 = time.perf_counter()
        hits = self.index.search(np.asarray(embeddings, dtype=np.float32), self._pool(top_k))
        search_ms = (time.perf_counter() - t0) * 1e3 / max(len(hits), 1)
        out = []
        for i, h in enumerate(hits):
            t1 = time.perf_counter()
            cosine = h.similarities.astype(np.float64)
            refined = cosine.copy()
            dists = np.full(len(cosine), np.nan)
            scores = np.full(len(cosine), np.nan)
            n = min(s.DTW_TOP_N, len(cosine))
            use_dtw = s.DTW_ENABLED and s.DTW_WEIGHT > 0 and n > 0 and (
                dtw_distances is not None or (normalised is not None and self.references.features is not None))
            if use_dtw:
                best = h.reference_index[:n].astype(np.int64)
                if dtw_distances is not None:
                    dists[:n] = dtw_distances[i][best]
                else:
                    dists[:n] = dtw_mod.distances(normalised[i], [self._reference(int(j)) for j in best],
                                                  s.DTW_BACKEND, s.DTW_WINDOW)
                scores[:n] = dtw_mod.dtw_score(dists[:n], s.DTW_SCALE)
                # labels not re-ranked are at least as far as the farthest re-ranked one
                filled = np.where(np.isnan(scores), np.nanmin(scores[:n]), scores)
                refined = (1 - s.DTW_WEIGHT) * cosine + s.DTW_WEIGHT * filled
            # only ever a discount: a sign whose few clips are loose (a hesitant take, or clips of
            # two signs under one name) must not earn a bonus over the shipped signs
            offset = s.DENSITY_WEIGHT * np.maximum(
                np.array([self.density.get(x, self.median_density) for x in h.labels]) - self.median_density, 0.0)
            if s.FEW_REFS_WEIGHT:
                offset = offset - s.FEW_REFS_WEIGHT * np.array([self.few_refs.get(x, 0.0) for x in h.labels])
            refined = refined - offset
            order = np.argsort(-refined, kind="stable")
            labels = [h.labels[j] for j in order]
            proto_sims, proto_label = {}, None
            if self.prototypes is not None:
                ps = self.prototypes @ np.asarray(embeddings[i], np.float32)
                proto_sims = dict(zip(self.prototype_labels, ps.astype(float).tolist(), strict=True))
                proto_label = self.prototype_labels[int(np.argmax(ps))]
            timings = {"search": search_ms, "dtw": (time.perf_counter() - t1) * 1e3}
            out.append(Ranking(labels, cosine[order], refined[order], dists[order], scores[order],
                               h.reference_index[order].astype(np.int64), proto_sims, proto_label, offset[order],
                               timings))
        return out

    # ------------------------------------------------------------------ deciding

    def unknown_score(self, ranking: Ranking, position: int = 0) -> tuple[float, float]:
        """(score, cosine margin) of the label at ``position``: its cosine plus MARGIN_WEIGHT x how
        far it stands above the best cosine of any other label."""
        others = np.delete(ranking.cosine, position)
        return unknown_score(float(ranking.cosine[position]), float(others.max()) if len(others) else None,
                             self.settings)

    def decide(self, ranking: Ranking) -> Decision:
        s = self.settings
        score, cos_margin = self.unknown_score(ranking)
        top = ranking.labels[0]
        p_known = known_probability(score, self.category(top), s)
        probabilities = p_known * softmax(ranking.refined, s.CONFIDENCE_TEMPERATURE)
        refined = ranking.refined
        margin = float(refined[0] - refined[1]) if len(refined) > 1 else 1.0
        confidence = float(probabilities[0])
        if top in self.idle_labels:
            reason = Reason.IDLE
        elif confidence < s.MIN_CONFIDENCE:
            # which factor pulled it under: "not a sign I know" or "two signs fit"
            share = float(probabilities[0] / p_known) if p_known > 0 else 0.0
            reason = Reason.UNKNOWN_SIGN if p_known <= share else Reason.AMBIGUOUS
        elif margin < s.SIM_MARGIN:
            reason = Reason.AMBIGUOUS
        elif s.PROTOTYPE_CHECK and ranking.prototype_label is not None and ranking.prototype_label != top:
            reason = Reason.PROTOTYPE_DISAGREEMENT
        else:
            reason = Reason.NONE
        accepted = reason is Reason.NONE
        return Decision(top if accepted else None, accepted, reason, confidence, p_known, score, margin,
                        cos_margin, probabilities)
