"""Reference sets and cosine search over their embeddings.

`ReferenceSet` holds what retrieval needs about every reference clip: its unit embedding, label,
category, prepared feature sequence (for DTW) and provenance. `build_index` picks exact search
(one numpy matmul) below ``ann_threshold`` references and a usearch HNSW index above it.

Search is per label: `LabelSearch.top_labels(query, k)` returns the k best labels, each with its
best reference (the nearest clip of that sign) and that reference's cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..bundle import compute_prototypes


@dataclass
class ReferenceSet:
    """Reference clips: embeddings [N, D] (unit), labels, categories, features [L_i, F] (prepared,
    not normalised; may be empty lists when DTW is not wanted), and free-form per-row metadata."""

    embeddings: np.ndarray
    labels: list[str]
    categories: list[str] | None = None
    features: list[np.ndarray] | None = None
    rows: list[dict] | None = None  # e.g. source, session, sample_id, clip_id
    prototype_labels: list[str] | None = None  # optional precomputed prototypes (else computed)
    prototypes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.embeddings = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        self.labels = [str(x) for x in self.labels]
        n = len(self.labels)
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            raise ValueError(f"{len(self.labels)} labels for embeddings of shape {self.embeddings.shape}")
        self.categories = [str(c) for c in self.categories] if self.categories is not None else [""] * n
        if self.features is not None and len(self.features) != n:
            raise ValueError(f"{len(self.features)} feature sequences for {n} references")
        self.rows = list(self.rows) if self.rows is not None else [{} for _ in range(n)]
        if len(self.categories) != n or len(self.rows) != n:
            raise ValueError("categories and rows must have one entry per reference")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_sequences(
        cls,
        encoder_or_engine,
        prepared: Sequence[np.ndarray],
        labels: Sequence[str],
        categories: Sequence[str] | None = None,
        rows: Sequence[dict] | None = None,
        stats=None,
    ) -> ReferenceSet:
        """Embed prepared (not normalised) feature sequences into a reference set.

        ``encoder_or_engine``: an `Engine` (its stats are used) or an `Encoder` plus ``stats``.
        """
        if hasattr(encoder_or_engine, "embed_prepared"):
            embeddings = encoder_or_engine.embed_prepared(prepared)
        else:
            if stats is None:
                raise ValueError("ReferenceSet.from_sequences with a bare encoder needs stats")
            embeddings = encoder_or_engine.embed_sequences([stats.apply(p) for p in prepared])
        return cls(embeddings, list(labels), list(categories) if categories is not None else None,
                   [np.asarray(p, dtype=np.float32) for p in prepared], list(rows) if rows else None)

    @classmethod
    def from_bundle(cls, bundle) -> ReferenceSet:
        return cls(
            bundle.embeddings, bundle.labels, bundle.categories, bundle.reference_features,
            [dict(r) for r in bundle.rows], bundle.prototype_labels or None, bundle.prototypes,
        )

    def concat(self, other: ReferenceSet) -> ReferenceSet:
        if len(other) == 0:
            return self
        if len(self) and other.embeddings.shape[1] != self.embeddings.shape[1]:
            raise ValueError("reference sets have different embedding sizes")
        has_features = self.features is not None and other.features is not None
        return ReferenceSet(
            np.concatenate([self.embeddings, other.embeddings]) if len(self) else other.embeddings,
            self.labels + other.labels,
            self.categories + other.categories,
            (self.features + other.features) if has_features else None,
            self.rows + other.rows,
            # precomputed prototypes cover only the first set's labels: recompute for all
        )

    def label_prototypes(self) -> tuple[list[str], np.ndarray]:
        """Per-label prototypes: the precomputed ones where given, computed for other labels."""
        labels, protos = compute_prototypes(self.embeddings, self.labels) if len(self) else ([], None)
        if self.prototype_labels and self.prototypes is not None and protos is not None:
            given = dict(zip(self.prototype_labels, self.prototypes, strict=True))
            protos = np.stack([given.get(label, p) for label, p in zip(labels, protos, strict=True)])
        return labels, protos


@dataclass
class LabelHits:
    """Top labels for one query, best first."""

    labels: list[str]
    similarities: np.ndarray  # best reference's cosine similarity per label
    reference_index: np.ndarray  # index (into the ReferenceSet) of each label's best reference
    extra: dict = field(default_factory=dict)


class ExactIndex:
    """All similarities by one matmul; per-label maxima by a grouped reduction."""

    kind = "exact"

    def __init__(self, embeddings: np.ndarray, labels: Sequence[str]) -> None:
        self.embeddings = embeddings
        self.label_names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
        self.codes = codes.astype(np.int64)
        # Group references by label so np.maximum.reduceat gives each label's best similarity.
        self.order = np.argsort(self.codes, kind="stable")
        sorted_codes = self.codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        self.group_labels = sorted_codes[self.starts]

    def search(self, queries: np.ndarray, k: int) -> list[LabelHits]:
        sims = queries @ self.embeddings.T  # [Q, N]
        out = []
        for row in sims:
            grouped = row[self.order]
            best = np.maximum.reduceat(grouped, self.starts)
            k_eff = min(k, len(best))
            top = np.argpartition(-best, k_eff - 1)[:k_eff]
            top = top[np.argsort(-best[top], kind="stable")]
            ref_idx = []
            for g in top:
                start = self.starts[g]
                stop = self.starts[g + 1] if g + 1 < len(self.starts) else len(grouped)
                ref_idx.append(int(self.order[start + int(np.argmax(grouped[start:stop]))]))
            out.append(LabelHits([str(self.label_names[self.group_labels[g]]) for g in top],
                                 best[top].astype(np.float32), np.asarray(ref_idx, dtype=np.int64)))
        return out

    def nearest(self, queries: np.ndarray, k: int) -> np.ndarray:
        """[Q, k] indices of the k nearest references (by cosine), for recall measurements."""
        sims = queries @ self.embeddings.T
        k = min(k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)


class AnnIndex:
    """usearch HNSW (cosine) over the references; per-label hits from the nearest clips."""

    kind = "ann"

    def __init__(self, embeddings: np.ndarray, labels: Sequence[str], expansion_search: int = 64) -> None:
        # onnxruntime must be imported before usearch in a process, or ORT's import crashes
        # (seen with usearch 2.26 + onnxruntime 1.32); the engine imports ORT first anyway.
        import onnxruntime  # noqa: F401
        from usearch.index import Index

        self.embeddings = embeddings
        self.labels = np.asarray(labels, dtype=str)
        self.index = Index(ndim=embeddings.shape[1], metric="cos", dtype="f32",
                           connectivity=16, expansion_add=64, expansion_search=expansion_search)
        # One thread: a multi-threaded HNSW build depends on thread scheduling, so the same
        # references could give different neighbours (and answers) from one start to the next.
        # Single-threaded it is reproducible, for about a third more build time (BENCHMARKS.md).
        self.index.add(np.arange(len(embeddings), dtype=np.uint64), embeddings, threads=1)

    def nearest(self, queries: np.ndarray, k: int) -> np.ndarray:
        matches = self.index.search(np.atleast_2d(queries).astype(np.float32), k, threads=0)
        keys = np.asarray(matches.keys, dtype=np.int64).reshape(len(queries), -1)
        return keys

    def search(self, queries: np.ndarray, k: int) -> list[LabelHits]:
        # Several clips per label: fetch enough neighbours to see k distinct labels usually.
        n_neighbours = min(len(self.labels), max(64, 8 * k))
        out = []
        for q, keys in zip(queries, self.nearest(queries, n_neighbours), strict=True):
            keys = keys[keys >= 0]
            sims = self.embeddings[keys] @ q  # exact cosine for the retrieved clips
            order = np.argsort(-sims, kind="stable")
            seen, labels, best, refs = set(), [], [], []
            for i in order:
                label = str(self.labels[keys[i]])
                if label in seen:
                    continue
                seen.add(label)
                labels.append(label)
                best.append(sims[i])
                refs.append(int(keys[i]))
                if len(labels) == k:
                    break
            out.append(LabelHits(labels, np.asarray(best, dtype=np.float32), np.asarray(refs, dtype=np.int64)))
        return out


def build_index(references: ReferenceSet, ann_threshold: int) -> ExactIndex | AnnIndex:
    if len(references) >= ann_threshold:
        return AnnIndex(references.embeddings, references.labels)
    return ExactIndex(references.embeddings, references.labels)
